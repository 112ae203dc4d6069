"""Embedders (one public method, ``embed``) and the content-hash cache that makes reindexing incremental."""

from kbcurator.embedding.base import Embedder
from kbcurator.embedding.sentence import SentenceTransformerEmbedder, load_embedder, resolve_model_path

__all__ = ["Embedder", "SentenceTransformerEmbedder", "load_embedder", "resolve_model_path"]
