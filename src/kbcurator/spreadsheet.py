"""Text written into a CSV that people open in a spreadsheet (open items, gap exports, cluster labels)."""

from __future__ import annotations

__all__ = ["sheet_text"]


def sheet_text(text: str) -> str:
    """``text`` as a cell a spreadsheet shows as text.

    Gap labels and notes come from customer tickets and people: a cell starting with one of these runs as a
    formula in Excel, LibreOffice and Google Sheets (CSV injection); a leading apostrophe keeps it text.
    """
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
