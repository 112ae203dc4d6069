"""Gap scoring, the gaps table across runs, and the exports, on a real index (fake hashing embedder)."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime

import numpy as np
import pytest
from builders import sample_articles
from fakes import FakeHashingEmbedder

from kbcurator.chunking import ChunkPolicy
from kbcurator.gaps.coverage import CoveragePolicy, ReleaseVectors
from kbcurator.gaps.labels import label_clusters
from kbcurator.gaps.pipeline import (
    cluster_gaps,
    describe_clusters,
    read_tickets,
    ticket_source_for_file,
    write_cluster_outputs,
)
from kbcurator.gaps.report import (
    GapStore,
    TicketOutcome,
    article_volumes,
    gaps_markdown,
    score_gaps,
    unanswered_long_tail,
    write_gap_exports,
)
from kbcurator.index.build import build_candidate
from kbcurator.index.publish import publish
from kbcurator.index.store import IndexStore
from kbcurator.records import Ticket

POLICY = CoveragePolicy(answered_lift=0.3, related_lift=0.1, covered_share=0.5)
COVERED = [
    "turn on two-factor authentication app",
    "two-factor authentication code",
    "enable two-factor authentication",
]
GAP = ["merge | two workspaces <script>alert(1)</script>", "combine workspaces teams", "workspace merge teams"]


def _tickets(texts_by_cluster: list[list[str]], *, day: int = 7, escalated: bool = False) -> list[Ticket]:
    tickets = []
    for c, texts in enumerate(texts_by_cluster):
        for i, text in enumerate(texts):
            tickets.append(
                Ticket(f"t{c}-{i}", datetime(2026, 11, day + i, tzinfo=UTC), "", text, escalated=escalated and c == 1)
            )
    return tickets


@pytest.fixture()
def setup(tmp_path):
    store = IndexStore(str(tmp_path / "index"))
    embedder = FakeHashingEmbedder(dimension=256)
    release = publish(
        store,
        build_candidate(sample_articles(), store=store, embedder=embedder, policy=ChunkPolicy()),
        checks_passed=True,
        manifest={},
    )
    return store, embedder, release


def _run(store, embedder, release, groups, run_id, *, escalated=False):
    tickets = _tickets(groups, escalated=escalated)
    vectors = embedder.embed([t.text for t in tickets])
    labels = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    clusters = describe_clusters(tickets, labels, {})
    gap_store = GapStore(store)
    scored, resolved = score_gaps(
        clusters, tickets, vectors, ReleaseVectors(store, release), POLICY, gap_store.previous(), run_id=run_id
    )
    gap_store.write_run(
        run_id=run_id,
        run_at=datetime.now(UTC),
        release_tag=release.tag,
        gaps=scored,
        resolved=resolved,
        dimension=embedder.dimension,
    )
    return tickets, labels, clusters, scored, resolved


def test_gaps_are_ranked_and_covered_topics_are_not_gaps(setup) -> None:
    store, embedder, release = setup
    _, _, _, scored, _ = _run(store, embedder, release, [COVERED, GAP], "run-1", escalated=True)
    by_action = {g.coverage.action: g for g in scored}
    assert set(by_action) == {"covered", "write"}
    assert scored[0].coverage.action == "write" and scored[0].gap_score == 1.0
    assert by_action["covered"].coverage.best_articles[0].title == "Turn on two-factor authentication"
    assert by_action["write"].cluster.escalation_share == 1.0
    assert all(g.trend == "new" for g in scored)
    assert by_action["write"].weekly_counts == {"2026-W45": 2, "2026-W46": 1}


def test_the_next_run_follows_each_gap_and_marks_vanished_ones_resolved(setup) -> None:
    store, embedder, release = setup
    _, _, _, first, _ = _run(store, embedder, release, [COVERED, GAP], "run-1")
    _, _, _, second, resolved = _run(
        store, embedder, release, [[*GAP, "merge workspaces please", "workspace merge"]], "run-2"
    )
    gap_first = next(g for g in first if g.coverage.action == "write")
    assert second[0].gap_id == gap_first.gap_id and second[0].trend == "growing" and second[0].previous_size == 3
    assert [p.gap_id for p in resolved] == [next(g.gap_id for g in first if g.coverage.action == "covered")]
    rows = store.db.open_table("gaps").to_arrow().to_pylist()
    assert {r["run_id"] for r in rows} == {"run-1", "run-2"}
    assert {r["release_tag"] for r in rows} == {release.tag}
    assert sorted(r["trend"] for r in rows if r["run_id"] == "run-2") == ["growing", "resolved"]
    assert {p.gap_id for p in GapStore(store).previous()} == {gap_first.gap_id}  # resolved rows are not carried


def test_exports_and_report_carry_text_as_text(setup, tmp_path) -> None:
    store, embedder, release = setup
    tickets, labels, clusters, scored, resolved = _run(store, embedder, release, [COVERED, GAP], "run-1")
    paths = write_gap_exports(tmp_path / "out", scored)
    exported = json.loads(paths["json"].read_text())["gaps"]
    assert {g["action"] for g in exported} == {"covered", "write"}
    assert "gap_id,label,size" in paths["csv"].read_text().splitlines()[0]
    markdown = gaps_markdown(scored, resolved, release_tag=release.tag, summary={"tickets": 6, "n_clusters": 2})
    assert "merge \\| two" in markdown  # a pipe in a ticket cannot break the table
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown
    assert markdown.index("write a new article") < markdown.index("Covered by the KB already")
    outputs = write_cluster_outputs(tmp_path / "clusters", tickets, labels, clusters, [], {"tickets": 6})
    assignments = outputs["assignments"].read_text().splitlines()
    assert assignments[0] == "ticket_id,cluster_id" and len(assignments) == 7


def test_one_off_questions_the_kb_does_not_answer_are_listed(setup) -> None:
    store, embedder, release = setup
    tickets = _tickets([[*COVERED, "merge workspaces across regions <b>now</b>"]])
    vectors = embedder.embed([t.text for t in tickets])
    labels = np.array([0, 0, 0, -1])
    long_tail = unanswered_long_tail(tickets, vectors, labels, ReleaseVectors(store, release), POLICY)
    assert [q.ticket_id for q in long_tail] == ["t0-3"]
    markdown = gaps_markdown([], [], release_tag=release.tag, summary={}, long_tail=long_tail)
    assert "merge workspaces across regions &lt;b&gt;now&lt;/b&gt;" in markdown
    covered_only = unanswered_long_tail(
        tickets, vectors, np.array([0, 0, -1, 1]), ReleaseVectors(store, release), POLICY
    )
    assert covered_only == []  # a long-tail question the KB answers is not a gap


def test_csv_exports_write_cells_a_spreadsheet_would_run_as_text(setup, tmp_path) -> None:
    store, embedder, release = setup
    formulas = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tHI", "\rHI"]
    tickets = [
        Ticket(formula, datetime(2026, 11, 7, tzinfo=UTC), "", f"{formula} merge workspaces teams")
        for formula in formulas
    ]
    vectors = embedder.embed([t.text for t in tickets])
    labels = np.zeros(len(tickets), dtype=int)
    clusters = describe_clusters(tickets, labels, {})
    scored, _ = score_gaps(clusters, tickets, vectors, ReleaseVectors(store, release), POLICY, [], run_id="run-1")

    outputs = write_cluster_outputs(tmp_path / "clusters", tickets, labels, clusters, [], {})
    exports = write_gap_exports(tmp_path / "gaps", scored)

    with outputs["assignments"].open(newline="", encoding="utf-8") as handle:
        assignments = list(csv.DictReader(handle))
    assert [row["ticket_id"] for row in assignments] == ["'" + f for f in formulas]
    assert [row["cluster_id"] for row in assignments] == ["0"] * len(formulas)
    with exports["csv"].open(newline="", encoding="utf-8") as handle:
        (gap,) = list(csv.DictReader(handle))
    assert gap["central_query"] == "'" + tickets[0].text
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in gap.values())
    assert json.loads(exports["json"].read_text())["gaps"][0]["central_query"] == tickets[0].text  # JSON as is


def test_personal_data_in_a_ticket_export_reaches_no_output_file(setup, tmp_path) -> None:
    store, embedder, release = setup
    export = tmp_path / "tickets.csv"
    pii = {
        "4111.1111.1111.1111": "my card {} was charged twice",
        "41 11 11 11 11 11 11 11": "card {} charged twice again",
        "m a r y @ e x a m p l e . c o m": "charged twice, reply to {}",
        "bob＠example.com": "card charged twice, I am {}",
        "078-05-1120": "charged twice on my card, ssn {}",
        "PO Box 1234": "send the refund for the card charged twice to {}",
        "GB82-WEST-1234-5698-7654-32": "refund the card charged twice to {}",
        "rita at gmail.com": "double charge on my card, write to {}",
    }
    with export.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "created_at", "subject", "body"])
        for n, (value, template) in enumerate(pii.items()):
            writer.writerow([f"T-{n}", "2026-11-07", "card charged twice", template.format(value)])
        writer.writerow(["4111111111111111", "2026-11-08", "workspace merge", "merge two workspaces"])
        writer.writerow(["078-05-1120", "2026-11-08", "workspace merge", "combine workspaces teams"])
        writer.writerow(["T-20", "call +44 20 7946 0958", "workspace merge", "merge workspaces"])
        writer.writerow(["T-21", "2026-11-09", "workspaces", "merge the workspaces of teams"])
        writer.writerow(["T-21", "2026-11-09", "workspaces", "a second row with the same id"])
    loaded = read_tickets(ticket_source_for_file(export))
    tickets = list(loaded.tickets)
    vectors = embedder.embed([t.text for t in tickets])
    labels = np.array([0 if "charged" in t.text or "charge" in t.text else 1 for t in tickets])
    names = label_clusters([t.text for t in tickets], labels, vectors)
    clusters = describe_clusters(tickets, labels, names)
    scored, resolved = score_gaps(clusters, tickets, vectors, ReleaseVectors(store, release), POLICY, [], run_id="r")
    out = tmp_path / "out"
    write_cluster_outputs(out, tickets, labels, clusters, loaded.rejected, {"tickets": len(tickets)})
    write_gap_exports(out, scored)
    (out / "gaps.md").write_text(gaps_markdown(scored, resolved, release_tag=release.tag, summary={}))

    assert len(tickets) == 11 and len(loaded.rejected) == 2
    assert sorted(r.reason.split(" (")[0].split(":")[0] for r in loaded.rejected) == [
        "column 'created_at'",
        "duplicate ticket id 'T-21'",
    ]
    written = "\n".join(path.read_text(encoding="utf-8") for path in sorted(out.iterdir()))
    leaked = [value for value in [*pii, "4111111111111111", "7946 0958"] if value in written]
    assert leaked == []
    keywords = [k for c in clusters for k in c.keywords]
    assert keywords and not any(re.search(r"\d{4}", k) for k in keywords)


def test_a_number_repeated_across_a_cluster_is_not_a_keyword() -> None:
    # "ending 4242": a card fragment no rule can tell from any other number; it must not name the cluster.
    texts = ["card ending 4242 declined", "card ending 4242 declined again", "declined card ending 4242", "hello"]
    vectors = np.eye(4, dtype=np.float32)[[0, 0, 0, 1]]
    names = label_clusters(texts, np.array([0, 0, 0, -1]), vectors)
    assert names[0].keywords and not any("4242" in k for k in names[0].keywords)
    assert "4242" not in names[0].label


def test_only_tickets_the_kb_does_not_answer_form_gaps_and_partly_answered_ones_apart() -> None:
    # Four topics, 8 tickets each; topic 1 is asked both by tickets the KB does not answer and by ones it answers
    # partly: clustered together they would be one gap, with two different fixes.
    rng = np.random.default_rng(0)
    centers = np.linalg.qr(rng.normal(size=(32, 4)))[0].T
    verdicts = ["unanswered"] * 16 + ["partly"] * 16 + ["answered"] * 8
    topics = np.array([0] * 8 + [1] * 8 + [1] * 8 + [2] * 8 + [3] * 8)
    vectors = centers[topics] + 0.05 * rng.normal(size=(len(topics), 32))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    labels = cluster_gaps(vectors.astype(np.float32), verdicts).labels
    assert (labels[32:] == -1).all()  # answered: in no gap
    groups = [labels[0:8], labels[8:16], labels[16:24], labels[24:32]]
    assert all(len(set(g.tolist())) == 1 and g[0] != -1 for g in groups)
    assert len({int(g[0]) for g in groups}) == 4  # the same topic, unanswered and partly answered: two gaps


def test_the_answered_volume_per_article_counts_each_tickets_nearest_article() -> None:
    def outcome(n: int, article: str, verdict: str) -> TicketOutcome:
        return TicketOutcome(
            f"t{n}",
            "s",
            -1,
            "",
            "",
            verdict == "answered",
            0.0,
            article,
            article.upper(),
            "u",
            0.5,
            0.3,
            verdict == "answered",
            verdict,
        )

    rows = [("a", "answered"), ("a", "answered"), ("a", "partly"), ("b", "unanswered"), ("b", "partly"), ("", "x")]
    volumes = article_volumes([outcome(n, a, v) for n, (a, v) in enumerate(rows)])
    assert [(v.article_id, v.answered, v.partly, v.unanswered) for v in volumes] == [("a", 2, 1, 0), ("b", 0, 1, 1)]
    assert volumes[0].answered_share == 2 / 3 and volumes[1].tickets == 2
