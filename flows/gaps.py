"""Knowledge gaps: cluster the tickets that count, score each cluster against the current index release,
follow them from the previous run, and report.

Only orchestration here: the steps are the gaps use case's (``kbcurator.usecases.gaps``), run as tasks.
"""

from __future__ import annotations

import os
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from kbcurator.config.tickets import TicketSourceConfig
from kbcurator.gaps.pipeline import LoadedTickets
from kbcurator.settings import load_settings
from kbcurator.usecases import gaps as usecase

DEFAULT_CONFIG = "kb_sources/sample.yaml"


@task(name="load-tickets", cache_policy=NO_CACHE)
def load_tickets_task(job: usecase.GapsJob, source: TicketSourceConfig, full: bool) -> LoadedTickets:
    # The flow is the edge: a helpdesk API token comes from the environment of the process that runs it.
    loaded = usecase.read_source(source, job, environ=os.environ, full=full)
    get_run_logger().info(
        "tickets %s: %d loaded, %d quarantined, %d count for gaps",
        source.id,
        loaded.loaded,
        len(loaded.rejected),
        len(loaded.tickets),
    )
    return loaded


@task(name="cluster-tickets", cache_policy=NO_CACHE)
def cluster_task(job: usecase.GapsJob, tickets: usecase.TicketSet) -> usecase.Clustering:
    clustering = usecase.cluster(job, tickets)
    get_run_logger().info(
        "%d gaps, long tail %d of %d tickets not answered (%d unreadable, in no gap)",
        len(clustering.clusters),
        clustering.long_tail,
        clustering.clustered,
        clustering.unreadable_count,
    )
    return clustering


@task(name="score-gaps", cache_policy=NO_CACHE)
def score_task(job: usecase.GapsJob, tickets: usecase.TicketSet, clustering: usecase.Clustering) -> usecase.GapsResult:
    return usecase.score(job, tickets, clustering)


@flow(name="gaps", log_prints=True)
def gaps_flow(
    config: str = DEFAULT_CONFIG, index_uri: str | None = None, version: str = "current", full: bool = False
) -> dict[str, Any]:
    """Rank what customers ask that the KB does not answer.

    Args:
        config: settings YAML with ``tickets:`` sources (see kb_sources/sample.yaml).
        index_uri: overrides the file's index_uri.
        version: the release to score against: "current", a tag or a number.
        full: refetch helpdesk API sources from the start of their window instead of from their cursor.
    """
    settings = load_settings(config, index_uri=index_uri)
    job = usecase.start_gaps(settings, version, config_path=config)
    tickets = usecase.gather(job, [load_tickets_task(job, source, full) for source in settings.tickets])
    result = score_task(job, tickets, cluster_task(job, tickets))
    create_markdown_artifact(markdown=result.markdown, key="kb-gaps", description=f"{result.open_gaps} open gaps")
    return result.as_dict()


if __name__ == "__main__":
    gaps_flow()
