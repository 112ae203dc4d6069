"""Deterministic test doubles. These are fakes, named as such: the real embedder is exercised in tests
marked ``model``."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")


class FakeHashingEmbedder:
    """Bag-of-words hashed into a fixed dimension: texts sharing words get similar vectors.

    Counts calls so tests can assert what was (not) embedded.
    """

    def __init__(self, dimension: int = 32, name: str = "fake-hashing") -> None:
        self.name = name
        self.dimension = dimension
        self.embedded_texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded_texts.extend(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                bucket = int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension
                out[i, bucket] += 1.0
            norm = float(np.linalg.norm(out[i]))
            out[i] = out[i] / norm if norm else out[i]
            if not norm:
                out[i, 0] = 1.0
        return out
