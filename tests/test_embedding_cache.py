"""The embedding cache returns the vectors asked for, of the model asked for, reading only their rows' vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kbcurator.index.embedding_cache import EmbeddingCache, embed_with_cache
from kbcurator.index.store import IndexStore


class _CountingEmbedder:
    name = "model-a"
    dimension = 4

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += texts
        return np.asarray([[len(t), 1.0, 2.0, 3.0] for t in texts], dtype=np.float32)


def test_lookup_returns_exactly_the_cached_vectors_of_the_hashes_and_model_asked(tmp_path: Path) -> None:
    cache = EmbeddingCache(IndexStore(str(tmp_path / "index")))
    assert cache.lookup("model-a", ["h1"]) == {} and cache.known("model-a", ["h1"]) == set()
    rng = np.random.default_rng(5)
    first = rng.standard_normal((300, 4)).astype(np.float32)
    cache.add("model-a", [f"h{i}" for i in range(300)], first)
    cache.add("model-b", ["h1", "h2"], np.zeros((2, 4), dtype=np.float32))
    cache.add("model-a", ["h1"], first[1:2])  # a double, as two runs at once may write: one is kept

    found = cache.lookup("model-a", ["h1", "h299", "h7", "missing", "h7"])

    assert sorted(found) == ["h1", "h299", "h7"]
    for name in found:
        np.testing.assert_array_equal(found[name], first[int(name[1:])])
    assert cache.known("model-a", ["h1", "h2", "missing"]) == {"h1", "h2"}
    np.testing.assert_array_equal(cache.lookup("model-b", ["h2"])["h2"], np.zeros(4, dtype=np.float32))
    assert cache.lookup("model-c", ["h1"]) == {}


def test_embed_with_cache_embeds_only_what_the_cache_lacks(tmp_path: Path) -> None:
    cache = EmbeddingCache(IndexStore(str(tmp_path / "index")))
    embedder = _CountingEmbedder()
    vectors, embedded = embed_with_cache({"a": "one", "b": "three"}, embedder, cache, batch_size=1)
    assert embedded == 2 and embedder.texts == ["one", "three"]

    again, embedded = embed_with_cache({"a": "one", "b": "three", "c": "seven"}, embedder, cache)

    assert embedded == 1 and embedder.texts == ["one", "three", "seven"]
    assert {k: float(v[0]) for k, v in again.items()} == {"a": 3.0, "b": 5.0, "c": 5.0}
    np.testing.assert_array_equal(again["a"], vectors["a"])
