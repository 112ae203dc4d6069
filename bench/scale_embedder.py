"""A stand-in embedder for the scale benchmark, named as such in every index it builds.

The real model (all-MiniLM-L6-v2) embeds ~20 chunks/s on a 2-core CPU: the 100x corpus (~200,000 chunks) would
take hours, so ``bench/scale.py`` builds with this instead and measures the real model side by side at 1x. It
hashes word unigrams and bigrams, with signs, into 384 dimensions (the real model's), so vectors, tables and
indexes have the real shape and texts sharing words land close; it knows nothing of meaning.

Loaded by the flow through its import path: ``embedding: {model: "scale_embedder:LexicalHashingEmbedder"}``
with ``bench/`` on PYTHONPATH.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer


class LexicalHashingEmbedder:
    """Hashed, signed word unigram+bigram counts, L2-normalised to float32 rows of 384 dimensions."""

    name = "bench-lexical-hashing-384"
    dimension = 384

    def __init__(self) -> None:
        self._vectorizer = HashingVectorizer(
            n_features=self.dimension,
            ngram_range=(1, 2),
            alternate_sign=True,
            norm=None,
            lowercase=True,
            dtype=np.float32,
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        counts = self._vectorizer.transform(list(texts)).toarray().astype(np.float32)
        # Sublinear counts: a word said ten times does not outweigh the rest of the chunk.
        vectors = np.sign(counts) * np.log1p(np.abs(counts))
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
