"""Executors: where the heavy stages of a build and an audit run. The use cases call the same stages in the same
order; an executor decides only where each runs (datatrove's ``executor/`` is the model).

:class:`InProcess` runs them here, one after the other. The flows add one that runs them as tasks on a Dask
cluster (``flows/execution.py``); any object with these methods will do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

import numpy as np

from kbcurator.analysis.audit import DetectorRun, default_detectors, run_detector
from kbcurator.analysis.base import AuditCorpus
from kbcurator.chunking import ChunkPolicy
from kbcurator.embedding import embedder_for, embedder_name
from kbcurator.embedding.base import Embedder
from kbcurator.index.build import ChunkedBatch, chunk_batch
from kbcurator.index.embedding_cache import EmbeddingCache, embed_with_cache
from kbcurator.index.store import IndexStore, manifest_of
from kbcurator.records import Article
from kbcurator.settings import Settings


class Executor(Protocol):
    """Runs the stages; entered once around a run (a cluster starts and stops there)."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None: ...

    def embedder_identity(self) -> tuple[str, int]:
        """(name, dimension) of the embedder the settings name."""
        ...

    def chunk(self, articles: Sequence[Article], policy: ChunkPolicy) -> list[ChunkedBatch]:
        """Chunk the articles, in one batch or many; the batches keep the articles' order."""
        ...

    def embed(self, texts_by_hash: dict[str, str], model: str) -> tuple[dict[str, np.ndarray], int]:
        """A vector for every hash (through the embedding cache) and how many texts were embedded now."""
        ...

    def detect(self, corpus: AuditCorpus, release_seq: int | None) -> list[DetectorRun]:
        """Every enabled detector's run over the corpus (``release_seq``: the release it was read from)."""
        ...


class InProcess:
    """Every stage in this process: one chunking batch, embedding checkpointed into the cache every
    ``embedding.checkpoint_every`` chunks, detectors one after the other."""

    def __init__(self, settings: Settings, store: IndexStore, *, on_progress: Callable[[str], None] | None = None):
        self._settings = settings
        self._store = store
        self._say = on_progress or (lambda _message: None)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        return None

    def _embedder(self) -> Embedder:
        embedding = self._settings.embedding
        return embedder_for(embedding)

    def embedder_identity(self) -> tuple[str, int]:
        """The model's recorded name and dimension: from the current release's manifest when it was built with
        the model the settings name (an unchanged night then loads no model: ~7 s), else from the loaded model."""
        embedding = self._settings.embedding
        spec = embedding.model
        expected = (
            None if ":" in spec and not Path(spec).expanduser().is_dir() else embedder_name(spec, embedding.backend)
        )
        current = self._store.current() if expected else None
        manifest = manifest_of(current) if current is not None else {}
        if manifest.get("model") == expected and manifest.get("dimension"):
            return str(expected), int(manifest["dimension"])
        embedder = self._embedder()
        return embedder.name, embedder.dimension

    def chunk(self, articles: Sequence[Article], policy: ChunkPolicy) -> list[ChunkedBatch]:
        return [chunk_batch(articles, policy)]

    def embed(self, texts_by_hash: dict[str, str], model: str) -> tuple[dict[str, np.ndarray], int]:
        if not texts_by_hash:
            return {}, 0  # nothing new to embed: no model to load
        return embed_with_cache(
            texts_by_hash,
            self._embedder(),
            EmbeddingCache(self._store),
            batch_size=self._settings.embedding.checkpoint_every,
            on_batch=lambda done, total: self._say(f"embedded {done}/{total} chunks"),
        )

    def detect(self, corpus: AuditCorpus, release_seq: int | None) -> list[DetectorRun]:
        return [run_detector(corpus, detector) for detector in default_detectors(self._settings.health)]
