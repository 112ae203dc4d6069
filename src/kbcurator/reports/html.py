"""The KB owner's morning page: release, gaps and health findings in one self-contained HTML file.

Everything shown comes from the index's database (releases, ``findings``, ``gaps``, ``triage``); the page has
inline CSS and inline SVG charts, no script and no external resource, so it opens from disk or an artifact store.
Ticket and article text is customer or author input: the template autoescapes it, and the few fragments built
here (highlighted evidence) escape each piece before marking it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from markupsafe import Markup, escape

from kbcurator.analysis.store import FINDINGS_TABLE, FindingStore
from kbcurator.errors import PublishError
from kbcurator.gaps.report import GAPS_TABLE, HitRateStore
from kbcurator.index import schema
from kbcurator.index.golden import retrieval_summary
from kbcurator.index.store import IndexStore, manifest_of
from kbcurator.records import SEVERITIES, Evidence, Finding
from kbcurator.triage import OpenItem, open_items

KIND_TITLES = {"contradiction": "Contradictions", "duplicate": "Duplicates", "stale": "Stale content"}
# Statuses a KB owner has set aside: listed, but greyed out and not counted as open.
SET_ASIDE = frozenset({"dismissed", "snoozed", "resolved"})
MAP_SIZE = (520, 360)
CHART_SIZE = (520, 220)
MAX_WEEKS = 26  # the bar chart shows the last half year of ticket weeks

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True, slots=True)
class Link:
    text: str
    url: str  # "" when there is no safe URL: the text is shown without a link


@dataclass(frozen=True, slots=True)
class GapView:
    gap_id: str
    label: str
    size: int
    trend: str
    escalation_share: float
    coverage_score: float
    gap_score: float
    action: str
    suggestion: str
    representatives: tuple[str, ...]
    articles: tuple[Link, ...]
    status: str
    reopened: bool
    set_aside: bool
    note: str = ""  # the latest triage note


@dataclass(frozen=True, slots=True)
class Circle:
    cx: float
    cy: float
    r: float
    fill: str
    tooltip: str


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    week: str
    count: int


@dataclass(frozen=True, slots=True)
class EvidenceView:
    article: Link
    text: Markup
    detail: str
    link: Link | None


@dataclass(frozen=True, slots=True)
class FindingView:
    finding_id: str
    check: str
    severity: str
    score: float
    summary: str
    action: str
    articles: tuple[Link, ...]
    evidence: tuple[EvidenceView, ...]
    status: str
    set_aside: bool
    canonical: Link | None = None
    note: str = ""  # the latest triage note


@dataclass(frozen=True, slots=True)
class ArticleGroup:
    article: Link
    findings: tuple[FindingView, ...]


@dataclass(frozen=True, slots=True)
class KindSection:
    kind: str
    title: str
    count: int
    findings: tuple[FindingView, ...] = ()  # contradictions and duplicates: one per pair or set
    by_article: tuple[ArticleGroup, ...] = ()  # stale content: grouped by the article to fix
    extra: dict[str, Any] = field(default_factory=dict)


# -- reading the database ---------------------------------------------------------------------------------


def _runs(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Run ids, oldest first."""
    first_at: dict[str, Any] = {}
    for row in rows:
        first_at.setdefault(row["run_id"], (row["run_at"], row["run_id"]))
    return sorted(first_at, key=lambda run: first_at[run])


def _articles(store: IndexStore, index_version: str | None) -> dict[str, tuple[str, str]]:
    """Article id -> (title, url) in the named release, or the current one when that tag is gone."""
    for ref in (index_version or None, None):
        try:
            release = store.resolve(ref)
            table = store.read_table(schema.ARTICLES, release.articles_version, ["article_id", "title", "url"])
        except PublishError:
            continue
        return {
            a: (t or "", u or "")
            for a, t, u in zip(
                table["article_id"].to_pylist(), table["title"].to_pylist(), table["url"].to_pylist(), strict=True
            )
        }
    return {}


def safe_url(url: str) -> str:
    # Only web links: a crawled "javascript:" or "data:" URL must not become something a click runs.
    return url if url.lower().startswith(("https://", "http://")) else ""


def _link(article_id: str, articles: dict[str, tuple[str, str]], url: str = "") -> Link:
    title, known_url = articles.get(article_id, ("", ""))
    return Link(text=title or url or known_url or article_id, url=safe_url(url or known_url))


# -- fragments built here ---------------------------------------------------------------------------------


def marked(text: str, highlights: Sequence[str]) -> Markup:
    """``text`` escaped, with every occurrence of each highlight wrapped in ``<mark>`` (longest first)."""
    wanted = sorted({h for h in highlights if h}, key=len, reverse=True)
    pieces: list[Markup] = []
    position = 0
    while position < len(text):
        hits = [(text.find(h, position), h) for h in wanted]
        hits = [(at, h) for at, h in hits if at >= 0]
        if not hits:
            break
        at, value = min(hits, key=lambda hit: (hit[0], -len(hit[1])))
        pieces.append(escape(text[position:at]))
        pieces.append(Markup("<mark>{}</mark>").format(value))
        position = at + len(value)
    pieces.append(escape(text[position:]))
    return Markup("").join(pieces)


def project_2d(centroids: np.ndarray) -> np.ndarray:
    """PCA of the cluster centroids to two coordinates (by SVD), signs fixed so reruns draw the same map."""
    n = len(centroids)
    out = np.zeros((n, 2))
    if n < 2:
        return out
    centred = centroids - centroids.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    components = components[:2]
    signs = np.sign(components[np.arange(len(components)), np.argmax(np.abs(components), axis=1)])
    coords = centred @ (components * signs[:, None]).T
    out[:, : coords.shape[1]] = coords
    return out


def coverage_colour(coverage: float) -> str:
    """Red for a topic the KB does not answer, through amber, to green for one it covers."""
    return f"hsl({120 * min(max(coverage, 0.0), 1.0):.0f}, 65%, 45%)"


def _cluster_map(rows: Sequence[dict[str, Any]]) -> list[Circle]:
    if not rows:
        return []
    width, height = MAP_SIZE
    margin = 40.0
    coords = project_2d(np.stack([np.asarray(r["centroid"], dtype=np.float64) for r in rows]))
    low, high = coords.min(axis=0), coords.max(axis=0)
    span = np.where(high - low > 1e-12, high - low, 1.0)
    scaled = (coords - low) / span  # 0..1; a single cluster or a flat axis sits at 0
    scaled[:, high - low <= 1e-12] = 0.5
    biggest = max(int(r["size"]) for r in rows) or 1
    circles = []
    for row, (x, y) in zip(rows, scaled, strict=True):
        radius = 6 + 22 * np.sqrt(int(row["size"]) / biggest)  # area, not radius, follows size
        circles.append(
            Circle(
                cx=round(margin + x * (width - 2 * margin), 1),
                cy=round(margin + (1 - y) * (height - 2 * margin), 1),
                r=round(float(radius), 1),
                fill=coverage_colour(float(row["coverage_score"])),
                tooltip=(
                    f"{row['label']}: {row['size']} tickets, coverage {row['coverage_score']:.0%}, "
                    f"gap score {row['gap_score']:.2f}, {row['trend']}"
                ),
            )
        )
    return circles


def _iso_week(key: str) -> datetime | None:
    try:
        year, week = key.split("-W")
        return datetime.fromisocalendar(int(year), int(week), 1)
    except ValueError:
        return None


def volume_bars(rows: Sequence[dict[str, Any]]) -> list[Bar]:
    """Bars of tickets per ISO week summed over gap rows (``weekly_counts``): the last ``MAX_WEEKS``, quiet ones 0.

    Shared with the review notebook's per-gap chart.
    """
    totals: Counter[datetime] = Counter()
    for row in rows:
        for key, count in json.loads(row["weekly_counts"] or "{}").items():
            monday = _iso_week(key)
            if monday is not None:
                totals[monday] += int(count)
    if not totals:
        return []
    last = max(totals)
    first = max(min(totals), last - timedelta(weeks=MAX_WEEKS - 1))
    weeks = []
    week = first
    while week <= last:  # quiet weeks are part of the picture: show them as empty bars
        weeks.append(week)
        week += timedelta(weeks=1)
    width, height = CHART_SIZE
    left, bottom, top = 36.0, 28.0, 12.0
    slot = (width - left - 8) / len(weeks)
    peak = max(totals[w] for w in weeks) or 1
    bars = []
    for i, week in enumerate(weeks):
        bar_height = (height - bottom - top) * totals[week] / peak
        iso = week.isocalendar()
        bars.append(
            Bar(
                x=round(left + i * slot + slot * 0.1, 1),
                y=round(height - bottom - bar_height, 1),
                width=round(slot * 0.8, 1),
                height=round(bar_height, 1),
                week=f"{iso.year}-W{iso.week:02d}",
                count=totals[week],
            )
        )
    return bars


# -- sections -----------------------------------------------------------------------------------------------


def _release_summary(store: IndexStore) -> dict[str, Any] | None:
    release = store.current()
    if release is None:
        return None
    manifest = manifest_of(release)
    counts = manifest.get("counts", {})
    changes = manifest.get("changes") or {}
    article_changes = changes.get("articles") if isinstance(changes, dict) else None
    checks = manifest.get("checks") or {}
    return {
        "tag": release.tag,
        "seq": release.seq,
        "kind": release.kind,
        "created_at": release.created_at,
        "previous_tag": release.previous_tag,
        "articles": counts.get("articles"),
        "chunks": counts.get("chunks"),
        # Counts in a manifest written by the reindex flow; lists of ids are counted too.
        "changes": {
            k: (len(v) if isinstance(v, list) else v)
            for k, v in (article_changes or {}).items()
            if k in ("added", "changed", "removed")
        },
        "checks": {"passed": checks.get("passed"), "total": checks.get("total"), "success": checks.get("success")}
        if checks
        else None,
        "retrieval": retrieval_summary(manifest),
    }


def status_of(item_id: str, triage: dict[str, OpenItem]) -> tuple[str, bool]:
    """A finding's or gap's triage wording ("open", "assigned to alice", ...) and whether it is set aside.

    Shared with the review notebook, so both say the same thing about one item.
    """
    item = triage.get(item_id)
    if item is None:
        return "open", False
    label: str = item.status
    if item.status == "assigned" and item.assignee:
        label = f"assigned to {item.assignee}"
    elif item.status == "snoozed" and item.snoozed_until is not None:
        label = f"snoozed until {item.snoozed_until:%Y-%m-%d}"
    if item.reopened:
        label += " (reopened)"
    return label, item.status in SET_ASIDE


def _gap_section(store: IndexStore, triage: dict[str, OpenItem]) -> dict[str, Any]:
    rows = store.rows(GAPS_TABLE)
    runs = _runs(rows)
    if not runs:
        return {"run_id": None, "gaps": [], "covered": [], "circles": [], "bars": [], "previous_open": None}
    latest = [r for r in rows if r["run_id"] == runs[-1] and r["trend"] != "resolved"]
    latest.sort(key=lambda r: (-float(r["gap_score"]), r["gap_id"]))
    gaps = []
    for row in latest:
        status, set_aside = status_of(row["gap_id"], triage)
        matches = json.loads(row["best_articles"] or "[]")
        gaps.append(
            GapView(
                gap_id=row["gap_id"],
                label=row["label"],
                size=int(row["size"]),
                trend=row["trend"],
                escalation_share=float(row["escalation_share"]),
                coverage_score=float(row["coverage_score"]),
                gap_score=float(row["gap_score"]),
                action=row["action"],
                suggestion=row["suggestion"],
                # A run that labelled nothing stored no representatives; its central query still says what is asked.
                representatives=tuple(
                    row["representatives"] or ([row["central_query"]] if row["central_query"] else [])
                ),
                articles=tuple(
                    Link(text=m.get("title") or m.get("url") or m.get("article_id", ""), url=safe_url(m.get("url", "")))
                    for m in matches
                ),
                status="covered" if row["action"] == "covered" else status,
                reopened=bool(triage.get(row["gap_id"]) and triage[row["gap_id"]].reopened),
                set_aside=set_aside,
                note=triage[row["gap_id"]].note if row["gap_id"] in triage else "",
            )
        )
    previous_open = None
    if len(runs) > 1:
        previous_open = sum(
            1 for r in rows if r["run_id"] == runs[-2] and r["trend"] != "resolved" and r["action"] != "covered"
        )
    return {
        "run_id": runs[-1],
        "run_at": max(r["run_at"] for r in rows if r["run_id"] == runs[-1]),
        "release_tag": latest[0]["release_tag"] if latest else "",
        "gaps": [g for g in gaps if g.action != "covered"],
        "covered": [g for g in gaps if g.action == "covered"],
        "resolved": sum(1 for r in rows if r["run_id"] == runs[-1] and r["trend"] == "resolved"),
        "circles": _cluster_map(latest),
        "bars": volume_bars([r for r in latest if r["action"] != "covered"]),
        "previous_open": previous_open,
    }


def _evidence_view(item: Evidence, articles: dict[str, tuple[str, str]]) -> EvidenceView:
    return EvidenceView(
        article=_link(item.article_id, articles),
        text=marked(item.text, item.highlights),
        detail=item.detail,
        link=Link(item.link, safe_url(item.link)) if item.link else None,
    )


def finding_view(finding: Finding, articles: dict[str, tuple[str, str]], triage: dict[str, OpenItem]) -> FindingView:
    status, set_aside = status_of(finding.finding_id, triage)
    canonical = next((e for e in finding.evidence if e.detail.startswith("suggested canonical")), None)
    return FindingView(
        finding_id=finding.finding_id,
        check=finding.check,
        severity=finding.severity,
        score=finding.score,
        summary=finding.summary,
        action=finding.action,
        articles=tuple(_link(a, articles) for a in finding.article_ids),
        evidence=tuple(_evidence_view(e, articles) for e in finding.evidence),
        status=status,
        set_aside=set_aside,
        canonical=_link(canonical.article_id, articles, canonical.link) if canonical else None,
        note=triage[finding.finding_id].note if finding.finding_id in triage else "",
    )


def _health_section(store: IndexStore, triage: dict[str, OpenItem]) -> dict[str, Any]:
    latest = FindingStore(store).latest_run()
    if latest is None:
        return {
            "run_id": None,
            "sections": [],
            "counts": {},
            "previous_counts": None,
            "new": 0,
            "resolved": 0,
            "open": 0,
        }
    run_id, index_version, findings = latest
    articles = _articles(store, index_version)
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    findings = sorted(findings, key=lambda f: (-rank.get(f.severity, -1), -f.score, f.finding_id))
    sections = []
    for kind, title in KIND_TITLES.items():
        mine = [finding_view(f, articles, triage) for f in findings if f.kind == kind]
        if not mine:
            continue
        if kind != "stale":
            sections.append(KindSection(kind, title, len(mine), findings=tuple(mine)))
            continue
        by_article: dict[str, list[FindingView]] = {}
        first_link: dict[str, Link] = {}
        for finding, view in zip((f for f in findings if f.kind == kind), mine, strict=True):
            key = finding.article_ids[0] if finding.article_ids else ""
            by_article.setdefault(key, []).append(view)
            first_link.setdefault(key, _link(key, articles))
        groups = tuple(ArticleGroup(first_link[k], tuple(v)) for k, v in by_article.items())
        sections.append(KindSection(kind, title, len(mine), by_article=groups))

    rows = store.rows(FINDINGS_TABLE)
    runs = _runs(rows)
    previous_counts = None
    new = resolved = 0
    if len(runs) > 1:
        before = [r for r in rows if r["run_id"] == runs[-2] and r["finding_id"]]
        previous_counts = dict(Counter(r["kind"] for r in before))
        before_ids, now_ids = {r["finding_id"] for r in before}, {f.finding_id for f in findings}
        new, resolved = len(now_ids - before_ids), len(before_ids - now_ids)
    return {
        "run_id": run_id,
        "run_at": max(r["run_at"] for r in rows if r["run_id"] == run_id),
        "index_version": index_version,
        "sections": sections,
        "counts": dict(Counter(f.kind for f in findings)),
        "previous_counts": previous_counts,
        "new": new,
        "resolved": resolved,
        "open": sum(1 for f in findings if not status_of(f.finding_id, triage)[1]),
    }


def render_report(store: IndexStore, *, as_of: datetime) -> str:
    """The whole report as one HTML document, as the database stands; ``as_of`` decides which snoozes ended."""
    as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    triage = {item.item_id: item for item in open_items(store, as_of, include_dismissed=True)}
    gaps = _gap_section(store, triage)
    return _ENV.get_template("report.html.j2").render(
        as_of=as_of,
        release=_release_summary(store),
        gaps=gaps,
        health=_health_section(store, triage),
        kind_titles=KIND_TITLES,
        map_size=MAP_SIZE,
        chart_size=CHART_SIZE,
        open_gaps=sum(1 for g in gaps["gaps"] if not g.set_aside),
        hit_rates=[float(r["hit_rate"]) for r in HitRateStore(store).history()],
    )


def write_report(store: IndexStore, out_path: str | Path, as_of: datetime) -> Path:
    """Render the report and write it to ``out_path`` (folders created); returns the path written."""
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(store, as_of=as_of), encoding="utf-8")
    return path
