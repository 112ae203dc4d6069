"""Vectors by (model, content hash), kept in the index database so any run can reuse them.

A run that is killed mid-way keeps what it embedded: the rerun finds those vectors here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kbcurator.embedding.base import Embedder
from kbcurator.index import schema
from kbcurator.index.store import IndexStore, lance_errors


class EmbeddingCache:
    def __init__(self, store: IndexStore) -> None:
        self._store = store

    def lookup(self, model: str, content_hashes: Sequence[str]) -> dict[str, np.ndarray]:
        if not content_hashes or not self._store.has_table(schema.EMBEDDING_CACHE):
            return {}
        with lance_errors("cannot read the embedding cache"):
            table = self._store.db.open_table(schema.EMBEDDING_CACHE).to_arrow()
        wanted = pa.array(sorted(set(content_hashes)), type=pa.string())
        mask = pc.and_(pc.equal(table["model"], model), pc.is_in(table["content_hash"], value_set=wanted))
        hits = table.filter(mask)
        found: dict[str, np.ndarray] = {}
        for content_hash, vector in zip(hits["content_hash"].to_pylist(), hits["vector"].to_pylist(), strict=True):
            found.setdefault(content_hash, np.asarray(vector, dtype=np.float32))
        return found

    def add(self, model: str, content_hashes: Sequence[str], vectors: np.ndarray) -> None:
        if not content_hashes:
            return
        rows = pa.table(
            {
                "cache_key": [f"{model}|{h}" for h in content_hashes],
                "model": [model] * len(content_hashes),
                "content_hash": list(content_hashes),
                "vector": [v.tolist() for v in vectors],
            },
            schema=schema.embedding_cache_schema(),
        )
        table = self._store.open_or_create(schema.EMBEDDING_CACHE, schema.embedding_cache_schema())
        with lance_errors("cannot write the embedding cache"):
            table.merge_insert("cache_key").when_not_matched_insert_all().execute(rows)


def embed_with_cache(
    texts_by_hash: dict[str, str],
    embedder: Embedder,
    cache: EmbeddingCache,
    *,
    batch_size: int = 256,
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, np.ndarray], int]:
    """Vectors for every hash, embedding only those the cache lacks. Returns (vectors, embedded count).

    Each batch is written to the cache as soon as it is embedded, so an interrupted run loses at most
    one batch of work.
    """
    vectors = cache.lookup(embedder.name, list(texts_by_hash))
    missing = [h for h in texts_by_hash if h not in vectors]
    for start in range(0, len(missing), batch_size):
        batch = missing[start : start + batch_size]
        embedded = embedder.embed([texts_by_hash[h] for h in batch])
        cache.add(embedder.name, batch, embedded)
        vectors.update(zip(batch, embedded, strict=True))
        if on_batch is not None:
            on_batch(min(start + batch_size, len(missing)), len(missing))
    return vectors, len(missing)
