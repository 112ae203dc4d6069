"""The health summary a KB owner reads (the ``kb-health`` artifact) and its JSON export."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from kbcurator.analysis.audit import AuditResult
from kbcurator.analysis.store import AuditDiff
from kbcurator.markdown import table_cell
from kbcurator.records import Article, Finding

KIND_TITLES = {"contradiction": "Contradictions", "duplicate": "Duplicates", "stale": "Stale content"}


def findings_payload(result: AuditResult, diff: AuditDiff | None = None) -> dict[str, Any]:
    """Everything the audit found, JSON-ready (``findings.json``)."""
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
        "resolved": [{"finding_id": f.finding_id, "summary": f.summary} for f in diff.resolved] if diff else [],
        "seconds_by_detector": {k: round(v, 3) for k, v in result.seconds_by_detector.items()},
        "failed_detectors": [asdict(r) for r in result.failed_detectors],
        "findings": [
            {
                **asdict(f),
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


def health_markdown(
    result: AuditResult,
    diff: AuditDiff | None,
    articles: Mapping[str, Article],
    *,
    top: int = 10,
) -> str:
    """Counts by kind and check, what is new since the last audit, then the worst findings of each kind."""
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
        elif kind == "duplicate":
            lines += _duplicate_lines(mine[:top], articles, new_ids)
        else:
            lines += _stale_lines(mine, articles, new_ids, top)
    if diff is not None and diff.resolved:
        lines += ["", f"## Resolved since the previous audit ({len(diff.resolved)})", ""]
        lines += [f"- {_cell(f.summary)}" for f in diff.resolved[:top]]
    return "\n".join(lines) + "\n"


def _new(finding: Finding, new_ids: frozenset[str]) -> str:
    return " (new)" if finding.finding_id in new_ids else ""


def _contradiction_lines(
    findings: list[Finding], articles: Mapping[str, Article], new_ids: frozenset[str]
) -> list[str]:
    lines = ["| severity | article A | says | article B | says |", "|---|---|---|---|---|"]
    for finding in findings:
        if not finding.evidence:
            continue
        left, right = finding.evidence[0], finding.evidence[-1]
        lines.append(
            f"| {finding.severity}{_new(finding, new_ids)} | {_article_link(left.article_id, articles)} | "
            f"{_highlight(left.text, left.highlights)} | {_article_link(right.article_id, articles)} | "
            f"{_highlight(right.text, right.highlights)} |"
        )
    return lines


def _duplicate_lines(findings: list[Finding], articles: Mapping[str, Article], new_ids: frozenset[str]) -> list[str]:
    lines = []
    for finding in findings:
        members = ", ".join(_article_link(a, articles) for a in finding.article_ids)
        lines.append(
            f"- **{finding.check}**, {finding.severity}{_new(finding, new_ids)}, {finding.action}: "
            f"{_cell(finding.summary)} ({members})"
        )
        for item in finding.evidence[:3]:
            if item.detail or item.text:
                lines.append(f"  - {_article_link(item.article_id, articles)}: {_cell(item.detail or item.text, 200)}")
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
            where = ", ".join(_article_link(a, articles) for a in finding.article_ids[:2])
            quote = next((e for e in finding.evidence if e.text), None)
            said = f": “{_highlight(quote.text, quote.highlights, 160)}”" if quote else ""
            lines.append(
                f"- {finding.severity}{_new(finding, new_ids)} · {where} · {_cell(finding.summary)}{said} "
                f"→ {finding.action}"
            )
        if len(group) > top:
            lines.append(f"- … and {len(group) - top} more in findings.json")
    return lines
