"""The report use case: the KB owner's page (release, gaps, health findings, triage) and its headline.

A caller loads the settings once and calls :func:`start_report`, then :func:`write_page` (one HTML file) or
:func:`publish_report` (the nightly's: the run's own copy, the latest one beside the runs, and the headline).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kbcurator.index.store import IndexStore
from kbcurator.records import IndexRelease
from kbcurator.reports import write_report
from kbcurator.reports.headline import headline_markdown
from kbcurator.settings import Settings

REPORT_FILE = "report.html"


@dataclass(frozen=True, slots=True)
class ReportJob:
    """What one report is written from; built once by :func:`start_report`."""

    settings: Settings
    store: IndexStore
    as_of: datetime  # triage (snoozes) is shown as of this moment
    release: IndexRelease | None  # the release current when the report started (None before the first publish)

    @property
    def latest(self) -> Path:
        """``<runs_dir>/report.html``: the latest report, where a KB owner looks first."""
        return Path(self.settings.runs_dir) / REPORT_FILE


@dataclass(frozen=True, slots=True)
class ReportResult:
    path: Path  # the page written
    latest: Path  # the latest report (a copy of ``path`` when they differ)
    headline: str  # markdown: the headline figures and where the page lives (the ``kb-report`` artifact)
    release_tag: str | None

    def as_dict(self) -> dict[str, Any]:
        """What the report flow returns."""
        return {"report": str(self.path), "latest": str(self.latest), "headline": self.headline}


def start_report(settings: Settings, *, as_of: datetime | None = None) -> ReportJob:
    store = IndexStore(settings.index_uri, storage_options=settings.index_storage_options)
    return ReportJob(settings, store, as_of or datetime.now(UTC), store.current())


def write_page(job: ReportJob, out: Path | None = None) -> Path:
    """Write the page to ``out`` (default: the latest report); returns the path written."""
    return write_report(job.store, out or job.latest, job.as_of)


def publish_report(job: ReportJob, run_dir: str | Path | None = None) -> ReportResult:
    """Write the page into ``run_dir`` (when given) and as the latest report, and the headline that points to it.

    The headline carries where the page lives because browsers block ``file://`` links from the Prefect UI.
    """
    path = write_page(job, Path(run_dir) / REPORT_FILE if run_dir else None)
    if path != job.latest:
        shutil.copyfile(path, job.latest)
    headline = headline_markdown(job.store, as_of=job.as_of, report_path=job.latest)
    return ReportResult(path, job.latest, headline, job.release.tag if job.release else None)
