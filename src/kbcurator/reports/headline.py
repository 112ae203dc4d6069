"""The report's headline figures as Markdown: what the Prefect UI shows as the ``kb-report`` artifact.

Browsers refuse ``file://`` links from a web page, so the artifact carries the figures themselves and says
where the full report lives, instead of linking to it.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

from kbcurator.index.store import IndexStore, manifest_of
from kbcurator.markdown import table_cell
from kbcurator.records import SEVERITIES
from kbcurator.triage import open_items

TOP = 5


def _text(value: str, limit: int) -> str:
    """A table cell (``markdown.table_cell``) that also cannot open a link or a code span in the Prefect UI."""
    return table_cell(value, limit).replace("`", "'").replace("[", "\\[").replace("]", "\\]")


def headline_markdown(store: IndexStore, *, as_of: datetime, report_path: Path) -> str:
    """Release, open gaps and open findings (with triage applied), the top gaps, and the report's location."""
    current = store.current()
    items = open_items(store, as_of)
    gaps = sorted((i for i in items if i.kind == "gap"), key=lambda i: -i.score)
    findings = [i for i in items if i.kind == "finding"]
    by_severity = Counter(i.severity for i in findings)
    lines = [f"# KB report, {as_of:%Y-%m-%d %H:%M} UTC", ""]
    if current is None:
        lines.append("- current release: none yet")
    else:
        counts = manifest_of(current).get("counts", {})
        lines.append(
            f"- current release: `{current.tag}` ({counts.get('articles', 0)} articles, "
            f"{counts.get('chunks', 0)} chunks, published {current.created_at:%Y-%m-%d %H:%M} UTC)"
        )
    lines.append(f"- open knowledge gaps: {len(gaps)}")
    severity = ", ".join(f"{by_severity.get(s, 0)} {s}" for s in reversed(SEVERITIES))
    lines.append(f"- open health findings: {len(findings)} ({severity})")
    lines.append(f"- full report: `{report_path.resolve()}` (on the machine the flow ran on)")
    if gaps:
        lines += ["", "## Top gaps", "", "| # | gap | score |", "|---|---|---|"]
        for rank, gap in enumerate(gaps[:TOP], start=1):
            lines.append(f"| {rank} | {_text(gap.summary, 140)} | {gap.score:.2f} |")
    worst = sorted(findings, key=lambda i: (-SEVERITIES.index(i.severity) if i.severity in SEVERITIES else 0, -i.score))
    if worst:
        lines += ["", "## Top findings", "", "| # | severity | finding |", "|---|---|---|"]
        for rank, finding in enumerate(worst[:TOP], start=1):
            lines.append(f"| {rank} | {finding.severity} | {_text(finding.summary, 200)} |")
    return "\n".join(lines) + "\n"
