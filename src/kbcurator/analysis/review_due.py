"""Age findings as one "review due" list per owner, instead of one finding card per article.

An audit of an old help center finds an ``age`` finding for most of its articles (the bundled sample: 112 of 125
findings). Each is one line of a list, not a card: who owns the articles (the source's ``owner`` in its config),
which are due, oldest first, and how far past the review interval each is. Severity is by how far past:

- ``low``: less than half an interval past it;
- ``medium``: up to two intervals past it;
- ``high``: more than that (an article reviewed yearly and not touched for three years).

A list's severity is that of its most overdue article. Lists come most overdue first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

from kbcurator.config.health import ReviewSettings
from kbcurator.records import SEVERITIES, Finding, Severity

_LOW_BELOW = 0.5  # intervals past the review date
_MEDIUM_UP_TO = 2.0
# What the age check writes in its evidence ("updated 2019-03-01; review every 365 days"): read only for a
# finding whose article is no longer in the corpus.
_EVIDENCE = re.compile(r"updated (\d{4}-\d{2}-\d{2}); review every (\d+) days")


class ArticleFacts(Protocol):
    """What the grouping reads of an article: an ``Article``, or a row of the articles table."""

    @property
    def title(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def source_id(self) -> str: ...
    @property
    def updated_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class DueArticle:
    """One article due for review."""

    finding_id: str
    article_id: str
    title: str
    url: str
    source_id: str
    updated_at: datetime | None
    age_days: int
    interval_days: int
    overdue_days: int  # days past the review date (age minus interval)
    severity: Severity


@dataclass(frozen=True, slots=True)
class ReviewDue:
    """One owner's articles due for review, oldest first. ``owner`` is "" where a source names no owner."""

    owner: str
    severity: Severity
    articles: tuple[DueArticle, ...]

    @property
    def oldest(self) -> DueArticle:
        return self.articles[0]


def overdue_severity(overdue_days: float, interval_days: int) -> Severity:
    """How far past the review interval, in intervals: see the module docstring."""
    past = overdue_days / max(1, interval_days)
    if past < _LOW_BELOW:
        return "low"
    if past <= _MEDIUM_UP_TO:
        return "medium"
    return "high"


def review_due(
    findings: Iterable[Finding],
    articles: Mapping[str, ArticleFacts],
    *,
    run_at: datetime,
    owners: Mapping[str, str] | None = None,
    reviews: Mapping[str, ReviewSettings] | None = None,
) -> list[ReviewDue]:
    """Group the ``stale``/``age`` findings by their article's owner.

    Args:
        findings: an audit's findings; those that are not age findings are ignored.
        articles: article id -> article (for its title, URL, source and ``updated_at``).
        run_at: the audit's "now" (``AuditResult.run_at``).
        owners: source id -> owner, from the source configs (``{s.id: s.owner for s in settings.sources}``).
        reviews: source id -> its review rules, for the interval (default: ``ReviewSettings()``'s).

    Returns:
        One list per owner, most overdue first; in each, articles oldest first.
    """
    owners = owners or {}
    reviews = reviews or {}
    now = run_at if run_at.tzinfo else run_at.replace(tzinfo=UTC)
    by_owner: dict[str, list[DueArticle]] = {}
    for finding in findings:
        if finding.kind != "stale" or finding.check != "age" or not finding.article_ids:
            continue
        item = _due(finding, articles.get(finding.article_ids[0]), now, reviews)
        by_owner.setdefault(owners.get(item.source_id, ""), []).append(item)
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    lists = []
    for owner, items in by_owner.items():
        items.sort(key=lambda d: (-d.age_days, d.title, d.article_id))
        worst = max((d.severity for d in items), key=rank.__getitem__)
        lists.append(ReviewDue(owner, worst, tuple(items)))
    return sorted(lists, key=lambda r: (-rank[r.severity], -max(d.overdue_days for d in r.articles), r.owner))


def _due(
    finding: Finding, article: ArticleFacts | None, now: datetime, reviews: Mapping[str, ReviewSettings]
) -> DueArticle:
    article_id = finding.article_ids[0]
    source_id = article.source_id if article is not None else article_id.split(":", 1)[0]
    # What the finding recorded at audit time; the article and the source's rules, where given, are fresher.
    recorded = next((m for e in finding.evidence if (m := _EVIDENCE.search(e.detail))), None)
    updated = article.updated_at if article is not None else None
    if updated is None and recorded is not None:
        updated = datetime.combine(date.fromisoformat(recorded.group(1)), datetime.min.time(), tzinfo=UTC)
    if source_id in reviews:
        interval = reviews[source_id].interval_days
    elif recorded is not None:
        interval = int(recorded.group(2))
    else:
        interval = ReviewSettings().interval_days
    if updated is not None and updated.tzinfo is None:
        updated = updated.replace(tzinfo=UTC)
    age = int((now - updated).total_seconds() // 86400) if updated is not None else 0
    overdue = max(0, age - interval)
    link = next((e.link for e in finding.evidence if e.article_id == article_id and e.link), "")
    return DueArticle(
        finding_id=finding.finding_id,
        article_id=article_id,
        title=article.title if article is not None else "",
        url=article.url if article is not None else link,
        source_id=source_id,
        updated_at=updated,
        age_days=age,
        interval_days=interval,
        overdue_days=overdue,
        severity=overdue_severity(overdue, interval),
    )
