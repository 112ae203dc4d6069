"""Escalated tickets the KB had an article for become failing-article findings (real index, fake embedder)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from builders import published_sample, sample_articles

from kbcurator.analysis.base import AuditCorpus
from kbcurator.analysis.staleness import StalenessDetector
from kbcurator.config.health import StaleSettings
from kbcurator.gaps.coverage import ReleaseVectors
from kbcurator.gaps.escalations import escalations_by_article
from kbcurator.records import Ticket


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    store, release, embedder = published_sample(str(tmp_path_factory.mktemp("kb") / "index"))
    return ReleaseVectors(store, release), embedder


def _ticket(n: int, text: str, escalated: bool) -> Ticket:
    return Ticket(ticket_id=str(n), created_at=None, subject="", body=text, escalated=escalated)


def test_escalations_land_on_the_article_that_answers_them(kb) -> None:
    vectors, embedder = kb
    tickets = [
        _ticket(1, "refund within 30 days of purchase, request refund in billing", True),
        _ticket(2, "refunds available within 30 days of purchase? open billing, pick the order, request refund", True),
        _ticket(3, "refunds are available within 30 days, how do I request one", False),  # not escalated
        _ticket(4, "my parrot speaks french", True),  # nothing in the KB answers it: a gap, not a failing article
    ]
    found = escalations_by_article(tickets, embedder.embed([t.text for t in tickets]), vectors, min_lift=0.3)
    titles = dict(zip(vectors.titles, vectors.article_ids, strict=True))
    refunds = titles["Request a refund"]
    assert set(found) == {refunds}
    assert len(found[refunds]) == 2 and all("refund" in q for q in found[refunds])


def test_the_staleness_detector_flags_an_article_customers_keep_escalating() -> None:
    articles = sample_articles()
    refunds = next(a for a in articles if a.title == "Request a refund")
    corpus = AuditCorpus(
        articles=articles,
        chunks=[],
        chunk_vectors=np.zeros((0, 4), dtype=np.float32),
        run_at=datetime(2026, 2, 1, tzinfo=UTC),
        escalations={refunds.article_id: ("refund please", "still no refund"), articles[0].article_id: ("one",)},
    )
    failing = [f for f in StalenessDetector(StaleSettings()).detect(corpus) if f.check == "failing_article"]
    assert [f.article_ids for f in failing] == [(refunds.article_id,)]  # one escalation is below the minimum
    assert {e.text for e in failing[0].evidence} >= {"refund please", "still no refund"}


def test_tickets_and_vectors_must_line_up(kb) -> None:
    vectors, _ = kb
    with pytest.raises(ValueError, match="1 tickets but 0 vectors"):
        escalations_by_article([_ticket(1, "x", True)], np.zeros((0, 256), dtype=np.float32), vectors, min_lift=0.3)
