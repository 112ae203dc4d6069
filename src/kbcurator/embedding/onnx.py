"""The same sentence-transformers model, exported once from the local weights and run without
sentence-transformers: through ONNX Runtime (fp32, or int8 by dynamic quantisation), or as a TorchScript trace.

The export runs once per model and kind, from the weights on disk (sentence-transformers is needed for that step
only), and is cached: beside the weights when that folder is writable, else in the user's cache. Embedding with an
existing export imports neither sentence-transformers nor transformers: ``onnxruntime`` (or ``torch`` alone, for the
trace) runs the transformer, ``tokenizers`` tokenises (truncated to the model's ``max_seq_length``, as
sentence-transformers does), and pooling and L2 normalisation are numpy. Importing sentence-transformers costs about
10 s of a cold process here, ``torch`` alone about 2 s: that is what the trace saves a search on a torch release.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, cast, get_args

import numpy as np

from kbcurator.embedding.base import unit_rows
from kbcurator.errors import EmbeddingError
from kbcurator.model_files import resolve_model_path

__all__ = [
    "Backend",
    "OnnxEmbedder",
    "TorchScriptEmbedder",
    "embedder_name",
    "ensure_export",
    "export_dir_candidates",
    "split_backend",
]

Backend = Literal["torch", "onnx", "onnx-int8"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)
OnnxBackend = Literal["onnx", "onnx-int8"]
# What an export holds: an ONNX graph per ONNX backend, or the TorchScript trace the torch backend runs.
ExportKind = Literal["onnx", "onnx-int8", "torchscript"]

# Bump when the export's files or their meaning change: an export of another format is made again.
EXPORT_FORMAT = 1
_META = "export.json"
_MODEL_FILE = {"onnx": "model.onnx", "onnx-int8": "model_int8.onnx", "torchscript": "model_torchscript.pt"}
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# Batches of at most this many texts (a search's query) run on the query session and its own thread count.
SMALL_BATCH = 4


def embedder_name(model: str, backend: Backend) -> str:
    """The name an embedder of ``backend`` records: the bare model name for torch (what indexes built before the
    setting recorded), ``model@backend`` otherwise, so vectors of two backends never share a cache or a release."""
    return model if backend == "torch" else f"{model}@{backend}"


def split_backend(name: str) -> tuple[str, Backend | None]:
    """``"m@onnx-int8"`` -> ``("m", "onnx-int8")``; a name without a known backend suffix -> ``(name, None)``."""
    model, sep, suffix = name.rpartition("@")
    if sep and model and suffix in BACKENDS and suffix != "torch":
        return model, cast(Backend, suffix)
    return name, None


def _user_cache_root() -> Path:
    # The XDG default, as pip and Hugging Face place theirs; the setting embedding.onnx_dir overrides it.
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kbcurator" / "onnx"


def _key(model_path: Path, backend: ExportKind) -> str:
    return hashlib.sha256(f"{model_path.resolve()}\0{backend}".encode()).hexdigest()[:16]


def export_dir_candidates(model_path: Path, backend: ExportKind, onnx_dir: str | Path | None = None) -> list[Path]:
    """Where an export of ``model_path`` for ``backend`` may lie, in the order they are tried.

    With ``onnx_dir`` only there (one subfolder per model and backend); without it beside the weights first, then the
    per-user cache (``$XDG_CACHE_HOME/kbcurator/onnx``).
    """
    key = _key(model_path, backend)
    if onnx_dir is not None:
        return [Path(onnx_dir).expanduser() / key]
    return [model_path / "kbcurator-onnx" / backend, _user_cache_root() / key]


def _fingerprint(model_path: Path) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for name in _WEIGHT_FILES:
        path = model_path / name
        if path.is_file():
            stat = path.stat()
            found[name] = [stat.st_size, stat.st_mtime_ns]
    return found


def _read_meta(folder: Path, model_path: Path, backend: ExportKind) -> dict[str, Any] | None:
    """The export's description when ``folder`` holds a complete export of these weights, else None."""
    try:
        meta = json.loads((folder / _META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(meta, dict)
        or meta.get("format") != EXPORT_FORMAT
        or meta.get("backend") != backend
        or meta.get("weights") != _fingerprint(model_path)
        or not (folder / _MODEL_FILE[backend]).is_file()
        or not (folder / "tokenizer.json").is_file()
    ):
        return None
    return meta


def _writable_root(folder: Path) -> bool:
    parent = folder.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(parent, os.W_OK)


def ensure_export(model: str, backend: ExportKind, onnx_dir: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The folder of a complete export of ``model`` for ``backend`` (an export kind), exporting it first if none
    exists yet.

    Returns the folder and its ``export.json``. Exporting needs torch and sentence-transformers; finding an existing
    export needs neither.
    """
    model_path = resolve_model_path(model)
    candidates = export_dir_candidates(model_path, backend, onnx_dir)
    for folder in candidates:
        meta = _read_meta(folder, model_path, backend)
        if meta is not None:
            return folder, meta
    target = next((folder for folder in candidates if _writable_root(folder)), None)
    if target is None:
        raise EmbeddingError(
            f"cannot export {model!r} ({backend}): none of {', '.join(map(str, candidates))} is writable "
            "(set embedding.onnx_dir to a writable folder)"
        )
    # Written aside and renamed into place, so a reader never sees half an export and two exporters do not mix files.
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _export(model_path, backend, staging)
        staging.chmod(0o755)  # mkdtemp's 0700 would hide an export beside shared weights from other users
        if target.exists():  # a stale export (other weights, an older format): replaced
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(staging, target)
        except OSError:
            if _read_meta(target, model_path, backend) is None:  # not another process's complete export
                raise
    except Exception as exc:
        if isinstance(exc, EmbeddingError):
            raise
        raise EmbeddingError(f"cannot export {model!r} ({backend}) to {target}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    meta = _read_meta(target, model_path, backend)
    if meta is None:
        raise EmbeddingError(f"the {backend} export of {model!r} in {target} is incomplete")
    return target, meta


def _export(model_path: Path, backend: ExportKind, out: Path) -> None:
    """Export the transformer of the sentence-transformers model at ``model_path`` (token embeddings out; pooling and
    normalisation are done by the embedder), its tokenizer, and for int8 the dynamically quantised graph."""
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbeddingError(f"exporting a model ({backend}) needs torch and sentence-transformers: {exc}") from exc
    if backend != "torchscript":
        try:
            import onnxruntime  # noqa: F401  (fail before the slow export, not after)
        except ImportError as exc:
            raise EmbeddingError("the ONNX backends need onnxruntime: `pip install onnxruntime`") from exc

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    st = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
    modules: list[Any] = list(st)  # sentence-transformers' modules are typed loosely; read as their classes say
    kinds = [type(module).__name__ for module in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(kind != "Normalize" for kind in kinds[2:]):
        raise EmbeddingError(f"only Transformer + Pooling (+ Normalize) models can be exported, not {kinds}")
    transformer, pooling = modules[0], modules[1]
    pooling_mode = str(pooling.get_config_dict().get("pooling_mode", "mean"))
    if pooling_mode not in ("mean", "cls", "max"):
        raise EmbeddingError(f"pooling {pooling_mode!r} is not supported by an exported model")
    model_any: Any = st
    get_dimension = getattr(model_any, "get_embedding_dimension", None) or model_any.get_sentence_embedding_dimension
    dimension = get_dimension()
    if not dimension:
        raise EmbeddingError("the model does not report an embedding dimension")
    tokenizer: Any = transformer.tokenizer
    backend_tokenizer = getattr(tokenizer, "backend_tokenizer", None)
    if backend_tokenizer is None:
        raise EmbeddingError("the model's tokenizer has no fast (tokenizers) version to run without transformers")
    hf_model: Any = transformer.auto_model.eval()
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in tokenizer.model_input_names]

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = hf_model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state

    sample = tokenizer(["an example sentence to trace", "another"], padding=True, return_tensors="pt")
    if backend == "torchscript":
        _trace(TokenEmbeddings().eval(), tuple(sample[name] for name in names), out / _MODEL_FILE[backend])
    else:
        _export_onnx(TokenEmbeddings().eval(), sample, names, backend, out)
    backend_tokenizer.save(str(out / "tokenizer.json"))
    meta = {
        "format": EXPORT_FORMAT,
        "backend": backend,
        "model_path": str(model_path.resolve()),
        "weights": _fingerprint(model_path),
        "max_seq_length": int(model_any.max_seq_length),
        "dimension": int(dimension),
        "pooling": pooling_mode,
        "normalize": True,  # the embedder always returns unit vectors, whatever the model's last module
        "inputs": names,
        "pad_token_id": int(tokenizer.pad_token_id or 0),
    }
    (out / _META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _trace(module: Any, sample: tuple[Any, ...], path: Path) -> None:
    """The torch backend's export: a TorchScript trace, which runs with ``torch`` alone (no transformers).

    The tracer warns about Python branches on shapes; they take the same way for every input of this graph (the
    tests compare the trace with sentence-transformers on texts of many lengths, alone and padded in a batch).
    """
    import torch

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, sample, check_trace=False)
    traced.save(str(path))


def _export_onnx(module: Any, sample: Any, names: list[str], backend: ExportKind, out: Path) -> None:
    import torch

    fp32_path = out / _MODEL_FILE["onnx"]
    dynamic = {name: {0: "batch", 1: "sequence"} for name in [*names, "token_embeddings"]}
    # The tracer warns about Python branches on shapes; they are the same for every input of this graph (checked by
    # the tests against torch on texts of many lengths), so the warnings would only alarm.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            tuple(sample[name] for name in names),
            str(fp32_path),
            input_names=names,
            output_names=["token_embeddings"],
            dynamic_axes=dynamic,
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,
        )
    if backend == "onnx-int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(
            str(fp32_path),
            str(out / _MODEL_FILE["onnx-int8"]),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],  # the embedding tables (Gather) stay fp32: cheap, worth the accuracy
        )
        fp32_path.unlink()


class _ExportedEmbedder:
    """What both runtimes share: the export's tokenizer, length-sorted padded batches, pooling, unit rows.

    A subclass runs the transformer (``_token_embeddings``) on one padded batch.
    """

    name: str

    def __init__(self, model: str, kind: ExportKind, *, batch_size: int, onnx_dir: str | Path | None) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EmbeddingError(f"an exported model needs tokenizers: {exc}") from exc
        folder, meta = ensure_export(model, kind, onnx_dir)
        self.dimension = int(meta["dimension"])
        self.export_dir = folder
        self._path = str(folder / _MODEL_FILE[kind])
        self._inputs: list[str] = list(meta["inputs"])
        self._pooling = str(meta["pooling"])
        self._pad_id = int(meta["pad_token_id"])
        self._batch_size = max(1, batch_size)
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()  # padded per batch, to the batch's longest text
        # max_seq_length counts the special tokens, as in sentence-transformers.
        self._tokenizer.enable_truncation(max_length=int(meta["max_seq_length"]))

    def _token_embeddings(self, feed: dict[str, np.ndarray], small: bool) -> np.ndarray:
        raise NotImplementedError

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        small = len(texts) <= SMALL_BATCH
        encodings = self._tokenizer.encode_batch([str(text) for text in texts])
        # Longest first, as sentence-transformers batches: similar lengths share a batch and pad little.
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            batch = order[start : start + self._batch_size]
            width = max(len(encodings[i].ids) for i in batch)
            ids = np.full((len(batch), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            types = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                encoding = encodings[i]
                n = len(encoding.ids)
                ids[row, :n] = encoding.ids
                mask[row, :n] = 1
                types[row, :n] = encoding.type_ids
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            tokens = self._token_embeddings({name: feed[name] for name in self._inputs}, small)
            out[batch] = self._pool(tokens, mask)
        return unit_rows(out)

    def _pool(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self._pooling == "cls":
            return tokens[:, 0]
        weights = mask[:, :, None].astype(np.float32)
        if self._pooling == "max":
            return np.where(weights > 0, tokens, -1e9).max(axis=1)
        return (tokens * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)


class OnnxEmbedder(_ExportedEmbedder):
    """A sentence-transformers model run by ONNX Runtime from its cached export (made on first use).

    Args:
        model: a local model directory or an installed package that ships one (as for the torch embedder).
        backend: ``onnx`` (fp32, the torch vectors to rounding) or ``onnx-int8`` (dynamically quantised weights).
        batch_size: texts per inference call when embedding many.
        threads: intra-op threads for batches (0: ONNX Runtime's default, one per physical core).
        query_threads: intra-op threads for batches of at most ``SMALL_BATCH`` texts (a search's query). One thread
            keeps a query's latency steady when other work shares the cores.
        onnx_dir: where exports are cached (default: beside the weights if writable, else the user cache).
        device: ``cpu``, or ``cuda`` when onnxruntime has the CUDA provider.
    """

    def __init__(
        self,
        model: str,
        backend: OnnxBackend = "onnx",
        *,
        batch_size: int = 64,
        threads: int = 0,
        query_threads: int = 1,
        onnx_dir: str | Path | None = None,
        device: str = "cpu",
    ) -> None:
        if backend not in ("onnx", "onnx-int8"):
            raise EmbeddingError(f"unknown ONNX backend {backend!r} (onnx or onnx-int8)")
        try:
            import onnxruntime
        except ImportError as exc:
            raise EmbeddingError(f"the ONNX backends need onnxruntime: {exc}") from exc
        self._ort = onnxruntime
        self._providers = self._providers_for(device)
        super().__init__(model, backend, batch_size=batch_size, onnx_dir=onnx_dir)
        self.name = embedder_name(model, backend)
        self._threads = threads
        self._query_threads = query_threads
        self._sessions: dict[int, Any] = {}

    def _providers_for(self, device: str) -> list[str]:
        if device == "cpu":
            return ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in self._ort.get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        raise EmbeddingError(f"the ONNX backends run on cpu (or cuda with onnxruntime-gpu), not {device!r}")

    def _session(self, threads: int) -> Any:
        session = self._sessions.get(threads)
        if session is None:
            options = self._ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            try:
                session = self._ort.InferenceSession(self._path, sess_options=options, providers=self._providers)
            except Exception as exc:  # onnxruntime raises its own exception types for a bad file
                raise EmbeddingError(f"cannot load the ONNX model {self._path}: {exc}") from exc
            self._sessions[threads] = session
        return session

    def _token_embeddings(self, feed: dict[str, np.ndarray], small: bool) -> np.ndarray:
        session = self._session(self._query_threads if small else self._threads)
        (tokens,) = session.run(["token_embeddings"], feed)
        return np.asarray(tokens)


class TorchScriptEmbedder(_ExportedEmbedder):
    """The torch backend without sentence-transformers: the model's TorchScript trace, run by ``torch`` alone.

    The trace is the same module sentence-transformers runs, in fp32 on the CPU, so its vectors are sentence-
    transformers' (to rounding) and it records the bare model name, as the torch backend always has: releases and
    embedding caches made before it stay valid. ``load_embedder`` falls back to sentence-transformers for a model
    the trace cannot take (another pooling or module layout).

    Args: as :class:`OnnxEmbedder`; ``threads`` and ``query_threads`` set torch's intra-op threads (a process-wide
    setting, restored after each call).
    """

    def __init__(
        self,
        model: str,
        *,
        batch_size: int = 64,
        threads: int = 0,
        query_threads: int = 1,
        onnx_dir: str | Path | None = None,
        device: str = "cpu",
    ) -> None:
        if device != "cpu":
            raise EmbeddingError(f"the TorchScript trace runs on cpu, not {device!r}")
        super().__init__(model, "torchscript", batch_size=batch_size, onnx_dir=onnx_dir)
        import torch

        self._torch = torch
        try:
            with warnings.catch_warnings():
                # torch 2.10+ marks torch.jit deprecated in favour of torch.export; an exported program loads in ~3 s
                # and ran a query in 0.45 s here against the trace's ~0.3 s and 10 ms. torch is pinned (the lock).
                warnings.simplefilter("ignore", DeprecationWarning)
                self._module = torch.jit.load(self._path, map_location="cpu").eval()
        except Exception as exc:  # torch raises RuntimeError and its own types for a bad or foreign file
            raise EmbeddingError(f"cannot load the TorchScript trace {self._path}: {exc}") from exc
        self.name = model
        self._threads = threads
        self._query_threads = query_threads

    def _token_embeddings(self, feed: dict[str, np.ndarray], small: bool) -> np.ndarray:
        torch = self._torch
        wanted = self._query_threads if small else self._threads
        before = torch.get_num_threads()
        if wanted > 0 and wanted != before:
            torch.set_num_threads(wanted)
        try:
            with torch.inference_mode():
                tokens = self._module(*(torch.from_numpy(feed[name]) for name in self._inputs))
            return np.asarray(tokens.numpy(), dtype=np.float32)
        finally:
            if torch.get_num_threads() != before:
                torch.set_num_threads(before)
