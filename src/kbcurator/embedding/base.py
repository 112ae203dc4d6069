"""The embedder interface: one public method, injected wherever vectors are needed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension.

    ``name`` identifies the model in manifests and in the embedding cache: two embedders with the same
    name must produce the same vectors.
    """

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (dtype kept); zero rows (an empty text through some embedders) stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


class LazyEmbedder:
    """An embedder of a known name and dimension that loads the model on its first ``embed``: handed to the
    embedding cache, it costs nothing when every text is cached already (an unchanged night loads no model)."""

    def __init__(self, name: str, dimension: int, load: Callable[[], Embedder]) -> None:
        self.name = name
        self.dimension = dimension
        self._load = load
        self._loaded: Embedder | None = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded.embed(texts)
