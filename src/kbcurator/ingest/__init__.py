"""Sources in, articles out: read a declared source, parse its pages, keep every rejection as data."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from kbcurator.records import Article, RawPage, Rejected
from kbcurator.settings import SourceConfig

if TYPE_CHECKING:
    from kbcurator.index.parse_memo import ParseMemo


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


def read_articles(source: SourceConfig, *, memo: ParseMemo | None = None) -> tuple[list[Article], list[Rejected]]:
    """Every article of a source, and every page or file that was skipped with where and why.

    With ``memo``, a page parsed before into an article the current release still holds is not parsed again
    (see kbcurator.index.parse_memo), and the pages parsed now are recorded in it. The result is the same.
    """
    if memo is None:
        return _split(parse_pages(read_source(source), source))
    outcomes: list[Article | Rejected] = []
    parsed: list[tuple[str, Article]] = []  # recorded in one write at the end
    batch: list[RawPage | Rejected] = []
    for page in read_source(source):
        batch.append(page)
        if len(batch) == _MEMO_BATCH:
            outcomes += _parse_with_memo(batch, source, memo, parsed)
            batch = []
    outcomes += _parse_with_memo(batch, source, memo, parsed)
    memo.remember(parsed)
    return _split(outcomes)


# Pages looked up in the memo at a time: one read of their articles, without holding every raw page of a crawl.
_MEMO_BATCH = 500


def _parse_with_memo(
    pages: list[RawPage | Rejected], source: SourceConfig, memo: ParseMemo, parsed: list[tuple[str, Article]]
) -> list[Article | Rejected]:
    """Articles (from the memo, or parsed) and rejections for ``pages``; what was parsed is added to ``parsed``."""
    from kbcurator.index.parse_memo import page_key
    from kbcurator.ingest.parse import parse_page

    keys = [
        None if isinstance(page, Rejected) else page_key(page, default_locale=source.locale, base_url=source.base_url)
        for page in pages
    ]
    known = memo.recall([key for key in keys if key is not None])
    outcomes: list[Article | Rejected] = []
    for page, key in zip(pages, keys, strict=True):
        if isinstance(page, Rejected):
            outcomes.append(page)
        elif key is not None and key in known:
            outcomes.append(known[key])
        else:
            outcome = parse_page(page, default_locale=source.locale, base_url=source.base_url)
            if key is not None and isinstance(outcome, Article):
                parsed.append((key, outcome))
            outcomes.append(outcome)
    return outcomes


def _split(items: Iterable[Article | Rejected]) -> tuple[list[Article], list[Rejected]]:
    articles: list[Article] = []
    rejected: list[Rejected] = []
    for item in items:
        (rejected if isinstance(item, Rejected) else articles).append(item)  # type: ignore[arg-type]
    return articles, rejected
