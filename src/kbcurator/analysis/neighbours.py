"""Candidate pairs from nearest-neighbour search, never from all pairs.

Duplicate and contradiction detectors only compare what a k-nearest-neighbour search puts side by side.
Small sets use an exact blocked search (a few matrix products); from ``exact_below`` rows up, an approximate
HNSW graph (faiss) keeps the cost near n log n.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EXACT_BELOW = 5000
_BLOCK = 1024


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

    graph = faiss.IndexHNSWFlat(data.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = 64
    graph.hnsw.efSearch = max(64, 2 * k)
    graph.add(data)
    found_sims, found = graph.search(data, k + 1)
    indices = np.full((len(data), k), -1, dtype=np.int64)
    sims = np.full((len(data), k), -np.inf, dtype=np.float32)
    for row in range(len(data)):
        keep = [(int(j), float(s)) for j, s in zip(found[row], found_sims[row], strict=True) if j != row and j >= 0]
        for slot, (j, sim) in enumerate(keep[:k]):
            indices[row, slot] = j
            sims[row, slot] = sim
    return indices, sims


def candidate_pairs(
    vectors: np.ndarray,
    *,
    k: int,
    min_similarity: float,
    owners: Sequence[str] | None = None,
    exact_below: int = EXACT_BELOW,
) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, similarity)`` with ``i < j`` that are among each other's k nearest and similar enough.

    Args:
        owners: when given, pairs whose rows have the same owner (chunks of one article) are left out; ``k``
            is widened by the largest owner's row count so one long article cannot crowd out its neighbours.
    """
    if owners is not None and len(owners) != len(vectors):
        raise ValueError("owners must have one entry per vector")
    search_k = k
    if owners is not None and len(owners):
        _, counts = np.unique(np.asarray(owners, dtype=object).astype(str), return_counts=True)
        search_k = k + int(counts.max()) - 1
    indices, sims = nearest_neighbours(vectors, search_k, exact_below=exact_below)
    pairs: dict[tuple[int, int], float] = {}
    for i in range(len(indices)):
        for j, sim in zip(indices[i], sims[i], strict=True):
            if j < 0 or sim < min_similarity:
                continue
            j = int(j)
            if owners is not None and owners[i] == owners[j]:
                continue
            key = (i, j) if i < j else (j, i)
            pairs[key] = max(pairs.get(key, -1.0), float(sim))
    return sorted(((i, j, s) for (i, j), s in pairs.items()), key=lambda p: (-p[2], p[0], p[1]))
