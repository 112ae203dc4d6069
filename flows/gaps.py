"""Knowledge gaps: cluster the tickets that count, score each cluster against the current index release,
follow them from the previous run, and report.

Only orchestration here: every step is a package function.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from kbcurator.embedding import load_embedder
from kbcurator.errors import ConfigError
from kbcurator.gaps.clustering import TicketClusterer
from kbcurator.gaps.config import TicketSourceConfig
from kbcurator.gaps.coverage import CoveragePolicy, ReleaseVectors
from kbcurator.gaps.labels import label_clusters
from kbcurator.gaps.pipeline import LoadedTickets, describe_clusters, embed_tickets, read_tickets, write_cluster_outputs
from kbcurator.gaps.report import GapStore, gaps_markdown, score_gaps, unanswered_long_tail, write_gap_exports
from kbcurator.index.embedding_cache import EmbeddingCache
from kbcurator.index.store import IndexStore, manifest_of
from kbcurator.reindex import start_run
from kbcurator.settings import load_settings

DEFAULT_CONFIG = "kb_sources/sample.yaml"


@task(name="load-tickets", cache_policy=NO_CACHE)
def load_tickets_task(source: TicketSourceConfig) -> LoadedTickets:
    loaded = read_tickets(source)
    get_run_logger().info(
        "tickets %s: %d loaded, %d quarantined, %d count for gaps",
        source.id,
        loaded.loaded,
        len(loaded.rejected),
        len(loaded.tickets),
    )
    return loaded


@flow(name="gaps", log_prints=True)
def gaps_flow(config: str = DEFAULT_CONFIG, index_uri: str | None = None, version: str = "current") -> dict[str, Any]:
    """Rank what customers ask that the KB does not answer.

    Args:
        config: settings YAML with ``tickets:`` sources (see kb_sources/sample.yaml).
        index_uri: overrides the file's index_uri.
        version: the release to score against: "current", a tag or a number.
    """
    logger = get_run_logger()
    settings = load_settings(config, index_uri=index_uri)
    if not settings.tickets:
        raise ConfigError(f"no ticket sources declared under 'tickets:' in {config}")
    store = IndexStore(settings.index_uri, storage_options=settings.index_storage_options)
    release = store.resolve(version)
    manifest = manifest_of(release)
    run = start_run(settings.runs_dir)
    run_at = datetime.now(UTC)

    tickets, rejected, loaded = [], [], 0
    for source in settings.tickets:
        batch = load_tickets_task(source)
        tickets += batch.tickets
        rejected += batch.rejected
        loaded += batch.loaded
    if len(tickets) < 2:
        raise ConfigError(f"fewer than 2 tickets count for gap analysis in {config}: nothing to cluster")

    # The same embedder as the release, so ticket vectors and chunk vectors are comparable.
    embedder = load_embedder(manifest["model"], settings.embedding.device, settings.embedding.batch_size)
    vectors, embedded = embed_tickets(tickets, embedder, EmbeddingCache(store))
    result = TicketClusterer().fit_predict(vectors)
    texts = [t.text for t in tickets]
    clusters = describe_clusters(
        tickets,
        result.labels,
        label_clusters(texts, result.labels, vectors, n_representatives=settings.gaps.representatives),
    )
    long_tail = int((result.labels == -1).sum())
    summary = {
        "run_id": run.run_id,
        "release": release.tag,
        "tickets": len(tickets),
        "loaded": loaded,
        "quarantined": len(rejected),
        "embedded": embedded,
        "n_clusters": len(clusters),
        "noise_share_before_reassignment": round(float(result.noise_share_before), 4),
        "long_tail_share": round(long_tail / len(tickets), 4),
    }
    logger.info("%d clusters, long tail %d of %d", len(clusters), long_tail, len(tickets))

    gap_store = GapStore(store)
    policy = CoveragePolicy(
        answered_lift=settings.gaps.answered_lift,
        related_lift=settings.gaps.related_lift,
        covered_share=settings.gaps.covered_share,
    )
    kb = ReleaseVectors(store, release)
    scored, resolved = score_gaps(
        clusters,
        tickets,
        vectors,
        kb,
        policy,
        gap_store.previous(),
        run_id=run.run_id,
        escalation_weight=settings.gaps.escalation_weight,
    )
    gap_store.write_run(
        run_id=run.run_id,
        run_at=run_at,
        release_tag=release.tag,
        gaps=scored,
        resolved=resolved,
        dimension=embedder.dimension,
    )
    long_tail = unanswered_long_tail(tickets, vectors, result.labels, kb, policy)
    write_cluster_outputs(run.run_dir, tickets, result.labels, clusters, rejected, summary)
    exports = write_gap_exports(run.run_dir, scored, long_tail)
    markdown = gaps_markdown(scored, resolved, release_tag=release.tag, summary=summary, long_tail=long_tail)
    (run.run_dir / "gaps.md").write_text(markdown, encoding="utf-8")
    open_gaps = [g for g in scored if g.coverage.action != "covered"]
    create_markdown_artifact(markdown=markdown, key="kb-gaps", description=f"{len(open_gaps)} open gaps")
    return {
        **summary,
        "open_gaps": len(open_gaps),
        "covered": len(scored) - len(open_gaps),
        "resolved": len(resolved),
        "long_tail_unanswered": len(long_tail),
        "run_dir": str(run.run_dir),
        "exports": {k: str(v) for k, v in exports.items()},
        "gaps": [
            {
                "gap_id": g.gap_id,
                "label": g.cluster.label,
                "size": g.cluster.size,
                "action": g.coverage.action,
                "coverage": g.coverage.coverage_score,
                "trend": g.trend,
                "suggestion": g.coverage.suggestion(),
                "ticket_ids": list(g.cluster.ticket_ids),
            }
            for g in scored
        ],
    }


if __name__ == "__main__":
    gaps_flow()
