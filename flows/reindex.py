"""Nightly reindex: sources -> articles -> chunks -> embeddings -> checks -> publish.

This flow only orchestrates the reindex use case (``kbcurator.usecases.reindex``: one run pinned to one base
release, and every decision about what gets published) as tasks with retries and artifacts. A failed check
fails the ``publish`` task after the run's summary is written, and leaves the current release untouched.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from checks import release_suites_for
from flows.audit import audit_flow
from flows.execution import executor_for
from kbcurator import quality, reindex
from kbcurator.errors import StaleBase, ValidationFailed
from kbcurator.index.build import ReleaseCandidate
from kbcurator.records import IndexRelease, Rejected
from kbcurator.settings import SourceConfig, load_settings
from kbcurator.usecases import reindex as usecase

DEFAULT_CONFIG = "kb_sources/sample.yaml"


@task(name="read-source", cache_policy=NO_CACHE)
def read_source_task(job: usecase.ReindexJob, source: SourceConfig) -> usecase.SourceRead:
    read = usecase.read_source(job, source)
    get_run_logger().info(
        "source %s (%s): %d articles (%d unchanged pages not parsed again), %d skipped",
        source.id,
        source.kind,
        read.article_count,
        read.reused,
        len(read.rejected),
    )
    return read


def _read_and_build(job: usecase.ReindexJob, timings: dict[str, float]) -> tuple[ReleaseCandidate, list[Rejected]]:
    """Read every source here (a remote one with retries), then chunk and embed where the settings say."""
    logger = get_run_logger()
    try:
        with executor_for(job.settings, job.store, on_progress=logger.info) as executor:
            clock = time.perf_counter()
            reads = [
                read_source_task.with_options(retries=usecase.read_retries(s), retry_delay_seconds=10)(job, s)
                for s in job.sources
            ]
            timings["read_s"] = time.perf_counter() - clock
            clock = time.perf_counter()
            # Not a task of its own: on Dask, its stages are the tasks (a task cannot carry the cluster's client).
            candidate = usecase.build(job, usecase.staged_articles_of(job), executor, on_progress=logger.info)
            timings["build_s"] = time.perf_counter() - clock
    except BaseException:
        usecase.release_staging(job)  # the articles staged as they were read
        raise
    return candidate, [r for read in reads for r in read.rejected]


@task(name="check", cache_policy=NO_CACHE)
def check_task(job: usecase.ReindexJob, candidate: ReleaseCandidate) -> quality.ValidationReport:
    report = usecase.check(job, candidate, release_suites_for)
    get_run_logger().info(
        "checks %s: %d of %d passed",
        "passed" if report.success else "FAILED",
        sum(o.success for o in report.outcomes),
        len(report.outcomes),
    )
    return report


@task(name="retrieval-gate", cache_policy=NO_CACHE)
def evaluate_task(job: usecase.ReindexJob, candidate: ReleaseCandidate) -> usecase.RetrievalCheck:
    return usecase.evaluate(job, candidate)


def _worth_retrying(task: Any, task_run: Any, state: Any) -> bool:
    """A lock held too long or a storage hiccup may pass; a blocked publish or a stale base never will."""
    try:
        state.result()
    except (StaleBase, ValidationFailed):
        return False
    except Exception:
        return True
    return True


@task(name="publish", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5, retry_condition_fn=_worth_retrying)
def publish_task(
    job: usecase.ReindexJob, candidate: ReleaseCandidate, decision: usecase.Decision
) -> IndexRelease | None:
    """Publishes, does nothing (unchanged), or fails naming the checks and what would vanish (blocked)."""
    release = usecase.publish_decided(job, candidate, decision)
    if release is not None:
        get_run_logger().info(
            "published %s (articles v%d, chunks v%d)", release.tag, release.articles_version, release.chunks_version
        )
    return release


def _audit(job: usecase.ReindexJob, config: str, index_uri: str | None, release_tag: str) -> dict[str, Any]:
    """The health audit of the release left current; a failed audit is reported, the publish stands."""
    state = audit_flow(
        config=config, index_uri=index_uri, version=release_tag, run_dir=str(job.run.run_dir), return_state=True
    )
    if not state.is_completed():
        get_run_logger().error("health audit failed: %s", state.message)
        return {"error": state.message}
    health = state.result()
    return {k: health[k] for k in ("findings", "new", "resolved", "severity", "exports")}


@flow(name="reindex", log_prints=True)
def reindex_flow(
    config: str = DEFAULT_CONFIG,
    index_uri: str | None = None,
    model: str | None = None,
    force_publish: bool = False,
    audit: bool = True,
    allow_retrieval_drop: bool = False,
) -> dict[str, Any]:
    """Build the index from the sources in ``config`` and publish it if every check passes.

    Args:
        config: a settings YAML (see kb_sources/).
        index_uri: overrides the file's index_uri (any URI LanceDB accepts).
        model: overrides the embedding model.
        force_publish: publish a new release even when nothing changed since the current one.
        audit: audit the current release's health after publishing (the ``kb-health`` artifact).
        allow_retrieval_drop: publish although the golden questions' recall fails the retrieval gate.
    """
    logger = get_run_logger()
    settings = load_settings(config, index_uri=index_uri, embedding={"model": model} if model else None)
    job = usecase.start_reindex(
        settings, config, force_publish=force_publish, allow_retrieval_drop=allow_retrieval_drop
    )
    logger.info("run %s: %d sources -> %s", job.run.run_id, len(job.sources), settings.index_uri)
    timings: dict[str, float] = {}
    candidate, rejected = _read_and_build(job, timings)
    rejected += candidate.rejected
    try:
        reindex.write_rejections(job.run.run_dir, rejected)
        clock = time.perf_counter()
        report = check_task(job, candidate)
        timings["check_s"] = time.perf_counter() - clock
        decision = usecase.decide(job, candidate, rejected, report, evaluate_task(job, candidate))
        clock = time.perf_counter()
        published = publish_task(job, candidate, decision, return_state=True)
        timings["publish_s"] = time.perf_counter() - clock
    except BaseException:
        usecase.release_staging(job, candidate)  # finish would have dropped the candidate's staging tables
        raise
    release = published.result(raise_on_failure=False) if published.is_completed() else None
    result, summary = usecase.finish(job, candidate, rejected, report, decision, release, timings)
    create_markdown_artifact(markdown=summary, key="kb-reindex", description=result["outcome"])
    logger.info(result["outcome"])
    published.result()  # a blocked or failed publish fails the run here, after its summary was written
    if audit and result["current"] is not None:
        result["health"] = _audit(job, config, index_uri, result["current"])
        usecase.write_result(job, result)
    return result


if __name__ == "__main__":
    reindex_flow()
