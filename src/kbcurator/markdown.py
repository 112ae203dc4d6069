"""Markdown the reports write (``gaps.md``, ``health.md`` and their Prefect artifacts)."""

from __future__ import annotations


def table_cell(text: object, limit: int = 160) -> str:
    """One line of text, safe inside a Markdown table cell.

    Ticket and article text is outside input: it must read as text wherever the Markdown is rendered, so HTML
    is escaped and pipes cannot open a new column. Long text is cut to ``limit`` characters.
    """
    flat = " ".join(str(text).split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
