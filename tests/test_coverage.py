"""Coverage of ticket queries against a real index release (fake hashing embedder: word overlap)."""

from __future__ import annotations

import pytest
from builders import published_sample

from kbcurator.gaps.coverage import (
    CoveragePolicy,
    ReleaseVectors,
    cluster_coverage,
    gap_priority,
    judge_tickets,
    rank_gaps,
    verdict_of,
)

POLICY = CoveragePolicy(answered_lift=0.3, related_lift=0.1, covered_share=0.5)


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    store, release, embedder = published_sample(str(tmp_path_factory.mktemp("kb") / "index"))
    return ReleaseVectors(store, release), embedder


def test_a_cluster_the_kb_answers_is_covered(kb) -> None:
    vectors, embedder = kb
    queries = [
        "turn on two-factor authentication with an authenticator app",
        "two-factor authentication one-time code every sign in",
        "how do I turn on two-factor authentication",
    ]
    coverage = cluster_coverage(embedder.embed(queries), vectors, POLICY)
    assert coverage.action == "covered" and coverage.coverage_score >= 0.5
    assert coverage.best_articles[0].title == "Turn on two-factor authentication"
    assert coverage.best_articles[0].queries == 3


def test_a_topic_the_kb_lacks_needs_a_new_article(kb) -> None:
    vectors, embedder = kb
    queries = ["merge two workspaces into one", "combine workspaces owned by different teams", "workspace merge"]
    coverage = cluster_coverage(embedder.embed(queries), vectors, POLICY)
    assert coverage.action == "write" and coverage.coverage_score == 0.0
    assert coverage.suggestion() == "write a new article"


def test_a_near_miss_suggests_extending_the_closest_article(kb) -> None:
    vectors, embedder = kb
    queries = [
        "refund billing purchase gift voucher partial",
        "partial refund purchase billing voucher",
        "voucher refund billing purchase partial amount",
    ]
    coverage = cluster_coverage(embedder.embed(queries), vectors, POLICY)
    assert coverage.action == "extend", coverage
    assert coverage.best_articles[0].title == "Request a refund"
    assert "extend article 'Request a refund'" in coverage.suggestion()


def test_gap_ranking_weighs_volume_coverage_and_escalations() -> None:
    big_covered = gap_priority(100, 0.9, 0.0)
    small_uncovered_escalated = gap_priority(20, 0.0, 1.0)
    small_uncovered = gap_priority(20, 0.0, 0.0)
    assert small_uncovered_escalated == 2 * small_uncovered
    assert small_uncovered_escalated > big_covered
    assert rank_gaps([big_covered, small_uncovered_escalated, 0.0]) == [0.25, 1.0, 0.0]


def test_each_ticket_is_judged_answered_partly_or_unanswered_on_its_own(kb) -> None:
    vectors, embedder = kb
    queries = [
        "how do I turn on two-factor authentication",  # the KB answers it
        "partial refund purchase billing voucher",  # on a topic the KB has, not this question's answer
        "combine workspaces owned by different teams",  # nothing in the KB
    ]
    judged = judge_tickets(embedder.embed(queries), vectors, POLICY)
    assert judged.verdicts == ("answered", "partly", "unanswered")
    assert judged.answered.tolist() == [True, False, False]
    assert judged.rows("partly").tolist() == [1]
    assert [verdict_of(float(lf), POLICY) for lf in judged.lift] == list(judged.verdicts)
    assert vectors.titles[int(judged.chunk_rows[0])] == "Turn on two-factor authentication"
    # The same rule, batch by batch: the verdicts do not depend on how many queries are judged at once.
    assert judge_tickets(embedder.embed(queries), vectors, POLICY, batch_rows=1).verdicts == judged.verdicts
