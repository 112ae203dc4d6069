"""The gap review notebook as a KB owner runs it: top to bottom in a real kernel, against an index and a gaps run
built from the bundled sample by the real flows (real Prefect, the real model)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, SAMPLE

pytestmark = [pytest.mark.flow, pytest.mark.model, pytest.mark.usefixtures("prefect_harness")]

NOTEBOOK = REPO / "notebooks" / "review_gaps.ipynb"
INSTALL = "uv pip install nbclient nbformat ipykernel"
# Skip before the module fixture builds an index the notebook could not run against.
nbclient = pytest.importorskip("nbclient", reason=f"nbclient is not installed: {INSTALL}")
nbformat = pytest.importorskip("nbformat", reason=f"nbformat is not installed: {INSTALL}")
pytest.importorskip("ipykernel", reason=f"ipykernel is not installed: {INSTALL}")


def _execute(index_uri: str, cluster: int | None = None) -> Any:
    """The notebook after a run in a fresh python3 kernel, with KB_INDEX_URI set and the repo root as cwd."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    if cluster is not None:
        # What a user does: edit the first cell's choice of cluster.
        notebook.cells[1].source = notebook.cells[1].source.replace("CLUSTER = 0", f"CLUSTER = {cluster}")
    client = nbclient.NotebookClient(notebook, kernel_name="python3", timeout=300)
    client.execute(cwd=str(REPO), env={**os.environ, "KB_INDEX_URI": index_uri})
    return notebook


def _output_text(notebook: Any) -> str:
    """Everything the cells printed or displayed, as one string (stream text, HTML, SVG and plain reprs)."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output["text"])
            for value in output.get("data", {}).values():
                parts.append(value if isinstance(value, str) else json.dumps(value))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def gaps_run(tmp_path_factory) -> dict[str, Any]:
    from flows.gaps import gaps_flow
    from flows.reindex import reindex_flow

    root = tmp_path_factory.mktemp("notebook")
    config = yaml.safe_load((REPO / "kb_sources" / "sample.yaml").read_text())
    config["index_uri"] = str(root / "index")
    config["runs_dir"] = str(root / "runs")
    config["sources"][0]["location"] = str(SAMPLE / "site")
    for tickets in config["tickets"]:
        tickets["location"] = str(REPO / "kb_sources" / tickets["location"])
    path = root / "kb.yaml"
    path.write_text(yaml.safe_dump(config))
    reindex_flow(config=str(path), audit=False)
    result = gaps_flow(config=str(path))
    # The run's own export, in the order the notebook ranks gaps: largest gap score first.
    exported = json.loads(Path(result["exports"]["json"]).read_text(encoding="utf-8"))["gaps"]
    ranked = sorted(exported, key=lambda g: (-g["gap_score"], g["gap_id"]))
    return {"index_uri": str(root / "index"), "gaps": ranked}


def _drill_line(gap: dict[str, Any]) -> str:
    return f"{gap['label']} ({gap['gap_id']}): {gap['size']} tickets"


def _queries_shown(gap: dict[str, Any], text: str) -> bool:
    return all(" ".join(q.split())[:30] in text for q in gap["representative_queries"][:3])


def test_the_notebook_shows_the_latest_gaps_their_map_and_the_top_gap(gaps_run) -> None:
    gaps = gaps_run["gaps"]
    assert gaps, "the sample's gaps run should find clusters"
    text = _output_text(_execute(gaps_run["index_uri"]))
    for column in ("label", "size", "trend", "escalation share", "coverage", "gap score", "suggestion"):
        assert f">{column}</th>" in text
    assert all(g["gap_id"] in text for g in gaps)  # every cluster of the run is in the table
    assert "<svg" in text and text.count("<circle") == len(gaps)  # one circle per cluster on the map
    assert _drill_line(gaps[0]) in text and _queries_shown(gaps[0], text)
    assert "closest article" in text


def test_the_notebook_drills_into_the_cluster_it_is_asked_for(gaps_run) -> None:
    gaps = gaps_run["gaps"]
    if len(gaps) < 2:
        pytest.skip("the sample's gaps run has one cluster: nothing else to drill into")
    text = _output_text(_execute(gaps_run["index_uri"], cluster=1))
    assert _drill_line(gaps[1]) in text and _queries_shown(gaps[1], text)
    assert _drill_line(gaps[0]) not in text


def test_the_notebook_says_when_there_is_no_gaps_run_yet(tmp_path) -> None:
    store = tmp_path / "index"
    store.mkdir()  # an index folder with no gaps table: nothing has been clustered yet
    text = _output_text(_execute(str(store)))
    assert "No gaps run yet" in text and "<svg" not in text
    missing = _output_text(_execute(str(tmp_path / "nowhere")))
    assert "No index at" in missing and not (tmp_path / "nowhere").exists()
