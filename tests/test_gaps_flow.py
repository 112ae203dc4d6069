"""The gaps flow as a KB owner runs it: real Prefect, the real model, a real index of the bundled help center,
and real public questions as tickets (kb_sources/sample_tickets)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SAMPLE

from kbcurator.index.store import IndexStore

pytestmark = [pytest.mark.flow, pytest.mark.model, pytest.mark.usefixtures("prefect_harness")]

TOPICS = {"pets": ("pet", "animal"), "symptoms": ("symptom",), "masks": ("mask",), "vaccines": ("vaccin",)}
SECRET_EMAIL = "jane.doe+kb@example.com"
SECRET_CARD = "4111 1111 1111 1111"


def _animal_pages() -> set[str]:
    """Every article about animals: the section, and the healthcare article whose answer only points to it."""
    pages = set()
    for page in (SAMPLE / "site" / "articles").glob("*.html"):
        html = page.read_text()
        title = html.split("<h1>", 1)[-1].split("</h1>", 1)[0].lower()
        if '<meta name="kb:section" content="COVID-19 and Animals">' in html or " pet " in f" {title} ":
            pages.add(page.name)
    return pages


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("gaps")
    rows = list(csv.DictReader((REPO / "kb_sources" / "sample_tickets" / "tickets.csv").open(encoding="utf-8")))
    chosen, topic_of = [], {}
    for row in rows:
        for topic, words in TOPICS.items():
            if any(w in row["text"].lower() for w in words):
                chosen.append(row)
                topic_of[row["id"]] = topic
                break
    # A customer who pastes their email and card number into a pet question; and two broken rows.
    chosen.append(
        {
            "id": "pii-1",
            "created_at": "2020-03-27",
            "channel": "web",
            "source": "test",
            "text": f"Can my pet cat get the virus from me? Reach me at {SECRET_EMAIL}, card {SECRET_CARD}",
        }
    )
    topic_of["pii-1"] = "pets"
    with (root / "tickets.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "created_at", "channel", "source", "text"])
        writer.writeheader()
        writer.writerows(chosen)
        writer.writerow({"id": "broken-date", "created_at": "not a date", "channel": "web", "source": "", "text": "x?"})
        writer.writerow({"id": "no-text", "created_at": "2020-03-27", "channel": "web", "source": "", "text": ""})

    animals = _animal_pages()
    assert len(animals) >= 4
    for name, skip in (("full", set()), ("withheld", animals)):
        site = root / name / "articles"
        site.mkdir(parents=True)
        for page in (SAMPLE / "site" / "articles").glob("*.html"):
            if page.name not in skip:
                shutil.copy(page, site / page.name)
        (root / f"{name}.yaml").write_text(
            yaml.safe_dump(
                {
                    "index_uri": str(root / name / "index"),
                    "runs_dir": str(root / name / "runs"),
                    "sources": [
                        {
                            "id": "cdc",
                            "kind": "folder",
                            "location": str(root / name),
                            "include": ["articles/*.html"],
                            "base_url": "https://help.example.com/",
                        }
                    ],
                    "tickets": [{"id": "questions", "format": "csv", "location": str(root / "tickets.csv")}],
                }
            )
        )

    from flows.gaps import gaps_flow
    from flows.reindex import reindex_flow

    results = {}
    for name in ("full", "withheld"):
        reindex_flow(config=str(root / f"{name}.yaml"))
        results[name] = gaps_flow(config=str(root / f"{name}.yaml"))
    return root, results, topic_of


def _action_for(result: dict, topic_of: dict, topic: str) -> set[str]:
    """Actions of the clusters that hold most of a topic's tickets."""
    actions = set()
    for gap in result["gaps"]:
        topics = [topic_of.get(t) for t in gap["ticket_ids"]]
        if topics.count(topic) * 2 > len(topics):
            actions.add(gap["action"])
    return actions


def test_a_covered_topic_is_not_a_gap_and_a_withheld_topic_is(workspace) -> None:
    _, results, topic_of = workspace
    assert _action_for(results["full"], topic_of, "pets") == {"covered"}
    withheld = _action_for(results["withheld"], topic_of, "pets")
    assert withheld and "covered" not in withheld
    assert _action_for(results["full"], topic_of, "symptoms") == {"covered"}
    assert _action_for(results["withheld"], topic_of, "symptoms") == {"covered"}


def test_bad_rows_are_quarantined_and_the_rest_clustered(workspace) -> None:
    _root, results, topic_of = workspace
    result = results["full"]
    assert result["quarantined"] == 2 and result["tickets"] == len(topic_of)
    rejected = [json.loads(line) for line in (Path(result["run_dir"]) / "rejected.jsonl").read_text().splitlines()]
    reasons = {r["record_id"].rsplit(":", 1)[-1]: r["reason"] for r in rejected}
    total_lines = len(topic_of) + 1  # header + chosen rows
    assert set(reasons) == {str(total_lines + 1), str(total_lines + 2)}
    assert "created_at" in reasons[str(total_lines + 1)]


def test_pii_never_reaches_a_stored_row_or_a_report(workspace) -> None:
    root, results, _ = workspace
    for name in ("full", "withheld"):
        store = IndexStore(str(root / name / "index"))
        stored = json.dumps(store.db.open_table("gaps").to_arrow().to_pylist(), default=str)
        texts = [stored] + [
            p.read_text(errors="replace") for p in Path(results[name]["run_dir"]).iterdir() if p.is_file()
        ]
        for text in texts:
            assert SECRET_EMAIL not in text and "4111 1111" not in text and "4111111111111111" not in text


def test_a_second_run_follows_the_same_gaps(workspace) -> None:
    root, results, _ = workspace
    from flows.gaps import gaps_flow

    again = gaps_flow(config=str(root / "withheld.yaml"))
    first_ids = {g["gap_id"] for g in results["withheld"]["gaps"]}
    assert {g["gap_id"] for g in again["gaps"]} == first_ids
    assert {g["trend"] for g in again["gaps"]} == {"stable"}
    runs = {
        r["run_id"] for r in IndexStore(str(root / "withheld" / "index")).db.open_table("gaps").to_arrow().to_pylist()
    }
    assert len(runs) == 2
