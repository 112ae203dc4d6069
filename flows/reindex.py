"""Nightly reindex: sources -> articles -> chunks -> embeddings -> checks -> publish.

This flow only orchestrates the reindex use case (``kbcurator.usecases.reindex``: one run pinned to one base
release, and every decision about what gets published) as tasks with retries and artifacts. A failed check
fails the ``publish`` task after the run's summary is written, and leaves the current release untouched.
"""

from __future__ import annotations

import json
import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.futures import wait

from checks import ReleaseCheckParams, build_release_suites
from flows.audit import audit_flow
from flows.execution import dask_task_runner, require_scheduler
from flows.worker_tasks import chunk_batch_task, embed_batch_task, embedder_identity_task
from kbcurator import quality, reindex
from kbcurator.chunking import ChunkPolicy
from kbcurator.embedding import load_embedder
from kbcurator.errors import EmbeddingError, StaleBase, ValidationFailed
from kbcurator.index.build import (
    ChunkedBatch,
    ReleaseCandidate,
    assemble_candidate,
    build_candidate,
    plan_build,
)
from kbcurator.index.embedding_cache import EmbeddingCache
from kbcurator.index.parse_memo import ParseMemo
from kbcurator.index.store import IndexStore
from kbcurator.ingest import read_articles
from kbcurator.records import Article, IndexRelease, Rejected
from kbcurator.settings import Settings, SourceConfig, load_settings
from kbcurator.usecases import reindex as usecase

DEFAULT_CONFIG = "kb_sources/sample.yaml"


@task(name="read-source", cache_policy=NO_CACHE)
def read_source_task(
    source: SourceConfig, store: IndexStore, max_article_chars: int
) -> tuple[list[Article], list[Rejected]]:
    memo = ParseMemo(store)
    articles, rejected = read_articles(source, memo=memo, max_article_chars=max_article_chars)
    get_run_logger().info(
        "source %s (%s): %d articles (%d unchanged pages not parsed again), %d skipped",
        source.id,
        source.kind,
        len(articles),
        memo.reused,
        len(rejected),
    )
    return articles, rejected


@task(name="chunk-and-embed", cache_policy=NO_CACHE)
def build_task(articles: list[Article], settings: Settings, store: IndexStore) -> ReleaseCandidate:
    logger = get_run_logger()
    embedder = load_embedder(settings.embedding.model, settings.embedding.device, settings.embedding.batch_size)
    policy = ChunkPolicy(**settings.chunking.model_dump())
    candidate = build_candidate(
        articles,
        store=store,
        embedder=embedder,
        policy=policy,
        on_progress=logger.info,
        checkpoint_every=settings.embedding.checkpoint_every,
    )
    return candidate


def read_sources(
    sources: list[SourceConfig], store: IndexStore, max_article_chars: int
) -> tuple[list[Article], list[Rejected]]:
    articles: list[Article] = []
    rejected: list[Rejected] = []
    for source in sources:
        remote = source.kind == "sitemap" or (source.kind == "zendesk" and "://" in source.location)
        reader = read_source_task.with_options(retries=2, retry_delay_seconds=10) if remote else read_source_task
        found, skipped = reader(source, store, max_article_chars)
        articles += found
        rejected += skipped
    return articles, rejected


def _batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[start : start + size] for start in range(0, len(items), max(1, size))]


@flow(name="reindex-build-distributed", log_prints=True)
def distributed_build_flow(
    config: str = DEFAULT_CONFIG, index_uri: str | None = None, model: str | None = None
) -> dict[str, Any]:
    """Read, chunk and embed on the task runner this subflow is given (a Dask cluster); returns the candidate.

    Chunking runs in batches of ``execution.chunk_batch_articles`` articles and embedding in batches of
    ``execution.embed_batch_chunks`` chunks, so each task fits one worker.
    """
    logger = get_run_logger()
    settings = load_settings(config, index_uri=index_uri, embedding={"model": model} if model else None)
    store = IndexStore(settings.index_uri, storage_options=settings.index_storage_options)
    execution = settings.execution
    clock = time.perf_counter()
    sources = reindex.require_sources(settings, config)
    articles, rejected = read_sources(sources, store, settings.checks.max_article_chars)
    read_s = time.perf_counter() - clock

    clock = time.perf_counter()
    identity = embedder_identity_task.submit(settings.embedding)  # loads the model on a worker meanwhile
    policy = ChunkPolicy(**settings.chunking.model_dump())
    name, dimension = identity.result()
    plan = plan_build(articles, store=store, model=name, policy=policy)
    work = _batches(list(plan.to_chunk), execution.chunk_batch_articles)
    chunk_futures = [chunk_batch_task.submit(batch, policy) for batch in work]
    batches: list[ChunkedBatch] = [future.result() for future in chunk_futures]
    chunk_s = time.perf_counter() - clock
    logger.info("chunked %d articles in %d tasks (%.1f s)", len(plan.to_chunk), len(batches), chunk_s)

    clock = time.perf_counter()
    texts_by_hash = {h: text for batch in batches for h, text in batch.texts_by_hash.items()}
    cache = EmbeddingCache(store)
    missing = sorted(set(texts_by_hash) - cache.known(name, list(texts_by_hash)))
    embed_futures = [
        embed_batch_task.submit(
            {h: texts_by_hash[h] for h in hashes},
            settings.embedding,
            settings.index_uri,
            settings.index_storage_options,
        )
        for hashes in _batches(missing, execution.embed_batch_chunks)
    ]
    wait(embed_futures)
    embedded = sum(future.result() for future in embed_futures)
    vectors = cache.lookup(name, list(texts_by_hash))
    lost = len(set(texts_by_hash) - set(vectors))
    if lost:
        raise EmbeddingError(f"{lost} chunk vectors are missing from the embedding cache after the embedding tasks")
    embed_s = time.perf_counter() - clock
    logger.info("embedded %d chunks in %d tasks (%.1f s)", embedded, len(embed_futures), embed_s)
    candidate = assemble_candidate(
        plan,
        batches,
        vectors,
        model=name,
        dimension=dimension,
        policy=policy,
        chunks_embedded=embedded,
        chunk_seconds=chunk_s,
        embed_seconds=embed_s,
    )
    return {
        "candidate": candidate,
        "rejected": rejected,
        "timings": {"read_s": read_s, "build_s": chunk_s + embed_s},
    }


@task(name="check", cache_policy=NO_CACHE)
def check_task(job: usecase.ReindexJob, candidate: ReleaseCandidate) -> quality.ValidationReport:
    current_articles, current_chunks = job.base_counts
    params = ReleaseCheckParams.from_settings(
        job.settings.checks,
        dimension=candidate.dimension,
        current_articles=current_articles,
        current_chunks=current_chunks,
    )
    run_dir = job.run.run_dir
    frames = quality.prepare_for_checks(candidate.articles.to_pandas(), candidate.chunks.to_pandas())
    report = quality.run_suites(frames, build_release_suites(params), docs_dir=run_dir / "data_docs")
    (run_dir / "validation.json").write_text(json.dumps(report.results_json, indent=1, default=str))
    get_run_logger().info(
        "checks %s: %d of %d passed",
        "passed" if report.success else "FAILED",
        sum(o.success for o in report.outcomes),
        len(report.outcomes),
    )
    return report


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


def _build(
    job: usecase.ReindexJob, config: str, index_uri: str | None, model: str | None, timings: dict[str, float]
) -> tuple[ReleaseCandidate, list[Rejected]]:
    """Read and build in this process, or on the Dask cluster the settings name."""
    settings = job.settings
    if settings.execution.distributed:
        where = settings.execution.dask_address or f"a local Dask cluster of {settings.execution.local_workers}"
        get_run_logger().info("chunking and embedding on %s", where)
        require_scheduler(settings.execution)
        runner = dask_task_runner(settings.execution, api_url=str(get_client(sync_client=True).api_url))
        built = distributed_build_flow.with_options(task_runner=runner)(config=config, index_uri=index_uri, model=model)
        timings.update(built["timings"])
        return built["candidate"], list(built["rejected"])
    clock = time.perf_counter()
    articles, rejected = read_sources(list(job.sources), job.store, settings.checks.max_article_chars)
    timings["read_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    candidate = build_task(articles, settings, job.store)
    timings["build_s"] = time.perf_counter() - clock
    return candidate, rejected


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
) -> dict[str, Any]:
    """Build the index from the sources in ``config`` and publish it if every check passes.

    Args:
        config: a settings YAML (see kb_sources/).
        index_uri: overrides the file's index_uri (any URI LanceDB accepts).
        model: overrides the embedding model.
        force_publish: publish a new release even when nothing changed since the current one.
        audit: audit the current release's health after publishing (the ``kb-health`` artifact).
    """
    logger = get_run_logger()
    settings = load_settings(config, index_uri=index_uri, embedding={"model": model} if model else None)
    job = usecase.start_reindex(settings, config, force_publish=force_publish)
    logger.info("run %s: %d sources -> %s", job.run.run_id, len(job.sources), settings.index_uri)
    timings: dict[str, float] = {}
    candidate, rejected = _build(job, config, index_uri, model, timings)
    rejected += candidate.rejected
    reindex.write_rejections(job.run.run_dir, rejected)
    clock = time.perf_counter()
    report = check_task(job, candidate)
    timings["check_s"] = time.perf_counter() - clock
    decision = usecase.decide(job, candidate, rejected, report)
    clock = time.perf_counter()
    published = publish_task(job, candidate, decision, return_state=True)
    timings["publish_s"] = time.perf_counter() - clock
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
