"""The read side for RAG services: open a release (current, a tag, or a number) and search it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from kbcurator.embedding.base import Embedder
from kbcurator.errors import PublishError
from kbcurator.index import schema
from kbcurator.index.ann import has_vector_index, is_hnsw, tune_query
from kbcurator.index.store import CURRENT, IndexStore, lance_errors, manifest_of
from kbcurator.records import IndexRelease
from kbcurator.settings import AnnSettings

SearchMode = Literal["vector", "hybrid", "fts"]


@dataclass(frozen=True, slots=True)
class SearchHit:
    chunk_id: str
    article_id: str
    url: str
    title: str
    heading: str
    text: str
    score: float  # what ranked the hit: cosine similarity (vector), fused RRF relevance (hybrid), BM25 (fts)
    similarity: float | None = None  # cosine similarity to the query, when the vector search saw the chunk


class KBIndex:
    """A pinned view of one release. ``refresh()`` moves a view opened on "current" to the newest one.

    Vector and hybrid search go through the release's vector index where its chunks version has one, with
    the search breadth of ``ann`` (defaults: :class:`~kbcurator.settings.AnnSettings`); otherwise exactly.
    """

    def __init__(
        self, store: IndexStore, ref: str | int | None, embedder: Embedder | None, *, ann: AnnSettings | None = None
    ) -> None:
        self.store = store
        self._ref = CURRENT if ref is None else ref
        self._embedder = embedder
        self._ann = ann or AnnSettings()
        self.release: IndexRelease = store.resolve(self._ref)
        self._chunks: Any = None
        self._vector_index: tuple[bool, bool] | None = None  # (has one, is HNSW) at the release's version

    @property
    def manifest(self) -> dict[str, Any]:
        return manifest_of(self.release)

    def refresh(self) -> bool:
        """Follow "current" to a newer release; a view pinned to a tag or number never moves."""
        if self._ref != CURRENT:
            return False
        newest = self.store.resolve(CURRENT)
        moved = newest.seq != self.release.seq
        if moved:
            self.release, self._chunks, self._vector_index = newest, None, None
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
        manifest = self.manifest
        if self._embedder is None:
            from kbcurator.embedding.sentence import load_embedder

            self._embedder = load_embedder(manifest["model"])
        if self._embedder.name != manifest["model"] or self._embedder.dimension != manifest["dimension"]:
            raise PublishError(
                f"{self.release.tag} was built with {manifest['model']} ({manifest['dimension']} dims); "
                f"the query embedder is {self._embedder.name} ({self._embedder.dimension} dims)"
            )
        return self._embedder

    def search(self, text: str, k: int = 5, mode: SearchMode = "hybrid") -> list[SearchHit]:
        """Top ``k`` chunks for ``text``. Hybrid falls back to vector search when the release has no
        full-text index."""
        table = self._table()
        columns = ["chunk_id", "article_id", "url", "title", "heading", "text"]
        with lance_errors(f"search failed on {self.release.tag}"):
            if mode == "fts":
                frame = table.search(text, query_type="fts").select(columns).limit(k).to_pandas()
                return _hits(frame, "_score")
            vector = self._embedder_for_release().embed([text])[0]
            if mode == "hybrid" and self.manifest.get("fts"):
                try:
                    from lancedb.rerankers import RRFReranker

                    frame = (
                        self._tuned(table.search(query_type="hybrid").vector(vector).text(text), k)
                        .select(columns)
                        .rerank(RRFReranker(return_score="all"))
                        .limit(k)
                        .to_pandas()
                    )
                    return _hits(frame, "_relevance_score")
                except (RuntimeError, ValueError) as exc:  # an index missing at this version
                    if "index" not in str(exc).lower():
                        raise
            frame = self._tuned(table.search(vector), k).select(columns).limit(k).to_pandas()
            frame["similarity"] = 1.0 - frame["_distance"]
            return _hits(frame, "similarity")


def _hits(frame: Any, score_column: str) -> list[SearchHit]:
    if "_distance" in frame.columns:
        frame = frame.assign(_similarity=1.0 - frame["_distance"])
    return [
        SearchHit(
            chunk_id=row["chunk_id"],
            article_id=row["article_id"],
            url=row["url"],
            title=row["title"],
            heading=row["heading"],
            text=row["text"],
            score=float(row[score_column]),
            similarity=_finite(row.get("_similarity")),
        )
        for row in frame.to_dict("records")
    ]


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
