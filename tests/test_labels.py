"""Cluster names: c-TF-IDF keywords tell clusters apart, and the central query really is the most central."""

from __future__ import annotations

import numpy as np
import pytest

from kbcurator.gaps.labels import ClusterLabel, label_clusters

CARD = [
    "my card did not arrive",
    "when will my card arrive",
    "card delivery is taking too long",
    "track the delivery of my new card",
    "card still has not arrived, delivery late",
    "when will my card arrive",  # asked twice: a representative is listed once
]
REFUND = [
    "how do I get a refund",
    "cancel my order and refund me",
    "refund for a cancelled payment",
    "I want to cancel and get my money back",
    "refund not received after cancel",
]
TAIL = ["what is your phone number", "do you have an office in Paris"]


def _vectors(n: int, centre_row: int, seed: int) -> np.ndarray:
    """Unit vectors around one direction, with row ``centre_row`` placed exactly on it (the most central)."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=16)
    out = direction + rng.normal(size=(n, 16)) * 0.6
    out[centre_row] = direction
    return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture
def corpus() -> tuple[list[str], np.ndarray, np.ndarray]:
    texts = CARD + REFUND + TAIL
    labels = np.array([0] * len(CARD) + [1] * len(REFUND) + [-1] * len(TAIL))
    vectors = np.vstack(
        [_vectors(len(CARD), centre_row=2, seed=1), _vectors(len(REFUND), centre_row=3, seed=2), _vectors(2, 0, 3)]
    ).astype(np.float32)
    return texts, labels, vectors


def test_keywords_tell_the_two_clusters_apart(corpus: tuple[list[str], np.ndarray, np.ndarray]) -> None:
    texts, labels, vectors = corpus
    got = label_clusters(texts, labels, vectors)
    assert set(got) == {0, 1}  # the long tail gets no label
    card, refund = got[0], got[1]
    assert {"card", "delivery", "arrive"} <= set(card.keywords[:4])
    assert {"refund", "cancel"} <= set(refund.keywords[:3])
    assert not {"refund", "cancel"} & set(card.keywords)
    assert card.label == " · ".join(card.keywords[:3])
    assert card.label.startswith("card")
    assert (card.size, refund.size) == (len(CARD), len(REFUND))


def test_representatives_are_distinct_members_and_the_central_query_is_the_most_central(
    corpus: tuple[list[str], np.ndarray, np.ndarray],
) -> None:
    texts, labels, vectors = corpus
    got = label_clusters(texts, labels, vectors, n_representatives=10)
    card = got[0]
    assert card.central_query == CARD[2]  # placed on the cluster's direction
    assert card.representatives[0] == card.central_query
    assert set(card.representatives) <= set(CARD)
    assert len(card.representatives) == len(set(card.representatives)) == len(set(CARD))
    assert got[1].central_query == REFUND[3]

    # Ordered from the centroid outwards.
    centroid = vectors[labels == 0].mean(axis=0)
    similarity = {t: float(vectors[texts.index(t)] @ centroid) for t in card.representatives}
    assert list(card.representatives) == sorted(card.representatives, key=lambda t: -similarity[t])


def test_limits_are_honoured(corpus: tuple[list[str], np.ndarray, np.ndarray]) -> None:
    texts, labels, vectors = corpus
    got = label_clusters(texts, labels, vectors, top_n_words=2, n_representatives=2)
    assert all(len(c.keywords) == 2 and len(c.representatives) == 2 for c in got.values())
    assert isinstance(got[0], ClusterLabel)


def test_no_clusters_no_labels_and_a_stop_word_cluster_is_named_by_its_central_query() -> None:
    vectors = np.eye(3, dtype=np.float32)
    assert label_clusters(["a", "b", "c"], np.array([-1, -1, -1]), vectors) == {}
    got = label_clusters(["and then", "The", "and"], np.array([0, 0, 0]), vectors[[0, 0, 1]])
    assert got[0].keywords == ()
    assert got[0].label == "and then"


def test_bigrams_do_not_cross_texts_and_labels_do_not_repeat_words() -> None:
    texts = ["card arrive", "card arrive", "delivery time", "refund", "refund now"]
    labels = np.array([0, 0, 0, 1, 1])
    got = label_clusters(texts, labels, np.eye(5, dtype=np.float32))
    assert "arrive delivery" not in got[0].keywords  # only "card arrive" + "delivery time" were written
    assert "card arrive" in got[0].keywords
    words = got[0].label.replace(" · ", " ").split()
    assert len(words) == len(set(words))


def test_mismatched_lengths_raise() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        label_clusters(["a", "b"], np.array([0]), np.zeros((2, 3), dtype=np.float32))
