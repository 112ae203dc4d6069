"""The review use case on a real index database: one ranked queue across kinds, and the decisions taken on it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import test_report
from builders import make_article

from kbcurator.config.health import ReviewSettings
from kbcurator.gaps.coverage import gap_priority
from kbcurator.gaps.labels import gap_title
from kbcurator.records import Evidence
from kbcurator.settings import Settings, SourceConfig
from kbcurator.triage import TriageStore
from kbcurator.usecases.review import QueueFilter, ReviewError, ReviewQueue

AS_OF = test_report.AS_OF
full = test_report.full
OWNER = "kb-team@example.com"
INTERVAL = 90


def review_settings(store, tmp_path, **serve) -> Settings:
    source = SourceConfig(
        id="test", kind="folder", location=str(tmp_path), owner=OWNER, review=ReviewSettings(interval_days=INTERVAL)
    )
    return Settings(index_uri=store.uri, sources=[source], serve=serve)


def _age_finding(article, key: str):
    return test_report._finding(
        "stale",
        "age",
        [article],
        f"Not updated for a while ({key})",
        "update",
        [Evidence(article.article_id, article.title)],
        key=key,
        score=0.6,
    )


@pytest.fixture()
def review_db(full, tmp_path):
    """The report's database, plus a latest audit whose age findings cover four articles."""
    store, articles, scored, findings = full
    by_slug = test_report._by_slug(articles)
    ages = [_age_finding(by_slug[slug], slug) for slug in ("refunds", "cancel", "two-factor", "export")]
    test_report._audit(store, [*findings, *ages], "audit-3", AS_OF - timedelta(hours=2), store.current().tag)
    return store, articles, scored, findings, ages, review_settings(store, tmp_path, users={})


def test_the_first_screen_mixes_kinds_and_the_age_findings_take_one_block(review_db) -> None:
    store, _, _, findings, ages, settings = review_db
    view = ReviewQueue(settings, store=store).queue(as_of=AS_OF)
    kinds = [item.kind for item in view.items]
    assert len(set(kinds[:10])) >= 3
    assert kinds.count("review_due") == 1 and len(view.items) == len(findings) + 2 + 1  # 3 findings, 2 gaps, 1 block
    block = next(item for item in view.items if item.kind == "review_due")
    assert len(block.members) == len(ages) == 4 and OWNER in block.title and block.owners == (OWNER,)
    assert not any(item.item_id in {a.finding_id for a in ages} for item in view.items)


def test_the_queue_is_ranked_by_impact_and_explains_it(review_db) -> None:
    store, _, scored, _, _, settings = review_db
    view = ReviewQueue(settings, store=store).queue(as_of=AS_OF)
    impacts = [item.impact for item in view.items]
    assert impacts == sorted(impacts, reverse=True)
    big = max((g for g in scored if g.coverage.action != "covered"), key=lambda g: g.priority)
    item = next(i for i in view.items if i.item_id == big.gap_id)
    expected = gap_priority(big.cluster.size, big.coverage.coverage_score, big.cluster.escalation_share)
    assert item.impact == pytest.approx(expected, abs=1e-3)
    assert f"{big.cluster.size} tickets" in item.impact_why and "coverage" in item.impact_why
    contradiction = next(i for i in view.items if i.kind == "contradiction")
    assert "wrong answer" in contradiction.impact_why
    # A gap's title is a question customers asked, not a keyword triple.
    assert item.title == gap_title(big.cluster.central_query, big.cluster.representatives, fallback=big.cluster.label)
    assert " · " not in item.title and item.title != big.cluster.label


def test_the_counts_agree_with_the_queue_under_every_filter(review_db) -> None:
    store, _, _, findings, _, settings = review_db
    review = ReviewQueue(settings, store=store)
    everything = review.queue(as_of=AS_OF)
    assert sum(everything.counts.values()) == everything.total == len(everything.items)
    for kind, count in everything.counts.items():
        only = review.queue(QueueFilter(kind=kind), as_of=AS_OF)
        assert only.total == count and all(i.kind == kind for i in only.items)
        assert only.counts == everything.counts  # the tabs do not change with the kind chosen
    TriageStore(store).decide(findings[1].finding_id, "dismissed", decided_by="ana", note="same page twice on purpose")
    after = review.queue(as_of=AS_OF)
    assert after.total == everything.total - 1 and after.counts["duplicate"] == everything.counts["duplicate"] - 1
    dismissed = review.queue(QueueFilter(status="dismissed"), as_of=AS_OF)
    assert [i.item_id for i in dismissed.items] == [findings[1].finding_id]
    assert dismissed.items[0].note == "same page twice on purpose"
    assert review.queue(QueueFilter(status="all"), as_of=AS_OF).total == everything.total


def test_filters_by_owner_source_and_assignee(review_db) -> None:
    store, _, _, findings, _, settings = review_db
    review = ReviewQueue(settings, store=store)
    assert review.queue(QueueFilter(owner=OWNER), as_of=AS_OF).total > 0
    assert review.queue(QueueFilter(owner="nobody@example.com"), as_of=AS_OF).total == 0
    assert review.queue(QueueFilter(source="test"), as_of=AS_OF).total > 0
    review.act(findings[0].finding_id, "assign", user="ana", assignee=OWNER, as_of=AS_OF)
    mine = review.queue(QueueFilter(assignee=OWNER), as_of=AS_OF)
    assert [i.item_id for i in mine.items] == [findings[0].finding_id]
    assert mine.items[0].status_label == f"assigned to {OWNER}"


def test_decisions_need_what_they_say_and_keep_their_history(review_db) -> None:
    store, _, scored, findings, _, settings = review_db
    review = ReviewQueue(settings, store=store)
    contradiction = findings[0].finding_id
    with pytest.raises(ReviewError, match="reason"):
        review.act(contradiction, "dismiss", user="ana", as_of=AS_OF)
    with pytest.raises(ReviewError, match="date"):
        review.act(contradiction, "snooze", user="ana", as_of=AS_OF)
    with pytest.raises(ReviewError, match="neither a source owner"):
        review.act(contradiction, "assign", user="ana", assignee="mallory", as_of=AS_OF)
    with pytest.raises(ReviewError, match="unknown action"):
        review.act(contradiction, "delete", user="ana", as_of=AS_OF)
    with pytest.raises(ReviewError, match="no audit or gaps run"):
        review.act("contradiction:quantity:0000", "accept", user="ana", as_of=AS_OF)
    assert TriageStore(store).history(contradiction) == []  # nothing half-recorded

    review.act(contradiction, "assign", user="ana", assignee=OWNER, as_of=AS_OF)
    review.act(contradiction, "note", user="bo", note="ask legal which is right", as_of=AS_OF + timedelta(minutes=1))
    detail = review.item(contradiction, as_of=AS_OF + timedelta(minutes=2))
    assert detail.item.status == "assigned" and detail.item.assignee == OWNER  # a note keeps the decision in force
    assert detail.item.note == "ask legal which is right"
    assert [d.status for d in detail.history] == ["assigned", "assigned"]

    gap = next(g for g in scored if g.coverage.action != "covered").gap_id
    review.act(gap, "snooze", user="ana", until=date(2026, 12, 1), as_of=AS_OF)
    assert gap not in {i.item_id for i in review.queue(as_of=AS_OF).items}
    assert gap in {i.item_id for i in review.queue(as_of=datetime(2026, 12, 2, tzinfo=UTC)).items}  # back when due


def test_an_item_page_holds_the_evidence_of_its_kind(review_db) -> None:
    store, _, scored, findings, _, settings = review_db
    review = ReviewQueue(settings, store=store)
    contradiction = review.item(findings[0].finding_id, as_of=AS_OF)
    assert contradiction.finding is not None and len(contradiction.finding.evidence) == 2
    assert [a.title for a in contradiction.item.articles] == ["Request a refund", "Cancel your subscription"]
    big = max((g for g in scored if g.coverage.action != "covered"), key=lambda g: g.priority)
    gap = review.item(big.gap_id, as_of=AS_OF).gap
    assert gap is not None and gap.size == big.cluster.size
    assert set(big.cluster.representatives) <= set(gap.questions)
    block = next(i for i in review.queue(as_of=AS_OF).items if i.kind == "review_due")
    lines = review.item(block.item_id, as_of=AS_OF).review_due
    assert [line.finding_id for line in lines] == list(block.members)
    overdue = (AS_OF - make_article("x", "x", "x").updated_at).days - INTERVAL
    assert {line.overdue_days for line in lines} == {overdue}
    with pytest.raises(ReviewError):
        review.item("gap-does-not-exist", as_of=AS_OF)


def test_open_items_and_their_spreadsheet_name_each_article(review_db, tmp_path) -> None:
    import csv

    from kbcurator.triage import open_items, write_open_items_csv

    store, *_ = review_db
    items = {i.item_id: i for i in open_items(store, AS_OF)}
    contradiction = next(i for i in items.values() if i.summary.startswith("contradiction/"))
    assert contradiction.titles == ("Request a refund", "Cancel your subscription")
    assert len(contradiction.urls) == 2
    write_open_items_csv(tmp_path / "open.csv", items.values())
    with (tmp_path / "open.csv").open(encoding="utf-8") as handle:
        rows = {row["item_id"]: row for row in csv.DictReader(handle)}
    assert rows[contradiction.item_id]["titles"] == "Request a refund; Cancel your subscription"
    gap = next(i for i in items.values() if i.kind == "gap")
    assert rows[gap.item_id]["titles"] == "; ".join(t for t in gap.titles if t) and gap.titles


def test_the_queue_and_the_report_show_the_kb_hit_rate_and_its_trend(review_db) -> None:
    from kbcurator.gaps.report import HitRate, HitRateStore, SourceHitRate
    from kbcurator.reports import render_report

    store, *_, settings = review_db
    assert ReviewQueue(settings, store=store).queue(as_of=AS_OF).hit_rate is None  # no gaps run recorded one yet
    rates = HitRateStore(store)
    rates.write(
        HitRate("gaps-1", "release-0001", 10, 4, (SourceHitRate("t", 10, 4),)), run_at=AS_OF - timedelta(days=7)
    )
    rates.write(
        HitRate("gaps-2", "release-0001", 20, 13, (SourceHitRate("t", 20, 13),)), run_at=AS_OF - timedelta(days=1)
    )
    shown = ReviewQueue(settings, store=store).queue(as_of=AS_OF).hit_rate
    assert shown is not None and (shown.tickets, shown.answered) == (20, 13)
    assert shown.hit_rate == pytest.approx(0.65) and shown.previous == pytest.approx(0.4)
    html = render_report(store, as_of=AS_OF)
    card = html[html.index('id="hit-rate"') :][:300]
    assert "65%" in card and "+25 points since the last run" in card
    import httpx
    from app_server import running

    from kbcurator.web import create_app

    with running(create_app(settings, review=ReviewQueue(settings, store=store), now=lambda: AS_OF)) as base:
        page = httpx.get(base + "/").text  # no users declared: read-only, readable on this machine
    assert "KB hit rate: <b>65%</b> of the latest gaps run's 20 tickets" in page and "+25 points" in page


def test_the_report_and_the_queue_show_the_current_release_s_golden_question_recall(review_db) -> None:
    from fakes import FakeHashingEmbedder

    from kbcurator.chunking import ChunkPolicy
    from kbcurator.index.build import build_candidate
    from kbcurator.index.publish import publish
    from kbcurator.reports import render_report

    store, articles, *_, settings = review_db
    assert ReviewQueue(settings, store=store).queue(as_of=AS_OF).retrieval is None  # published without questions
    gate = {
        "k": 5,
        "questions": 20,
        "candidate": {"release": "candidate", "questions": 20, "recall_at_5": 0.85, "mrr": 0.712},
        "baseline": {"release": "release-0001", "questions": 20, "recall_at_5": 0.9, "mrr": 0.75},
        "lost": [{"question": "q"}],
        "overridden": True,
    }
    edited = [*articles[:-1], make_article("hostile", "Billing FAQ", "Invoices are sent monthly, in euros.")]
    candidate = build_candidate(edited, store=store, embedder=FakeHashingEmbedder(dimension=256), policy=ChunkPolicy())
    publish(store, candidate, checks_passed=True, manifest={"retrieval": gate})
    view = ReviewQueue(settings, store=store).queue(as_of=AS_OF)
    assert view.retrieval is not None and view.release_tag == "release-0002"
    assert (view.retrieval.recall_at_k, view.retrieval.baseline_recall_at_k, view.retrieval.lost) == (0.85, 0.9, 1)
    card = render_report(store, as_of=AS_OF)
    card = card[card.index('id="retrieval"') :][:400]
    assert "85%" in card and "20 questions, MRR 0.71" in card and "90% before" in card and "1 lost" in card
    assert "gate overridden" in card
    import httpx
    from app_server import running

    from kbcurator.web import create_app

    with running(create_app(settings, review=ReviewQueue(settings, store=store), now=lambda: AS_OF)) as base:
        page = httpx.get(base + "/").text
    shown = page[page.index('id="retrieval"') :][:500]
    assert "Golden questions on release-0002: <b>85%</b>" in shown and "1 lost their article" in shown
