"""Candidate pairs from nearest-neighbour search, never from all pairs.

Duplicate and contradiction detectors only compare what a k-nearest-neighbour search puts side by side.
Small sets use an exact blocked search (a few matrix products); from ``exact_below`` rows up, an approximate
HNSW graph (faiss) keeps the cost near n log n.

Where the switch sits (measured on 2 CPU cores, 384-dimensional clustered unit vectors, k=10; see
``bench/dup_scale.py``): the exact search takes about 2.8 s at 11,100 rows, 4-10 s at 20,000 and 21-32 s at
40,000 (quadratic); the HNSW graph below (M=16, efConstruction=48) about 2.8 s, 2.3-5.9 s and 6.5-12 s, with
recall@10 of 0.986-0.999 against the exact search. The two cost the same near 10,000 rows.

A published release past ``AnnSettings.min_rows`` chunks carries a LanceDB vector index built once at publish
time; a :class:`NeighbourIndex` over it (``kbcurator.index.ann.LanceChunkIndex``) answers the same question
without building anything in memory. The contradiction detector's chunk pairs use it; the duplicate detector's
semantic check compares article vectors (means of chunk vectors), which no published index holds, and stays on
the in-memory path, whose faiss HNSW graph above ``EXACT_BELOW`` rows is itself an approximate index, not a scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

EXACT_BELOW = 10_000
# HNSW graph degree and build/search breadth: M=32/efConstruction=64 cost twice the time for ~0.01 more recall.
_HNSW_M = 16
_HNSW_EF_CONSTRUCTION = 48
_HNSW_EF_SEARCH = 48
_BLOCK = 1024


class NeighbourIndex(Protocol):
    """A prebuilt k-NN index over a set of rows (e.g. a corpus' chunks, in its order)."""

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Each query's ``k`` nearest rows other than itself (query ``i`` is row ``i``).

        Returns:
            ``(indices, similarities)`` as :func:`nearest_neighbours` returns them: shape ``(len(queries), k)``
            with ``k`` capped at the row count less one, best first, -1 for a slot left unfilled.
        """
        ...


def recall_at_k(approximate: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact neighbours (``-1`` slots ignored) that the approximate search also found, per row.

    Both are ``(n, k)`` index arrays for the same rows, e.g. from :func:`nearest_neighbours` with and without
    an approximate path. 1.0 when there is nothing to find.
    """
    if approximate.shape[0] != exact.shape[0]:
        raise ValueError("both searches must cover the same rows")
    wanted = found = 0
    for approx_row, exact_row in zip(approximate, exact, strict=True):
        truth = set(exact_row[exact_row >= 0].tolist())
        wanted += len(truth)
        found += len(truth.intersection(approx_row[approx_row >= 0].tolist()))
    return found / wanted if wanted else 1.0


def nearest_neighbours(vectors: np.ndarray, k: int, *, exact_below: int = EXACT_BELOW) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` nearest other rows by cosine similarity (rows are L2-normalised).

    Returns:
        ``(indices, similarities)``, both of shape ``(n, min(k, n - 1))``, best first. An index of -1 marks a
        slot the approximate search could not fill.
    """
    n = len(vectors)
    k = min(k, n - 1)
    if n < 2 or k < 1:
        return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0), dtype=np.float32)
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    if n < exact_below:
        return _exact(data, k)
    return _approximate(data, k)


def _exact(data: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(data)
    indices = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, _BLOCK):
        block = data[start : start + _BLOCK] @ data.T
        rows = np.arange(block.shape[0])
        block[rows, rows + start] = -np.inf  # a row is not its own neighbour
        top = np.argpartition(-block, k - 1, axis=1)[:, :k]
        top_sims = np.take_along_axis(block, top, axis=1)
        order = np.argsort(-top_sims, axis=1)
        indices[start : start + len(block)] = np.take_along_axis(top, order, axis=1)
        sims[start : start + len(block)] = np.take_along_axis(top_sims, order, axis=1)
    return indices, sims


def _approximate(data: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss  # HNSW graph over inner products (cosine on normalised rows)

    graph = faiss.IndexHNSWFlat(data.shape[1], _HNSW_M, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = _HNSW_EF_CONSTRUCTION
    graph.hnsw.efSearch = max(_HNSW_EF_SEARCH, 2 * k)
    graph.add(data)
    found_sims, found = graph.search(data, k + 1)
    # Drop each row itself (and unfilled -1 slots), keeping the others in their best-first order.
    keep = (found != np.arange(len(data))[:, None]) & (found >= 0)
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    kept = np.take_along_axis(keep, order, axis=1)
    indices = np.where(kept, np.take_along_axis(found, order, axis=1), -1).astype(np.int64)
    sims = np.where(kept, np.take_along_axis(found_sims, order, axis=1), -np.inf).astype(np.float32)
    return indices, sims


def candidate_pairs(
    vectors: np.ndarray,
    *,
    k: int,
    min_similarity: float,
    owners: Sequence[str] | None = None,
    exact_below: int = EXACT_BELOW,
    index: NeighbourIndex | None = None,
) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, similarity)`` with ``i < j`` that are among each other's k nearest and similar enough.

    Args:
        owners: when given, pairs whose rows have the same owner (chunks of one article) are left out; ``k``
            is widened by the largest owner's row count so one long article cannot crowd out its neighbours.
        index: a prebuilt index over the same rows (a published release's vector index): searched with
            ``vectors`` as the queries instead of building a search in memory.
    """
    if owners is not None and len(owners) != len(vectors):
        raise ValueError("owners must have one entry per vector")
    search_k = k
    owner_codes = None
    if owners is not None and len(owners):
        _, owner_codes, counts = np.unique(
            np.asarray(owners, dtype=object).astype(str), return_inverse=True, return_counts=True
        )
        search_k = k + int(counts.max()) - 1
    if index is not None:
        indices, sims = index.search(vectors, search_k)
    else:
        indices, sims = nearest_neighbours(vectors, search_k, exact_below=exact_below)
    if not indices.size:
        return []
    rows = np.repeat(np.arange(len(indices), dtype=np.int64), indices.shape[1])
    cols, values = indices.ravel(), sims.ravel()
    keep = (cols >= 0) & (values >= min_similarity) & (cols != rows)
    if owner_codes is not None:
        keep &= owner_codes[rows] != owner_codes[np.where(cols >= 0, cols, 0)]
    low, high = np.minimum(rows, cols)[keep], np.maximum(rows, cols)[keep]
    values = values[keep].astype(np.float64)
    # Best first, then by rows; a pair found from both ends keeps its higher similarity (the first seen).
    order = np.lexsort((high, low, -values))
    low, high, values = low[order], high[order], values[order]
    # First occurrence of each pair in that order (a stable sort by pair, not np.unique: it hashes in NumPy 2
    # and is many times slower on large arrays).
    keys = low * len(indices) + high
    by_key = np.argsort(keys, kind="stable")
    sorted_keys = keys[by_key]
    first = np.sort(by_key[np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]]) if len(keys) else by_key
    return [(int(low[x]), int(high[x]), float(values[x])) for x in first]
