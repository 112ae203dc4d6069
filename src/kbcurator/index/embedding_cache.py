"""Vectors by (model, content hash), kept in the index database so any run can reuse them.

A run that is killed mid-way keeps what it embedded: the rerun finds those vectors here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kbcurator.embedding.base import Embedder
from kbcurator.index import schema
from kbcurator.index.store import IndexStore, lance_errors, sql_text


class EmbeddingCache:
    def __init__(self, store: IndexStore) -> None:
        self._store = store

    def _table(self) -> Any | None:
        if not self._store.has_table(schema.EMBEDDING_CACHE):
            return None
        with lance_errors("cannot open the embedding cache"):
            return self._store.db.open_table(schema.EMBEDDING_CACHE)

    def _hashes(self, table: Any, model: str) -> pa.Table:
        """``content_hash`` and LanceDB's ``_rowid`` of every row of ``model``: no vector is read."""
        with lance_errors("cannot read the embedding cache"):
            query = table.search().where(f"model = {sql_text(model)}").select(["content_hash"]).with_row_id(True)
            rows: pa.Table = query.limit(None).to_arrow()
        return rows

    def known(self, model: str, content_hashes: Sequence[str]) -> set[str]:
        """The hashes among ``content_hashes`` that already have a vector for ``model`` (no vectors read)."""
        table = self._table() if content_hashes else None
        if table is None:
            return set()
        return set(self._hashes(table, model)["content_hash"].to_pylist()) & set(content_hashes)

    def lookup(self, model: str, content_hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vector of each of ``content_hashes`` that has one for ``model``.

        Reads the hashes, then only the matching rows' vectors (by row id): a build looks up each chunked batch
        as it comes, and reading every cached vector each time made that quadratic (at 200k chunks, ~330 MB read
        per batch, as Python floats ~2.5 GB).
        """
        table = self._table() if content_hashes else None
        if table is None:
            return {}
        rows = self._hashes(table, model)
        wanted = pa.array(sorted(set(content_hashes)), type=pa.string())
        row_ids = rows["_rowid"].filter(pc.is_in(rows["content_hash"], value_set=wanted)).to_pylist()
        if not row_ids:
            return {}
        with lance_errors("cannot read the embedding cache"):
            hits = table.take_row_ids(row_ids).select(["content_hash", "vector"]).to_arrow()
        # One flat float32 array and each row's slice of it, not Python lists of floats (~9 KB a MiniLM vector).
        vectors = hits["vector"].combine_chunks()
        flat = np.asarray(vectors.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
        lengths = np.asarray(pc.list_value_length(vectors).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
        ends = np.cumsum(lengths)
        found: dict[str, np.ndarray] = {}
        for row, content_hash in enumerate(hits["content_hash"].to_pylist()):
            found.setdefault(content_hash, flat[ends[row] - lengths[row] : ends[row]])
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
            # An append, not an upsert: callers add only hashes they found missing, and an upsert scans the
            # whole cache per batch (quadratic over a big build). A rare double (two runs at once) is harmless:
            # lookup keeps one vector per hash, and equal keys hold equal vectors.
            table.add(rows)


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
