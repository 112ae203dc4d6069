"""Nightly reindex: sources -> articles -> chunks -> embeddings -> checks -> publish.

This flow only orchestrates: every step is a package function. A failed check raises
``ValidationFailed`` after the run's report is written, and leaves the current release untouched.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
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
from kbcurator.analysis.corpus import dead_links_from
from kbcurator.chunking import ChunkPolicy
from kbcurator.embedding import load_embedder
from kbcurator.errors import EmbeddingError, ValidationFailed
from kbcurator.index.build import (
    ChunkedBatch,
    ReleaseCandidate,
    assemble_candidate,
    build_candidate,
    plan_build,
)
from kbcurator.index.embedding_cache import EmbeddingCache
from kbcurator.index.parse_memo import ParseMemo
from kbcurator.index.publish import publish
from kbcurator.index.store import IndexStore
from kbcurator.ingest import read_articles
from kbcurator.records import Article, IndexRelease, Rejected
from kbcurator.settings import AnnSettings, Settings, SourceConfig, load_settings

DEFAULT_CONFIG = "kb_sources/sample.yaml"


@task(name="read-source", cache_policy=NO_CACHE)
def read_source_task(source: SourceConfig, store: IndexStore) -> tuple[list[Article], list[Rejected]]:
    memo = ParseMemo(store)
    articles, rejected = read_articles(source, memo=memo)
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


def read_sources(sources: list[SourceConfig], store: IndexStore) -> tuple[list[Article], list[Rejected]]:
    articles: list[Article] = []
    rejected: list[Rejected] = []
    for source in sources:
        remote = source.kind == "sitemap" or (source.kind == "zendesk" and "://" in source.location)
        reader = read_source_task.with_options(retries=2, retry_delay_seconds=10) if remote else read_source_task
        found, skipped = reader(source, store)
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
    articles, rejected = read_sources(reindex.require_sources(settings, config), store)
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
def check_task(
    candidate: ReleaseCandidate, settings: Settings, store: IndexStore, run_dir: Path
) -> quality.ValidationReport:
    current_articles, current_chunks = reindex.current_counts(store)
    params = ReleaseCheckParams.from_settings(
        settings.checks,
        dimension=candidate.dimension,
        current_articles=current_articles,
        current_chunks=current_chunks,
    )
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


@task(name="publish", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def publish_task(
    candidate: ReleaseCandidate,
    store: IndexStore,
    report: quality.ValidationReport,
    manifest: dict[str, Any],
    ann: AnnSettings,
    lock_timeout_s: float,
) -> IndexRelease:
    release = publish(
        store, candidate, checks_passed=report.success, manifest=manifest, ann=ann, lock_timeout_s=lock_timeout_s
    )
    get_run_logger().info(
        "published %s (articles v%d, chunks v%d)",
        release.tag,
        release.articles_version,
        release.chunks_version,
    )
    return release


@task(name="publish", cache_policy=NO_CACHE)
def block_publish_task(message: str, failed_checks: list[str]) -> None:
    """Stands in for the publish step when a check failed: it fails, naming the checks and what would vanish."""
    raise ValidationFailed(message, failed=failed_checks)


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
    sources = reindex.require_sources(settings, config)
    store = IndexStore(settings.index_uri, storage_options=settings.index_storage_options)
    run = reindex.start_run(settings.runs_dir)
    logger.info("run %s: %d sources -> %s", run.run_id, len(sources), settings.index_uri)

    timings: dict[str, float] = {}
    rejected: list[Rejected]
    if settings.execution.distributed:
        where = settings.execution.dask_address or f"a local Dask cluster of {settings.execution.local_workers}"
        logger.info("chunking and embedding on %s", where)
        require_scheduler(settings.execution)
        api_url = get_client(sync_client=True).api_url
        runner = dask_task_runner(settings.execution, api_url=str(api_url))
        built = distributed_build_flow.with_options(task_runner=runner)(config=config, index_uri=index_uri, model=model)
        candidate, rejected = built["candidate"], list(built["rejected"])
        timings.update(built["timings"])
    else:
        clock = time.perf_counter()
        articles, rejected = read_sources(sources, store)
        timings["read_s"] = time.perf_counter() - clock
        clock = time.perf_counter()
        candidate = build_task(articles, settings, store)
        timings["build_s"] = time.perf_counter() - clock
    rejected += candidate.rejected
    reindex.write_rejections(run.run_dir, rejected)
    changes = reindex.changes_since_current(store, candidate)
    current = store.current()

    clock = time.perf_counter()
    report = check_task(candidate, settings, store, run.run_dir)
    timings["check_s"] = time.perf_counter() - clock
    result: dict[str, Any] = {
        "run_id": run.run_id,
        "run_dir": str(run.run_dir),
        "index_uri": settings.index_uri,
        "articles": candidate.stats.articles,
        "chunks": candidate.stats.chunks,
        "rejected": len(rejected),
        "checks_passed": report.success,
        "data_docs": report.data_docs_path,
        "changes": changes.as_dict(),
    }
    release_tag = None
    blocked: str | None = None
    vanished_section: str | None = None
    if not report.success:
        vanished = reindex.vanished_articles(store, changes)
        removed_chunks = len(changes.chunks.removed)
        blocked = reindex.blocked_publish_message(
            [o.label for o in report.failed], current.tag if current else None, vanished, removed_chunks
        )
        vanished_section = reindex.vanished_markdown(vanished, removed_chunks)
        (run.run_dir / "vanished.json").write_text(json.dumps([asdict(a) for a in vanished], indent=1))
        result["vanished"] = {"articles": len(vanished), "chunks": removed_chunks}
        outcome = f"checks FAILED: nothing published; {current.tag if current else 'no release'} stays current"
    elif changes.unchanged and not force_publish and current is not None:
        outcome = f"unchanged since {current.tag}: nothing to publish"
    else:
        manifest = {
            "run_id": run.run_id,
            "source_snapshot": reindex.source_snapshot(sources, candidate),
            "changes": changes.as_dict(),
            "build": asdict(candidate.stats),
            "rejected": len(rejected),
            # What the crawl found gone, so a later audit of this release can name broken links.
            "dead_links": dead_links_from(rejected),
            "checks": {
                "success": report.success,
                "failed": [o.label for o in report.failed],
                "passed": sum(o.success for o in report.outcomes),
                "total": len(report.outcomes),
                "data_docs": report.data_docs_path,
                "validation_result": report.results_json,
            },
        }
        clock = time.perf_counter()
        release = publish_task(candidate, store, report, manifest, settings.ann, settings.publish_lock_timeout_s)
        timings["publish_s"] = time.perf_counter() - clock
        release_tag = release.tag
        outcome = f"published {release.tag}"
        (run.run_dir / "manifest.json").write_text(release.manifest_json)
    current_tag = store.current().tag if store.current() else None
    result.update(
        outcome=outcome,
        release=release_tag,
        current=current_tag,
        build=asdict(candidate.stats),
        timings={k: round(v, 3) for k, v in timings.items()},
    )
    summary = reindex.run_summary_markdown(
        run=run,
        outcome=outcome,
        release_tag=release_tag,
        current_tag=current_tag,
        candidate=candidate,
        changes=changes,
        rejected=rejected,
        checks_markdown=report.summary_markdown(),
        index_uri=settings.index_uri,
        vanished_section=vanished_section,
    )
    (run.run_dir / "summary.md").write_text(summary)
    (run.run_dir / "result.json").write_text(json.dumps(result, indent=1, default=str))
    create_markdown_artifact(markdown=summary, key="kb-reindex", description=outcome)
    logger.info(outcome)
    if blocked is not None:
        # The publish step itself fails, so the UI shows which step stopped the night and why.
        block_publish_task(blocked, [o.label for o in report.failed])
    if audit and current_tag is not None:
        # The health audit reads the release just made current; a failed audit is reported, but the
        # publish stands (nothing about the release is wrong).
        state = audit_flow(
            config=config, index_uri=index_uri, version=current_tag, run_dir=str(run.run_dir), return_state=True
        )
        if state.is_completed():
            health = state.result()
            result["health"] = {k: health[k] for k in ("findings", "new", "resolved", "severity", "exports")}
        else:
            logger.error("health audit failed: %s", state.message)
            result["health"] = {"error": state.message}
        (run.run_dir / "result.json").write_text(json.dumps(result, indent=1, default=str))
    return result


if __name__ == "__main__":
    reindex_flow()
