"""Embedders (one public method, ``embed``) and the content-hash cache that makes reindexing incremental."""

from kbcurator.embedding.base import Embedder
from kbcurator.embedding.onnx import Backend, OnnxEmbedder, embedder_name, split_backend
from kbcurator.embedding.sentence import SentenceTransformerEmbedder, embedder_for, load_embedder, resolve_model_path

__all__ = [
    "Backend",
    "Embedder",
    "OnnxEmbedder",
    "SentenceTransformerEmbedder",
    "embedder_for",
    "embedder_name",
    "load_embedder",
    "resolve_model_path",
    "split_backend",
]
