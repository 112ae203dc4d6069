"""Score clusters as knowledge gaps, keep them run to run in the index database, and report them."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from kbcurator.gaps.clustering import LONG_TAIL, centroids
from kbcurator.gaps.coverage import Coverage, CoveragePolicy, ReleaseVectors, cluster_coverage, gap_priority, rank_gaps
from kbcurator.gaps.tracking import PreviousCluster, Trend, match_clusters
from kbcurator.index.store import IndexStore, lance_errors
from kbcurator.markdown import table_cell
from kbcurator.records import GapCluster, Ticket
from kbcurator.spreadsheet import sheet_text

GAPS_TABLE = "gaps"
_TS = pa.timestamp("us", tz="UTC")


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
    """A query no cluster took, which the KB does not answer either: reviewed one by one."""

    ticket_id: str
    text: str  # redacted
    lift: float
    closest_title: str
    closest_url: str


def unanswered_long_tail(
    tickets: Sequence[Ticket],
    vectors: np.ndarray,
    labels: np.ndarray,
    kb: ReleaseVectors,
    policy: CoveragePolicy,
) -> list[LongTailQuestion]:
    """Long-tail queries whose lift is below the answered threshold, least answered first.

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
        )
        for r, lf, c in zip(rows.tolist(), lift.tolist(), chunk_rows.tolist(), strict=True)
        if lf < policy.answered_lift
    ]
    return sorted(found, key=lambda q: (q.lift, q.ticket_id))


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
    coverages = [cluster_coverage(vectors[rows], kb, policy) for rows in members]
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


def _gaps_schema(dimension: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("run_id", pa.string()),
            pa.field("run_at", _TS),
            pa.field("release_tag", pa.string()),
            pa.field("gap_id", pa.string()),
            pa.field("label", pa.string()),
            pa.field("keywords", pa.list_(pa.string())),
            pa.field("size", pa.int64()),
            pa.field("previous_size", pa.int64()),
            pa.field("trend", pa.string()),
            pa.field("escalation_share", pa.float64()),
            pa.field("coverage_score", pa.float64()),
            pa.field("gap_score", pa.float64()),
            pa.field("action", pa.string()),
            pa.field("suggestion", pa.string()),
            pa.field("best_articles", pa.string()),  # JSON: [{article_id, title, url, queries, best_similarity}]
            pa.field("central_query", pa.string()),
            pa.field("representatives", pa.list_(pa.string())),
            pa.field("first_seen_at", _TS),
            pa.field("last_seen_at", _TS),
            pa.field("weekly_counts", pa.string()),  # JSON {"2026-W47": 12}
            pa.field("centroid", pa.list_(pa.float32(), dimension)),
        ]
    )


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


def _match_dict(match: Any) -> dict[str, Any]:
    return {
        "article_id": match.article_id,
        "title": match.title,
        "url": match.url,
        "queries": match.queries,
        "best_similarity": match.best_similarity,
    }


def gaps_markdown(
    gaps: Sequence[ScoredGap],
    resolved: Sequence[PreviousCluster],
    *,
    release_tag: str,
    summary: dict[str, Any],
    top: int = 15,
    long_tail: Sequence[LongTailQuestion] = (),
) -> str:
    """The ranked gap list a KB owner reads (the ``kb-gaps`` artifact). Texts are the redacted ones."""
    lines = [
        f"# Knowledge gaps against `{release_tag}`",
        "",
        f"{summary.get('tickets', 0)} tickets, {summary.get('n_clusters', 0)} clusters, long tail "
        f"{summary.get('long_tail_share', 0):.0%}, {summary.get('quarantined', 0)} rows quarantined.",
        "",
        "| # | gap | size | trend | escalated | coverage | gap score | suggested action | e.g. |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    open_gaps = [g for g in gaps if g.coverage.action != "covered"]
    for rank, gap in enumerate(open_gaps[:top], start=1):
        cells = (
            str(rank),
            gap.cluster.label,
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
    lines += ["", f"Covered by the KB already: {len(covered)} clusters."]
    for gap in covered[:top]:
        best = gap.coverage.best_articles[0].title if gap.coverage.best_articles else "?"
        lines.append(f"- {table_cell(gap.cluster.label)} ({gap.cluster.size}): {table_cell(best)}")
    if long_tail:
        lines += [
            "",
            f"Asked once or twice, and not answered by the KB: {len(long_tail)} long-tail questions "
            "(least answered first).",
            "",
            "| question | closest article |",
            "|---|---|",
        ]
        lines += [f"| {table_cell(q.text)} | {table_cell(q.closest_title)} |" for q in long_tail[:top]]
    if resolved:
        lines += ["", f"Resolved since the last run: {len(resolved)} gaps."]
    return "\n".join(lines) + "\n"


def write_gap_exports(
    out_dir: Path, gaps: Sequence[ScoredGap], long_tail: Sequence[LongTailQuestion] = ()
) -> dict[str, Path]:
    """Write ``gaps.json`` and ``gaps.csv``; a CSV cell that a spreadsheet would run as a formula (labels and
    queries come from customers) is written as text, as ``open-items --csv`` does."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "gaps.json", "csv": out_dir / "gaps.csv"}
    records = [
        {
            "gap_id": g.gap_id,
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
    document = {
        "gaps": records,
        "long_tail_unanswered": [
            {
                "ticket_id": q.ticket_id,
                "text": q.text,
                "lift": q.lift,
                "closest_article": q.closest_title,
                "closest_url": q.closest_url,
            }
            for q in long_tail
        ],
    }
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
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(
            {key: sheet_text(value) if isinstance(value, str) else value for key, value in record.items()}
            for record in records
        )
    return paths
