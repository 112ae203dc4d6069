"""Score clusters as knowledge gaps, keep them run to run in the index database, and report them."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from kbcurator.gaps.clustering import LONG_TAIL, centroids
from kbcurator.gaps.coverage import (
    Coverage,
    CoveragePolicy,
    ReleaseVectors,
    Verdict,
    cluster_coverage,
    gap_priority,
    judge_tickets,
    rank_gaps,
)
from kbcurator.gaps.labels import gap_title
from kbcurator.gaps.tracking import PreviousCluster, Trend, match_clusters
from kbcurator.index.schema import GAP_RUNS, GAPS, gap_runs_schema
from kbcurator.index.schema import gaps_schema as _gaps_schema
from kbcurator.index.store import IndexStore, lance_errors
from kbcurator.markdown import table_cell
from kbcurator.records import GapCluster, Ticket
from kbcurator.spreadsheet import sheet_text

GAPS_TABLE = GAPS

# Why an unanswered ticket is in no gap: asked too rarely to cluster, or unreadable (``gaps.readable``).
LongTailReason = Literal["one_off", "unreadable"]


@dataclass(frozen=True, slots=True)
class ScoredGap:
    gap_id: str  # stable across runs while the cluster keeps matching
    cluster: GapCluster
    coverage: Coverage
    gap_score: float  # 0..1, relative to the largest gap of this run
    priority: float  # volume x (1 - coverage) x escalation weight
    trend: Trend
    previous_size: int
    weekly_counts: dict[str, int]
    centroid: np.ndarray


@dataclass(frozen=True, slots=True)
class LongTailQuestion:
    """A query no cluster took, which the KB does not answer either: reviewed one by one.

    ``reason`` says why it is in no gap: ``one_off`` (asked too rarely to cluster) or ``unreadable`` (keyboard
    mash or a pasted code, kept out of every gap by ``gaps.readable``; not a question to answer)."""

    ticket_id: str
    text: str  # redacted
    lift: float
    closest_title: str
    closest_url: str
    reason: LongTailReason = "one_off"


def unanswered_long_tail(
    tickets: Sequence[Ticket],
    vectors: np.ndarray,
    labels: np.ndarray,
    kb: ReleaseVectors,
    policy: CoveragePolicy,
    *,
    unreadable: np.ndarray | None = None,
) -> list[LongTailQuestion]:
    """Long-tail queries whose lift is below the answered threshold: one-off questions least answered first, then
    the ``unreadable`` ones (flags per ticket, ``gaps.readable``), which would otherwise head the list: mash has
    the lowest lift of all.

    Clustering leaves one-off questions out of every cluster; a question asked once can still be a gap.
    """
    rows = np.flatnonzero(np.asarray(labels) == LONG_TAIL)
    if not len(rows):
        return []
    best, chunk_rows = kb.best(vectors[rows])
    lift = kb.lift(vectors[rows], best)
    found = [
        LongTailQuestion(
            ticket_id=tickets[int(r)].ticket_id,
            text=tickets[int(r)].text,
            lift=round(float(lf), 4),
            closest_title=kb.titles[int(c)] if c >= 0 else "",
            closest_url=kb.urls[int(c)] if c >= 0 else "",
            reason="unreadable" if unreadable is not None and unreadable[r] else "one_off",
        )
        for r, lf, c in zip(rows.tolist(), lift.tolist(), chunk_rows.tolist(), strict=True)
        if lf < policy.answered_lift
    ]
    return sorted(found, key=lambda q: (q.reason == "unreadable", q.lift, q.ticket_id))


@dataclass(frozen=True, slots=True)
class TicketOutcome:
    """What a gaps run decided about one ticket, so a KB owner can audit the decision row by row.

    Coverage comes first: ``verdict`` is the ticket's own (:func:`kbcurator.gaps.coverage.verdict_of` on its best
    chunk's lift), and ``answered`` is ``verdict == "answered"``, whatever cluster the ticket is in. Only tickets
    the release does not answer are clustered into gaps, so a ticket in a gap is one the KB does not answer.
    ``coverage_score`` is its gap's (``cluster_id`` >= 0) or, outside every gap, its own: 1.0 or 0.0. The best
    article is the ticket's own nearest one in the release, with its similarity and lift.
    """

    ticket_id: str
    source_id: str
    cluster_id: int  # -1: in no gap (answered, or an unanswered one-off in the long tail)
    gap_id: str  # "" outside every gap
    label: str  # the gap's label, "answered" or "long tail"
    answered: bool
    coverage_score: float
    best_article_id: str
    best_article_title: str
    best_article_url: str
    best_similarity: float
    lift: float
    # The ticket's own answer: its best chunk's lift reaches ``answered_lift`` (the calibrated per-question
    # rule). What the KB hit rate counts; equal to ``answered``.
    kb_answered: bool = False
    verdict: Verdict = "unanswered"


LONG_TAIL_LABEL = "long tail"
ANSWERED_LABEL = "answered"
UNREADABLE_LABEL = "unreadable"


def ticket_outcomes(
    tickets: Sequence[Ticket],
    vectors: np.ndarray,
    labels: np.ndarray,
    gaps: Sequence[ScoredGap],
    kb: ReleaseVectors,
    policy: CoveragePolicy,
    *,
    unreadable: np.ndarray | None = None,
    batch_rows: int = 1024,
) -> list[TicketOutcome]:
    """One outcome per ticket, in the tickets' order. ``labels`` are the gap clusters' (``-1``: in no gap); a ticket
    flagged ``unreadable`` that the release does not answer is labelled ``unreadable``, not ``long tail``."""
    gap_of = {g.cluster.cluster_id: g for g in gaps}
    judged = judge_tickets(vectors, kb, policy, batch_rows=batch_rows)
    outcomes: list[TicketOutcome] = []
    for position, ticket in enumerate(tickets):
        similarity, row = float(judged.similarity[position]), int(judged.chunk_rows[position])
        lf, verdict = float(judged.lift[position]), judged.verdicts[position]
        cluster_id = int(labels[position])
        gap = gap_of.get(cluster_id)
        own_answer = verdict == "answered"
        flagged = unreadable is not None and bool(unreadable[position])
        outside = ANSWERED_LABEL if own_answer else UNREADABLE_LABEL if flagged else LONG_TAIL_LABEL
        label = gap.cluster.label if gap is not None else outside
        outcomes.append(
            TicketOutcome(
                ticket_id=ticket.ticket_id,
                source_id=ticket.source_id,
                cluster_id=cluster_id,
                gap_id=gap.gap_id if gap is not None else "",
                label=label,
                answered=own_answer,
                coverage_score=gap.coverage.coverage_score if gap is not None else float(own_answer),
                best_article_id=kb.article_ids[row] if row >= 0 else "",
                best_article_title=kb.titles[row] if row >= 0 else "",
                best_article_url=kb.urls[row] if row >= 0 else "",
                best_similarity=round(similarity, 4),
                lift=round(lf, 4),
                kb_answered=own_answer,
                verdict=verdict,
            )
        )
    return outcomes


@dataclass(frozen=True, slots=True)
class ArticleVolume:
    """The tickets whose nearest article this is, by verdict: how much the article answers (its answered volume,
    its own signal beside the gaps) and how often it is the closest article yet does not answer (a failing one)."""

    article_id: str
    title: str
    url: str
    answered: int
    partly: int
    unanswered: int

    @property
    def tickets(self) -> int:
        return self.answered + self.partly + self.unanswered

    @property
    def answered_share(self) -> float:
        return self.answered / self.tickets if self.tickets else 0.0


def article_volumes(outcomes: Sequence[TicketOutcome]) -> list[ArticleVolume]:
    """Per nearest article, its tickets by verdict; most answered first (then most tickets, then id)."""
    tally: dict[str, list[Any]] = {}
    for o in outcomes:
        if not o.best_article_id:
            continue
        entry = tally.setdefault(o.best_article_id, [o.best_article_title, o.best_article_url, Counter()])
        entry[2][o.verdict] += 1
    volumes = [
        ArticleVolume(a, title, url, counts["answered"], counts["partly"], counts["unanswered"])
        for a, (title, url, counts) in tally.items()
    ]
    return sorted(volumes, key=lambda v: (-v.answered, -v.tickets, v.article_id))


def weekly_counts(tickets: Sequence[Ticket]) -> dict[str, int]:
    weeks = Counter(
        f"{t.created_at.isocalendar().year}-W{t.created_at.isocalendar().week:02d}"
        for t in tickets
        if t.created_at is not None
    )
    return dict(sorted(weeks.items()))


def score_gaps(
    clusters: Sequence[GapCluster],
    tickets: Sequence[Ticket],
    vectors: np.ndarray,
    kb: ReleaseVectors,
    policy: CoveragePolicy,
    previous: Sequence[PreviousCluster],
    *,
    run_id: str,
    escalation_weight: float = 1.0,
) -> tuple[list[ScoredGap], list[PreviousCluster]]:
    """Coverage, gap score and trend for each cluster, largest gap first; and the previous run's gaps
    that no current cluster continues (resolved)."""
    row_of = {t.ticket_id: i for i, t in enumerate(tickets)}
    members = [[row_of[tid] for tid in c.ticket_ids] for c in clusters]
    labels = np.full(len(tickets), LONG_TAIL)
    for position, rows in enumerate(members):
        labels[rows] = position
    by_position = centroids(vectors, labels)
    cluster_centroids = [by_position[position] for position in range(len(members))]
    coverages = [
        cluster_coverage(vectors[rows], kb, policy, questions=[tickets[r].text for r in rows]) for rows in members
    ]
    priorities = [
        gap_priority(c.size, cov.coverage_score, c.escalation_share, escalation_weight)
        for c, cov in zip(clusters, coverages, strict=True)
    ]
    matches, gone = match_clusters(cluster_centroids, [c.size for c in clusters], previous, run_id=run_id)
    scored = [
        ScoredGap(
            gap_id=match.gap_id,
            cluster=cluster,
            coverage=coverage,
            gap_score=score,
            priority=round(priority, 3),
            trend=match.trend,
            previous_size=match.previous_size,
            weekly_counts=weekly_counts([tickets[r] for r in rows]),
            centroid=centroid,
        )
        for cluster, coverage, score, priority, match, rows, centroid in zip(
            clusters, coverages, rank_gaps(priorities), priorities, matches, members, cluster_centroids, strict=True
        )
    ]
    return sorted(scored, key=lambda g: (-g.priority, g.gap_id)), gone


class GapStore:
    """The ``gaps`` table: one row per cluster per run, each run versioned against the release it used."""

    def __init__(self, store: IndexStore) -> None:
        self._store = store

    def previous(self) -> list[PreviousCluster]:
        """The latest run's live clusters (resolved rows excluded)."""
        rows = self._store.rows(GAPS_TABLE)
        if not rows:
            return []
        last = max(rows, key=lambda r: r["run_at"])["run_id"]
        return [
            PreviousCluster(r["gap_id"], int(r["size"]), np.asarray(r["centroid"], dtype=np.float32))
            for r in rows
            if r["run_id"] == last and r["trend"] != "resolved"
        ]

    def write_run(
        self,
        *,
        run_id: str,
        run_at: datetime,
        release_tag: str,
        gaps: Sequence[ScoredGap],
        resolved: Sequence[PreviousCluster],
        dimension: int,
    ) -> int:
        rows: list[dict[str, Any]] = [
            {
                "run_id": run_id,
                "run_at": run_at,
                "release_tag": release_tag,
                "gap_id": g.gap_id,
                "label": g.cluster.label,
                "keywords": list(g.cluster.keywords),
                "size": g.cluster.size,
                "previous_size": g.previous_size,
                "trend": g.trend,
                "escalation_share": g.cluster.escalation_share,
                "coverage_score": g.coverage.coverage_score,
                "gap_score": g.gap_score,
                "action": g.coverage.action,
                "suggestion": g.coverage.suggestion(),
                "best_articles": json.dumps([_match_dict(a) for a in g.coverage.best_articles]),
                "central_query": g.cluster.central_query,
                "representatives": list(g.cluster.representatives),
                "first_seen_at": g.cluster.first_seen_at,
                "last_seen_at": g.cluster.last_seen_at,
                "weekly_counts": json.dumps(g.weekly_counts),
                "centroid": g.centroid.tolist(),
            }
            for g in gaps
        ]
        rows += [
            {
                "run_id": run_id,
                "run_at": run_at,
                "release_tag": release_tag,
                "gap_id": p.gap_id,
                "label": "",
                "keywords": [],
                "size": 0,
                "previous_size": p.size,
                "trend": "resolved",
                "escalation_share": 0.0,
                "coverage_score": 1.0,
                "gap_score": 0.0,
                "action": "covered",
                "suggestion": "resolved: no longer asked, or now answered",
                "best_articles": "[]",
                "central_query": "",
                "representatives": [],
                "first_seen_at": None,
                "last_seen_at": None,
                "weekly_counts": "{}",
                "centroid": np.asarray(p.centroid, dtype=np.float32).tolist(),
            }
            for p in resolved
        ]
        schema = _gaps_schema(dimension)
        table = self._store.open_or_create(GAPS_TABLE, schema)
        with lance_errors("cannot write the gaps table"):
            table.add(pa.Table.from_pylist(rows, schema=schema))
        return len(rows)


# -- the KB hit rate -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceHitRate:
    source_id: str
    tickets: int
    answered: int
    previous: float | None = None  # this source's hit rate in the previous run (None: not in it)

    @property
    def hit_rate(self) -> float:
        return self.answered / self.tickets if self.tickets else 0.0


@dataclass(frozen=True, slots=True)
class HitRate:
    """The KB hit rate of one gaps run: the share of its counted tickets that the release answers, each ticket
    judged on its own (``TicketOutcome.kb_answered``), overall and per ticket source, with the previous run's."""

    run_id: str
    release_tag: str
    tickets: int
    answered: int
    per_source: tuple[SourceHitRate, ...]
    previous: float | None = None  # the previous run's overall hit rate (None: first run)
    previous_run_id: str = ""
    previous_release_tag: str = ""

    @property
    def hit_rate(self) -> float:
        return self.answered / self.tickets if self.tickets else 0.0

    @property
    def change(self) -> float | None:
        """Percentage points (as a share) since the previous run; None on the first."""
        return None if self.previous is None else self.hit_rate - self.previous

    def as_dict(self) -> dict[str, Any]:
        return {
            "hit_rate": round(self.hit_rate, 4),
            "tickets": self.tickets,
            "answered": self.answered,
            "previous": None if self.previous is None else round(self.previous, 4),
            "change": None if self.change is None else round(self.change, 4),
            "previous_run_id": self.previous_run_id or None,
            "previous_release": self.previous_release_tag or None,
            "per_source": {
                s.source_id: {
                    "hit_rate": round(s.hit_rate, 4),
                    "tickets": s.tickets,
                    "answered": s.answered,
                    "previous": None if s.previous is None else round(s.previous, 4),
                }
                for s in self.per_source
            },
            "rule": "a ticket is answered when its best chunk's lift reaches gaps.answered_lift",
        }


def kb_hit_rate(
    outcomes: Sequence[TicketOutcome], *, run_id: str, release_tag: str, previous: dict[str, Any] | None = None
) -> HitRate:
    """The hit rate of the run whose per-ticket ``outcomes`` these are; ``previous``: the last run's stored row
    (:meth:`HitRateStore.latest`), for the trend."""
    counts: dict[str, list[int]] = {}
    for outcome in outcomes:
        tally = counts.setdefault(outcome.source_id, [0, 0])
        tally[0] += 1
        tally[1] += outcome.kb_answered
    before = json.loads(previous["per_source_json"]) if previous else {}
    per_source = tuple(
        SourceHitRate(source, n, answered, before[source]["hit_rate"] if source in before else None)
        for source, (n, answered) in sorted(counts.items())
    )
    return HitRate(
        run_id=run_id,
        release_tag=release_tag,
        tickets=len(outcomes),
        answered=sum(o.kb_answered for o in outcomes),
        per_source=per_source,
        previous=float(previous["hit_rate"]) if previous else None,
        previous_run_id=str(previous["run_id"]) if previous else "",
        previous_release_tag=str(previous["release_tag"] or "") if previous else "",
    )


class HitRateStore:
    """The ``gap_runs`` table: one row per gaps run with its KB hit rate."""

    def __init__(self, store: IndexStore) -> None:
        self._store = store

    def history(self) -> list[dict[str, Any]]:
        """Every run's row, oldest first."""
        return sorted(self._store.rows(GAP_RUNS), key=lambda r: (r["run_at"], r["run_id"]))

    def latest(self) -> dict[str, Any] | None:
        rows = self.history()
        return rows[-1] if rows else None

    def write(self, hit_rate: HitRate, *, run_at: datetime) -> None:
        row = {
            "run_id": hit_rate.run_id,
            "run_at": run_at,
            "release_tag": hit_rate.release_tag,
            "tickets": hit_rate.tickets,
            "answered": hit_rate.answered,
            "hit_rate": hit_rate.hit_rate,
            "per_source_json": json.dumps(
                {
                    s.source_id: {"tickets": s.tickets, "answered": s.answered, "hit_rate": s.hit_rate}
                    for s in hit_rate.per_source
                }
            ),
        }
        table = self._store.open_or_create(GAP_RUNS, gap_runs_schema())
        with lance_errors("cannot write the gap_runs table"):
            table.add(pa.Table.from_pylist([row], schema=gap_runs_schema()))


def hit_rate_markdown(hit_rate: HitRate) -> str:
    """The gaps report's hit-rate lines: overall with its trend, then per source when there are several."""

    def trend(now: float, before: float | None) -> str:
        if before is None:
            return "first run"
        return f"{(now - before) * 100:+.1f} points since the previous run ({before:.1%})"

    line = (
        f"**KB hit rate: {hit_rate.hit_rate:.1%}** of {hit_rate.tickets} counted tickets answered by "
        f"`{hit_rate.release_tag}` ({hit_rate.answered}); {trend(hit_rate.hit_rate, hit_rate.previous)}."
    )
    lines = [line]
    if len(hit_rate.per_source) > 1:
        lines += ["", "| ticket source | tickets | hit rate | trend |", "|---|---|---|---|"]
        for s in hit_rate.per_source:
            cells = (s.source_id, str(s.tickets), f"{s.hit_rate:.1%}", trend(s.hit_rate, s.previous))
            lines.append("| " + " | ".join(table_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def _title(gap: ScoredGap) -> str:
    return gap_title(gap.cluster.central_query, gap.cluster.representatives, fallback=gap.cluster.label)


def _match_dict(match: Any) -> dict[str, Any]:
    return {
        "article_id": match.article_id,
        "title": match.title,
        "url": match.url,
        "queries": match.queries,
        "best_similarity": match.best_similarity,
        # The cluster's (redacted) questions this article does not answer: what extending it should add.
        "unanswered": list(match.unanswered),
    }


def gaps_markdown(
    gaps: Sequence[ScoredGap],
    resolved: Sequence[PreviousCluster],
    *,
    release_tag: str,
    summary: dict[str, Any],
    top: int = 15,
    long_tail: Sequence[LongTailQuestion] = (),
    hit_rate: HitRate | None = None,
    articles: Sequence[ArticleVolume] = (),
) -> str:
    """The ranked gap list a KB owner reads (the ``kb-gaps`` artifact). Texts are the redacted ones.

    ``articles``: the answered volume per article (:func:`article_volumes`), listed after the gaps.
    """
    verdicts = summary.get("verdicts")
    decided = (
        f" Decided per ticket first: {verdicts['answered']} answered, {verdicts['partly']} partly answered, "
        f"{verdicts['unanswered']} not answered; only the last two are clustered into gaps."
        if verdicts
        else ""
    )
    lines = [
        f"# Knowledge gaps against `{release_tag}`",
        "",
        f"{summary.get('tickets', 0)} tickets, {summary.get('n_clusters', 0)} clusters, long tail "
        f"{summary.get('long_tail_share', 0):.0%}, {summary.get('quarantined', 0)} rows quarantined.{decided}",
        "",
    ]
    if hit_rate is not None:
        lines += [hit_rate_markdown(hit_rate), ""]
    lines += [
        "| # | gap | size | trend | escalated | coverage | gap score | suggested action | e.g. |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    open_gaps = [g for g in gaps if g.coverage.action != "covered"]
    for rank, gap in enumerate(open_gaps[:top], start=1):
        cells = (
            str(rank),
            f"{_title(gap)} ({gap.cluster.label})",
            str(gap.cluster.size),
            gap.trend,
            f"{gap.cluster.escalation_share:.0%}",
            f"{gap.coverage.coverage_score:.0%}",
            f"{gap.gap_score:.2f}",
            gap.coverage.suggestion(),
            gap.cluster.central_query,
        )
        lines.append("| " + " | ".join(table_cell(c) for c in cells) + " |")
    covered = [g for g in gaps if g.coverage.action == "covered"]
    if covered or not articles:
        lines += ["", f"Covered by the KB already: {len(covered)} clusters."]
    for gap in covered[:top]:
        best = gap.coverage.best_articles[0].title if gap.coverage.best_articles else "?"
        lines.append(f"- {table_cell(gap.cluster.label)} ({gap.cluster.size}): {table_cell(best)}")
    if articles:
        lines += [
            "",
            "Answered volume per article: the tickets whose closest article it is, by decision (an article often "
            "closest but rarely answering is failing its readers).",
            "",
            "| article | answered | partly | not answered |",
            "|---|---|---|---|",
        ]
        lines += [f"| {table_cell(a.title)} | {a.answered} | {a.partly} | {a.unanswered} |" for a in articles[:top]]
    one_offs = [q for q in long_tail if q.reason == "one_off"]
    if one_offs:
        lines += [
            "",
            f"Asked once or twice, and not answered by the KB: {len(one_offs)} long-tail questions "
            "(least answered first).",
            "",
            "| question | closest article |",
            "|---|---|",
        ]
        lines += [f"| {table_cell(q.text)} | {table_cell(q.closest_title)} |" for q in one_offs[:top]]
    unreadable = len(long_tail) - len(one_offs)
    if unreadable:
        lines += [
            "",
            f"Unreadable, kept out of every gap: {unreadable} tickets (keyboard mash or pasted codes; under a third "
            "of their words are words the embedding model knows). Listed in gaps.json under "
            "`long_tail_unanswered` with reason `unreadable`.",
        ]
    if resolved:
        lines += ["", f"Resolved since the last run: {len(resolved)} gaps."]
    return "\n".join(lines) + "\n"


def write_gap_exports(
    out_dir: Path,
    gaps: Sequence[ScoredGap],
    long_tail: Sequence[LongTailQuestion] = (),
    *,
    tickets: Sequence[TicketOutcome] = (),
    hit_rate: HitRate | None = None,
    articles: Sequence[ArticleVolume] = (),
) -> dict[str, Path]:
    """Write ``gaps.json`` and ``gaps.csv``; a CSV cell that a spreadsheet would run as a formula (labels and
    queries come from customers) is written as text, as ``open-items --csv`` does.

    ``tickets``: the per-ticket listing (see :class:`TicketOutcome`), under ``"tickets"`` in the JSON and, in the
    CSV, one row per ticket after the gap rows: those rows fill the ticket columns (``ticket_id`` onwards) and
    their gap's ``gap_id``, ``label``, ``coverage_score`` and ``action``, and leave the gap-only columns empty.
    ``articles``: the answered volume per article, under ``"articles"`` in the JSON.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "gaps.json", "csv": out_dir / "gaps.csv"}
    gap_by_id = {g.gap_id: g for g in gaps}
    records = [
        {
            "gap_id": g.gap_id,
            "title": _title(g),  # a readable question; the label is the keyword triple
            "label": g.cluster.label,
            "keywords": list(g.cluster.keywords),
            "size": g.cluster.size,
            "trend": g.trend,
            "previous_size": g.previous_size,
            "escalation_share": g.cluster.escalation_share,
            "coverage_score": g.coverage.coverage_score,
            "gap_score": g.gap_score,
            "action": g.coverage.action,
            "suggestion": g.coverage.suggestion(),
            "best_articles": [_match_dict(a) for a in g.coverage.best_articles],
            "central_query": g.cluster.central_query,
            "representative_queries": list(g.cluster.representatives),
            "weekly_counts": g.weekly_counts,
        }
        for g in gaps
    ]
    document: dict[str, Any] = {
        "gaps": records,
        "long_tail_unanswered": [
            {
                "ticket_id": q.ticket_id,
                "text": q.text,
                "lift": q.lift,
                "closest_article": q.closest_title,
                "closest_url": q.closest_url,
                "reason": q.reason,
            }
            for q in long_tail
        ],
        "tickets": [_ticket_dict(t) for t in tickets],
        "articles": [
            {
                "article_id": a.article_id,
                "title": a.title,
                "url": a.url,
                "answered": a.answered,
                "partly": a.partly,
                "unanswered": a.unanswered,
            }
            for a in articles
        ],
    }
    if hit_rate is not None:
        document["kb_hit_rate"] = hit_rate.as_dict()
    paths["json"].write_text(json.dumps(document, indent=1, ensure_ascii=False), encoding="utf-8")
    with paths["csv"].open("w", newline="", encoding="utf-8") as handle:
        columns = [
            "gap_id",
            "label",
            "size",
            "trend",
            "escalation_share",
            "coverage_score",
            "gap_score",
            "action",
            "suggestion",
            "central_query",
        ]
        if tickets:  # without a listing the CSV keeps its gap columns only
            columns += [c for c in _ticket_dict(tickets[0]) if c not in columns]
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(
            {key: sheet_text(value) if isinstance(value, str) else value for key, value in record.items()}
            for record in [*records, *(_ticket_row(t, gap_by_id) for t in tickets)]
        )
    return paths


def _ticket_dict(outcome: TicketOutcome) -> dict[str, Any]:
    return {
        "ticket_id": outcome.ticket_id,
        "source_id": outcome.source_id,
        "cluster_id": outcome.cluster_id,
        "gap_id": outcome.gap_id,
        "label": outcome.label,
        "answered": outcome.answered,
        "coverage_score": outcome.coverage_score,
        "best_article_id": outcome.best_article_id,
        "best_article_title": outcome.best_article_title,
        "best_article_url": outcome.best_article_url,
        "best_similarity": outcome.best_similarity,
        "lift": outcome.lift,
        "kb_answered": outcome.kb_answered,
        "verdict": outcome.verdict,
    }


def _ticket_row(outcome: TicketOutcome, gap_by_id: dict[str, ScoredGap]) -> dict[str, Any]:
    gap = gap_by_id.get(outcome.gap_id)
    return {**_ticket_dict(outcome), "action": gap.coverage.action if gap is not None else ""}
