"""k-NN candidate pairs: the exact and the HNSW search agree, and pairs never come from one owner."""

from __future__ import annotations

import numpy as np
import pytest

from kbcurator.analysis.neighbours import candidate_pairs, nearest_neighbours


def _clustered(n: int, dim: int = 48, seed: int = 5) -> np.ndarray:
    """Rows in tight pairs (a row and its near copy) spread over many topics, L2-normalised."""
    rng = np.random.default_rng(seed)
    half = rng.normal(size=(n // 2, dim)).astype(np.float32)
    twins = half + 0.05 * rng.normal(size=half.shape).astype(np.float32)
    rows = np.vstack([half, twins])
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_each_row_finds_its_near_copy_and_never_itself() -> None:
    vectors = _clustered(200)
    indices, sims = nearest_neighbours(vectors, 3)

    assert indices.shape == (200, 3)
    assert not (indices == np.arange(200)[:, None]).any()
    assert (np.diff(sims, axis=1) <= 1e-6).all()  # best first
    twin = (np.arange(200) + 100) % 200
    assert (indices[:, 0] == twin).all()


def test_pairs_are_ordered_unique_and_above_the_threshold() -> None:
    vectors = _clustered(120)
    pairs = candidate_pairs(vectors, k=4, min_similarity=0.9)

    assert pairs, "the 60 near-copy pairs are above 0.9"
    assert all(i < j for i, j, _ in pairs)
    assert len({(i, j) for i, j, _ in pairs}) == len(pairs)
    assert all(s >= 0.9 for _, _, s in pairs)
    assert [s for _, _, s in pairs] == sorted((s for _, _, s in pairs), reverse=True)
    assert {(i, j) for i, j, _ in pairs} == {(i, i + 60) for i in range(60)}


def test_rows_of_one_owner_are_never_paired_and_a_long_owner_does_not_crowd_out_others() -> None:
    rng = np.random.default_rng(11)
    topic = rng.normal(size=32)
    # One long article: 12 chunks that are all near the same point; one other article's chunk close to them too.
    long_article = topic + 0.01 * rng.normal(size=(12, 32))
    other = topic + 0.02 * rng.normal(size=(1, 32))
    noise = rng.normal(size=(20, 32))
    vectors = np.vstack([long_article, other, noise]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    owners = ["long"] * 12 + ["other"] + [f"n{i}" for i in range(20)]

    pairs = candidate_pairs(vectors, k=2, min_similarity=0.95, owners=owners)

    assert pairs
    assert all(owners[i] != owners[j] for i, j, _ in pairs)
    assert {j for _, j, _ in pairs} == {12}  # every long-article chunk still reaches the other article


@pytest.mark.parametrize("n", [300, 2500])
def test_the_hnsw_graph_finds_what_the_exact_search_finds(n: int) -> None:
    vectors = _clustered(n)
    exact = {(i, j) for i, j, _ in candidate_pairs(vectors, k=5, min_similarity=0.8, exact_below=n + 1)}
    approximate = {(i, j) for i, j, _ in candidate_pairs(vectors, k=5, min_similarity=0.8, exact_below=0)}

    assert exact
    assert len(exact & approximate) / len(exact) >= 0.99


def test_degenerate_inputs_give_no_pairs() -> None:
    assert candidate_pairs(np.zeros((0, 8), dtype=np.float32), k=3, min_similarity=0.5) == []
    assert candidate_pairs(np.ones((1, 8), dtype=np.float32), k=3, min_similarity=0.5) == []
    with pytest.raises(ValueError, match="owners"):
        candidate_pairs(np.ones((2, 8), dtype=np.float32), k=1, min_similarity=0.5, owners=["a"])
