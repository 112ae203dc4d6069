"""The KB owner's report: one HTML page (release, gaps, findings, triage) and its headline as a Prefect artifact.

Runs as the nightly's last step, after the gaps, so the morning report holds the same night's gaps; also alone.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from kbcurator.index.store import IndexStore
from kbcurator.reports import write_report
from kbcurator.reports.headline import headline_markdown
from kbcurator.settings import load_settings

DEFAULT_CONFIG = "kb_sources/sample.yaml"


@flow(name="report", log_prints=True)
def report_flow(
    config: str = DEFAULT_CONFIG, index_uri: str | None = None, run_dir: str | None = None
) -> dict[str, Any]:
    """Write ``report.html`` into ``run_dir`` (when given) and as ``<runs_dir>/report.html``, the latest one.

    The ``kb-report`` artifact carries the headline figures and where the page lives: browsers block ``file://``
    links from the Prefect UI.
    """
    settings = load_settings(config, index_uri=index_uri)
    store = IndexStore(settings.index_uri, storage_options=settings.index_storage_options)
    as_of = datetime.now(UTC)
    latest = Path(settings.runs_dir) / "report.html"
    path = write_report(store, Path(run_dir) / "report.html" if run_dir else latest, as_of)
    if path != latest:
        shutil.copyfile(path, latest)
    headline = headline_markdown(store, as_of=as_of, report_path=latest)
    create_markdown_artifact(markdown=headline, key="kb-report", description=f"KB report: {latest}")
    get_run_logger().info("report written to %s (latest: %s)", path, latest)
    return {"report": str(path), "latest": str(latest), "headline": headline}


if __name__ == "__main__":
    report_flow()
