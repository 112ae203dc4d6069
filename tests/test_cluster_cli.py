"""`kbcurator cluster` on a bare export: only a `text` column, ids are row numbers, no KB needed."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import REPO
from typer.testing import CliRunner

from kbcurator.cli import app

pytestmark = pytest.mark.model

# Forms the redactor let through before (hardening issue): none may reach a file the command writes.
ADVERSARIAL = {
    "4111.1111.1111.1111": "My card 4111.1111.1111.1111 was charged twice",
    "41 11 11 11 11 11 11 11": "card 41 11 11 11 11 11 11 11 charged twice",
    "m a r y @ e x a m p l e . c o m": "refund please, write to m a r y @ e x a m p l e . c o m",
    "bob＠example.com": "where is my refund? bob＠example.com",
    "078-05-1120": "verify my identity, SSN 078-05-1120",
    "PO Box 1234": "send my new card to PO Box 1234",
    "221b baker street": "send my new card to 221b baker street",
}

# Keyboard mash, which the model embeds close together: without the readability check it forms clusters.
MASH = ["asdfgh jkl qwerty", "qwerty asdf zxcv", "jkjkjk hjhj lklk", "sdfsdf sdf sdfg", "zxcvbn mnbv", "hjkl hjkl jkl"]


def test_cluster_a_text_only_csv(tmp_path) -> None:
    rows = list(csv.DictReader((REPO / "kb_sources" / "sample_tickets" / "tickets.csv").open(encoding="utf-8")))
    export = tmp_path / "export.csv"
    with export.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text"])
        writer.writerows([r["text"]] for r in rows)
        writer.writerow(["Where is my refund? Call me on +44 20 7946 0958"])
        writer.writerows([text] for text in ADVERSARIAL.values())
        writer.writerows([text] for text in MASH)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["cluster", "--tickets", str(export), "--out", str(out), "--cache-uri", str(tmp_path / "cache")]
    )
    assert result.exit_code == 0, result.output
    assignments = list(csv.DictReader((out / "assignments.csv").open()))
    total = len(rows) + 1 + len(ADVERSARIAL) + len(MASH)
    assert len(assignments) == total
    assert assignments[0]["ticket_id"] == "row-1" and assignments[-1]["ticket_id"] == f"row-{total}"
    clusters = json.loads((out / "clusters.json").read_text())
    assert clusters["n_clusters"] == len(clusters["clusters"]) >= 3
    assert sum(c["size"] for c in clusters["clusters"]) + clusters["long_tail"]["size"] == total
    for cluster in clusters["clusters"]:
        assert cluster["label"] and 1 <= len(cluster["representative_queries"]) <= 5
    # Keyboard mash joins no cluster, as in `kbcurator gaps`, and is counted.
    assert {row["cluster_id"] for row in assignments[-len(MASH) :]} == {"-1"}
    assert clusters["unreadable"] == len(MASH) and f"{len(MASH)} unreadable (in no gap)" in result.output
    everything = "".join(path.read_text(encoding="utf-8") for path in sorted(out.iterdir()))
    assert "7946" not in everything  # the phone number was redacted before clustering
    assert [value for value in ADVERSARIAL if value in everything] == []

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
