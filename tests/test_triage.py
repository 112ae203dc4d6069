"""Triage decisions on findings and gaps, kept in a real LanceDB database across audit and gaps runs."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from builders import make_article, sample_articles
from fakes import FakeHashingEmbedder
from typer.testing import CliRunner

from kbcurator.analysis.audit import run_audit
from kbcurator.analysis.base import AuditCorpus
from kbcurator.analysis.store import FindingStore
from kbcurator.chunking import ChunkPolicy
from kbcurator.cli import EXIT_ERROR, app
from kbcurator.gaps.coverage import ArticleMatch, Coverage
from kbcurator.gaps.report import GapStore, ScoredGap
from kbcurator.gaps.tracking import PreviousCluster, Trend
from kbcurator.index.build import build_candidate
from kbcurator.index.publish import publish
from kbcurator.index.store import IndexStore
from kbcurator.records import Finding, GapCluster, make_finding_id
from kbcurator.triage import OpenItem, TriageError, TriageStore, open_items, write_open_items_csv

RUN_1 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
REFUNDS = make_article("refunds", "Request a refund", "Refunds are available within 30 days.")
OLD_REFUNDS = make_article("refunds-old", "Refund policy", "Refunds are available within 14 days.")


class ListDetector:
    name = "listed"
    version = "1"

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = findings

    def detect(self, corpus: AuditCorpus) -> Iterator[Finding]:
        yield from self.findings


def _finding(key: str, *, run_at: datetime = RUN_1, score: float = 0.8, summary: str = "") -> Finding:
    ids = (REFUNDS.article_id, OLD_REFUNDS.article_id)
    return Finding(
        finding_id=make_finding_id("contradiction", "quantity", ids, key),
        kind="contradiction",
        check="quantity",
        article_ids=ids,
        score=score,
        severity="high" if score >= 0.7 else "medium",
        summary=summary or f"conflicting values {key} for refunds",
        action="review",
        evidence=(),
        detector="listed",
        detector_version="1",
        found_at=run_at,
    )


def _audit(store: IndexStore, run_id: str, run_at: datetime, findings: Sequence[Finding], tag: str = "") -> None:
    corpus = AuditCorpus(
        articles=[REFUNDS, OLD_REFUNDS],
        chunks=[],
        chunk_vectors=np.zeros((0, 4), dtype=np.float32),
        run_at=run_at,
        index_version=tag,
    )
    result = run_audit(corpus, [ListDetector(findings)])
    history = FindingStore(store)
    history.write_run(run_id, result, history.diff(result))


def _unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def _gap(gap_id: str, centroid: np.ndarray, *, label: str = "merge workspaces", trend: Trend = "new") -> ScoredGap:
    match = ArticleMatch("test:cancel", "Cancel your subscription", "https://help.example.com/articles/cancel", 2, 0.4)
    return ScoredGap(
        gap_id=gap_id,
        cluster=GapCluster(0, label, ("merge",), "how do I merge two workspaces", (), 3, 0.0, RUN_1, RUN_1),
        coverage=Coverage(0.0, 0.4, 0.05, (match,), "write"),
        gap_score=1.0,
        priority=3.0,
        trend=trend,
        previous_size=0,
        weekly_counts={},
        centroid=centroid,
    )


def _gaps_run(
    store: IndexStore,
    run_id: str,
    run_at: datetime,
    gaps: Sequence[ScoredGap],
    resolved: Sequence[PreviousCluster] = (),
) -> None:
    GapStore(store).write_run(
        run_id=run_id, run_at=run_at, release_tag="release-0001", gaps=gaps, resolved=resolved, dimension=4
    )


def _by_id(items: list[OpenItem]) -> dict[str, OpenItem]:
    return {item.item_id: item for item in items}


@pytest.fixture()
def store(tmp_path) -> IndexStore:
    return IndexStore(str(tmp_path / "index"))


def test_a_decision_holds_for_the_same_finding_in_the_next_audit(store) -> None:
    kept, fixed = _finding("30 day|14 day"), _finding("24 hour|48 hour")
    _audit(store, "run-1", RUN_1, [kept, fixed])
    TriageStore(store).decide(kept.finding_id, "accepted", note="rewrite in sprint 12", decided_by="ana")

    # The next audit finds the same problem with another score and wording, and one new problem.
    again = _finding("30 day|14 day", run_at=RUN_1 + DAY, score=0.5, summary="refund window differs")
    appeared = _finding("7 day|10 day", run_at=RUN_1 + DAY)
    _audit(store, "run-2", RUN_1 + DAY, [again, appeared])

    items = _by_id(open_items(store, RUN_1 + 2 * DAY))
    assert set(items) == {kept.finding_id, appeared.finding_id}  # the fixed finding is gone with its audit
    assert items[kept.finding_id].status == "accepted"
    assert items[kept.finding_id].note == "rewrite in sprint 12" and items[kept.finding_id].decided_by == "ana"
    assert "refund window differs" in items[kept.finding_id].summary  # the latest audit's wording
    assert items[appeared.finding_id].status == "open"


def test_dismissed_items_are_hidden_unless_asked_for(store) -> None:
    noise, real = _finding("noise"), _finding("real")
    _audit(store, "run-1", RUN_1, [noise, real])
    TriageStore(store).decide(noise.finding_id, "dismissed", note="false positive", decided_by="ana")
    _audit(store, "run-2", RUN_1 + DAY, [noise, real])

    assert [i.item_id for i in open_items(store, RUN_1 + 2 * DAY)] == [real.finding_id]
    shown = _by_id(open_items(store, RUN_1 + 2 * DAY, include_dismissed=True))
    assert shown[noise.finding_id].status == "dismissed" and shown[noise.finding_id].note == "false positive"

    TriageStore(store).decide(noise.finding_id, "open", decided_by="ben")  # changed their mind: latest wins
    assert {i.item_id for i in open_items(store, RUN_1 + 2 * DAY)} == {noise.finding_id, real.finding_id}
    assert [d.status for d in TriageStore(store).history(noise.finding_id)] == ["dismissed", "open"]


def test_a_snoozed_item_comes_back_when_its_date_passes(store) -> None:
    finding = _finding("30 day|14 day")
    _audit(store, "run-1", RUN_1, [finding])
    until = datetime(2026, 12, 1, tzinfo=UTC)
    TriageStore(store).decide(finding.finding_id, "snoozed", snoozed_until=until, decided_by="ana", decided_at=RUN_1)

    assert open_items(store, until - HOUR) == []
    assert open_items(store, until - HOUR, include_dismissed=True)[0].status == "snoozed"
    (back,) = open_items(store, until)
    assert back.item_id == finding.finding_id and back.status == "open" and back.snoozed_until == until


def test_a_gap_marked_resolved_is_reopened_when_a_later_run_still_reports_it(store) -> None:
    _gaps_run(store, "gaps-1", RUN_1, [_gap("gap-merge", _unit(1, 0, 0, 0))])
    triage = TriageStore(store)
    triage.decide("gap-merge", "resolved", note="article published", decided_by="ana", decided_at=RUN_1 + HOUR)
    assert open_items(store, RUN_1 + 2 * HOUR) == []  # waits for the next run to confirm

    _gaps_run(store, "gaps-2", RUN_1 + DAY, [_gap("gap-merge", _unit(1, 0, 0, 0), trend="stable")])
    (item,) = open_items(store, RUN_1 + DAY + HOUR)
    assert item.item_id == "gap-merge" and item.reopened and item.status == "open"
    assert item.urls == ("https://help.example.com/articles/cancel",)

    triage.decide("gap-merge", "assigned", assignee="ben", decided_by="ana", decided_at=RUN_1 + DAY + HOUR)
    (item,) = open_items(store, RUN_1 + DAY + 2 * HOUR)
    assert not item.reopened and item.status == "assigned" and item.assignee == "ben"


def test_a_gap_that_returns_after_a_run_resolved_it_is_reopened(store) -> None:
    merge = _unit(1, 0, 0, 0)
    _gaps_run(store, "gaps-1", RUN_1, [_gap("gap-merge", merge), _gap("gap-sso", _unit(0, 0, 1, 0))])
    _gaps_run(
        store, "gaps-2", RUN_1 + DAY, [_gap("gap-sso", _unit(0, 0, 1, 0))], [PreviousCluster("gap-merge", 3, merge)]
    )
    # The tracker follows live clusters only, so the returning topic gets a new id; an unrelated gap appears too.
    returned, unrelated = _gap("gap-merge-2", _unit(1, 0.1, 0, 0)), _gap("gap-export", _unit(0, 1, 0, 0))
    _gaps_run(store, "gaps-3", RUN_1 + 2 * DAY, [returned, unrelated, _gap("gap-sso", _unit(0, 0, 1, 0))])

    items = _by_id(open_items(store, RUN_1 + 3 * DAY))
    assert items["gap-merge-2"].reopened and items["gap-merge-2"].reopened_from == "gap-merge"
    assert not items["gap-export"].reopened and not items["gap-sso"].reopened
    assert next(iter(items)) == "gap-merge-2"  # reopened items come first

    # Same id back after a resolved row (a tracker that remembers resolved clusters).
    _gaps_run(store, "gaps-4", RUN_1 + 3 * DAY, [], [PreviousCluster("gap-sso", 3, _unit(0, 0, 1, 0))])
    _gaps_run(store, "gaps-5", RUN_1 + 4 * DAY, [_gap("gap-sso", _unit(0, 0, 1, 0))])
    (item,) = open_items(store, RUN_1 + 5 * DAY)
    assert item.item_id == "gap-sso" and item.reopened and item.reopened_from == ""


def test_covered_clusters_and_resolved_rows_are_not_open_items(store) -> None:
    covered = replace(_gap("gap-2fa", _unit(0, 1, 0, 0)), coverage=Coverage(0.9, 0.7, 0.4, (), "covered"))
    _gaps_run(store, "gaps-1", RUN_1, [covered, _gap("gap-merge", _unit(1, 0, 0, 0))])
    _gaps_run(store, "gaps-2", RUN_1 + DAY, [covered], [PreviousCluster("gap-merge", 3, _unit(1, 0, 0, 0))])
    assert open_items(store, RUN_1 + 2 * DAY, include_dismissed=True) == []


def test_the_csv_export_keeps_commas_quotes_and_formulas_as_text(store, tmp_path) -> None:
    release = publish(
        store,
        build_candidate(
            [*sample_articles(), REFUNDS, OLD_REFUNDS],
            store=store,
            embedder=FakeHashingEmbedder(),
            policy=ChunkPolicy(),
        ),
        checks_passed=True,
        manifest={},
    )
    tricky = _finding("30 day|14 day", summary='"30 days", not 14, in "Refund policy"')
    _audit(store, "run-1", RUN_1, [tricky], tag=release.tag)
    _gaps_run(store, "gaps-1", RUN_1, [_gap("gap-merge", _unit(1, 0, 0, 0), label='=HYPERLINK("http://x"), merge')])
    TriageStore(store).decide("gap-merge", "accepted", note='ask "Ops", then, maybe, Legal', decided_by="ana")

    path = tmp_path / "out" / "open.csv"
    assert write_open_items_csv(path, open_items(store, RUN_1 + DAY)) == 2
    with path.open(newline="", encoding="utf-8") as handle:
        rows = {row["item_id"]: row for row in csv.DictReader(handle)}
    finding_row, gap_row = rows[tricky.finding_id], rows["gap-merge"]
    assert '"30 days", not 14, in "Refund policy"' in finding_row["summary"]
    assert finding_row["severity"] == "high" and finding_row["status"] == "open"
    assert finding_row["urls"] == f"{REFUNDS.url}; {OLD_REFUNDS.url}"
    assert gap_row["note"] == 'ask "Ops", then, maybe, Legal' and gap_row["status"] == "accepted"
    assert gap_row["summary"].startswith("'=HYPERLINK")  # a spreadsheet shows it, does not run it
    assert gap_row["score"] == "1.000" and gap_row["urls"] == "https://help.example.com/articles/cancel"


def test_decisions_that_cannot_stand_are_refused(store) -> None:
    finding = _finding("30 day|14 day")
    _audit(store, "run-1", RUN_1, [finding])
    triage = TriageStore(store)
    with pytest.raises(TriageError, match="did you mean"):
        triage.decide(finding.finding_id[:-1] + "x", "accepted", decided_by="ana")
    with pytest.raises(TriageError, match="needs someone"):
        triage.decide(finding.finding_id, "assigned", decided_by="ana")
    with pytest.raises(TriageError, match="has passed"):
        triage.decide(finding.finding_id, "snoozed", snoozed_until=RUN_1, decided_by="ana", decided_at=RUN_1 + DAY)
    with pytest.raises(TriageError, match="status must be one of"):
        triage.decide(finding.finding_id, "wontfix", decided_by="ana")
    assert triage.current() == {}  # nothing was recorded


runner = CliRunner()


@pytest.fixture()
def cli_config(tmp_path, store) -> tuple[str, Finding]:
    finding = _finding("30 day|14 day")
    _audit(store, "run-1", RUN_1, [finding])
    config = tmp_path / "kb.yaml"
    config.write_text(f"index_uri: {store.uri}\n")
    return str(config), finding


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "wontfix"], "status must be one of"),
        (["--status", "snoozed"], "needs the date it comes back"),
        (["--status", "snoozed", "--until", "next week"], "--until must be a date"),
        (["--status", "assigned"], "needs someone"),
    ],
)
def test_cli_refuses_a_bad_decision_in_one_line(cli_config, args, message) -> None:
    config, finding = cli_config
    result = runner.invoke(app, ["triage", finding.finding_id, *args, "--config", config])
    assert result.exit_code == EXIT_ERROR
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_cli_refuses_an_unknown_id_in_one_line(cli_config) -> None:
    config, _ = cli_config
    result = runner.invoke(app, ["triage", "gap-nope", "--status", "accepted", "--config", config])
    assert result.exit_code == EXIT_ERROR
    assert "unknown item id 'gap-nope'" in result.output and len(result.output.strip().splitlines()) == 1


def test_cli_snoozes_and_lists_with_a_csv(cli_config, tmp_path) -> None:
    config, finding = cli_config
    snoozed = runner.invoke(
        app,
        [
            "triage",
            finding.finding_id,
            "--status",
            "snoozed",
            "--until",
            "2099-01-01",
            "--by",
            "ana",
            "--config",
            config,
        ],
    )
    assert snoozed.exit_code == 0, snoozed.output
    assert f"finding {finding.finding_id}: snoozed until 2099-01-01 (by ana)" in snoozed.output

    hidden = runner.invoke(app, ["open-items", "--config", config])
    assert hidden.exit_code == 0 and hidden.output.startswith("0 items")
    path = tmp_path / "items.csv"
    later = runner.invoke(app, ["open-items", "--as-of", "2099-01-01", "--csv", str(path), "--config", config])
    assert later.exit_code == 0, later.output
    assert finding.finding_id in later.output and "snoozed until 2099-01-01" in later.output
    with path.open(newline="", encoding="utf-8") as handle:
        assert [row["item_id"] for row in csv.DictReader(handle)] == [finding.finding_id]
