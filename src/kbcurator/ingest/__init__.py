"""Sources in, articles out: read a declared source, parse its pages, keep every rejection as data."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from kbcurator.records import Article, RawPage, Rejected
from kbcurator.settings import SourceConfig


def read_source(source: SourceConfig) -> Iterator[RawPage | Rejected]:
    """Raw pages of one source. Raises ``SourceError`` when the source as a whole cannot be read."""
    if source.kind == "folder":
        from kbcurator.ingest.folder import read_folder

        return read_folder(source)
    if source.kind == "sitemap":
        from kbcurator.ingest.sitemap import crawl_sitemap

        return crawl_sitemap(source)
    from kbcurator.ingest.zendesk import read_zendesk

    return read_zendesk(source)


def parse_pages(pages: Iterable[RawPage | Rejected], source: SourceConfig) -> Iterator[Article | Rejected]:
    from kbcurator.ingest.parse import parse_page

    for page in pages:
        if isinstance(page, Rejected):
            yield page
        else:
            yield parse_page(page, default_locale=source.locale, base_url=source.base_url)


def read_articles(source: SourceConfig) -> tuple[list[Article], list[Rejected]]:
    """Every article of a source, and every page or file that was skipped with where and why."""
    articles: list[Article] = []
    rejected: list[Rejected] = []
    for item in parse_pages(read_source(source), source):
        (rejected if isinstance(item, Rejected) else articles).append(item)  # type: ignore[arg-type]
    return articles, rejected
