"""Reports a KB owner opens: one self-contained HTML page per run."""

from kbcurator.reports.html import render_report, write_report

__all__ = ["render_report", "write_report"]
