"""The health summary a KB owner reads (the ``kb-health`` artifact) and its JSON export."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from kbcurator.analysis.audit import AuditResult
from kbcurator.analysis.review_due import ReviewDue, review_due
from kbcurator.analysis.store import AuditDiff
from kbcurator.config.health import ReviewSettings
from kbcurator.markdown import table_cell
from kbcurator.records import Article, Finding

KIND_TITLES = {"contradiction": "Contradictions", "duplicate": "Duplicates", "stale": "Stale content"}


def named_articles(finding: Finding, articles: Mapping[str, Article] | None) -> list[dict[str, str]]:
    """``[{id, title, url}]`` for every article a finding concerns, in its order.

    An article ``articles`` does not hold (gone since the audit) keeps its id; its URL comes from the finding's
    own evidence for it where that links to the article, else it is "".
    """
    known = articles or {}
    out = []
    for article_id in finding.article_ids:
        article = known.get(article_id)
        if article is not None:
            out.append({"id": article_id, "title": article.title, "url": article.url})
            continue
        # A broken link's evidence links to the dead target, not to its article.
        own = (
            e.link for e in finding.evidence if e.article_id == article_id and e.link and finding.check != "broken_link"
        )
        out.append({"id": article_id, "title": "", "url": next(own, "")})
    return out


def findings_payload(
    result: AuditResult, diff: AuditDiff | None = None, articles: Mapping[str, Article] | None = None
) -> dict[str, Any]:
    """Everything the audit found, JSON-ready (``findings.json``). Each finding names its articles
    (``articles: [{id, title, url}]``) from ``articles``, the audited corpus' article id -> article."""
    new_ids = diff.new_ids if diff else frozenset()
    return {
        "index_version": result.index_version,
        "run_at": result.run_at.isoformat(),
        "articles": result.articles,
        "chunks": result.chunks,
        "counts": result.counts(),
        "severity": result.severity_counts(),
        "previous_run_id": diff.previous_run_id if diff else None,
        "new": len(new_ids),
        "resolved": [
            {"finding_id": f.finding_id, "summary": f.summary, "articles": named_articles(f, articles)}
            for f in diff.resolved
        ]
        if diff
        else [],
        "seconds_by_detector": {k: round(v, 3) for k, v in result.seconds_by_detector.items()},
        "failed_detectors": [asdict(r) for r in result.failed_detectors],
        "findings": [
            {
                **asdict(f),
                "articles": named_articles(f, articles),
                "found_at": f.found_at.isoformat(),
                "is_new": f.finding_id in new_ids,
                "first_seen_at": diff.first_seen_at[f.finding_id].isoformat()
                if diff and f.finding_id in diff.first_seen_at
                else None,
            }
            for f in result.findings
        ],
    }


def _cell(text: str, limit: int = 220) -> str:
    return table_cell(text, limit)


def _highlight(text: str, highlights: tuple[str, ...], limit: int = 300) -> str:
    """The evidence sentence with its conflicting values in bold (escaped for a Markdown table)."""
    cell = _cell(text, limit)
    for value in sorted(set(highlights), key=len, reverse=True):
        escaped = _cell(value, limit)
        if escaped and escaped in cell and f"**{escaped}**" not in cell:
            cell = cell.replace(escaped, f"**{escaped}**", 1)
    return cell


def _article_link(article_id: str, articles: Mapping[str, Article]) -> str:
    article = articles.get(article_id)
    if article is None:
        return _cell(article_id)
    return f"[{_cell(article.title or article.url, 80)}]({article.url})"


def _more(shown: int, total: int, where: str = " in findings.json") -> list[str]:
    """The line that says a list was cut, or nothing when it was not."""
    return [f"- … and {total - shown} more{where}"] if total > shown else []


def _links(article_ids: tuple[str, ...], articles: Mapping[str, Article], limit: int = 10) -> str:
    shown = ", ".join(_article_link(a, articles) for a in article_ids[:limit])
    return shown + (f" and {len(article_ids) - limit} more" if len(article_ids) > limit else "")


def health_markdown(
    result: AuditResult,
    diff: AuditDiff | None,
    articles: Mapping[str, Article],
    *,
    top: int = 10,
    owners: Mapping[str, str] | None = None,
    reviews: Mapping[str, ReviewSettings] | None = None,
) -> str:
    """Counts by kind and check, what is new since the last audit, then the worst findings of each kind.

    Every finding names its articles (title and link); a list cut at ``top`` says how many more there are. Age
    findings are one review-due list per owner (``owners``: source id -> owner; ``reviews``: source id -> review
    rules), not a line per article.
    """
    version = result.index_version or "unpublished source"
    lines = [
        f"# KB health: `{version}`",
        "",
        f"Audited {result.articles} articles ({result.chunks} chunks) on {result.run_at:%Y-%m-%d %H:%M} UTC: "
        f"{len(result.findings)} findings "
        f"({', '.join(f'{n} {s}' for s, n in result.severity_counts().items())}).",
    ]
    if diff is not None and diff.previous_run_id is not None:
        lines.append(
            f"Since the previous audit (on `{diff.previous_index_version}`): {len(diff.new_ids)} new, "
            f"{len(diff.resolved)} resolved."
        )
    for failure in result.failed_detectors:
        lines.append(f"**Detector `{failure.record_id}` failed**: {_cell(failure.reason)}")
    lines += ["", "| kind | check | findings |", "|---|---|---|"]
    for kind, checks in sorted(result.counts().items()):
        for check, n in sorted(checks.items()):
            lines.append(f"| {kind} | {check} | {n} |")
    new_ids = diff.new_ids if diff else frozenset()
    for kind, title in KIND_TITLES.items():
        mine = [f for f in result.findings if f.kind == kind]
        if not mine:
            continue
        lines += ["", f"## {title} ({len(mine)})", ""]
        if kind == "contradiction":
            lines += _contradiction_lines(mine[:top], articles, new_ids)
            lines += ["", *_more(top, len(mine))] if len(mine) > top else []
        elif kind == "duplicate":
            lines += _duplicate_lines(mine[:top], articles, new_ids)
            lines += _more(top, len(mine))
        else:
            aged = [f for f in mine if f.check == "age"]
            due = review_due(aged, articles, run_at=result.run_at, owners=owners, reviews=reviews)
            lines += _stale_lines([f for f in mine if f.check != "age"], articles, new_ids, top)
            lines += _review_due_lines(due, top)
    if diff is not None and diff.resolved:
        lines += ["", f"## Resolved since the previous audit ({len(diff.resolved)})", ""]
        for finding in diff.resolved[:top]:
            where = _links(finding.article_ids, articles) if finding.article_ids else ""
            lines.append(f"- {_cell(finding.summary)}" + (f" ({where})" if where else ""))
        lines += _more(top, len(diff.resolved), " in the previous run's findings")
    return "\n".join(lines) + "\n"


def _new(finding: Finding, new_ids: frozenset[str]) -> str:
    return " (new)" if finding.finding_id in new_ids else ""


def _contradiction_lines(
    findings: list[Finding], articles: Mapping[str, Article], new_ids: frozenset[str]
) -> list[str]:
    lines = ["| severity | article A | says | article B | says |", "|---|---|---|---|---|"]
    for finding in findings:
        if finding.evidence:
            left, right = finding.evidence[0], finding.evidence[-1]
            left_says, right_says = _highlight(left.text, left.highlights), _highlight(right.text, right.highlights)
            left_id, right_id = left.article_id, right.article_id
        else:  # still names both articles
            left_id, right_id = finding.article_ids[0], finding.article_ids[-1]
            left_says, right_says = _cell(finding.summary), ""
        lines.append(
            f"| {finding.severity}{_new(finding, new_ids)} | {_article_link(left_id, articles)} | "
            f"{left_says} | {_article_link(right_id, articles)} | {right_says} |"
        )
    return lines


_DUPLICATE_EVIDENCE = 3


def _duplicate_lines(findings: list[Finding], articles: Mapping[str, Article], new_ids: frozenset[str]) -> list[str]:
    lines = []
    for finding in findings:
        lines.append(
            f"- **{finding.check}**, {finding.severity}{_new(finding, new_ids)}, {finding.action}: "
            f"{_cell(finding.summary)} ({_links(finding.article_ids, articles)})"
        )
        quoted = [item for item in finding.evidence if item.detail or item.text]
        for item in quoted[:_DUPLICATE_EVIDENCE]:
            # The canonical article's line says why it and why not the others: longer than a quote.
            limit = 600 if item.detail.startswith("suggested canonical") else 200
            lines.append(f"  - {_article_link(item.article_id, articles)}: {_cell(item.detail or item.text, limit)}")
        if len(quoted) > _DUPLICATE_EVIDENCE:
            lines.append(f"  - … and {len(quoted) - _DUPLICATE_EVIDENCE} more in findings.json")
    return lines


def _stale_lines(
    findings: list[Finding], articles: Mapping[str, Article], new_ids: frozenset[str], top: int
) -> list[str]:
    lines = []
    by_check: dict[str, list[Finding]] = {}
    for finding in findings:
        by_check.setdefault(finding.check, []).append(finding)
    for check, group in sorted(by_check.items(), key=lambda kv: -max(f.score for f in kv[1])):
        lines += ["", f"### {check.replace('_', ' ')} ({len(group)})", ""]
        for finding in group[:top]:
            where = _links(finding.article_ids, articles)
            quote = next((e for e in finding.evidence if e.text), None)
            said = f": “{_highlight(quote.text, quote.highlights, 160)}”" if quote else ""
            lines.append(
                f"- {finding.severity}{_new(finding, new_ids)} · {where} · {_cell(finding.summary)}{said} "
                f"→ {finding.action}"
            )
        lines += _more(top, len(group))
    return lines


def _review_due_lines(due: list[ReviewDue], top: int) -> list[str]:
    """One block per owner: its articles due for review, oldest first."""
    if not due:
        return []
    total = sum(len(d.articles) for d in due)
    lines = ["", f"### Review due ({total} articles, {len(due)} {'owner' if len(due) == 1 else 'owners'})"]
    for block in due:
        who = _cell(block.owner, 80) if block.owner else "no owner configured"
        oldest = block.oldest
        lines += [
            "",
            f"**{who}**: {len(block.articles)} due, {block.severity}; oldest not updated for {oldest.age_days} "
            f"days (review every {oldest.interval_days}).",
            "",
        ]
        for item in block.articles[:top]:
            updated = f"{item.updated_at:%Y-%m-%d}" if item.updated_at else "no date"
            name = f"[{_cell(item.title or item.url, 80)}]({item.url})" if item.url else _cell(item.article_id)
            lines.append(f"- {item.severity} · {name} · updated {updated}, {item.overdue_days} days past review")
        lines += _more(top, len(block.articles))
    return lines
