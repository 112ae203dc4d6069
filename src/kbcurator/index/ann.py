"""The approximate vector index on big chunk tables, and k-nearest-neighbour search through it.

Below ``AnnSettings.min_rows`` chunks every search is exact (a flat scan is fast enough and has nothing to
tune); from there on publish builds a LanceDB vector index on the chunks table (cosine metric, as every
vector search here uses), and readers of a release whose chunks version carries one search through it.
A release pinned to an older version without an index still searches exactly: indices belong to versions.

Measured with ``bench/ann_recall.py`` (2 shared CPU cores, 384-d clustered unit vectors, k=10; figures in
``bench/ann_recall.md``): at 100,000 chunks an IVF_HNSW_SQ index builds in about 90 s and answers a
reader's query in 6-10 ms against 280-300 ms for the flat scan, recall@10 0.998-0.999 with ``refine_factor``
2. IVF_PQ takes 2.5x as long to build and loses recall as the table grows (0.95-0.97 at 100,000 rows with
nprobes 10-20 and refine 4), its quantised distances off by up to 0.35 in cosine.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kbcurator.config.ann import AnnSettings
from kbcurator.index import schema
from kbcurator.index.store import IndexStore, lance_errors
from kbcurator.records import IndexRelease

VECTOR_COLUMN = "vector"
# IVF_HNSW_SQ graph degree and build breadth (LanceDB's defaults are m=20, ef_construction=300).
_HNSW_M = 20
_HNSW_EF_CONSTRUCTION = 150
# Candidates an HNSW graph keeps while searching, per neighbour asked for (LanceDB's default is 1.5 per k).
# Measured at 20,000 rows: recall@10 stays at 0.993 from ef=20 to ef=640 (the scalar quantisation's limit)
# while the time triples; exact re-ranking (refine_factor) is what lifts it, to 1.000 at 2.
_HNSW_EF_PER_K = 2
_HNSW_MIN_EF = 32
# Queries sent to LanceDB in one batched search: bounds the memory of one result set (and measured fastest of
# 64-4,000: one query at a time costs about 8x as much per query).
_QUERY_BATCH = 512


def vector_indices(table: Any) -> list[Any]:
    """The vector indices on the version ``table`` is checked out at (full-text indices left out)."""
    return [config for config in table.list_indices() if VECTOR_COLUMN in list(config.columns)]


def has_vector_index(table: Any) -> bool:
    """Whether the checked-out version of ``table`` carries a vector index on its vector column."""
    return bool(vector_indices(table))


def is_hnsw(table: Any) -> bool:
    """Whether the vector index at this version is an HNSW variant (its search breadth is ``ef``): what the
    version carries decides, not today's settings, which may name another type than the one it was built with."""
    return any("hnsw" in str(config.index_type).lower() for config in vector_indices(table))


def num_partitions(rows: int, index_type: str) -> int:
    """IVF partitions for ``rows`` vectors: about sqrt(rows) for IVF_PQ (LanceDB's own rule); IVF_HNSW_SQ
    builds one graph per partition and needs far fewer (about one per 25,000 rows, which bounds the memory of
    one graph's build)."""
    if index_type == "IVF_HNSW_SQ":
        return max(1, round(rows / 25_000))
    return max(1, min(rows // 256, round(math.sqrt(rows))))  # kmeans wants a few hundred rows per partition


def num_sub_vectors(dimension: int) -> int:
    """PQ sub-vectors of 8 dimensions (48 for 384) where the dimension allows; they must divide it."""
    for width in (8, 16, 4, 2):
        if dimension % width == 0:
            return dimension // width
    return 1


def build_vector_index(table: Any, settings: AnnSettings) -> dict[str, Any]:
    """Build the vector index on ``table`` when it holds at least ``settings.min_rows`` rows.

    Building commits a new version of the table: tag the version after this call, not before.

    Returns:
        What was built, for the release manifest (``index_type``, ``rows``, ``metric``, ``num_partitions``,
        ``num_sub_vectors`` or ``m``/``ef_construction``, ``seconds``), or ``{}`` below the threshold, where
        nothing is built and an index left from an earlier, bigger version is dropped so that the release
        searches exactly, as its manifest says. An index of the configured type that leaves at most
        ``settings.max_unindexed_share`` of the rows out (a publish that changed nothing, or a few articles) is
        kept: ``{"reused": True, "unindexed_rows": ...}``. LanceDB searches the rows an index lacks exactly and
        merges them into its results, and rows deleted or rewritten since the build are masked out, so a kept
        index answers for the whole version; retraining it for 1% of changed rows cost 225 s at 215,000 rows.

    Raises:
        Whatever LanceDB raises when it cannot train or write the index (callers decide whether that fails).
    """
    from lancedb.index import IvfHnswSq, IvfPq

    rows = int(table.count_rows())
    existing = vector_indices(table)
    if rows == 0 or rows < settings.min_rows:
        for index in existing:
            table.drop_index(index.name)
        return {}
    if len(existing) == 1 and _same_kind(existing[0], settings):
        unindexed = int(existing[0].num_unindexed_rows)
        if unindexed <= settings.max_unindexed_share * rows:
            return {
                "index_type": settings.index_type,
                "rows": rows,
                "metric": "cosine",
                "reused": True,
                "unindexed_rows": unindexed,
                "seconds": 0.0,
            }
    dimension = table.schema.field(VECTOR_COLUMN).type.list_size
    partitions = num_partitions(rows, settings.index_type)
    built: dict[str, Any] = {
        "index_type": settings.index_type,
        "rows": rows,
        "metric": "cosine",
        "num_partitions": partitions,
    }
    config: Any
    if settings.index_type == "IVF_PQ":
        sub_vectors = num_sub_vectors(dimension)
        config = IvfPq(distance_type="cosine", num_partitions=partitions, num_sub_vectors=sub_vectors)
        built["num_sub_vectors"] = sub_vectors
    else:
        config = IvfHnswSq(
            distance_type="cosine", num_partitions=partitions, m=_HNSW_M, ef_construction=_HNSW_EF_CONSTRUCTION
        )
        built.update(m=_HNSW_M, ef_construction=_HNSW_EF_CONSTRUCTION)
    start = time.perf_counter()
    table.create_index(VECTOR_COLUMN, config=config, replace=True)
    built["seconds"] = round(time.perf_counter() - start, 3)
    return built


def _same_kind(index: Any, settings: AnnSettings) -> bool:
    """Whether ``index`` is of the configured type and metric (an index built under other settings is rebuilt)."""
    details = getattr(index, "index_details", None) or {}
    return (
        str(index.index_type).replace("_", "").lower() == settings.index_type.replace("_", "").lower()
        and str(details.get("metric_type", "")).lower() == "cosine"
    )


def tune_query(query: Any, settings: AnnSettings, k: int, *, hnsw: bool, refine: bool = True) -> Any:
    """Search breadth for a vector (or hybrid) query through the index: partitions probed, exact re-ranking
    (unless ``refine`` is False: the caller re-ranks), and ``ef`` for an HNSW index.

    Re-ranking is at least 1x: the quantised distances are off by up to 0.35 (IVF_PQ) or 0.16 (IVF_HNSW_SQ) in
    cosine (measured on 384-d clustered vectors), and a hit's similarity is read as a cosine downstream.
    """
    query = query.nprobes(settings.nprobes)
    candidates = k
    if refine:
        factor = max(1, settings.refine_factor or 1)
        query = query.refine_factor(factor)
        candidates = k * factor  # what the graph must hand to the re-ranking
    if hnsw:  # LanceDB refuses an ef below the candidates it is asked for
        query = query.ef(max(_HNSW_MIN_EF, _HNSW_EF_PER_K * candidates))
    return query


class LanceChunkIndex:
    """k-NN over a published chunks table version through its vector index, in a corpus' row order.

    A :class:`~kbcurator.analysis.neighbours.NeighbourIndex`: ``search`` returns row positions of
    ``chunk_ids`` (the corpus' chunk order), as ``nearest_neighbours`` does for an in-memory matrix.

    Args:
        table: the chunks table checked out at the release's version (which must carry a vector index).
        chunk_ids: chunk ids in corpus row order; every id in the table version must be among them.
        settings: search breadth (``nprobes``, ``refine_factor``).
        vectors: the same rows' L2-normalised vectors, in that order, when they are in memory anyway (an
            audit corpus): similarities are then exact cosines, and ``refine_factor`` re-ranks its wider
            candidate list here, which costs a fraction of LanceDB re-reading every candidate's vector.
    """

    def __init__(
        self, table: Any, chunk_ids: Sequence[str], settings: AnnSettings, *, vectors: np.ndarray | None = None
    ) -> None:
        if vectors is not None and len(vectors) != len(chunk_ids):
            raise ValueError("vectors must have one row per chunk id")
        self._table = table
        self._ids = pa.array(list(chunk_ids), type=pa.string())
        self._settings = settings
        self._vectors = None if vectors is None else np.ascontiguousarray(vectors, dtype=np.float32)
        with lance_errors("cannot list the vector indices"):
            self._hnsw = is_hnsw(table)

    def __len__(self) -> int:
        return len(self._ids)

    def search(
        self, queries: np.ndarray, k: int, *, rows: Sequence[int] | np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest rows to each query by cosine similarity, best first.

        Args:
            queries: one vector per row.
            k: neighbours per query (capped at the row count less one).
            rows: the row each query is (its self-match is dropped); by default query ``i`` is row ``i``, so
                ``search(corpus.chunk_vectors, k)`` is the same question as ``nearest_neighbours(vectors, k)``.

        Returns:
            ``(indices, similarities)`` of shape ``(len(queries), k)``; -1 and -inf mark slots the index
            could not fill. Similarities are exact with ``vectors``, else LanceDB's (quantised unless
            ``refine_factor`` re-ranks).
        """
        n = len(self._ids)
        k = min(k, n - 1)
        count = len(queries)
        if count == 0 or k < 1:
            return np.zeros((count, 0), dtype=np.int64), np.zeros((count, 0), dtype=np.float32)
        own = np.arange(count, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(own) != count:
            raise ValueError("rows must have one entry per query")
        data = np.ascontiguousarray(queries, dtype=np.float32)
        indices = np.full((count, k), -1, dtype=np.int64)
        sims = np.full((count, k), -np.inf, dtype=np.float32)
        widen = (self._settings.refine_factor or 1) if self._vectors is not None else 1
        for start in range(0, count, _QUERY_BATCH):
            block = data[start : start + _QUERY_BATCH]
            # One more than asked: the query's own row comes back too.
            found, found_sims = self._query(block, widen * k + 1, refine=self._vectors is None)
            if self._vectors is not None:
                found, found_sims = self._rescore(block, found)
            keep = (found != own[start : start + len(block), None]) & (found >= 0)
            order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
            kept = np.take_along_axis(keep, order, axis=1)
            indices[start : start + len(block)] = np.where(kept, np.take_along_axis(found, order, axis=1), -1)
            sims[start : start + len(block)] = np.where(kept, np.take_along_axis(found_sims, order, axis=1), -np.inf)
        return indices, sims

    def _rescore(self, block: np.ndarray, found: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact cosines of the candidates from the in-memory vectors, best first."""
        assert self._vectors is not None
        filled = found >= 0
        exact = np.einsum("qd,qkd->qk", block, self._vectors[np.where(filled, found, 0)])
        exact = np.where(filled, exact, -np.inf).astype(np.float32)
        order = np.argsort(-exact, axis=1, kind="stable")
        return np.take_along_axis(found, order, axis=1), np.take_along_axis(exact, order, axis=1)

    def _query(self, block: np.ndarray, k: int, *, refine: bool) -> tuple[np.ndarray, np.ndarray]:
        query = self._table.search(block if len(block) > 1 else block[0]).distance_type("cosine")
        query = tune_query(query, self._settings, k, hnsw=self._hnsw, refine=refine).select(["chunk_id"]).limit(k)
        with lance_errors("vector search through the index failed"):
            result = query.to_arrow()
        if "query_index" in result.column_names:
            slot = result["query_index"].to_numpy().astype(np.int64)
        else:  # a single query comes back without the column
            slot = np.zeros(result.num_rows, dtype=np.int64)
        position = pc.index_in(result["chunk_id"], value_set=self._ids).to_numpy(zero_copy_only=False)
        missing = np.isnan(position) if position.dtype.kind == "f" else np.zeros(len(position), dtype=bool)
        if missing.any():
            raise ValueError("the chunks table holds chunk ids that the corpus does not")
        similarity = 1.0 - result["_distance"].to_numpy(zero_copy_only=False).astype(np.float32)
        # Best first within each query; LanceDB groups rows by query but the order inside is not promised.
        order = np.lexsort((-similarity, slot))
        slot, position, similarity = slot[order], position[order].astype(np.int64), similarity[order]
        rank = np.arange(len(slot)) - np.searchsorted(slot, slot, side="left")
        found = np.full((len(block), k), -1, dtype=np.int64)
        found_sims = np.full((len(block), k), -np.inf, dtype=np.float32)
        fits = rank < k
        found[slot[fits], rank[fits]] = position[fits]
        found_sims[slot[fits], rank[fits]] = similarity[fits]
        return found, found_sims


def chunk_index_for(
    store: IndexStore,
    release: IndexRelease,
    chunk_ids: Sequence[str],
    settings: AnnSettings | None = None,
    *,
    vectors: np.ndarray | None = None,
) -> LanceChunkIndex | None:
    """A :class:`LanceChunkIndex` on the release's chunks version, or None where that version has no index."""
    table = store.open_at(schema.CHUNKS, release.chunks_version)
    with lance_errors(f"cannot list the indices of {release.tag}"):
        if not has_vector_index(table):
            return None
    return LanceChunkIndex(table, chunk_ids, settings or AnnSettings(), vectors=vectors)
