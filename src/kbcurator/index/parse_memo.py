"""Articles of the current release by the raw page they were parsed from, so an unchanged file is not parsed again.

A rebuild must read every source to learn what changed, but parsing is what costs: at 40,600 Markdown articles it
was 580-720 s of an unchanged rebuild, against seconds to read and hash the files. Ingest's ``page_key``
(kbcurator.ingest.cache) hashes everything ``parse_page``'s output depends on (the raw content, its location and
fields, the source's locale and base URL, the parser's version); a page whose key is in the memo and whose article
is in the current release, exactly as it was parsed then, gets that article back without being parsed.
``ParseMemo`` is the ``ParseCache`` that ``read_articles`` takes; this module imports nothing from ingest.

The memo holds keys and ids only (``parse_memo`` table: page key, article id, a hash of the whole article); the
articles themselves come from the current release. An entry whose article is not in the current release as
recorded (a build that failed its checks, a rollback, a later edit) is a miss, so the memo can only ever return
what the parser would.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

import pyarrow as pa

from kbcurator.index import schema
from kbcurator.index.article_rows import ARTICLE_FIELDS, article_of
from kbcurator.index.store import IndexStore, lance_errors, sql_in
from kbcurator.records import Article

_ARTICLE_COLUMNS = ARTICLE_FIELDS


def article_hash(article: Article) -> str:
    """A hash of every field of ``article``: a memo entry is honoured only for the very article it recorded."""
    material = json.dumps(
        [getattr(article, name) for name in _ARTICLE_COLUMNS],
        default=lambda value: value.isoformat() if hasattr(value, "isoformat") else list(value),
        ensure_ascii=False,
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class ParseMemo:
    """The articles the current release holds for page keys; ``recall`` before parsing, ``remember`` after.

    One instance serves one read: the current release and the memo's entries are read once, at the first
    ``recall``, and each call then reads only the article rows its keys need (so a source can be read in batches
    without holding every raw page). ``reused`` counts the articles handed back so far (for the run's log).
    """

    def __init__(self, store: IndexStore) -> None:
        self._store = store
        self._loaded = False
        self._articles_version: int | None = None
        self._entries: dict[str, set[tuple[str, str]]] = {}
        self.reused = 0

    def _load(self) -> None:
        self._loaded = True
        current = self._store.current()
        if current is None or not self._store.has_table(schema.PARSE_MEMO):
            return
        self._articles_version = current.articles_version
        with lance_errors("cannot read the parse memo"):
            memo = self._store.db.open_table(schema.PARSE_MEMO).to_arrow()
        for key, article_id, digest in zip(
            memo["page_key"].to_pylist(), memo["article_id"].to_pylist(), memo["article_hash"].to_pylist(), strict=True
        ):
            self._entries.setdefault(key, set()).add((article_id, digest))

    def recall(self, keys: Sequence[str]) -> dict[str, Article]:
        """The article parsed earlier from each key that the current release still holds unchanged."""
        if not self._loaded:
            self._load()
        recorded = {key: self._entries[key] for key in set(keys) if key in self._entries}
        if not recorded or self._articles_version is None:
            return {}
        wanted = sorted({article_id for pairs in recorded.values() for article_id, _ in pairs})
        table = self._store.open_at(schema.ARTICLES, self._articles_version)
        with lance_errors("cannot read the current release's articles"):
            rows = (
                table.search()
                .where(sql_in("article_id", wanted))
                .select(list(_ARTICLE_COLUMNS))
                .limit(None)
                .to_arrow()
                .to_pylist()
            )
        by_id: dict[str, tuple[Article, str]] = {}
        for row in rows:
            article = article_of(row)
            by_id[article.article_id] = (article, article_hash(article))
        found: dict[str, Article] = {}
        for key, pairs in recorded.items():
            for article_id, digest in pairs:
                held = by_id.get(article_id)
                if held is not None and held[1] == digest:
                    found[key] = held[0]
                    break
        self.reused += sum(1 for key in keys if key in found)
        return found

    def remember(self, parsed: Iterable[tuple[str, Article]]) -> None:
        """Record the keys of pages parsed in this run (kept whether or not their release is published)."""
        rows = [(key, article.article_id, article_hash(article)) for key, article in parsed]
        if not rows:
            return
        keys, article_ids, digests = zip(*rows, strict=True)
        data = pa.table(
            {"page_key": list(keys), "article_id": list(article_ids), "article_hash": list(digests)},
            schema=schema.parse_memo_schema(),
        )
        table = self._store.open_or_create(schema.PARSE_MEMO, schema.parse_memo_schema())
        with lance_errors("cannot write the parse memo"):
            # Appended: a key recorded twice (a page parsed again after a failed build) is harmless, recall
            # honours whichever entry matches the current release.
            table.add(data)
