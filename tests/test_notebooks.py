"""The gap review notebook as a KB owner runs it: top to bottom in a real kernel, against an index and a gaps run
built from the bundled sample by the real flows (real Prefect, the real model)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from datetime import UTC, datetime
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


def _svgs(notebook: Any) -> list[str]:
    return [
        output["data"]["image/svg+xml"]
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "image/svg+xml" in output.get("data", {})
    ]


def _weekly_chart(notebook: Any) -> str:
    charts = [svg for svg in _svgs(notebook) if 'class="weekly-volume"' in svg]
    assert len(charts) == 1, "the notebook should draw one weekly volume chart"
    return charts[0]


def _gap_table(notebook: Any) -> str:
    tables = [
        output["data"]["text/html"]
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if ">triage</th>" in output.get("data", {}).get("text/html", "")
    ]
    assert len(tables) == 1, "the notebook should show one gap table"
    return tables[0]


def _table_rows(table: str) -> dict[str, tuple[int, str]]:
    """gap_id -> (row number in the Styler's ids, the row's HTML)."""
    rows = {}
    for row in table.split("<tr>")[1:]:
        number = re.search(r'class="data row(\d+) col0"', row)
        gap_id = re.search(r">(gap-[0-9a-f]+)</td>", row)
        if number and gap_id:
            rows[gap_id.group(1)] = (int(number.group(1)), row)
    return rows


def _copy_index(gaps_run: dict[str, Any], tmp_path: Path) -> tuple[Any, str]:
    """A copy of the module's index (the tests that change it must not change it for the others)."""
    from kbcurator.index.store import IndexStore

    uri = str(tmp_path / "index")
    shutil.copytree(gaps_run["index_uri"], uri)
    return IndexStore(uri), uri


@pytest.fixture(scope="module")
def gaps_run(tmp_path_factory) -> dict[str, Any]:
    from flows.gaps import gaps_flow
    from flows.reindex import reindex_flow

    root = tmp_path_factory.mktemp("notebook")
    config = yaml.safe_load((REPO / "kb_sources" / "sample.yaml").read_text())
    config["index_uri"] = str(root / "index")
    config["runs_dir"] = str(root / "runs")
    config["sources"][0]["location"] = str(SAMPLE / "site")
    config["retrieval"]["golden_file"] = str(REPO / "kb_sources" / config["retrieval"]["golden_file"])
    for tickets in config["tickets"]:
        tickets["location"] = str(REPO / "kb_sources" / tickets["location"])
    path = root / "kb.yaml"
    path.write_text(yaml.safe_dump(config))
    reindex_flow(config=str(path), audit=True)  # the audit's findings feed the review queue test below
    result = gaps_flow(config=str(path))
    # The run's own export, in the order the notebook ranks gaps: largest gap score first.
    exported = json.loads(Path(result["exports"]["json"]).read_text(encoding="utf-8"))["gaps"]
    ranked = sorted(exported, key=lambda g: (-g["gap_score"], g["gap_id"]))
    return {"index_uri": str(root / "index"), "gaps": ranked, "config": str(path)}


@pytest.fixture(scope="module")
def reviewed(gaps_run) -> Any:
    """The notebook as run against the module's gaps run, unchanged: one run shared by the tests that only read it."""
    return _execute(gaps_run["index_uri"])


def _drill_line(gap: dict[str, Any]) -> str:
    return f"{gap['label']} ({gap['gap_id']}): {gap['size']} tickets"


def _queries_shown(gap: dict[str, Any], text: str) -> bool:
    return all(" ".join(q.split())[:30] in text for q in gap["representative_queries"][:3])


def test_the_notebook_shows_the_latest_gaps_their_map_and_the_top_gap(gaps_run, reviewed) -> None:
    gaps = gaps_run["gaps"]
    assert gaps, "the sample's gaps run should find clusters"
    text = _output_text(reviewed)
    for column in ("label", "size", "trend", "escalation share", "coverage", "gap score", "suggestion", "triage"):
        assert f">{column}</th>" in text
    assert all(g["gap_id"] in text for g in gaps)  # every cluster of the run is in the table
    maps = [svg for svg in _svgs(reviewed) if 'class="weekly-volume"' not in svg]
    assert len(maps) == 1 and maps[0].count("<circle") == len(gaps)  # one circle per cluster on the map
    assert _drill_line(gaps[0]) in text and _queries_shown(gaps[0], text)
    assert "closest article" in text


def test_the_notebook_charts_the_weekly_volume_of_the_top_gaps(gaps_run, reviewed) -> None:
    top = gaps_run["gaps"][:5]
    weeks = sorted({week for g in top for week in g["weekly_counts"]})
    assert len(weeks) >= 2, "the sample's tickets should span more than one week"
    chart = _weekly_chart(reviewed)
    # One line per top gap, in the table's order, each with its tickets in every week of the axis (0 when none).
    series = chart.split("<polyline")[1:]
    assert len(series) == len(top)
    for rank, (gap, part) in enumerate(zip(top, series, strict=True)):
        assert f">#{rank} {html.escape(gap['label'], quote=False)}" in part
        for week in weeks:
            assert f": {week}: {gap['weekly_counts'].get(week, 0)} tickets</title>" in part
    # The axis names the data's first and last weeks.
    assert f">{weeks[0]}</text>" in chart and f">{weeks[-1]}</text>" in chart


def test_the_notebook_shows_triage_and_escapes_labels_in_the_chart(gaps_run, tmp_path) -> None:
    from kbcurator.gaps.report import GAPS_TABLE
    from kbcurator.triage import TriageStore

    gaps = gaps_run["gaps"]
    store, uri = _copy_index(gaps_run, tmp_path)
    open_gaps = [g["gap_id"] for g in gaps if g["action"] != "covered"]
    assert len(open_gaps) >= 2, "the sample's gaps run should have two open gaps"
    # Coverage first clusters only what the KB does not answer: the sample's run has two gaps, both open.
    assigned, dismissed = open_gaps[0], open_gaps[1]
    untouched = open_gaps[2] if len(open_gaps) > 2 else None
    table = store.db.open_table(GAPS_TABLE)
    # A label from a hostile ticket.
    table.update(where=f"gap_id = '{gaps[0]['gap_id']}'", values={"label": "<script>alert(1)</script>"})
    # As `kbcurator triage` records them; the latest decision on an item is the one in force.
    triage = TriageStore(store)
    triage.decide(assigned, "snoozed", snoozed_until=datetime(2099, 1, 1, tzinfo=UTC), decided_by="notebook test")
    triage.decide(assigned, "assigned", assignee="alice", decided_by="notebook test")
    triage.decide(dismissed, "dismissed", note="not ours", decided_by="notebook test")

    notebook = _execute(uri)
    rows = _table_rows(_gap_table(notebook))
    assert set(rows) == {g["gap_id"] for g in gaps}  # the dismissed gap stays in the table, as in the report
    assert ">assigned to alice</td>" in rows[assigned][1]
    assert untouched is None or ">open</td>" in rows[untouched][1]
    assert ">dismissed</td>" in rows[dismissed][1]
    style = _gap_table(notebook).split("</style>")[0]
    assert {int(n) for n in re.findall(r"_row(\d+)_col0\b", style)} == {rows[dismissed][0]}  # greyed out, alone
    text = _output_text(notebook)
    assert f"Open gaps: {len(open_gaps) - 1}. Set aside by triage" in text and "greyed out): 1." in text
    chart = _weekly_chart(notebook)
    assert "<script" not in chart and ">#0 &lt;script&gt;alert(1)&lt;/script&gt;" in chart
    assert "<script" not in _gap_table(notebook)


def test_the_notebook_says_when_the_tickets_fall_in_one_week(gaps_run, tmp_path) -> None:
    from kbcurator.gaps.report import GAPS_TABLE

    store, uri = _copy_index(gaps_run, tmp_path)
    store.db.open_table(GAPS_TABLE).update(values={"weekly_counts": json.dumps({"2020-W12": 3})})
    notebook = _execute(uri)
    assert not [svg for svg in _svgs(notebook) if 'class="weekly-volume"' in svg]
    top = min(5, len(gaps_run["gaps"]))
    assert f"all {3 * top} tickets of the top gaps fall in one week, 2020-W12" in _output_text(notebook)


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


def test_the_review_queue_of_the_bundled_sample_mixes_kinds_and_groups_age_findings(gaps_run) -> None:
    """What a KB owner sees first in `kbcurator serve` after `make demo` (same sample, same flows)."""
    from kbcurator.settings import load_settings
    from kbcurator.usecases.review import ReviewQueue

    view = ReviewQueue(load_settings(gaps_run["config"])).queue()
    first_screen = view.items[:10]
    assert len({item.kind for item in first_screen}) >= 3
    blocks = [item for item in view.items if item.kind == "review_due"]
    assert len(blocks) == 1 and len(blocks[0].members) > 50  # the age findings: one block, not one card each
    assert view.counts["gap"] == sum(1 for g in gaps_run["gaps"] if g["action"] != "covered")
