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
    # Every sample question: coverage comes first, and a gap needs enough unanswered questions to form.
    chosen, topic_of = list(rows), {}
    for row in rows:
        topic_of[row["id"]] = next(
            (t for t, words in TOPICS.items() if any(w in row["text"].lower() for w in words)), ""
        )
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
    """Actions of the gaps that hold mostly this topic's tickets (none: the topic is no gap)."""
    actions = set()
    for gap in result["gaps"]:
        topics = [topic_of.get(t) for t in gap["ticket_ids"]]
        if topics.count(topic) * 2 > len(topics):
            actions.add(gap["action"])
    return actions


def _answered_share(result: dict, topic_of: dict, topic: str) -> float:
    rows = [t for t in _listing(result) if topic_of.get(t["ticket_id"]) == topic]
    return sum(t["answered"] for t in rows) / len(rows)


def _listing(result: dict) -> list[dict]:
    return json.loads(Path(result["exports"]["json"]).read_text(encoding="utf-8"))["tickets"]


def test_a_covered_topic_is_no_gap_and_a_withheld_topic_is_reported(workspace) -> None:
    _, results, topic_of = workspace
    # Coverage first: the questions the KB answers join no gap, so a covered topic has none.
    assert _action_for(results["full"], topic_of, "pets") == set()
    assert _answered_share(results["full"], topic_of, "pets") > 0.5
    # Withheld, most pet questions are not answered, and each is reported: in a gap, or as a long-tail question.
    assert _answered_share(results["withheld"], topic_of, "pets") < 0.5
    document = json.loads(Path(results["withheld"]["exports"]["json"]).read_text(encoding="utf-8"))
    reported = {q["ticket_id"] for q in document["long_tail_unanswered"]} | {
        t for g in results["withheld"]["gaps"] for t in g["ticket_ids"]
    }
    pets_unanswered = {
        t["ticket_id"] for t in document["tickets"] if topic_of.get(t["ticket_id"]) == "pets" and not t["answered"]
    }
    assert pets_unanswered and pets_unanswered <= reported
    # The KB answers symptoms: no "write a new article" gap about them. A few symptom questions it answers only
    # partly ("what should I do if a family member displays symptoms?") may form a gap of their own, whose
    # advice is to extend the article that comes closest.
    assert _action_for(results["full"], topic_of, "symptoms") <= {"extend"}
    assert _action_for(results["withheld"], topic_of, "symptoms") <= {"extend"}
    for result in results.values():  # a gap holds only questions the release does not answer
        in_gaps = [t for t in _listing(result) if t["cluster_id"] != -1]
        assert in_gaps and not any(t["answered"] for t in in_gaps)


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
