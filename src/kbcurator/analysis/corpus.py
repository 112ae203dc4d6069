"""Building an :class:`AuditCorpus` from a published release or straight from declared sources."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from kbcurator.analysis.base import AuditCorpus
from kbcurator.chunking import ChunkPolicy, chunk_articles, embedding_input
from kbcurator.config.health import ReviewSettings
from kbcurator.embedding.base import Embedder, unit_rows
from kbcurator.index import schema
from kbcurator.index.ann import chunk_index_for
from kbcurator.index.store import IndexStore, manifest_of
from kbcurator.records import Article, Chunk, IndexRelease, Rejected, RejectionCode
from kbcurator.settings import AnnSettings


def dead_links_from(rejected: Iterable[Rejected]) -> dict[str, str]:
    """URLs the crawl found gone (404/410) -> why, from the run's rejections."""
    return {r.record_id: f"{r.reason} while crawling" for r in rejected if r.code == RejectionCode.GONE}


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return unit_rows(vectors.reshape(len(vectors), -1))


def corpus_from_release(
    store: IndexStore,
    release: IndexRelease,
    *,
    run_at: datetime,
    reviews: Mapping[str, ReviewSettings],
    dead_links: Mapping[str, str] | None = None,
    escalations: Mapping[str, tuple[str, ...]] | None = None,
    ann: AnnSettings | None = None,
) -> AuditCorpus:
    """The articles, chunks and vectors one release points at.

    Dead links default to what the release's manifest recorded from its crawl. Where the release's chunks
    version carries a vector index, the corpus' ``chunk_index`` searches through it with the breadth of
    ``ann`` (default :class:`~kbcurator.settings.AnnSettings`).
    """
    article_rows = store.read_table(schema.ARTICLES, release.articles_version).to_pylist()
    chunk_table = store.read_table(schema.CHUNKS, release.chunks_version)
    articles = [
        Article(
            article_id=row["article_id"],
            source_id=row["source_id"] or "",
            url=row["url"] or "",
            title=row["title"] or "",
            section=row["section"] or "",
            locale=row["locale"] or "",
            body_html=row["body_html"] or "",
            text=row["text"] or "",
            updated_at=_utc(row["updated_at"]),
            content_hash=row["content_hash"] or "",
            links=tuple(row["links"] or ()),
        )
        for row in sorted(article_rows, key=lambda r: r["article_id"])
    ]
    rows = chunk_table.drop_columns(["vector"]).to_pylist()
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["article_id"], rows[i]["position"]))
    chunks = [
        Chunk(
            chunk_id=rows[i]["chunk_id"],
            article_id=rows[i]["article_id"],
            position=int(rows[i]["position"]),
            text=rows[i]["text"] or "",
            heading_path=tuple(rows[i]["heading_path"] or ()),
            char_start=int(rows[i]["char_start"] or 0),
            char_end=int(rows[i]["char_end"] or 0),
            content_hash=rows[i]["content_hash"] or "",
        )
        for i in order
    ]
    vectors = chunk_table["vector"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    dimension = chunk_table.schema.field("vector").type.list_size
    matrix = vectors.reshape(len(rows), dimension)[order] if rows else np.zeros((0, dimension), dtype=np.float32)
    if dead_links is None:
        dead_links = dict(manifest_of(release).get("dead_links") or {})
    unit = _unit_rows(matrix)
    search = ann or AnnSettings()
    chunk_index = (
        chunk_index_for(store, release, [c.chunk_id for c in chunks], search, vectors=unit)
        if rows and len(rows) >= search.audit_min_rows
        else None
    )
    return AuditCorpus(
        articles=articles,
        chunks=chunks,
        chunk_vectors=unit,
        run_at=run_at,
        index_version=release.tag,
        dead_links=dead_links,
        reviews=reviews,
        escalations=escalations or {},
        chunk_index=chunk_index,
    )


def corpus_from_articles(
    articles: Sequence[Article],
    *,
    embedder: Embedder,
    policy: ChunkPolicy,
    run_at: datetime,
    reviews: Mapping[str, ReviewSettings],
    dead_links: Mapping[str, str] | None = None,
    escalations: Mapping[str, tuple[str, ...]] | None = None,
) -> tuple[AuditCorpus, list[Rejected]]:
    """Chunk and embed articles that were never published (``kbcurator audit --source``)."""
    unique = list({a.article_id: a for a in reversed(articles)}.values())[::-1]  # first occurrence wins
    chunks: list[Chunk] = []
    rejected: list[Rejected] = []
    for item in chunk_articles(unique, policy):
        if isinstance(item, Rejected):
            rejected.append(item)
        else:
            chunks.extend(item[1])
    title_of = {a.article_id: a.title for a in unique}
    texts = [embedding_input(title_of[c.article_id], c.text) for c in chunks]
    vectors = embedder.embed(texts) if texts else np.zeros((0, 1), dtype=np.float32)
    corpus = AuditCorpus(
        articles=unique,
        chunks=chunks,
        chunk_vectors=_unit_rows(vectors),
        run_at=run_at,
        index_version="",
        dead_links=dead_links or {},
        reviews=reviews,
        escalations=escalations or {},
    )
    return corpus, rejected
