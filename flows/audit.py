"""KB health audit: stale, duplicate and contradictory articles in one index release.

Runs on its own (``kbcurator audit``) and as the nightly reindex's last step. Only orchestration here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client

from flows.execution import dask_task_runner, require_scheduler
from flows.worker_tasks import detect_task
from kbcurator.analysis.audit import AuditResult, combine_runs, default_detectors
from kbcurator.analysis.base import AuditCorpus
from kbcurator.analysis.corpus import corpus_from_release
from kbcurator.analysis.pipeline import audit_corpus, reviews_of, write_audit_outputs
from kbcurator.analysis.report import health_markdown
from kbcurator.analysis.store import FindingStore
from kbcurator.embedding import load_embedder
from kbcurator.errors import KBError
from kbcurator.gaps.coverage import ReleaseVectors
from kbcurator.gaps.escalations import ticket_escalations
from kbcurator.index.embedding_cache import EmbeddingCache
from kbcurator.index.store import IndexStore, manifest_of
from kbcurator.reindex import start_run
from kbcurator.settings import Settings, load_settings

DEFAULT_CONFIG = "kb_sources/sample.yaml"


def _audit_on_dask(
    settings: Settings, release_seq: int, corpus: AuditCorpus, escalations: dict[str, tuple[str, ...]]
) -> AuditResult:
    """One task per detector on the Dask cluster; each worker reads the release from the index itself."""
    names = [detector.name for detector in default_detectors(settings.health)]
    get_run_logger().info("running %d detectors on Dask: %s", len(names), ", ".join(names))
    require_scheduler(settings.execution)
    runner = dask_task_runner(settings.execution, api_url=str(get_client(sync_client=True).api_url))
    with runner:
        futures = [
            runner.submit(
                detect_task,
                parameters={
                    "settings": settings,
                    "release_seq": release_seq,
                    "detector": name,
                    "run_at": corpus.run_at,
                    "escalations": escalations,
                },
            )
            for name in names
        ]
        runs = [future.result() for future in futures]
    return combine_runs(corpus, runs)


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
    store = IndexStore(settings.index_uri, storage_options=settings.index_storage_options)
    release = store.resolve(version)
    if run_dir is None:
        run = start_run(settings.runs_dir)
        run_id, folder = run.run_id, run.run_dir
    else:
        folder = Path(run_dir)
        run_id = folder.name
    run_at = as_of or datetime.now(UTC)
    escalations: dict[str, tuple[str, ...]] = {}
    if settings.tickets:
        model = manifest_of(release).get("model", settings.embedding.model)
        try:
            escalations = ticket_escalations(
                settings.tickets,
                ReleaseVectors(store, release),
                embedder_factory=lambda: load_embedder(model, settings.embedding.device, settings.embedding.batch_size),
                cache=EmbeddingCache(store),
                min_lift=settings.gaps.answered_lift,
            )
        except KBError as exc:  # unreadable tickets cost the failing-article check, not the audit
            logger.warning("failing-article check skipped: %s", exc)
        logger.info("%d articles answer escalated tickets", len(escalations))
    corpus = corpus_from_release(
        store, release, run_at=run_at, reviews=reviews_of(settings), escalations=escalations, ann=settings.ann
    )
    if settings.execution.distributed:
        result = _audit_on_dask(settings, release.seq, corpus, escalations)
    else:
        result = audit_corpus(corpus, settings)
    findings = FindingStore(store)
    diff = findings.diff(result)
    findings.write_run(run_id, result, diff)
    exports = write_audit_outputs(folder, result, diff, corpus.article_by_id)
    summary = health_markdown(result, diff, corpus.article_by_id)
    outcome = (
        f"{len(result.findings)} findings on {release.tag} ({len(diff.new_ids)} new, {len(diff.resolved)} resolved)"
    )
    create_markdown_artifact(markdown=summary, key="kb-health", description=outcome)
    for failure in result.failed_detectors:
        logger.error("detector %s failed: %s", failure.record_id, failure.reason)
    logger.info(outcome)
    return {
        "run_id": run_id,
        "run_dir": str(folder),
        "release": release.tag,
        "findings": len(result.findings),
        "new": len(diff.new_ids),
        "resolved": len(diff.resolved),
        "counts": result.counts(),
        "severity": result.severity_counts(),
        "failed_detectors": [f.record_id for f in result.failed_detectors],
        "exports": exports,
        "outcome": outcome,
    }


if __name__ == "__main__":
    audit_flow()
