"""Follow gap clusters from run to run: match each cluster to the previous run's by centroid similarity."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Trend = Literal["new", "growing", "stable", "shrinking", "resolved"]


@dataclass(frozen=True, slots=True)
class PreviousCluster:
    gap_id: str
    size: int
    centroid: np.ndarray


@dataclass(frozen=True, slots=True)
class Match:
    gap_id: str
    trend: Trend
    previous_size: int


def new_gap_id(centroid: np.ndarray, run_id: str, position: int) -> str:
    digest = hashlib.sha1(f"{run_id}:{position}:{centroid[:8].tobytes().hex()}".encode()).hexdigest()
    return f"gap-{digest[:10]}"


def trend_of(size: int, previous_size: int, change: float = 0.2) -> Trend:
    if previous_size <= 0:
        return "new"
    ratio = size / previous_size
    if ratio >= 1 + change:
        return "growing"
    if ratio <= 1 - change:
        return "shrinking"
    return "stable"


def match_clusters(
    centroids: Sequence[np.ndarray],
    sizes: Sequence[int],
    previous: Sequence[PreviousCluster],
    *,
    run_id: str,
    min_similarity: float = 0.8,
) -> tuple[list[Match], list[PreviousCluster]]:
    """Greedy one-to-one matching, most similar pairs first. Returns a match per current cluster and the
    previous clusters that found no successor (resolved, or gone below the clustering's threshold)."""
    matches: list[Match | None] = [None] * len(centroids)
    taken: set[int] = set()
    if len(centroids) and len(previous):
        current = np.stack([np.asarray(c, dtype=np.float32) for c in centroids])
        before = np.stack([np.asarray(p.centroid, dtype=np.float32) for p in previous])
        similarity = current @ before.T
        pairs = sorted(
            ((float(similarity[i, j]), i, j) for i in range(len(current)) for j in range(len(before))),
            reverse=True,
        )
        for score, i, j in pairs:
            if score < min_similarity:
                break
            if matches[i] is not None or j in taken:
                continue
            taken.add(j)
            matches[i] = Match(previous[j].gap_id, trend_of(sizes[i], previous[j].size), previous[j].size)
    result = [
        m if m is not None else Match(new_gap_id(np.asarray(centroids[i]), run_id, i), "new", 0)
        for i, m in enumerate(matches)
    ]
    gone = [p for j, p in enumerate(previous) if j not in taken]
    return result, gone
