"""Sources in, articles out: read a declared source, parse its pages, keep every rejection as data."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from kbcurator.errors import ParseError

# ``parse`` as a module, not its functions: ``parse.parse_page`` is looked up at each call (tests count the calls).
from kbcurator.ingest import parse
from kbcurator.ingest.cache import ParseCache, page_key
from kbcurator.ingest.parse import MAX_ARTICLE_CHARS
from kbcurator.records import Article, RawPage, Rejected
from kbcurator.settings import SourceConfig

__all__ = ["MAX_ARTICLE_CHARS", "ParseCache", "iter_articles", "parse_pages", "read_articles", "read_source"]


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


def parse_pages(
    pages: Iterable[RawPage | Rejected], source: SourceConfig, *, max_article_chars: int = MAX_ARTICLE_CHARS
) -> Iterator[Article | Rejected]:
    for page in pages:
        if isinstance(page, Rejected):
            yield page
        else:
            yield parse.parse_page(
                page, default_locale=source.locale, base_url=source.base_url, max_article_chars=max_article_chars
            )


def read_articles(
    source: SourceConfig, *, memo: ParseCache | None = None, max_article_chars: int = MAX_ARTICLE_CHARS
) -> tuple[list[Article], list[Rejected]]:
    """Every article of a source, and every page or file that was skipped with where and why.

    With ``memo``, a page parsed before into an article the current release still holds is not parsed again
    (kbcurator.index.parse_memo implements the cache), and the pages parsed now are recorded in it. The result
    is the same.

    An article whose text is longer than ``max_article_chars`` (pass ``checks.max_article_chars``) is rejected
    here, on its own, so that the release checks pass for the others.
    """
    return _split(iter_articles(source, memo=memo, max_article_chars=max_article_chars))


def iter_articles(
    source: SourceConfig, *, memo: ParseCache | None = None, max_article_chars: int = MAX_ARTICLE_CHARS
) -> Iterator[Article | Rejected]:
    """``read_articles`` as it goes, in the source's order: a caller that writes each article away (a reindex
    stages them in the index database) holds none of them whole."""
    if memo is None:
        yield from parse_pages(read_source(source), source, max_article_chars=max_article_chars)
        return
    parsed: list[tuple[str, Article]] = []  # recorded a few hundred at a time
    batch: list[RawPage | Rejected] = []
    for page in read_source(source):
        batch.append(page)
        if len(batch) == _MEMO_BATCH:
            yield from _parse_with_memo(batch, source, memo, parsed, max_article_chars)
            batch = []
            if len(parsed) >= _REMEMBER_BATCH:
                memo.remember(parsed)
                parsed = []
    yield from _parse_with_memo(batch, source, memo, parsed, max_article_chars)
    memo.remember(parsed)


# Pages looked up in the memo at a time: one read of their articles, without holding every raw page of a crawl.
_MEMO_BATCH = 500
# Parsed articles recorded in the memo at a time: each record is a write (a LanceDB version), and the articles wait
# in memory until it.
_REMEMBER_BATCH = 2_000


def _parse_with_memo(
    pages: list[RawPage | Rejected],
    source: SourceConfig,
    memo: ParseCache,
    parsed: list[tuple[str, Article]],
    max_article_chars: int,
) -> list[Article | Rejected]:
    """Articles (from the memo, or parsed) and rejections for ``pages``; what was parsed is added to ``parsed``."""
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
            # The limit is not part of the memo's key: an article remembered under a higher one is checked again.
            try:
                outcomes.append(parse.check_article(known[key], max_article_chars=max_article_chars))
            except ParseError as exc:
                outcomes.append(
                    Rejected(page.location, "parse", str(exc), page.source_id, code=parse.rejection_code(exc))
                )
        else:
            outcome = parse.parse_page(
                page, default_locale=source.locale, base_url=source.base_url, max_article_chars=max_article_chars
            )
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
