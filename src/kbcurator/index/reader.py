"""The read side for RAG services: open a release (current, a tag, or a number) and search it.

Every search names the score column it reads (``_distance``, ``_score``) in its projection: LanceDB otherwise adds
it itself and logs a deprecation warning on every search ("did not include `_distance`"). Hybrid search is fused
here (reciprocal rank fusion over a vector and a full-text search) rather than by LanceDB's hybrid builder, whose
two legs share one projection and so cannot each name their own score column.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from kbcurator.embedding.base import Embedder
from kbcurator.errors import PublishError
from kbcurator.index import schema
from kbcurator.index.ann import has_vector_index, is_hnsw, tune_query
from kbcurator.index.store import CURRENT, IndexStore, lance_errors, manifest_of
from kbcurator.records import IndexRelease
from kbcurator.settings import AnnSettings

SearchMode = Literal["vector", "hybrid", "fts"]

# Reciprocal rank fusion's constant, as in LanceDB's RRFReranker and the original paper (Cormack et al., 2009).
RRF_K = 60
_HIT_COLUMNS = [
    "chunk_id",
    "article_id",
    "url",
    "title",
    "heading",
    "heading_path",
    "text",
    "locale",
    "updated_at",
    "content_hash",
]
_SQL_SAFE_TEXT = re.compile(r"^[^\x00-\x1f\x7f]*$")


@dataclass(frozen=True, slots=True)
class SearchHit:
    chunk_id: str
    article_id: str
    url: str
    title: str
    heading: str
    text: str
    score: float  # what ranked the hit: cosine similarity (vector), fused RRF relevance (hybrid), BM25 (fts)
    similarity: float | None = None  # cosine similarity to the query, when the query was embedded
    heading_path: tuple[str, ...] = ()
    locale: str = ""
    updated_at: datetime | None = None
    content_hash: str = ""  # of the chunk's embedded text: identical chunks share it


@dataclass(frozen=True, slots=True)
class ArticleFacet:
    """What a search filters and de-duplicates on that only the articles table holds."""

    source_id: str
    section: str
    locale: str
    content_hash: str


@dataclass(frozen=True, slots=True)
class ChunkFilter:
    """Restricts a search to some chunks; every field left empty restricts nothing. Values are matched exactly.

    ``article_ids`` is what a filter on the articles table (a section) resolves to; ``source_ids`` match the
    prefix of the article id (``records.make_article_id``).
    """

    source_ids: tuple[str, ...] = ()
    article_ids: tuple[str, ...] | None = None  # None: any article; (): none
    locales: tuple[str, ...] = ()
    updated_after: datetime | None = None

    def where(self) -> str | None:
        """The filter as a LanceDB (DataFusion SQL) predicate, every value quoted; None when it filters nothing.

        Raises:
            ValueError: a value holds a control character (none of the index's values do).
        """
        clauses: list[str] = []
        if self.source_ids:
            clauses.append(
                "(" + " OR ".join(f"starts_with(article_id, {sql_string(s + ':')})" for s in self.source_ids) + ")"
            )
        if self.article_ids is not None:
            clauses.append(f"article_id IN ({_sql_list(self.article_ids)})" if self.article_ids else "FALSE")
        if self.locales:
            clauses.append(f"locale IN ({_sql_list(self.locales)})")
        if self.updated_after is not None:
            clauses.append(f"updated_at > {sql_timestamp(self.updated_after)}")
        return " AND ".join(clauses) or None


def sql_string(value: str) -> str:
    """``value`` as a SQL string literal: single quotes doubled, control characters refused."""
    if not _SQL_SAFE_TEXT.match(value):
        raise ValueError(f"a filter value may not hold control characters: {value[:40]!r}")
    return "'" + value.replace("'", "''") + "'"


def sql_timestamp(moment: datetime) -> str:
    """A UTC timestamp literal (a naive ``moment`` is read as UTC, like every ``_at`` of the index)."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return f"TIMESTAMP '{moment.strftime('%Y-%m-%dT%H:%M:%S.%f')}+00:00'"


def _sql_list(values: Iterable[str]) -> str:
    return ", ".join(sql_string(value) for value in values)


def check_query_embedder(release: IndexRelease, embedder: Embedder) -> None:
    """Raises PublishError when ``embedder`` is not the model ``release`` was built with."""
    manifest = manifest_of(release)
    if embedder.name != manifest["model"] or embedder.dimension != manifest["dimension"]:
        raise PublishError(
            f"{release.tag} was built with {manifest['model']} ({manifest['dimension']} dims); "
            f"the query embedder is {embedder.name} ({embedder.dimension} dims)"
        )


class KBIndex:
    """A pinned view of one release. ``refresh()`` moves a view opened on "current" to the newest one.

    Vector and hybrid search go through the release's vector index where its chunks version has one, with
    the search breadth of ``ann`` (defaults: :class:`~kbcurator.settings.AnnSettings`); otherwise exactly.
    """

    def __init__(
        self,
        store: IndexStore,
        ref: str | int | None,
        embedder: Embedder | None,
        *,
        ann: AnnSettings | None = None,
        release: IndexRelease | None = None,
    ) -> None:
        self.store = store
        self._ref = CURRENT if ref is None else ref
        self._embedder = embedder
        self._ann = ann or AnnSettings()
        self.release: IndexRelease = release if release is not None else store.resolve(self._ref)
        self._chunks: Any = None
        self._vector_index: tuple[bool, bool] | None = None  # (has one, is HNSW) at the release's version
        self._facets: dict[str, ArticleFacet] | None = None

    @property
    def manifest(self) -> dict[str, Any]:
        return manifest_of(self.release)

    @property
    def has_fts(self) -> bool:
        """Whether the release was published with a full-text index on the chunks' text."""
        return bool(self.manifest.get("fts"))

    def refresh(self) -> bool:
        """Follow "current" to a newer release; a view pinned to a tag or number never moves."""
        if self._ref != CURRENT:
            return False
        newest = self.store.resolve(CURRENT)
        moved = newest.seq != self.release.seq
        if moved:
            self.release, self._chunks, self._vector_index, self._facets = newest, None, None, None
        return moved

    def _table(self) -> Any:
        if self._chunks is None:
            self._chunks = self.store.open_at(schema.CHUNKS, self.release.chunks_version)
        return self._chunks

    @property
    def has_vector_index(self) -> bool:
        """Whether searches of this release go through an approximate vector index (else they are exact)."""
        return self._index_kind()[0]

    def _index_kind(self) -> tuple[bool, bool]:
        if self._vector_index is None:
            table = self._table()
            with lance_errors(f"cannot list the indices of {self.release.tag}"):
                self._vector_index = (has_vector_index(table), is_hnsw(table))
        return self._vector_index

    def _tuned(self, query: Any, k: int) -> Any:
        query = query.distance_type("cosine")  # the metric the index was trained with, and the one we report
        indexed, hnsw = self._index_kind()
        return tune_query(query, self._ann, k, hnsw=hnsw) if indexed else query

    def _embedder_for_release(self) -> Embedder:
        if self._embedder is None:
            from kbcurator.embedding.sentence import load_embedder

            self._embedder = load_embedder(self.manifest["model"])
        check_query_embedder(self.release, self._embedder)
        return self._embedder

    def article_facets(self) -> dict[str, ArticleFacet]:
        """Source, section, locale and content hash of every article of the release, by article id (read once)."""
        if self._facets is None:
            columns = ["article_id", "source_id", "section", "locale", "content_hash"]
            rows = self.store.read_table(schema.ARTICLES, self.release.articles_version, columns).to_pylist()
            self._facets = {
                row["article_id"]: ArticleFacet(
                    source_id=row["source_id"] or "",
                    section=row["section"] or "",
                    locale=row["locale"] or "",
                    content_hash=row["content_hash"] or "",
                )
                for row in rows
            }
        return self._facets

    def search(self, text: str, k: int = 5, mode: SearchMode = "hybrid") -> list[SearchHit]:
        """Top ``k`` chunks for ``text``. Hybrid falls back to vector search when the release has no
        full-text index."""
        return self.query(text, mode=mode, limit=k)

    def query(
        self,
        text: str,
        *,
        mode: SearchMode,
        limit: int,
        where: str | None = None,
        vector: np.ndarray | None = None,
    ) -> list[SearchHit]:
        """The top ``limit`` chunks for ``text`` among those ``where`` (a :meth:`ChunkFilter.where`) keeps.

        ``vector`` is the query's embedding when the caller has it (a batch embeds its queries at once); vector
        and hybrid search embed ``text`` otherwise. Hybrid search without a full-text index is a vector search.

        Raises:
            PublishError: the release cannot be read, or the query embedder is not the release's model.
        """
        if mode == "fts":
            with lance_errors(f"full-text search failed on {self.release.tag}"):
                return _hits(self._fts_rows(text, limit, where), "_score", None)
        if vector is None:
            vector = self._embedder_for_release().embed([text])[0]
        with lance_errors(f"search failed on {self.release.tag}"):
            vector_rows = self._vector_rows(vector, limit, where)
            if mode == "vector" or not self.has_fts:
                return _hits(vector_rows, "similarity", vector)
            try:
                fts_rows = self._fts_rows(text, limit, where, with_vector=True)
            except (RuntimeError, ValueError) as exc:  # the full-text index missing at this version
                if "index" not in str(exc).lower():
                    raise
                return _hits(vector_rows, "similarity", vector)
            return _fused(vector_rows, fts_rows, vector, limit)

    def _vector_rows(self, vector: np.ndarray, limit: int, where: str | None) -> list[dict[str, Any]]:
        query = self._table().search(vector)
        if where:
            query = query.where(where, prefilter=True)
        rows = self._tuned(query, limit).select([*_HIT_COLUMNS, "_distance"]).limit(limit).to_arrow().to_pylist()
        for row in rows:
            row["similarity"] = 1.0 - float(row["_distance"])
        return list(rows)

    def _fts_rows(self, text: str, limit: int, where: str | None, *, with_vector: bool = False) -> list[dict[str, Any]]:
        query = self._table().search(text, query_type="fts")
        if where:
            query = query.where(where, prefilter=True)
        columns = [*_HIT_COLUMNS, "_score", *(["vector"] if with_vector else [])]
        return list(query.select(columns).limit(limit).to_arrow().to_pylist())


def _fused(
    vector_rows: list[dict[str, Any]], fts_rows: list[dict[str, Any]], vector: np.ndarray, limit: int
) -> list[SearchHit]:
    """Reciprocal rank fusion of the two searches; every hit keeps its cosine similarity to the query."""
    by_id: dict[str, dict[str, Any]] = {}
    fused: dict[str, float] = {}
    for rows in (vector_rows, fts_rows):
        for rank, row in enumerate(rows, start=1):
            chunk_id = row["chunk_id"]
            by_id.setdefault(chunk_id, row)
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    query = _unit(vector)
    for row in by_id.values():
        if "similarity" not in row:  # found by full text only: its similarity from its stored vector
            row["similarity"] = float(_unit(np.asarray(row["vector"], dtype=np.float32)) @ query)
        row["_fused"] = fused[row["chunk_id"]]
    ranked = sorted(by_id.values(), key=lambda row: (-row["_fused"], -row["similarity"], row["chunk_id"]))
    return _hits(ranked[:limit], "_fused", vector)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def _hits(rows: Sequence[dict[str, Any]], score_column: str, vector: np.ndarray | None) -> list[SearchHit]:
    return [
        SearchHit(
            chunk_id=row["chunk_id"],
            article_id=row["article_id"],
            url=row["url"],
            title=row["title"],
            heading=row["heading"] or "",
            text=row["text"],
            score=float(row[score_column]),
            similarity=_finite(row.get("similarity")) if vector is not None else None,
            heading_path=tuple(row.get("heading_path") or ()),
            locale=row.get("locale") or "",
            updated_at=_utc(row.get("updated_at")),
            content_hash=row.get("content_hash") or "",
        )
        for row in rows
    ]


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def open_index(
    uri: str,
    version: str | int | None = None,
    *,
    embedder: Embedder | None = None,
    storage_options: dict[str, str] | None = None,
    ann: AnnSettings | None = None,
) -> KBIndex:
    """Open a release for reading: ``version`` is None or "current", a tag ("release-0003"), or a number.

    The query embedder defaults to the model recorded in the release's manifest; ``ann`` sets the search
    breadth through a vector index (``Settings.ann``), where the release has one.
    """
    return KBIndex(IndexStore(uri, storage_options=storage_options), version, embedder, ann=ann)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number
