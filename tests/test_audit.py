"""The audit runner, the findings table and the health summary (detectors have their own tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from builders import make_article

from kbcurator.analysis.audit import AuditResult, run_audit
from kbcurator.analysis.base import AuditCorpus
from kbcurator.analysis.report import findings_payload, health_markdown
from kbcurator.analysis.store import FindingStore
from kbcurator.index.store import IndexStore
from kbcurator.records import Evidence, Finding, make_finding_id

RUN_AT = datetime(2026, 11, 1, tzinfo=UTC)


def _corpus(run_at: datetime = RUN_AT) -> AuditCorpus:
    articles = [
        make_article("refunds", "Request a refund", "Refunds are available within 30 days of purchase."),
        make_article("refunds-old", "Refund policy", "Refunds are available within 14 days of purchase."),
    ]
    return AuditCorpus(articles=articles, chunks=[], chunk_vectors=np.zeros((0, 4), dtype=np.float32), run_at=run_at)


def _conflict(corpus: AuditCorpus, score: float = 0.8, key: str = "30 day|14 day") -> Finding:
    a, b = corpus.articles
    return Finding(
        finding_id=make_finding_id("contradiction", "quantity", (a.article_id, b.article_id), key),
        kind="contradiction",
        check="quantity",
        article_ids=(a.article_id, b.article_id),
        score=score,
        severity="high",
        summary="'30 days' vs '14 days' for refunds",
        action="review",
        evidence=(
            Evidence(a.article_id, "Refunds are available within 30 days of purchase.", highlights=("30 days",)),
            Evidence(b.article_id, "Refunds are available within 14 days of purchase.", highlights=("14 days",)),
        ),
        detector="test-detector",
        detector_version="1",
        found_at=corpus.run_at,
    )


class ListDetector:
    """Yields the findings it was given (the runner's contract, without a real detector's logic)."""

    name = "listed"
    version = "1"

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings

    def detect(self, corpus: AuditCorpus) -> Iterator[Finding]:
        yield from self.findings


class BrokenDetector:
    name = "broken"
    version = "0"

    def detect(self, corpus: AuditCorpus) -> Iterator[Finding]:
        raise RuntimeError("index out of range")
        yield  # pragma: no cover


def test_finding_ids_are_stable_and_order_free() -> None:
    first = make_finding_id("stale", "broken_link", ("a:1", "b:2"), "https://x/y")
    assert first == make_finding_id("stale", "broken_link", ("b:2", "a:1"), "https://x/y")
    assert first != make_finding_id("stale", "broken_link", ("a:1", "b:2"), "https://x/z")
    assert first.startswith("stale:broken_link:")


def test_a_failing_detector_is_recorded_and_the_others_still_report() -> None:
    corpus = _corpus()
    result = run_audit(corpus, [BrokenDetector(), ListDetector([_conflict(corpus)])])
    assert [f.kind for f in result.findings] == ["contradiction"]
    assert [r.record_id for r in result.failed_detectors] == ["broken"]
    assert "RuntimeError" in result.failed_detectors[0].reason


def test_duplicate_ids_keep_the_higher_score_and_worst_come_first() -> None:
    corpus = _corpus()
    weak, strong = _conflict(corpus, 0.5), _conflict(corpus, 0.9)
    other = _conflict(corpus, 0.7, key="other values")
    result = run_audit(corpus, [ListDetector([weak, other, strong])])
    assert [f.score for f in result.findings] == [0.9, 0.7]


def test_the_findings_table_says_what_is_new_and_what_was_resolved(tmp_path) -> None:
    store = IndexStore(str(tmp_path / "index"))
    findings = FindingStore(store)
    corpus = _corpus()
    kept, fixed = _conflict(corpus), _conflict(corpus, key="fixed")
    first = run_audit(corpus, [ListDetector([kept, fixed])])
    diff = findings.diff(first)
    assert diff.previous_run_id is None and diff.new_ids == {kept.finding_id, fixed.finding_id}
    findings.write_run("run-1", first, diff)

    later = _corpus(RUN_AT + timedelta(days=1))
    appeared = _conflict(later, key="new values")
    second = run_audit(later, [ListDetector([_conflict(later), appeared])])
    diff = findings.diff(second)
    assert diff.previous_run_id == "run-1"
    assert diff.new_ids == {appeared.finding_id}
    assert [f.finding_id for f in diff.resolved] == [fixed.finding_id]
    assert diff.first_seen_at[kept.finding_id] == RUN_AT  # still the first audit's date
    findings.write_run("run-2", second, diff)

    run_id, _, stored = findings.latest_run() or ("", "", [])
    assert run_id == "run-2"
    assert {f.finding_id for f in stored} == {kept.finding_id, appeared.finding_id}
    restored = next(f for f in stored if f.finding_id == kept.finding_id)
    assert restored.evidence[0].highlights == ("30 days",)


def test_a_clean_audit_is_remembered_so_old_findings_count_as_resolved(tmp_path) -> None:
    findings = FindingStore(IndexStore(str(tmp_path / "index")))
    corpus = _corpus()
    first = run_audit(corpus, [ListDetector([_conflict(corpus)])])
    findings.write_run("run-1", first, findings.diff(first))
    clean = run_audit(_corpus(RUN_AT + timedelta(days=1)), [])
    findings.write_run("run-2", clean, findings.diff(clean))
    again = run_audit(_corpus(RUN_AT + timedelta(days=2)), [ListDetector([_conflict(corpus)])])
    assert findings.diff(again).new_ids == {_conflict(corpus).finding_id}  # compared with the clean run


def test_the_summary_shows_both_sides_of_a_contradiction_with_values_in_bold() -> None:
    corpus = _corpus()
    result = run_audit(corpus, [ListDetector([_conflict(corpus)])])
    text = health_markdown(result, None, corpus.article_by_id)
    row = next(line for line in text.splitlines() if "**30 days**" in line)
    assert "**14 days**" in row
    assert "(https://help.example.com/articles/refunds)" in row


def test_ticket_or_article_text_cannot_break_the_markdown() -> None:
    corpus = _corpus()
    finding = _conflict(corpus)
    hostile = Finding(
        **{
            **{name: getattr(finding, name) for name in finding.__dataclass_fields__},
            "evidence": (Evidence(corpus.articles[0].article_id, "a | b <script>alert(1)</script>"),) * 2,
        }
    )
    text = health_markdown(run_audit(corpus, [ListDetector([hostile])]), None, corpus.article_by_id)
    assert "<script>" not in text
    assert "a \\| b &lt;script&gt;" in text


def test_the_json_export_round_trips(tmp_path) -> None:
    corpus = _corpus()
    result: AuditResult = run_audit(corpus, [ListDetector([_conflict(corpus)])])
    payload = json.loads(json.dumps(findings_payload(result)))
    assert payload["counts"] == {"contradiction": {"quantity": 1}}
    assert payload["severity"] == {"high": 1, "medium": 0, "low": 0}
    assert payload["findings"][0]["evidence"][1]["highlights"] == ["14 days"]


@pytest.mark.parametrize("bad", [np.zeros((1, 4), dtype=np.float32)])
def test_a_corpus_refuses_vectors_that_do_not_match_its_chunks(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="0 chunks but 1 vectors"):
        AuditCorpus(articles=[], chunks=[], chunk_vectors=bad, run_at=RUN_AT)
