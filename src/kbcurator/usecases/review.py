"""The KB owner's review: one queue of what to fix across kinds, ranked by impact, and the decisions taken on it.

What the review app (``kbcurator serve``), and any other surface that lists work, calls. It reads the latest audit
and gaps runs and the triage table through the storage boundary and never writes anything but triage decisions.

Impact is counted in tickets, so kinds compare:

- a gap: its tickets x (1 - coverage) x the escalation weight (``gaps.coverage.gap_priority``);
- a failing article: the escalated tickets that ended on it, weighted as escalations;
- a contradiction: its certainty x 2 (a customer gets a wrong answer) x (1 + the tickets that reach its articles);
- a duplicate or another stale finding: its score x (1 + the tickets that reach its articles);
- the articles due for review, one block per owner: the tickets that reach them, weighted by how far past their
  review date each is (capped at one interval), plus a small base per article so a block never scores zero.

"Tickets that reach an article" are those of the latest gaps run whose best-matching article it is, answered or
not (a page-view export would be the better measure; it is not read yet).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, Literal

from kbcurator.analysis.review_due import DueArticle, review_due
from kbcurator.analysis.store import FINDINGS_TABLE, FindingStore
from kbcurator.errors import KBError, PublishError
from kbcurator.gaps.coverage import gap_priority
from kbcurator.gaps.labels import gap_title
from kbcurator.gaps.report import GAPS_TABLE, HitRateStore
from kbcurator.index import schema
from kbcurator.index.golden import RetrievalSummary, retrieval_summary
from kbcurator.index.store import IndexStore, manifest_of
from kbcurator.records import Finding
from kbcurator.settings import Settings
from kbcurator.triage import STATUSES, OpenItem, TriageDecision, TriageError, TriageStore, open_items

QueueKind = Literal["gap", "contradiction", "duplicate", "stale", "failing_article", "review_due"]
QUEUE_KINDS: tuple[QueueKind, ...] = ("gap", "contradiction", "duplicate", "failing_article", "stale", "review_due")
KIND_NAMES: dict[str, str] = {
    "gap": "Knowledge gap",
    "contradiction": "Contradiction",
    "duplicate": "Duplicate",
    "failing_article": "Failing article",
    "stale": "Stale content",
    "review_due": "Review due",
}
Action = Literal["accept", "dismiss", "snooze", "assign", "resolve", "note", "reopen"]
ACTIONS: tuple[Action, ...] = ("accept", "dismiss", "snooze", "assign", "resolve", "note", "reopen")
# Statuses a KB owner has set aside: not in the default ("open") view of the queue.
SET_ASIDE = frozenset({"dismissed", "snoozed", "resolved"})
REVIEW_DUE_PREFIX = "review-due:"
NO_OWNER = "(no owner)"

_CONTRADICTION_WEIGHT = 2.0
_REVIEW_BASE = 0.05  # per article due for review with no ticket reaching it
_ESCALATED_COUNT = re.compile(r"^(\d+) escalated tickets")


class ReviewError(KBError):
    """A review action that cannot be taken: unknown item, unknown action, or a missing reason, date or person."""


@dataclass(frozen=True, slots=True)
class ArticleRef:
    article_id: str
    title: str
    url: str
    source_id: str
    owner: str
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One line of the queue: a finding, a gap, or one owner's articles due for review."""

    item_id: str  # the triage id (finding or gap id); "review-due:<owner>" for a review block
    kind: QueueKind
    title: str
    summary: str
    advice: str
    impact: float
    impact_why: str
    severity: str
    status: str
    assignee: str
    note: str
    reopened: bool
    decided_by: str
    snoozed_until: datetime | None
    sources: tuple[str, ...]
    owners: tuple[str, ...]
    articles: tuple[ArticleRef, ...]
    members: tuple[str, ...] = ()  # review block: the age findings it holds, oldest article first
    overdue_days: int = 0  # review block: the most overdue article's days past its review date

    @property
    def set_aside(self) -> bool:
        return self.status in SET_ASIDE

    @property
    def status_label(self) -> str:
        label = self.status
        if self.status == "assigned" and self.assignee:
            label = f"assigned to {self.assignee}"
        elif self.status == "snoozed" and self.snoozed_until is not None:
            label = f"snoozed until {self.snoozed_until:%Y-%m-%d}"
        return label + (" (reopened)" if self.reopened else "")


@dataclass(frozen=True, slots=True)
class QueueFilter:
    kind: str = ""
    source: str = ""
    owner: str = ""
    status: str = "open"  # "open": what is still to do (not dismissed, snoozed or resolved); "all"; or a status
    assignee: str = ""


@dataclass(frozen=True, slots=True)
class QueueView:
    items: tuple[QueueItem, ...]  # this page
    total: int  # items matching every filter
    counts: dict[str, int]  # per kind, matching every filter but the kind (so the tabs agree with the list)
    page: int
    pages: int
    sources: tuple[str, ...]
    owners: tuple[str, ...]
    assignees: tuple[str, ...]
    audit_at: datetime | None
    gaps_at: datetime | None
    hit_rate: KbHitRate | None = None
    release_tag: str = ""
    retrieval: RetrievalSummary | None = None  # the current release's golden-question gate


@dataclass(frozen=True, slots=True)
class KbHitRate:
    """The latest gaps run's KB hit rate: the share of its counted tickets the release answers."""

    hit_rate: float
    tickets: int
    answered: int
    release_tag: str
    previous: float | None  # the run before's, for the trend


@dataclass(frozen=True, slots=True)
class ReviewDueLine:
    """One article of a review block, with the decision on its age finding."""

    due: DueArticle
    status: str

    @property
    def finding_id(self) -> str:
        return self.due.finding_id

    @property
    def overdue_days(self) -> int:
        return self.due.overdue_days


@dataclass(frozen=True, slots=True)
class GapDetail:
    label: str
    keywords: tuple[str, ...]
    questions: tuple[str, ...]  # redacted, most central first
    size: int
    trend: str
    coverage_score: float
    escalation_share: float
    suggestion: str
    closest: tuple[dict[str, Any], ...]  # {article_id, title, url, queries, best_similarity, unanswered}
    weekly_counts: dict[str, int]
    first_seen_at: datetime | None
    reopened_from: str


@dataclass(frozen=True, slots=True)
class ItemDetail:
    item: QueueItem
    finding: Finding | None
    gap: GapDetail | None
    review_due: tuple[ReviewDueLine, ...]
    history: tuple[TriageDecision, ...]
    article_refs: dict[str, ArticleRef] = field(repr=False, default_factory=dict)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ReviewQueue:
    """The review use case over one index database: build the queue, show an item, record a decision."""

    def __init__(self, settings: Settings, *, store: IndexStore | None = None) -> None:
        self._settings = settings
        self._store = store or IndexStore(settings.index_uri, storage_options=settings.index_storage_options)
        self._owner_of_source = {s.id: s.owner or NO_OWNER for s in settings.sources}
        self._interval_of_source = {s.id: s.review.interval_days for s in settings.sources}

    # -- reading ---------------------------------------------------------------------------------------

    def owners(self) -> tuple[str, ...]:
        """People work can be assigned to: the source owners and the app's users."""
        named = {o for o in self._owner_of_source.values() if o != NO_OWNER} | set(self._settings.serve.users)
        return tuple(sorted(named))

    def _articles(self) -> dict[str, ArticleRef]:
        try:
            release = self._store.resolve(None)
            table = self._store.read_table(
                schema.ARTICLES, release.articles_version, ["article_id", "source_id", "title", "url", "updated_at"]
            )
        except PublishError:
            return {}
        refs: dict[str, ArticleRef] = {}
        for row in table.to_pylist():
            source = row["source_id"] or row["article_id"].split(":", 1)[0]
            refs[row["article_id"]] = ArticleRef(
                row["article_id"],
                row["title"] or "",
                row["url"] or "",
                source,
                self._owner_of_source.get(source, ""),
                _utc(row["updated_at"]),
            )
        return refs

    def _ref(self, refs: dict[str, ArticleRef], article_id: str, title: str = "", url: str = "") -> ArticleRef:
        if article_id in refs:
            return refs[article_id]
        source = article_id.split(":", 1)[0]
        return ArticleRef(article_id, title or article_id, url, source, self._owner_of_source.get(source, NO_OWNER))

    def _latest_gap_rows(self) -> tuple[list[dict[str, Any]], datetime | None]:
        rows = self._store.rows(GAPS_TABLE)
        if not rows:
            return [], None
        last = max(rows, key=lambda r: (r["run_at"], r["run_id"]))
        return [r for r in rows if r["run_id"] == last["run_id"]], _utc(last["run_at"])

    @staticmethod
    def _reach(gap_rows: Sequence[dict[str, Any]]) -> Counter[str]:
        reach: Counter[str] = Counter()
        for row in gap_rows:
            for match in json.loads(row["best_articles"] or "[]"):
                reach[match.get("article_id", "")] += int(match.get("queries") or 0)
        return reach

    def _all_items(self, as_of: datetime) -> tuple[list[QueueItem], dict[str, Any]]:
        refs = self._articles()
        gap_rows, gaps_at = self._latest_gap_rows()
        reach = self._reach(gap_rows)
        triage = {i.item_id: i for i in open_items(self._store, as_of, include_dismissed=True)}
        latest = FindingStore(self._store).latest_run()
        findings = latest[2] if latest else []
        audit_at = None
        if latest:
            run_rows = [r for r in self._store.rows(FINDINGS_TABLE, ["run_id", "run_at"]) if r["run_id"] == latest[0]]
            audit_at = _utc(max(r["run_at"] for r in run_rows)) if run_rows else None
        items: list[QueueItem] = []
        age: list[tuple[Finding, OpenItem | None]] = []
        for finding in findings:
            if finding.kind == "stale" and finding.check == "age":
                age.append((finding, triage.get(finding.finding_id)))
                continue
            items.append(self._finding_item(finding, triage.get(finding.finding_id), refs, reach))
        gap_by_id = {r["gap_id"]: r for r in gap_rows}
        for item in triage.values():
            if item.kind == "gap" and item.item_id in gap_by_id:
                items.append(self._gap_item(gap_by_id[item.item_id], item, refs))
        items.extend(self._review_blocks(age, refs, reach, as_of))
        items.sort(key=lambda i: (i.set_aside, not i.reopened, -i.impact, i.item_id))
        context = {"refs": refs, "gap_rows": gap_by_id, "triage": triage, "findings": findings}
        return items, {"audit_at": audit_at, "gaps_at": gaps_at, **context}

    def _finding_item(
        self, finding: Finding, state: OpenItem | None, refs: dict[str, ArticleRef], reach: Counter[str]
    ) -> QueueItem:
        articles = tuple(self._ref(refs, a) for a in finding.article_ids)
        tickets = sum(reach[a] for a in finding.article_ids)
        kind: QueueKind
        if finding.check == "failing_article":
            kind = "failing_article"
            found = _ESCALATED_COUNT.match(finding.summary)
            escalated = int(found.group(1)) if found else len(finding.evidence)
            weight = 1.0 + self._settings.gaps.escalation_weight
            impact = escalated * weight
            why = f"{escalated} escalated tickets × {weight:g} escalation weight"
        elif finding.kind == "contradiction":
            kind = "contradiction"
            impact = finding.score * _CONTRADICTION_WEIGHT * (1 + tickets)
            why = (
                f"{finding.score:.2f} certainty × {_CONTRADICTION_WEIGHT:g} (a wrong answer) × "
                f"(1 + {tickets} tickets that reach these articles)"
            )
        else:
            kind = "duplicate" if finding.kind == "duplicate" else "stale"
            impact = finding.score * (1 + tickets)
            why = f"{finding.score:.2f} score × (1 + {tickets} tickets that reach {_these(len(articles))})"
        titles = " · ".join(a.title for a in articles[:3]) + (
            f" and {len(articles) - 3} more" if len(articles) > 3 else ""
        )
        return QueueItem(
            item_id=finding.finding_id,
            kind=kind,
            title=titles or finding.summary,
            summary=finding.summary,
            advice=_advice(finding),
            impact=round(impact, 3),
            impact_why=why,
            severity=finding.severity,
            status=state.status if state else "open",
            assignee=state.assignee if state else "",
            note=state.note if state else "",
            reopened=bool(state and state.reopened),
            decided_by=state.decided_by if state else "",
            snoozed_until=state.snoozed_until if state else None,
            sources=tuple(sorted({a.source_id for a in articles})),
            owners=tuple(sorted({a.owner or NO_OWNER for a in articles})),
            articles=articles,
        )

    def _gap_item(self, row: dict[str, Any], state: OpenItem, refs: dict[str, ArticleRef]) -> QueueItem:
        size, coverage, escalated = int(row["size"]), float(row["coverage_score"]), float(row["escalation_share"])
        weight = self._settings.gaps.escalation_weight
        impact = gap_priority(size, coverage, escalated, weight)
        matches = json.loads(row["best_articles"] or "[]")
        articles = tuple(
            self._ref(refs, m.get("article_id", ""), m.get("title", ""), m.get("url", "")) for m in matches
        )
        title = gap_title(row["central_query"] or "", row["representatives"] or (), fallback=row["label"])
        return QueueItem(
            item_id=row["gap_id"],
            kind="gap",
            title=title,
            summary=f"{size} tickets, {row['trend']}, {escalated:.0%} escalated; keywords: {row['label']}",
            advice=row["suggestion"],
            impact=round(impact, 3),
            impact_why=(
                f"{size} tickets × (1 − {coverage:.2f} coverage) × {1 + weight * escalated:.2f} escalation weight"
            ),
            severity="",
            status=state.status,
            assignee=state.assignee,
            note=state.note,
            reopened=state.reopened,
            decided_by=state.decided_by,
            snoozed_until=state.snoozed_until,
            # Tickets come from ticket sources; the articles' sources say whose KB should answer them.
            sources=tuple(sorted({a.source_id for a in articles})),
            owners=tuple(sorted({a.owner or NO_OWNER for a in articles})) or (NO_OWNER,),
            articles=articles,
        )

    def _review_lists(
        self, age: Sequence[tuple[Finding, OpenItem | None]], refs: dict[str, ArticleRef], as_of: datetime
    ) -> list[tuple[str, bool, list[ReviewDueLine]]]:
        """``(owner, set aside, lines)``: the age findings grouped per owner (analysis.review_due), oldest first,
        those still to do apart from those dismissed, snoozed or resolved."""
        state_of = {f.finding_id: s for f, s in age}
        owners = {source: owner for source, owner in self._owner_of_source.items() if owner != NO_OWNER}
        reviews = {s.id: s.review for s in self._settings.sources}
        lists = []
        for set_aside in (False, True):
            mine = [f for f, s in age if (s is not None and s.status in SET_ASIDE) == set_aside]
            for group in review_due(mine, refs, run_at=as_of, owners=owners, reviews=reviews):
                lines = [
                    ReviewDueLine(d, state.status if (state := state_of.get(d.finding_id)) else "open")
                    for d in group.articles
                ]
                lists.append((group.owner or NO_OWNER, set_aside, lines))
        return lists

    def _review_blocks(
        self,
        age: Sequence[tuple[Finding, OpenItem | None]],
        refs: dict[str, ArticleRef],
        reach: Counter[str],
        as_of: datetime,
    ) -> list[QueueItem]:
        """One block per owner (and one for what was set aside): the articles past their review date."""
        state_of = {f.finding_id: s for f, s in age}
        blocks = []
        for owner, set_aside, lines in self._review_lists(age, refs, as_of):
            due = [line.due for line in lines]
            tickets = sum(reach[d.article_id] for d in due)
            impact = sum(
                (reach[d.article_id] + _REVIEW_BASE) * min(1.0, d.overdue_days / max(1, d.interval_days)) for d in due
            )
            status = Counter(line.status for line in lines).most_common(1)[0][0] if set_aside else "open"
            assignees = {s.assignee for d in due if (s := state_of.get(d.finding_id)) and s.assignee}
            oldest = due[0]
            articles = tuple(self._ref(refs, d.article_id, d.title, d.url) for d in due)
            blocks.append(
                QueueItem(
                    item_id=f"{REVIEW_DUE_PREFIX}{owner}" + (":set-aside" if set_aside else ""),
                    kind="review_due",
                    title=f"{len(due)} article{'s' if len(due) != 1 else ''} due for review ({owner})",
                    summary=(
                        f"Oldest: '{oldest.title}', {oldest.overdue_days} days past its "
                        f"{oldest.interval_days}-day review date."
                    ),
                    advice="Check each is still right and save it (its date moves), or retire it.",
                    impact=round(impact, 3),
                    impact_why=(
                        f"{tickets} tickets reach these articles, weighted by how far past review each is "
                        f"(+{_REVIEW_BASE:g} per article)"
                    ),
                    severity=max((d.severity for d in due), key=_severity_rank),
                    status=status,
                    assignee=", ".join(sorted(assignees)),
                    note="",
                    reopened=False,
                    decided_by="",
                    snoozed_until=None,
                    sources=tuple(sorted({d.source_id for d in due})),
                    owners=(owner,),
                    articles=articles,
                    members=tuple(d.finding_id for d in due),
                    overdue_days=oldest.overdue_days,
                )
            )
        return blocks

    def queue(self, filters: QueueFilter = QueueFilter(), *, as_of: datetime | None = None, page: int = 1) -> QueueView:
        as_of = _utc(as_of) or datetime.now(UTC)
        items, context = self._all_items(as_of)

        def matches(item: QueueItem, *, with_kind: bool) -> bool:
            if with_kind and filters.kind and item.kind != filters.kind:
                return False
            if filters.source and filters.source not in item.sources:
                return False
            if filters.owner and filters.owner not in item.owners:
                return False
            if filters.assignee and filters.assignee not in item.assignee.split(", "):
                return False
            if filters.status == "open":
                return not item.set_aside
            return filters.status in ("", "all") or item.status == filters.status

        without_kind = [i for i in items if matches(i, with_kind=False)]
        counts: dict[str, int] = {k: sum(1 for i in without_kind if i.kind == k) for k in QUEUE_KINDS}
        chosen = [i for i in without_kind if not filters.kind or i.kind == filters.kind]
        current = self._store.current()
        size = self._settings.serve.page_size
        pages = max(1, -(-len(chosen) // size))
        page = min(max(1, page), pages)
        return QueueView(
            items=tuple(chosen[(page - 1) * size : page * size]),
            total=len(chosen),
            counts=counts,
            page=page,
            pages=pages,
            sources=tuple(sorted({s for i in items for s in i.sources})),
            owners=tuple(sorted({o for i in items for o in i.owners})),
            assignees=tuple(sorted({a for i in items for a in i.assignee.split(", ") if a})),
            audit_at=context["audit_at"],
            gaps_at=context["gaps_at"],
            hit_rate=self._hit_rate(),
            release_tag=current.tag if current else "",
            retrieval=retrieval_summary(manifest_of(current)) if current else None,
        )

    def _hit_rate(self) -> KbHitRate | None:
        runs = HitRateStore(self._store).history()
        if not runs:
            return None
        last = runs[-1]
        return KbHitRate(
            hit_rate=float(last["hit_rate"]),
            tickets=int(last["tickets"]),
            answered=int(last["answered"]),
            release_tag=last["release_tag"] or "",
            previous=float(runs[-2]["hit_rate"]) if len(runs) > 1 else None,
        )

    def item(self, item_id: str, *, as_of: datetime | None = None) -> ItemDetail:
        as_of = _utc(as_of) or datetime.now(UTC)
        items, context = self._all_items(as_of)
        found = next((i for i in items if i.item_id == item_id), None)
        if found is None:
            raise ReviewError(f"no item {item_id!r} in the latest audit or gaps run")
        history = tuple(TriageStore(self._store).history(item_id)) if found.kind != "review_due" else ()
        finding = next((f for f in context["findings"] if f.finding_id == item_id), None)
        gap = None
        if found.kind == "gap":
            row = context["gap_rows"][item_id]
            state = context["triage"][item_id]
            questions = [row["central_query"], *(row["representatives"] or [])]
            gap = GapDetail(
                label=row["label"],
                keywords=tuple(row["keywords"] or ()),
                questions=tuple(dict.fromkeys(q for q in questions if q)),
                size=int(row["size"]),
                trend=row["trend"],
                coverage_score=float(row["coverage_score"]),
                escalation_share=float(row["escalation_share"]),
                suggestion=row["suggestion"],
                closest=tuple(json.loads(row["best_articles"] or "[]")),
                weekly_counts=json.loads(row["weekly_counts"] or "{}"),
                first_seen_at=_utc(row["first_seen_at"]),
                reopened_from=state.reopened_from,
            )
        due_lines: tuple[ReviewDueLine, ...] = ()
        if found.kind == "review_due":
            members = set(found.members)
            age = [(f, context["triage"].get(f.finding_id)) for f in context["findings"] if f.finding_id in members]
            due_lines = next(
                (tuple(lines) for _, _, lines in self._review_lists(age, context["refs"], as_of) if lines), ()
            )
        return ItemDetail(found, finding, gap, due_lines, history, context["refs"])

    # -- acting --------------------------------------------------------------------------------------------

    def act(
        self,
        item_id: str,
        action: str,
        *,
        user: str,
        reason: str = "",
        note: str = "",
        until: date | None = None,
        assignee: str = "",
        as_of: datetime | None = None,
    ) -> TriageDecision:
        """Record what a KB owner decided on one item (a finding or a gap), in the triage table.

        Raises:
            ReviewError: an unknown action or item, a dismissal without a reason, a snooze without a future date,
                an assignment to someone who is neither a source owner nor a user of the app.
        """
        if action not in ACTIONS:
            raise ReviewError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
        if not user:
            raise ReviewError("a decision needs a signed-in user")
        reason, note, assignee = reason.strip(), note.strip(), assignee.strip()
        current = TriageStore(self._store).current().get(item_id)
        keep_note = current.note if current else ""
        status: str
        kwargs: dict[str, Any] = {}
        if action == "accept":
            status, text = "accepted", note or keep_note
        elif action == "dismiss":
            if not reason:
                raise ReviewError("say why it is dismissed: a dismissal needs a reason")
            status, text = "dismissed", reason
        elif action == "snooze":
            if until is None:
                raise ReviewError("a snooze needs the date the item comes back")
            status, text = "snoozed", note or keep_note
            kwargs["snoozed_until"] = datetime.combine(until, time.min, tzinfo=UTC)
        elif action == "assign":
            if assignee not in self.owners():
                raise ReviewError(f"{assignee!r} is neither a source owner nor a user of the app")
            status, text = "assigned", note or keep_note
            kwargs["assignee"] = assignee
        elif action == "resolve":
            status, text = "resolved", note or keep_note
        elif action == "reopen":
            status, text = "open", note or keep_note
        else:  # note: the decision in force stays, with the note added
            if not note:
                raise ReviewError("the note is empty")
            status, text = (current.status, note) if current else ("open", note)
            if current and current.status == "snoozed":
                if current.snoozed_until is None or current.snoozed_until <= (_utc(as_of) or datetime.now(UTC)):
                    status = "open"
                else:
                    kwargs["snoozed_until"] = current.snoozed_until
            if status == "assigned" and current:
                kwargs["assignee"] = current.assignee
        assert status in STATUSES
        try:
            return TriageStore(self._store).decide(
                item_id, status, decided_by=user, note=text, decided_at=as_of, **kwargs
            )
        except TriageError as exc:
            raise ReviewError(str(exc)) from exc


def _these(n: int) -> str:
    return "this article" if n == 1 else "these articles"


def _severity_rank(severity: str) -> int:
    return {"low": 0, "medium": 1, "high": 2}.get(severity, -1)


_ACTION_WORDS = {
    "update": "Update the article",
    "merge": "Merge into one article",
    "retire": "Retire the article",
    "fix_link": "Fix the link",
    "review": "Review and make them agree",
}


def _advice(finding: Finding) -> str:
    return _ACTION_WORDS.get(finding.action, finding.action)
