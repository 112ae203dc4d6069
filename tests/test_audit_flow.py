"""The health audit as a KB owner meets it: the nightly reindex of the bundled sample audits what it published,
`kbcurator audit` re-audits the index, and `kbcurator audit --source` audits a folder that was never indexed.

Real Prefect, the real model, a real LanceDB index, and the sample's real and controlled cases
(kb_sources/sample_help_center/README.md, "Controlled edits")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, SAMPLE
from prefect.client.orchestration import get_client
from typer.testing import CliRunner

from kbcurator.analysis.store import FindingStore
from kbcurator.cli import app
from kbcurator.index.store import IndexStore
from kbcurator.records import make_article_id

pytestmark = [pytest.mark.flow, pytest.mark.model, pytest.mark.usefixtures("prefect_harness")]

BASE = "https://help.example.com/"
EDITED = "how-long-should-i-wash-my-hands"
ORIGINAL = "should-i-use-soap-and-water-or-a-hand-sanitizer-to-protect-against"


def _id(slug: str) -> str:
    return make_article_id("cdc-faq", f"{BASE}articles/{slug}.html")


@pytest.fixture(scope="module")
def nightly(tmp_path_factory) -> dict[str, Any]:
    from flows.nightly import nightly_flow

    root = tmp_path_factory.mktemp("audit")
    config = yaml.safe_load((REPO / "kb_sources" / "sample.yaml").read_text())
    config["index_uri"] = str(root / "index")
    config["runs_dir"] = str(root / "runs")
    config["sources"][0]["location"] = str(SAMPLE / "site")
    config["retrieval"]["golden_file"] = str(REPO / "kb_sources" / config["retrieval"]["golden_file"])
    config["tickets"] = []
    path = root / "kb.yaml"
    path.write_text(yaml.safe_dump(config))
    steps = nightly_flow(config=str(path))
    result = steps["reindex"]
    findings = json.loads((Path(result["run_dir"]) / "findings.json").read_text())
    return {
        "config": path,
        "root": root,
        "result": result,
        "steps": steps,
        "findings": findings["findings"],
        "payload": findings,
    }


def _of(findings: list[dict[str, Any]], kind: str, check: str | None = None) -> list[dict[str, Any]]:
    return [f for f in findings if f["kind"] == kind and (check is None or f["check"] == check)]


def test_the_nightly_run_audits_what_it_published(nightly) -> None:
    result = nightly["result"]
    assert result["release"] == "release-0001"
    assert result["health"]["findings"] == len(nightly["findings"]) > 0
    stored = FindingStore(IndexStore(result["index_uri"])).latest_run()
    assert stored is not None
    run_id, index_version, findings = stored
    assert (run_id, index_version) == (result["run_id"], "release-0001")
    assert {f.finding_id for f in findings} == {f["finding_id"] for f in nightly["findings"]}
    assert (Path(result["run_dir"]) / "health.md").read_text().startswith("# KB health: `release-0001`")


def test_the_nightly_run_writes_the_report_and_its_headline(nightly) -> None:
    steps = nightly["steps"]
    assert "gaps" not in steps  # this config declares no tickets: the step is skipped, the report still written
    report = Path(steps["report"]["report"])
    assert report.parent == Path(nightly["result"]["run_dir"])
    page = report.read_text(encoding="utf-8")
    assert "release-0001" in page and "10 seconds" in page and "<script" not in page
    assert Path(steps["report"]["latest"]).read_text(encoding="utf-8") == page
    (headline,) = _artifacts("kb-report")[:1]
    # The figures themselves, and where the page lives: no file:// link, which browsers block from the UI.
    assert "file://" not in headline["data"] and headline["type"] == "markdown"
    assert "`release-0001`" in headline["data"] and str(Path(steps["report"]["latest"]).resolve()) in headline["data"]
    assert f"open health findings: {nightly['result']['health']['findings']}" in headline["data"]


def _artifacts(key: str) -> list[dict[str, Any]]:
    # The client's read_artifacts sends null run filters, which this server version rejects: ask directly.
    with get_client(sync_client=True) as client:
        body = {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 5}
        return list(client.request("POST", "/artifacts/filter", json=body).json())


def test_the_health_summary_is_a_prefect_artifact(nightly) -> None:
    health = _artifacts("kb-health")
    assert health and "# KB health: `release-0001`" in health[0]["data"]


def test_the_changed_fact_is_a_contradiction_with_both_sentences(nightly) -> None:
    pair = {_id(EDITED), _id(ORIGINAL)}
    conflicts = [f for f in _of(nightly["findings"], "contradiction") if set(f["article_ids"]) == pair]
    assert conflicts, [f["summary"] for f in _of(nightly["findings"], "contradiction")]
    evidence = conflicts[0]["evidence"]
    said = {e["article_id"]: e for e in evidence}
    assert "10 seconds" in " ".join(said[_id(EDITED)]["highlights"])
    assert "20 seconds" in " ".join(said[_id(ORIGINAL)]["highlights"])


def test_articles_that_agree_are_not_contradictions(nightly) -> None:
    # Nine CDC articles say "20 seconds" and several "60% alcohol"; only the edited copy disagrees.
    for finding in _of(nightly["findings"], "contradiction"):
        if "second" in finding["summary"] or "%" in finding["summary"]:
            assert _id(EDITED) in finding["article_ids"], finding["summary"]


def test_the_repeated_questions_are_duplicates(nightly) -> None:
    duplicates = _of(nightly["findings"], "duplicate")
    members = [set(f["article_ids"]) for f in duplicates]
    # The source repeats three questions; the copy that differs by one fact is a near-duplicate too.
    assert sum(1 for m in members if len(m) >= 2) >= 3
    assert any({_id(EDITED), _id(ORIGINAL)} <= m for m in members)


def test_broken_links_and_retired_terms_are_named(nightly) -> None:
    links = _of(nightly["findings"], "stale", "broken_link")
    targets = {e["link"] for f in links for e in f["evidence"] if e["link"]}
    assert f"{BASE}articles/what-is-2019-ncov.html" in targets
    assert f"{BASE}articles/how-can-my-family-and-i-prepare-for-covid-19.html#hand-hygiene" in targets
    assert all(_id(EDITED) in f["article_ids"] for f in links)  # nobody else links to a missing page
    terms = _of(nightly["findings"], "stale", "deprecated_term")
    assert terms and all("2019" in " ".join(e["text"] for e in f["evidence"]) for f in terms)


def test_every_article_is_past_its_review_interval(nightly) -> None:
    aged = _of(nightly["findings"], "stale", "age")
    assert len({a for f in aged for a in f["article_ids"]}) == 112  # all dated March 2020, interval 365 days


def test_a_second_audit_keeps_the_ids_and_reports_nothing_new(nightly) -> None:
    runner = CliRunner()
    outcome = runner.invoke(app, ["audit", "--config", str(nightly["config"])])
    assert outcome.exit_code == 0, outcome.output
    assert "(0 new, 0 resolved)" in outcome.output
    run_id, _, findings = FindingStore(IndexStore(nightly["result"]["index_uri"])).latest_run() or ("", "", [])
    assert run_id != nightly["result"]["run_id"]
    assert {f.finding_id for f in findings} == {f["finding_id"] for f in nightly["findings"]}
    assert runner.invoke(app, ["audit", "--config", str(nightly["config"]), "--fail-on", "high"]).exit_code == 4


def test_audit_a_jekyll_folder_that_was_never_indexed(tmp_path) -> None:
    config = {
        "sources": [
            {
                "id": "jekyll",
                "kind": "folder",
                "location": str(SAMPLE / "markdown"),
                "include": ["*.md"],
                "base_url": BASE,
                "review": {"interval_days": 30, "deprecated_terms": {"novel coronavirus": "SARS-CoV-2"}},
            }
        ]
    }
    path = tmp_path / "jekyll.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    outcome = CliRunner().invoke(app, ["audit", "--source", str(path), "--out", str(out), "--as-of", "2020-06-01"])
    assert outcome.exit_code == 0, outcome.output
    payload = json.loads((out / "findings.json").read_text())
    assert payload["index_version"] == "" and payload["articles"] == 6
    assert {f["check"] for f in payload["findings"] if f["kind"] == "stale"} >= {"age"}
    assert (out / "health.md").exists()
    assert not (tmp_path / ".kbcurator").exists()  # nothing indexed


def test_audit_explains_bad_flags(tmp_path) -> None:
    runner = CliRunner()
    outcome = runner.invoke(app, ["audit", "--source", str(tmp_path / "x.yaml")])
    assert outcome.exit_code == 1 and "needs --out" in outcome.output
    outcome = runner.invoke(app, ["audit", "--as-of", "yesterday"])
    assert outcome.exit_code == 1 and "--as-of must be a date" in outcome.output
