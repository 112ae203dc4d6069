"""KB health audit: stale, duplicate and contradictory articles in one index release.

Runs on its own (``kbcurator audit``) and as the nightly reindex's last step. Only orchestration here: the steps
are the audit use case's (``kbcurator.usecases.audit``); the detectors run where ``settings.execution`` says.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.execution import executor_for
from kbcurator.settings import load_settings
from kbcurator.usecases import audit as usecase

DEFAULT_CONFIG = "kb_sources/sample.yaml"


@flow(name="audit", log_prints=True)
def audit_flow(
    config: str = DEFAULT_CONFIG,
    index_uri: str | None = None,
    version: str = "current",
    run_dir: str | None = None,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """Audit one release and store its findings beside it.

    Args:
        config: settings YAML (sources' review rules, health thresholds).
        index_uri: overrides the file's index_uri.
        version: the release to audit: "current", a tag or a number.
        run_dir: write into this run's folder (the nightly reindex passes its own); a new one otherwise.
        as_of: the date age and dated-content rules count from (default: now).
    """
    logger = get_run_logger()
    settings = load_settings(config, index_uri=index_uri)
    job = usecase.start_audit(settings, version, run_dir=run_dir, as_of=as_of)
    escalated = usecase.escalations(job)
    for warning in escalated.warnings:
        logger.warning(warning)
    for note in escalated.notes:
        logger.info(note)
    corpus = usecase.read_corpus(job, escalated)
    with executor_for(settings, job.store, on_progress=logger.info) as executor:
        result = usecase.detect(job, corpus, executor)
    done = usecase.record(job, corpus, result)
    create_markdown_artifact(markdown=done.markdown, key="kb-health", description=done.outcome)
    for failure in result.failed_detectors:
        logger.error("detector %s failed: %s", failure.record_id, failure.reason)
    logger.info(done.outcome)
    return done.as_dict()


if __name__ == "__main__":
    audit_flow()
