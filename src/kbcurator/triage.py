"""Triage that persists: a KB owner's decisions on findings and gaps, kept in the index's database.

The ``triage`` table is append-only: one row per decision, the latest row per item id wins, so the history of an
item (who dismissed it, when it was snoozed) is never lost. Decisions are keyed by the stable ids the audit
(``stale:broken_link:<hash>``) and the gap tracker (``gap-<hash>``) give an item across runs, which is what makes a
decision outlive the run it was made on.
"""

from __future__ import annotations

import csv
import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pyarrow as pa

from kbcurator.analysis.store import FINDINGS_TABLE, finding_from_row
from kbcurator.errors import KBError, PublishError
from kbcurator.gaps.report import GAPS_TABLE
from kbcurator.index import schema
from kbcurator.index.schema import triage_schema
from kbcurator.index.store import IndexStore, lance_errors
from kbcurator.records import SEVERITIES
from kbcurator.spreadsheet import sheet_text

TRIAGE_TABLE = schema.TRIAGE

ItemKind = Literal["finding", "gap"]
Status = Literal["open", "accepted", "dismissed", "snoozed", "assigned", "resolved"]
STATUSES: tuple[Status, ...] = get_args(Status)

# A gap that comes back after it was resolved gets a new id from the tracker (it only follows live clusters), so a
# returning topic is recognised by its centroid, with the tracker's own continuation threshold.
REOPEN_SIMILARITY = 0.8
_NEVER = datetime.min.replace(tzinfo=UTC)


class TriageError(KBError):
    """A triage decision that cannot be recorded: an unknown item id, or a status without what it needs."""


@dataclass(frozen=True, slots=True)
class TriageDecision:
    item_id: str
    item_kind: ItemKind
    status: Status
    note: str
    assignee: str
    snoozed_until: datetime | None  # UTC; the item is listed again from this instant
    decided_at: datetime  # UTC
    decided_by: str


@dataclass(frozen=True, slots=True)
class OpenItem:
    """One finding or gap of the latest runs, as a KB owner's to-do list shows it."""

    item_id: str
    kind: ItemKind
    status: Status  # the decision in force: "open" when there is none, or a snooze has ended, or it was reopened
    reopened: bool  # it had been resolved and is back, and nobody has decided on it since
    reopened_from: str  # the resolved gap it continues, when the tracker gave it a new id; else ""
    severity: str  # findings only
    score: float  # finding score, or gap score
    summary: str
    articles: tuple[str, ...]  # article ids involved (findings) or closest to the gap (gaps)
    urls: tuple[str, ...]
    assignee: str
    note: str
    snoozed_until: datetime | None
    decided_at: datetime | None
    decided_by: str
    titles: tuple[str, ...] = ()  # the titles of the articles in ``urls``, in the same order


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def known_items(store: IndexStore) -> dict[str, ItemKind]:
    """Every finding and gap id any run has reported, with its kind."""
    known: dict[str, ItemKind] = {}
    for row in store.rows(FINDINGS_TABLE, ["finding_id"]):
        if row["finding_id"]:
            known[row["finding_id"]] = "finding"
    for row in store.rows(GAPS_TABLE, ["gap_id"]):
        if row["gap_id"]:
            known[row["gap_id"]] = "gap"
    return known


class TriageStore:
    """The ``triage`` table of one index database."""

    def __init__(self, store: IndexStore) -> None:
        self._store = store

    def decide(
        self,
        item_id: str,
        status: str,
        *,
        decided_by: str,
        note: str = "",
        assignee: str = "",
        snoozed_until: datetime | None = None,
        decided_at: datetime | None = None,
    ) -> TriageDecision:
        """Record a decision on a finding or gap that some run reported.

        Raises:
            TriageError: unknown id; a status other than ``STATUSES``; ``snoozed`` without a future
                ``snoozed_until`` or ``assigned`` without ``assignee`` (and either given with another status).
        """
        if status not in STATUSES:
            raise TriageError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        decided_at = _utc(decided_at) or datetime.now(UTC)
        snoozed_until = _utc(snoozed_until)
        if status == "snoozed" and snoozed_until is None:
            raise TriageError("a snoozed item needs the date it comes back (--until YYYY-MM-DD)")
        if status != "snoozed" and snoozed_until is not None:
            raise TriageError(f"a date to come back goes with status snoozed, not {status}")
        if snoozed_until is not None and snoozed_until <= decided_at:
            raise TriageError(f"cannot snooze until {snoozed_until:%Y-%m-%d}: that date has passed")
        if status == "assigned" and not assignee.strip():
            raise TriageError("an assigned item needs someone to assign it to (--assignee NAME)")
        if status != "assigned" and assignee:
            raise TriageError(f"an assignee goes with status assigned, not {status}")
        known = known_items(self._store)
        if item_id not in known:
            close = difflib.get_close_matches(item_id, list(known), n=1, cutoff=0.8)
            hint = f"; did you mean {close[0]}?" if close else "; `kbcurator open-items` lists the ids"
            where = self._store.uri
            raise TriageError(f"unknown item id {item_id!r}: no audit or gaps run in {where} reported it{hint}")
        decision = TriageDecision(
            item_id=item_id,
            item_kind=known[item_id],
            status=status,
            note=note,
            assignee=assignee.strip(),
            snoozed_until=snoozed_until,
            decided_at=decided_at,
            decided_by=decided_by,
        )
        table = self._store.open_or_create(TRIAGE_TABLE, triage_schema())
        row = {
            "item_id": decision.item_id,
            "item_kind": decision.item_kind,
            "status": decision.status,
            "note": decision.note,
            "assignee": decision.assignee,
            "snoozed_until": decision.snoozed_until,
            "decided_at": decision.decided_at,
            "decided_by": decision.decided_by,
        }
        with lance_errors("cannot record the triage decision"):
            table.add(pa.Table.from_pylist([row], schema=triage_schema()))
        return decision

    def _all(self) -> list[TriageDecision]:
        decisions = [
            TriageDecision(
                item_id=row["item_id"],
                item_kind=row["item_kind"],
                status=row["status"],
                note=row["note"] or "",
                assignee=row["assignee"] or "",
                snoozed_until=_utc(row["snoozed_until"]),
                decided_at=_utc(row["decided_at"]) or _NEVER,
                decided_by=row["decided_by"] or "",
            )
            for row in self._store.rows(TRIAGE_TABLE)
        ]
        # Stable sort: two decisions with the same timestamp keep the order they were appended in.
        return sorted(decisions, key=lambda d: d.decided_at)

    def current(self) -> dict[str, TriageDecision]:
        """The decision in force per item: its latest."""
        return {d.item_id: d for d in self._all()}

    def history(self, item_id: str) -> list[TriageDecision]:
        """Every decision on one item, oldest first."""
        return [d for d in self._all() if d.item_id == item_id]


# -- the to-do list ------------------------------------------------------------------------------


def _latest(rows: Sequence[dict[str, Any]]) -> tuple[str, datetime] | None:
    if not rows:
        return None
    last = max(rows, key=lambda r: (r["run_at"], r["run_id"]))
    return last["run_id"], _utc(last["run_at"]) or _NEVER


def _article_urls(store: IndexStore, index_version: str) -> dict[str, tuple[str, str]]:
    """Article id -> (URL, title) in the release the audit ran on (the current one if that tag is gone)."""
    try:
        release = store.resolve(index_version or None)
    except PublishError:
        try:
            release = store.resolve(None)
        except PublishError:
            return {}
    try:
        table = store.read_table(schema.ARTICLES, release.articles_version, ["article_id", "url", "title"])
    except PublishError:
        return {}  # links are a convenience: a missing articles table must not hide the to-do list
    return {
        a: (u or "", t or "")
        for a, u, t in zip(
            table["article_id"].to_pylist(), table["url"].to_pylist(), table["title"].to_pylist(), strict=True
        )
    }


def _is_live_gap(row: dict[str, Any]) -> bool:
    # A covered cluster is asked about but answered by the KB: nothing to do, so it does not count as a gap.
    return row["trend"] != "resolved" and row["action"] != "covered"


def _reopened_at(
    runs: Sequence[tuple[datetime, bool]], decision: TriageDecision | None, latest_at: datetime
) -> datetime | None:
    """When an item came back after it was closed: by a ``resolved`` decision, or by a run where it was not live.

    ``runs`` are ``(run_at, live)`` of every run that had a row for the item. None when it never closed, or
    when it is not live in the latest run.
    """
    closes = [at for at, live in runs if not live]
    if decision is not None and decision.status == "resolved":
        closes.append(decision.decided_at)
    if not closes:
        return None
    closed_at = max(closes)
    back = [at for at, live in runs if live and at > closed_at]
    return min(back) if back and max(back) == latest_at else None


def _decision_view(
    decision: TriageDecision | None, reopened_at: datetime | None, as_of: datetime
) -> tuple[Status, bool, bool]:
    """``(status shown, visible by default, reopened)`` for one item of the latest run."""
    if decision is None:
        return "open", True, reopened_at is not None
    reopened = reopened_at is not None and decision.decided_at < reopened_at
    if decision.status == "resolved":
        # Marked resolved after the latest run: wait for the next run to confirm it before listing it again.
        return ("open", True, True) if reopened else ("resolved", False, False)
    if decision.status == "dismissed":
        return "dismissed", False, reopened
    if decision.status == "snoozed":
        if decision.snoozed_until is not None and as_of >= decision.snoozed_until:
            return "open", True, reopened
        return "snoozed", False, reopened
    return decision.status, True, reopened


def _finding_items(store: IndexStore) -> tuple[list[dict[str, Any]], datetime | None]:
    rows = store.rows(FINDINGS_TABLE)
    latest = _latest(rows)
    if latest is None:
        return [], None
    run_id, latest_at = latest
    mine = [r for r in rows if r["run_id"] == run_id and r["finding_id"]]
    urls = _article_urls(store, mine[0]["index_version"]) if mine else {}
    items = []
    for row in mine:
        finding = finding_from_row(row)
        items.append(
            {
                "item_id": finding.finding_id,
                "kind": "finding",
                "runs": [(latest_at, True)],
                "reopened_from": "",
                "severity": finding.severity,
                "score": finding.score,
                "summary": f"{finding.kind}/{finding.check}: {finding.summary} -> {finding.action}",
                "articles": finding.article_ids,
                "urls": tuple(urls[a][0] for a in finding.article_ids if a in urls),
                "titles": tuple(urls[a][1] for a in finding.article_ids if a in urls),
            }
        )
    return items, latest_at


def _gap_summary(row: dict[str, Any]) -> str:
    return (
        f"{row['label']}: {row['size']} tickets, {row['trend']}, {row['escalation_share']:.0%} escalated"
        f" -> {row['suggestion']}"
    )


def _gap_items(store: IndexStore, decisions: dict[str, TriageDecision]) -> tuple[list[dict[str, Any]], datetime | None]:
    rows = store.rows(GAPS_TABLE)
    latest = _latest(rows)
    if latest is None:
        return [], None
    run_id, latest_at = latest
    by_gap: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_gap.setdefault(row["gap_id"], []).append(row)
    live = [r for r in rows if r["run_id"] == run_id and _is_live_gap(r)]
    live_ids = {r["gap_id"] for r in live}
    # Gaps closed now: their last row says resolved, or the owner marked them resolved; neither is live.
    closed = {
        gap_id: max(gap_rows, key=lambda r: r["run_at"])
        for gap_id, gap_rows in by_gap.items()
        if gap_id not in live_ids
        and (
            max(gap_rows, key=lambda r: r["run_at"])["trend"] == "resolved"
            or (gap_id in decisions and decisions[gap_id].status == "resolved")
        )
    }
    closed_ids = sorted(closed)
    closed_matrix = (
        np.stack([np.asarray(closed[g]["centroid"], dtype=np.float32) for g in closed_ids]) if closed_ids else None
    )
    items = []
    for row in sorted(live, key=lambda r: -r["gap_score"]):
        # Only a resolved row closes a gap: coverage near its threshold would flap "covered" on and off.
        runs = [(_utc(r["run_at"]) or latest_at, r["trend"] != "resolved") for r in by_gap[row["gap_id"]]]
        reopened_from = ""
        if closed_matrix is not None and len(by_gap[row["gap_id"]]) == 1:
            similarity = closed_matrix @ np.asarray(row["centroid"], dtype=np.float32)
            best = int(np.argmax(similarity))
            if similarity[best] >= REOPEN_SIMILARITY:
                reopened_from = closed_ids[best]
                # The topic closed when its predecessor did; this run is when it came back.
                runs = [(_NEVER, False), *runs]
        matches = json.loads(row["best_articles"] or "[]")
        items.append(
            {
                "item_id": row["gap_id"],
                "kind": "gap",
                "runs": runs,
                "reopened_from": reopened_from,
                "severity": "",
                "score": float(row["gap_score"]),
                "summary": _gap_summary(row),
                "articles": tuple(m["article_id"] for m in matches),
                "urls": tuple(m["url"] for m in matches),
                "titles": tuple(m.get("title", "") for m in matches),
            }
        )
    return items, latest_at


def open_items(store: IndexStore, as_of: datetime, *, include_dismissed: bool = False) -> list[OpenItem]:
    """The findings of the latest audit and the gaps of the latest gaps run, with the decisions in force.

    Dismissed items, items snoozed past ``as_of`` and items marked resolved since the latest run are left out
    unless ``include_dismissed``. A snoozed item is listed again (as open) once ``as_of`` reaches its date. An
    item marked resolved that a later run still reports, or a gap that comes back after a run reported it
    resolved, is open and ``reopened`` until someone decides on it again. Reopened items come first, then
    findings by severity and score, then gaps by gap score.
    """
    as_of = _utc(as_of) or datetime.now(UTC)
    decisions = TriageStore(store).current()
    findings, findings_at = _finding_items(store)
    gaps, gaps_at = _gap_items(store, decisions)
    items = []
    for raw, latest_at in [*((f, findings_at) for f in findings), *((g, gaps_at) for g in gaps)]:
        decision = decisions.get(raw["item_id"])
        reopened_at = _reopened_at(raw["runs"], decision, latest_at or as_of)
        status, visible, reopened = _decision_view(decision, reopened_at, as_of)
        if not visible and not include_dismissed:
            continue
        items.append(
            OpenItem(
                item_id=raw["item_id"],
                kind=raw["kind"],
                status=status,
                reopened=reopened,
                reopened_from=raw["reopened_from"] if reopened else "",
                severity=raw["severity"],
                score=raw["score"],
                summary=raw["summary"],
                articles=tuple(raw["articles"]),
                urls=tuple(raw["urls"]),
                titles=tuple(raw["titles"]),
                assignee=decision.assignee if decision else "",
                note=decision.note if decision else "",
                snoozed_until=decision.snoozed_until if decision else None,
                decided_at=decision.decided_at if decision else None,
                decided_by=decision.decided_by if decision else "",
            )
        )
    severity_rank: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(
        items,
        key=lambda i: (not i.reopened, i.kind != "finding", -severity_rank.get(i.severity, -1), -i.score, i.item_id),
    )


# -- spreadsheet export -----------------------------------------------------------------------------

CSV_COLUMNS = (
    "item_id",
    "kind",
    "status",
    "reopened",
    "severity",
    "score",
    "summary",
    "articles",
    "urls",
    "titles",
    "assignee",
    "note",
    "snoozed_until",
    "decided_by",
    "decided_at",
)


def _date(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def write_open_items_csv(path: Path, items: Iterable[OpenItem]) -> int:
    """Write the items for a spreadsheet (quoting by the csv module); returns how many rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for item in items:
            writer.writerow(
                [
                    item.item_id,
                    item.kind,
                    item.status,
                    "yes" if item.reopened else "",
                    item.severity,
                    f"{item.score:.3f}",
                    sheet_text(item.summary),
                    sheet_text("; ".join(item.articles)),
                    sheet_text("; ".join(item.urls)),
                    sheet_text("; ".join(t for t in item.titles if t)),
                    sheet_text(item.assignee),
                    sheet_text(item.note),
                    _date(item.snoozed_until),
                    sheet_text(item.decided_by),
                    _date(item.decided_at),
                ]
            )
            count += 1
    return count
