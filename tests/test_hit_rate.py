"""The KB hit rate of a gaps run: the share of counted tickets the release answers, overall and per ticket source,
stored per run with its trend; on a constructed case (the hashing fake) and on the bundled sample (real model)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from builders import make_article, published_sample, sample_articles
from conftest import REPO

from kbcurator.chunking import ChunkPolicy
from kbcurator.index.build import build_candidate
from kbcurator.index.publish import publish
from kbcurator.index.store import IndexStore
from kbcurator.settings import Settings, load_settings
from kbcurator.usecases.gaps import run_gaps

# Hand-labelled: what the sample articles answer (2fa, refunds) and what they do not (merge, the one-offs).
ANSWERED = {
    "2fa": [
        "how do I turn on two-factor authentication",
        "two-factor authentication code from an authenticator app",
        "enable two-factor authentication sign in code",
        "two-factor authentication with SMS code",
        "turn on two-factor authentication for sign in",
        "authenticator app for two-factor authentication",
    ],
    "refunds": [
        "choose request refund in billing for my purchase",
        "refund within 30 days of purchase",
        "are refunds available within 30 days of purchase",
        "open billing and request a refund for the order",
        "request refund order billing",
        "how do I request a refund within 30 days of purchase",
    ],
}
UNANSWERED = {
    "merge": [
        "merge workspaces of two teams",
        "merge two team workspaces",
        "how to merge workspaces of teams",
        "merge our team workspaces",
        "merge workspaces teams please",
        "merge team workspaces into one",
    ],
    "one-off": ["what colour is the logo on invoices", "does the mobile widget support dark mode in kiosks"],
}
# Which source each topic's tickets come from: per-source rates are checked against these.
SOURCE_OF = {"2fa": "email", "merge": "email", "refunds": "chat", "one-off": "chat"}


def _write(path: Path, topics: dict[str, list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "created_at", "text"])
        for topic, texts in topics.items():
            for n, text in enumerate(texts):
                writer.writerow([f"{topic}-{n}", f"2026-11-{n + 1:02d}", text])


@pytest.fixture()
def workspace(tmp_path):
    store, _, embedder = published_sample(str(tmp_path / "index"))
    everything = {**ANSWERED, **UNANSWERED}
    for source in ("email", "chat"):
        _write(tmp_path / f"{source}.csv", {t: q for t, q in everything.items() if SOURCE_OF[t] == source})
    settings = Settings.model_validate(
        {
            "index_uri": str(tmp_path / "index"),
            "runs_dir": str(tmp_path / "runs"),
            "tickets": [
                {"id": source, "format": "csv", "location": str(tmp_path / f"{source}.csv")}
                for source in ("email", "chat")
            ],
        }
    )
    return store, embedder, settings


def _hand_count(topics: set[str]) -> tuple[int, int]:
    """(answered, tickets) among the topics, from the labels above."""
    answered = sum(len(ANSWERED[t]) for t in topics if t in ANSWERED)
    total = sum(len({**ANSWERED, **UNANSWERED}[t]) for t in topics)
    return answered, total


def test_the_hit_rate_of_a_run_equals_a_hand_count_overall_and_per_source(workspace) -> None:
    store, embedder, settings = workspace
    result = run_gaps(settings, embedder=embedder)
    rate = result.hit_rate
    assert rate is not None
    answered, total = _hand_count(set(SOURCE_OF))
    assert (rate.answered, rate.tickets) == (answered, total) == (12, 20)
    assert rate.hit_rate == pytest.approx(12 / 20) and rate.previous is None
    for source in rate.per_source:
        topics = {t for t, s in SOURCE_OF.items() if s == source.source_id}
        assert (source.answered, source.tickets) == _hand_count(topics)
    assert {s.source_id: s.tickets for s in rate.per_source} == {"email": 12, "chat": 8}

    # In gaps.md (the kb-gaps artifact), gaps.json and the stored run.
    assert "KB hit rate: 60.0%" in result.markdown and "| email | 12 | 50.0% | first run |" in result.markdown
    document = json.loads(result.exports["json"].read_text(encoding="utf-8"))
    assert document["kb_hit_rate"]["answered"] == 12 and document["kb_hit_rate"]["per_source"]["chat"]["tickets"] == 8
    assert sum(row["kb_answered"] for row in document["tickets"]) == 12
    assert result.as_dict()["kb_hit_rate"]["hit_rate"] == round(12 / 20, 4)
    rows = store.rows("gap_runs")
    assert [(r["run_id"], r["answered"], r["tickets"]) for r in rows] == [(result.run_id, 12, 20)]


def test_the_next_run_shows_the_trend_after_a_release_answers_more(workspace) -> None:
    store, embedder, settings = workspace
    first = run_gaps(settings, embedder=embedder)
    merge = make_article(
        "merge-workspaces",
        "Merge team workspaces",
        "To merge two workspaces of teams into one, open Admin, Workspaces, Merge. Merge workspaces keeps members.",
    )
    publish(
        store,
        build_candidate([*sample_articles(), merge], store=store, embedder=embedder, policy=ChunkPolicy()),
        checks_passed=True,
        manifest={},
    )
    second = run_gaps(settings, embedder=embedder)
    assert first.hit_rate is not None and second.hit_rate is not None
    assert second.hit_rate.answered == 12 + len(UNANSWERED["merge"])
    assert second.hit_rate.previous == pytest.approx(12 / 20) and second.hit_rate.previous_run_id == first.run_id
    assert second.hit_rate.change == pytest.approx(6 / 20)
    email = next(s for s in second.hit_rate.per_source if s.source_id == "email")
    assert email.hit_rate == 1.0 and email.previous == pytest.approx(0.5)
    assert "+30.0 points since the previous run (60.0%)" in second.markdown
    assert [r["release_tag"] for r in IndexStore(settings.index_uri).rows("gap_runs")] == [
        "release-0001",
        "release-0002",
    ]


@pytest.mark.model
def test_the_samples_hit_rate_matches_the_hand_labels(tmp_path) -> None:
    """The sample's gaps run against its help center, with the real model, vs the hand count of
    ``bench/data/coverage_labels.csv`` (labels made by reading the articles, no model involved).

    Tolerance: the calibration (README "How the thresholds were calibrated") gives the per-ticket rule a held-out
    balanced accuracy of 0.70-0.72, i.e. per-class error rates near 0.3; misses and false hits partly cancel in a
    share, and 0.1 (17 of 171 tickets) is the difference the calibration supports, set before this test was run.
    """
    from kbcurator.embedding import load_embedder
    from kbcurator.ingest import read_articles

    settings = load_settings(
        REPO / "kb_sources" / "sample.yaml",
        index_uri=str(tmp_path / "index"),
        runs_dir=str(tmp_path / "runs"),
    )
    store = IndexStore(settings.index_uri)
    embedder = load_embedder(settings.embedding.model)
    articles, _ = read_articles(settings.sources[0])
    candidate = build_candidate(articles, store=store, embedder=embedder, policy=ChunkPolicy())
    publish(store, candidate, checks_passed=True, manifest={})
    result = run_gaps(settings, embedder=embedder)
    assert result.hit_rate is not None

    labels = {
        row["ticket_id"]: row["label"]
        for row in csv.DictReader((REPO / "bench" / "data" / "coverage_labels.csv").open(encoding="utf-8"))
    }
    counted = [t.ticket_id for t in result.tickets]
    assert set(counted) <= set(labels)  # every counted ticket was labelled by hand
    hand = sum(labels[t] == "answered" for t in counted) / len(counted)
    print(f"sample KB hit rate {result.hit_rate.hit_rate:.3f} vs hand count {hand:.3f} on {len(counted)} tickets")
    assert result.hit_rate.tickets == len(counted)
    assert abs(result.hit_rate.hit_rate - hand) <= 0.1
