"""The KB owner's report: one HTML page (release, gaps, findings, triage) and its headline as a Prefect artifact.

Runs as the nightly's last step, after the gaps, so the morning report holds the same night's gaps; also alone.
Only orchestration here: the steps are the report use case's (``kbcurator.usecases.report``).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from kbcurator.settings import load_settings
from kbcurator.usecases import report as usecase

DEFAULT_CONFIG = "kb_sources/sample.yaml"


@flow(name="report", log_prints=True)
def report_flow(
    config: str = DEFAULT_CONFIG, index_uri: str | None = None, run_dir: str | None = None
) -> dict[str, Any]:
    """Write ``report.html`` into ``run_dir`` (when given) and as ``<runs_dir>/report.html``, the latest one.

    The ``kb-report`` artifact carries the headline figures and where the page lives: browsers block ``file://``
    links from the Prefect UI.
    """
    job = usecase.start_report(load_settings(config, index_uri=index_uri))
    done = usecase.publish_report(job, run_dir)
    create_markdown_artifact(markdown=done.headline, key="kb-report", description=f"KB report: {done.latest}")
    get_run_logger().info("report written to %s (latest: %s)", done.path, done.latest)
    return done.as_dict()


if __name__ == "__main__":
    report_flow()
