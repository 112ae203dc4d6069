"""`kbcurator cluster` on a bare export: only a `text` column, ids are row numbers, no KB needed."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import REPO
from typer.testing import CliRunner

from kbcurator.cli import app

pytestmark = pytest.mark.model


def test_cluster_a_text_only_csv(tmp_path) -> None:
    rows = list(csv.DictReader((REPO / "kb_sources" / "sample_tickets" / "tickets.csv").open(encoding="utf-8")))
    export = tmp_path / "export.csv"
    with export.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text"])
        writer.writerows([r["text"]] for r in rows)
        writer.writerow(["Where is my refund? Call me on +44 20 7946 0958"])
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["cluster", "--tickets", str(export), "--out", str(out), "--cache-uri", str(tmp_path / "cache")]
    )
    assert result.exit_code == 0, result.output
    assignments = list(csv.DictReader((out / "assignments.csv").open()))
    assert len(assignments) == len(rows) + 1
    assert assignments[0]["ticket_id"] == "row-1" and assignments[-1]["ticket_id"] == f"row-{len(rows) + 1}"
    clusters = json.loads((out / "clusters.json").read_text())
    assert clusters["n_clusters"] == len(clusters["clusters"]) >= 3
    assert sum(c["size"] for c in clusters["clusters"]) + clusters["long_tail"]["size"] == len(rows) + 1
    for cluster in clusters["clusters"]:
        assert cluster["label"] and 1 <= len(cluster["representative_queries"]) <= 5
    everything = (out / "clusters.json").read_text() + (out / "assignments.csv").read_text()
    assert "7946" not in everything  # the phone number was redacted before clustering

    # A second run embeds nothing again: every vector comes from the cache.
    again = CliRunner().invoke(
        app, ["cluster", "--tickets", str(export), "--out", str(out), "--cache-uri", str(tmp_path / "cache")]
    )
    assert (
        again.exit_code == 0 and json.loads((out / "clusters.json").read_text())["n_clusters"] == clusters["n_clusters"]
    )


def test_cluster_rejects_an_unknown_format_with_one_clear_line(tmp_path) -> None:
    export = tmp_path / "tickets.xlsx"
    export.write_bytes(b"not really")
    result = CliRunner().invoke(app, ["cluster", "--tickets", str(export), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "cannot tell the format" in result.output
