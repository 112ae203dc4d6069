"""Cluster ticket vectors into knowledge gaps without being told how many there are.

reduce (UMAP; PCA for small corpora) -> HDBSCAN -> check each cluster against the original space -> pull
long-tail points back into the cluster most of their nearest clustered neighbours belong to (what BERTopic's
``reduce_outliers`` does by centroid, here by a vote of neighbours). Whatever stays ``-1`` is the long tail:
reported for review, never silently dropped.

Every parameter that depends on the corpus is derived from its size ``n`` (see ``TicketClusterer``), so one
default serves a hundred tickets and tens of thousands; each can still be pinned by the caller.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from kbcurator.embedding.base import unit_rows

LONG_TAIL = -1

Reducer = Literal["auto", "umap", "pca"]
Selection = Literal["auto", "eom", "leaf"]

# Below this many points there is nothing to cluster: every point is long tail.
_MIN_POINTS = 5
# Below this many distinct tickets the reducer is PCA, from it UMAP: UMAP's first call in a process compiles numba
# code (~9 s here), which a small corpus should not pay. Both paths select "leaf" with the same min_cluster_size,
# so crossing this size changes only the reducer. Measured for a cliff on nested BANKING77 / HWU64 train
# subsamples (8 seeds, strict NMI, bench/cluster_bench.py): PCA/leaf at 199 tickets 0.794 / 0.838, UMAP/leaf at
# 200 0.794 / 0.836. With "eom" on the PCA path and the smallest gap of 3, BANKING77 at 199 scored 0.770, a drop
# of 0.024 at the switch (bench/small_corpus_choices.py).
_UMAP_MIN_N = 200
# PCA keeps this many dims (fewer only when the corpus has fewer points). It used to be about one per 15 points,
# 5..50, on the idea that HDBSCAN's density thins out in dims a small corpus cannot fill; measured, 30 dims are
# ahead at every size from 30 to 199 tickets on both train sets (8 seeds, strict NMI, BANKING77 / HWU64: 60
# tickets 0.764 -> 0.837 / 0.885 -> 0.916; 100: 0.745 -> 0.815 / 0.862 -> 0.879; 150: 0.709 -> 0.771 / 0.839 ->
# 0.851; all with the former smallest gap of 5 and "eom").
_PCA_COMPONENTS = 30
# "leaf" selection keeps small topics that excess-of-mass ("eom") folds into a neighbour, and is the selection at
# every size. It used to give way to "eom" from 5,000 tickets (eom's ARI was higher on BANKING77 train from
# 6,000), but a switch by size is a cliff: crossing it cost an unseen 150-intent set about half its ARI loss, and
# on HWU64 train (3,000 and 9,960 queries) leaf is ahead in NMI (+0.016, +0.005) where on BANKING77 train it is
# behind by 0.003-0.004. Below 200 tickets "eom" was the selection until the smallest gap went from 5 to 3
# tickets; with 3, leaf is ahead of eom on nested BANKING77 train subsamples of 100 / 150 / 199 tickets (+0.005 /
# +0.009 / +0.024 NMI, 8 seeds, bench/small_corpus_choices.py; eom is ahead at 50, +0.032), and eom put 27 of the
# sample's 54 unanswered tickets (vaccines, severity, transmission, national responses) in one "gap", the first a
# KB owner read.
# Corpus sizes where the clusterer changes how it works (the benchmark checks each for a cliff).
SIZE_SWITCHES = (_UMAP_MIN_N,)
# The smallest gap: three tickets asking one thing. min_cluster_size is max(this, 0.3 sqrt(n)), so it only
# matters below ~280 tickets, where a floor of 5 made HDBSCAN fold topics of 3-4 tickets into one mixed cluster
# or drop them. Skewed draws of BANKING77 train (8 seeds, strict NMI at 50 / 100 / 150 / 199 tickets,
# bench/small_corpus_choices.py): floor 5 with eom 0.861 / 0.806 / 0.796 / 0.787; floor 3 with leaf (these
# defaults) 0.836 / 0.830 / 0.816 / 0.791: behind at 50 tickets, ahead from 100.
_MIN_CLUSTER_FLOOR = 3
# A cluster's members must be alike beyond what any two tickets of the corpus are: their mean pairwise cosine at
# least this share of the way from the corpus's mean pairwise cosine to 1. UMAP finds "clusters" in pure noise
# (cohesion 0.02-0.06 over a corpus at 0.0); BANKING77's weakest real cluster sits at 0.47 over 0.21 (bar 0.37).
_COHESION_MARGIN = 0.2
# Vectors whose spread (1 - cosine to their mean) is below this are one query repeated.
_IDENTICAL_SPREAD = 1e-6
# Long-tail reassignment by a vote of each point's nearest clustered neighbours (original space): at most this many
# voters (fewer when min_cluster_size is smaller, so a small topic can still win a vote)...
_VOTERS = 10
# ...of whom at least this share must name one cluster...
_VOTE_SHARE = 0.5
# ...and the point must still clear this share of that cluster's membership bar, so a stray never joins on votes
# alone. Rounds repeat while points join (a joined point votes in the next), at most this many. The full bar (not
# 0.8 of it, as before): with 1,000 HWU64 queries mixed into BANKING77 train, 0.8 let the vote pull a third of
# the trimmed out-of-scope queries back into clusters (noise kept in the long tail 78% after the check, 64% after
# the vote); at 1.0, 73% kept and in-scope strict NMI/ARI moved +0.000/-0.002.
_VOTE_BAR_SHARE = 1.0
_VOTE_ROUNDS = 3
# On BANKING77 train subsets of 1,000-10,003 queries (3 seeds each) the vote beat joining the most similar centroid
# over its bar by +0.005 to +0.008 strict NMI and +0.006 to +0.012 ARI, at a similar long tail (1,000: 7% vs 4%;
# 3,000: 3.4% vs 2.7%; 10,003: 1.9% vs 2.5%): centroids of sibling topics sit close, and the nearest centroid
# is often the sibling's while the point's neighbours are its own topic's.


@dataclass(frozen=True, slots=True)
class ClusterParams:
    """The settings one run used, after the size-adaptive defaults were resolved (recorded for the report)."""

    n: int
    reducer: Literal["umap", "pca", "none"]
    n_components: int
    n_neighbors: int
    min_cluster_size: int
    min_samples: int
    cluster_selection_method: Literal["eom", "leaf"]
    membership_bar: float
    random_state: int


@dataclass(frozen=True, slots=True, eq=False)
class ClusterResult:
    """Cluster labels for each input row, and how they were reached.

    Attributes:
        labels: one cluster id per row, ``0..n_clusters-1`` from the largest cluster down; ``-1`` is the long tail.
        noise_share_before: share of rows HDBSCAN itself left as noise.
        noise_share_after: share that is long tail in ``labels``.
        n_clusters: number of clusters (``-1`` not counted).
        params: the resolved settings.
        probabilities: HDBSCAN membership strength in 0..1 (0 where HDBSCAN said noise).
        reassigned: rows HDBSCAN left as noise that joined a cluster by the vote of their nearest clustered
            neighbours.
        trimmed: rows HDBSCAN put in a cluster that the original space does not support (members under their
            cluster's membership bar, members of a dissolved cluster): long tail now, unless reassigned.
        similarity: cosine similarity of each row to its cluster's centroid, original space (0 for the long tail).
        reduced: the coordinates HDBSCAN clustered (n, n_components).
    """

    labels: np.ndarray
    noise_share_before: float
    noise_share_after: float
    n_clusters: int
    params: ClusterParams
    probabilities: np.ndarray = field(repr=False)
    reassigned: np.ndarray = field(repr=False)
    trimmed: np.ndarray = field(repr=False)
    similarity: np.ndarray = field(repr=False)
    reduced: np.ndarray = field(repr=False)


def centroids(vectors: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """L2-normalised mean of each cluster's members in the original space (the long tail has none)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    labels = np.asarray(labels)
    out: dict[int, np.ndarray] = {}
    for cluster_id in np.unique(labels):
        if cluster_id == LONG_TAIL:
            continue
        out[int(cluster_id)] = _normalised(vectors[labels == cluster_id].mean(axis=0))
    return out


class TicketClusterer:
    """HDBSCAN over reduced ticket vectors, with parameters that follow the corpus size ``n``.

    What ``None``/``"auto"`` resolves to when ``fit_predict`` runs:

    - ``min_cluster_size = max(3, round(0.3 * sqrt(n)))``: the smallest gap worth a report grows with the
      corpus, slower than it, since the number of distinct topics grows too (60 tickets -> 3, 200 -> 4,
      3,000 -> 16, 10,000 -> 30, 100,000 -> 95).
    - ``min_samples = max(2, min_cluster_size // 2)``: below HDBSCAN's default (= min_cluster_size), so fewer
      borderline queries are called noise; high enough that single links do not chain topics together.
    - reducer: from 200 points UMAP (cosine, ``n_neighbors`` 15, ``min_dist`` 0, 5 dims); below, PCA to 30 dims
      (fewer for fewer points), re-normalised so Euclidean distance ranks pairs as cosine does.
    - selection: "leaf" at every size, on both paths (no switch by size but the reducer's, see
      ``SIZE_SWITCHES``).
    - membership, checked in the original space after HDBSCAN: each cluster gets a bar halfway
      (``membership_bar`` 0.5) between the median cosine of its members to its centroid and the median cosine
      of everything else to it. Members under the bar are trimmed to the long tail (UMAP gives every point
      neighbours, so it can pull a stray query into a topic). A cluster barely more cohesive than the corpus at
      large (mean pairwise cosine, see ``_COHESION_MARGIN``) is dissolved, one left under ``min_cluster_size``
      too. Then each long-tail point joins the cluster that at least half of its ``min(10, min_cluster_size)``
      nearest clustered neighbours belong to, if it clears that cluster's bar (a per-cluster threshold
      instead of one cosine constant tied to an embedding model); repeated while points join, up to 3 rounds.
    - zero vectors are long tail; repeated vectors are reduced once (UMAP scatters copies otherwise).

    Args:
        random_state: seed for UMAP/PCA; the same seed and input give the same labels.
        reducer: "auto" (by size, as above), "umap" or "pca".
        min_cluster_size, min_samples, n_components, n_neighbors: pin a derived value.
        cluster_selection_method: "auto" (as above), "eom" or "leaf".
        membership_bar: in 0..1, where the bar sits from "as similar as the background" (0) to "as similar as a
            typical member" (1). Lower reassigns more and trims less. On BANKING77 train subsets (1,000-10,003
            queries) 0.5 left 2-7% long tail; 0.3 left 1-5% at the same NMI/ARI (within +-0.002); 0.7 left
            4-9% at -0.005 NMI, -0.01 ARI from 3,000 queries up.
    """

    def __init__(
        self,
        *,
        random_state: int = 0,
        reducer: Reducer = "auto",
        min_cluster_size: int | None = None,
        min_samples: int | None = None,
        n_components: int | None = None,
        n_neighbors: int | None = None,
        cluster_selection_method: Selection = "auto",
        membership_bar: float = 0.5,
    ) -> None:
        if not 0.0 <= membership_bar <= 1.0:
            raise ValueError(f"membership_bar must be within 0..1, got {membership_bar}")
        if min_cluster_size is not None and min_cluster_size < 2:
            raise ValueError(f"min_cluster_size must be at least 2, got {min_cluster_size}")
        self.random_state = random_state
        self.reducer = reducer
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.cluster_selection_method = cluster_selection_method
        self.membership_bar = membership_bar

    def fit_predict(self, vectors: np.ndarray) -> ClusterResult:
        """Cluster ``vectors`` (n, d), normalised or not; returns one label per row (``-1``: long tail)."""
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"vectors must be a 2-D array (n, d), got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("vectors contain NaN or infinite values")
        unit = unit_rows(x)
        # A zero vector has no direction to compare: it is long tail, and stays out of every statistic.
        usable = np.flatnonzero(np.linalg.norm(unit, axis=1) > 0)
        if len(usable) < len(unit):
            return _embed_result(self.fit_predict(unit[usable]), usable, len(unit))
        n = len(unit)
        params = self._params(n)

        if n < _MIN_POINTS:
            return _trivial(np.full(n, LONG_TAIL), unit, params)
        if float(1.0 - (unit @ _normalised(unit.mean(axis=0))).min()) < _IDENTICAL_SPREAD:
            # One query repeated: a reducer would divide by a zero variance, and the answer is plain.
            return _trivial(np.full(n, 0 if n >= params.min_cluster_size else LONG_TAIL), unit, params)

        distinct, inverse = np.unique(unit, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        reduced, params = self._reduce(unit, distinct, inverse, params)
        labels, probabilities = _hdbscan(reduced, inverse, params)
        hdbscan_noise = labels == LONG_TAIL

        checked = _check_in_original_space(unit, labels, params)
        final, similarity = _reassign(unit, checked, params)
        final = _by_size(final)
        return ClusterResult(
            labels=final,
            noise_share_before=float(np.mean(hdbscan_noise)),
            noise_share_after=float(np.mean(final == LONG_TAIL)),
            n_clusters=int(final.max() + 1),
            params=params,
            probabilities=np.where(hdbscan_noise, 0.0, probabilities).astype(np.float32),
            reassigned=hdbscan_noise & (final != LONG_TAIL),
            trimmed=~hdbscan_noise & (checked == LONG_TAIL),
            similarity=similarity,
            reduced=reduced,
        )

    def _params(self, n: int) -> ClusterParams:
        mcs = self.min_cluster_size or max(_MIN_CLUSTER_FLOOR, round(0.3 * math.sqrt(max(n, 1))))
        reducer: Literal["umap", "pca"]
        if self.reducer == "auto":
            reducer = "umap" if n >= _UMAP_MIN_N and _umap_installed() else "pca"
        else:
            reducer = self.reducer
        selection: Literal["eom", "leaf"] = (
            "leaf" if self.cluster_selection_method == "auto" else self.cluster_selection_method
        )
        # UMAP: 5 dims, as BERTopic (10 measured no better). PCA: see _PCA_COMPONENTS.
        default_components = 5 if reducer == "umap" else _PCA_COMPONENTS
        return ClusterParams(
            n=n,
            reducer=reducer,
            n_components=self.n_components or default_components,
            n_neighbors=self.n_neighbors or 15,
            min_cluster_size=mcs,
            min_samples=self.min_samples or max(2, mcs // 2),
            cluster_selection_method=selection,
            membership_bar=self.membership_bar,
            random_state=self.random_state,
        )

    def _reduce(
        self, unit: np.ndarray, distinct: np.ndarray, inverse: np.ndarray, params: ClusterParams
    ) -> tuple[np.ndarray, ClusterParams]:
        n, dim = unit.shape
        # Repeated tickets (the same text, the same vector) are one point to UMAP: as many copies as
        # n_neighbors fill each other's neighbourhoods with zero distances, and UMAP scatters them over several
        # places. Copies get their original's coordinates back, so HDBSCAN still sees their weight.
        if params.reducer == "umap" and len(distinct) < _UMAP_MIN_N and self.reducer == "auto":
            params = replace(params, reducer="pca", n_components=self.n_components or _PCA_COMPONENTS)
        if params.reducer == "umap":
            if not _umap_installed():
                raise ImportError("reducer='umap' needs umap-learn: pip install umap-learn")
            import umap

            m = len(distinct)
            # UMAP needs n_neighbors < its points, and its spectral start n_components < points - 1.
            params = replace(
                params, n_neighbors=min(params.n_neighbors, m - 1), n_components=min(params.n_components, m - 2)
            )
            # Exact neighbours from one matrix product: for ticket-sized corpora this is seconds, where
            # UMAP's own approximate search (pynndescent, above 4,096 points) first spends ~30 s compiling.
            knn_indices, knn_distances = _cosine_knn(distinct, params.n_neighbors)
            with warnings.catch_warnings():
                # "n_jobs value 1 overridden by setting random_state": determinism is what the seed is for;
                # "precomputed_knn ... no search index": nothing new is ever transformed.
                warnings.simplefilter("ignore", UserWarning)
                reduced = umap.UMAP(
                    n_neighbors=params.n_neighbors,
                    n_components=params.n_components,
                    min_dist=0.0,
                    metric="cosine",
                    random_state=params.random_state,
                    precomputed_knn=(knn_indices, knn_distances),
                ).fit_transform(distinct)
            return np.asarray(reduced, dtype=np.float64)[inverse], params

        params = replace(params, n_components=max(1, min(params.n_components, n - 1, dim)), n_neighbors=0)
        projected = pca_project(unit, params.n_components)
        # Back onto the unit sphere: Euclidean distance then ranks pairs as cosine does.
        return unit_rows(np.asarray(projected, dtype=np.float64)), params


def pca_project(points: np.ndarray, n_components: int) -> np.ndarray:
    """``points`` projected on their first ``n_components`` principal axes, as scikit-learn's ``PCA`` with its
    exact ("full") solver does, which is what it picks for the corpora this path sees (under 200 points of 384
    dimensions), signs included. Written out here because importing ``sklearn.decomposition`` costs 1.5-2 s of
    every cold ``kbcurator gaps`` (it pulls in scikit-learn's linear models and scipy's optimisers)."""
    centred = np.asarray(points, dtype=np.float64) - np.mean(points, axis=0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    # scikit-learn's sign convention (svd_flip on the components): each axis's largest loading is positive.
    signs = np.sign(vt[np.arange(len(vt)), np.argmax(np.abs(vt), axis=1)])
    signs[signs == 0] = 1.0
    return (u[:, :n_components] * s[:n_components]) * signs[:n_components]


def _cosine_knn(unit: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest rows by cosine, itself first (as UMAP expects), with cosine distances."""
    n = len(unit)
    indices = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float32)
    # Rows per block so that one block of similarities stays near 64 MB whatever n is.
    block = max(1, min(n, 16_000_000 // max(n, 1)))
    rows = np.arange(n)
    for start in range(0, n, block):
        stop = min(n, start + block)
        similarity = unit[start:stop] @ unit.T
        # Duplicated tickets tie with the row itself: put the row first explicitly.
        similarity[np.arange(stop - start), rows[start:stop]] = np.inf
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(similarity, nearest, axis=1), axis=1, kind="stable")
        nearest = np.take_along_axis(nearest, order, axis=1)
        indices[start:stop] = nearest
        distances[start:stop] = 1.0 - np.take_along_axis(similarity, nearest, axis=1)
        distances[start:stop, 0] = 0.0
    np.clip(distances, 0.0, 2.0, out=distances)
    return indices, distances


def _hdbscan(reduced: np.ndarray, inverse: np.ndarray, params: ClusterParams) -> tuple[np.ndarray, np.ndarray]:
    import hdbscan

    clusterer = hdbscan.HDBSCAN(
        min_cluster_size=params.min_cluster_size,
        min_samples=max(1, min(params.min_samples, len(reduced) - 1)),
        cluster_selection_method=params.cluster_selection_method,
        core_dist_n_jobs=1,
    )
    labels = np.asarray(clusterer.fit_predict(reduced), dtype=np.int64)
    return _same_label_for_copies(labels, inverse), np.asarray(clusterer.probabilities_, dtype=np.float64)


def _same_label_for_copies(labels: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """Copies of one vector take the label most of them got (HDBSCAN breaks zero-distance ties arbitrarily,
    and can spread 150 copies of one ticket over three clusters); a cluster emptied this way disappears."""
    counts = np.bincount(inverse)
    if counts.max() < 2:
        return labels
    labels = labels.copy()
    for group in np.flatnonzero(counts > 1).tolist():
        rows = np.flatnonzero(inverse == group)
        values, seen = np.unique(labels[rows], return_counts=True)
        labels[rows] = values[np.argmax(seen)]
    return labels


def _check_in_original_space(unit: np.ndarray, labels: np.ndarray, params: ClusterParams) -> np.ndarray:
    """Long-tail what the reduction put together but the original vectors do not support."""
    labels = labels.copy()
    total = unit.sum(axis=0)
    n = len(unit)
    # Mean cosine over all pairs from one sum: |sum|^2 counts every ordered pair plus the n self-pairs.
    corpus_cohesion = (float(total @ total) - n) / (n * (n - 1))
    for cluster_id in np.unique(labels[labels != LONG_TAIL]):
        rows = np.flatnonzero(labels == cluster_id)
        members = unit[rows].sum(axis=0)
        cohesion = (float(members @ members) - len(rows)) / max(1, len(rows) * (len(rows) - 1))
        if cohesion < corpus_cohesion + _COHESION_MARGIN * (1.0 - corpus_cohesion):
            labels[rows] = LONG_TAIL
    ids, matrix, bars = _bars(unit, labels, params.membership_bar)
    for index, cluster_id in enumerate(ids.tolist()):
        rows = np.flatnonzero(labels == cluster_id)
        labels[rows[unit[rows] @ matrix[index] < bars[index]]] = LONG_TAIL
        if (labels == cluster_id).sum() < params.min_cluster_size:
            labels[labels == cluster_id] = LONG_TAIL
    return labels


def _bars(unit: np.ndarray, labels: np.ndarray, position: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cluster ids, their centroids, and the similarity a point needs to belong to each.

    The bar sits between how similar everything else is to the centroid (median) and how similar the members
    typically are (median), ``position`` of the way up: at 0.5 a point belongs where it looks more like a
    member than like the background. Relative to each cluster, so it holds for tight and loose topics alike and
    for any embedding model.
    """
    cents = centroids(unit, labels)
    ids = np.fromiter(cents, dtype=np.int64, count=len(cents))
    if not len(ids):
        return ids, np.zeros((0, unit.shape[1]), dtype=unit.dtype), np.zeros(0)
    matrix = np.stack([cents[i] for i in ids.tolist()])
    similarity = unit @ matrix.T
    bars = np.empty(len(ids))
    for index, cluster_id in enumerate(ids.tolist()):
        member = labels == cluster_id
        typical = float(np.median(similarity[member, index]))
        background = float(np.median(similarity[~member, index])) if (~member).any() else 0.0
        bars[index] = background + position * (typical - background)
    return ids, matrix, bars


def _reassign(unit: np.ndarray, labels: np.ndarray, params: ClusterParams) -> tuple[np.ndarray, np.ndarray]:
    """Long-tail points join the cluster most of their nearest clustered neighbours are in (see ``_VOTERS``).

    Returns the labels and each row's cosine similarity to its final cluster's centroid (0 for the long tail).
    """
    final = labels.copy()
    ids, matrix, bars = _bars(unit, labels, params.membership_bar)
    voters = max(1, min(_VOTERS, params.min_cluster_size))
    for _ in range(_VOTE_ROUNDS if len(ids) else 0):
        tail = np.flatnonzero(final == LONG_TAIL)
        clustered = np.flatnonzero(final != LONG_TAIL)
        if not len(tail) or not len(clustered):
            break
        k = min(voters, len(clustered))
        neighbours, similarity = _nearest(unit[tail], unit[clustered], k)
        # Votes per (tail point, cluster); between clusters with as many votes, the more similar voters win.
        column = np.searchsorted(ids, final[clustered][neighbours]).reshape(-1)
        row = np.repeat(np.arange(len(tail)), k)
        votes = np.zeros((len(tail), len(ids)), dtype=np.float32)
        np.add.at(votes, (row, column), 1.0)
        closeness = np.zeros_like(votes)
        np.add.at(closeness, (row, column), similarity.reshape(-1))
        best = _best(votes, closeness)
        enough = votes[np.arange(len(tail)), best] >= _VOTE_SHARE * k
        close = np.einsum("ij,ij->i", unit[tail], matrix[best]) >= _VOTE_BAR_SHARE * bars[best]
        joins = enough & close
        if not joins.any():
            break
        final[tail[joins]] = ids[best[joins]]

    similarity_out = np.zeros(len(final), dtype=np.float32)
    for cluster_id, centre in centroids(unit, final).items():
        rows = final == cluster_id
        similarity_out[rows] = unit[rows] @ centre
    return final, similarity_out


def _best(votes: np.ndarray, closeness: np.ndarray) -> np.ndarray:
    """Per row, the column with the most votes; ties go to the higher summed similarity."""
    top = votes == votes.max(axis=1, keepdims=True)
    return np.where(top, closeness, -np.inf).argmax(axis=1)


def _nearest(queries: np.ndarray, base: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``base`` of each query's k most cosine-similar rows, and those similarities (unit rows)."""
    indices = np.empty((len(queries), k), dtype=np.int64)
    similarities = np.empty((len(queries), k), dtype=np.float32)
    # Query rows per block so that one block of similarities stays near 64 MB whatever the sizes are.
    block = max(1, 16_000_000 // max(len(base), 1))
    for start in range(0, len(queries), block):
        stop = min(len(queries), start + block)
        similarity = queries[start:stop] @ base.T
        nearest = (
            np.argpartition(-similarity, k - 1, axis=1)[:, :k]
            if k < len(base)
            else np.tile(np.arange(len(base)), (stop - start, 1))
        )
        indices[start:stop] = nearest
        similarities[start:stop] = np.take_along_axis(similarity, nearest, axis=1)
    return indices, similarities


def _by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1, largest first (ties: first row first), so ids read as a ranking."""
    ids, first, counts = np.unique(labels[labels != LONG_TAIL], return_index=True, return_counts=True)
    out = np.full(len(labels), LONG_TAIL, dtype=np.int64)
    for new_id, old_index in enumerate(np.lexsort((first, -counts))):
        out[labels == ids[old_index]] = new_id
    return out


def _embed_result(inner: ClusterResult, rows: np.ndarray, n: int) -> ClusterResult:
    """``inner`` computed on ``rows`` of an n-row input, spread back over all n (the other rows: long tail)."""

    def spread(values: np.ndarray, fill: float | int | bool) -> np.ndarray:
        out = np.full((n, *values.shape[1:]), fill, dtype=values.dtype)
        out[rows] = values
        return out

    labels = spread(inner.labels, LONG_TAIL)
    hdbscan_noise = 1.0 - (1.0 - inner.noise_share_before) * len(rows) / n if n else 0.0
    return replace(
        inner,
        labels=labels,
        noise_share_before=hdbscan_noise,
        noise_share_after=float(np.mean(labels == LONG_TAIL)) if n else 0.0,
        params=replace(inner.params, n=n),
        probabilities=spread(inner.probabilities, 0.0),
        reassigned=spread(inner.reassigned, False),
        trimmed=spread(inner.trimmed, False),
        similarity=spread(inner.similarity, 0.0),
        reduced=spread(inner.reduced, 0.0),
    )


def _trivial(labels: np.ndarray, unit: np.ndarray, params: ClusterParams) -> ClusterResult:
    """The result for inputs too small or too uniform to cluster."""
    labels = labels.astype(np.int64)
    clustered = labels != LONG_TAIL
    similarity = np.zeros(len(labels), dtype=np.float32)
    for cluster_id, centre in centroids(unit, labels).items():
        similarity[labels == cluster_id] = unit[labels == cluster_id] @ centre
    noise = float(np.mean(~clustered)) if len(labels) else 0.0
    return ClusterResult(
        labels=labels,
        noise_share_before=noise,
        noise_share_after=noise,
        n_clusters=len(np.unique(labels[clustered])),
        params=replace(params, reducer="none", n_components=0, n_neighbors=0),
        probabilities=clustered.astype(np.float32),
        reassigned=np.zeros(len(labels), dtype=bool),
        trimmed=np.zeros(len(labels), dtype=bool),
        similarity=similarity,
        reduced=np.zeros((len(labels), 0), dtype=np.float64),
    )


def _normalised(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _umap_installed() -> bool:
    return importlib.util.find_spec("umap") is not None
