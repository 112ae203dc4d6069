"""The gaps use case: decide per ticket whether one pinned release answers it, cluster the tickets it does not
answer (and, separately, those it answers only partly) into gaps, follow the gaps from the previous run, and write
what a KB owner reads. Also the ``cluster`` command's ticket clustering, which clusters every ticket of an export
without a release.

A caller loads the settings once and calls :func:`start_gaps` (which pins the release), reads each ticket
source (:func:`read_source`), :func:`gather` them, then :func:`cluster` and :func:`score`; or
:func:`run_gaps` for all of it in this process.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from kbcurator.config.tickets import TicketSourceConfig
from kbcurator.embedding import embedder_for, load_embedder
from kbcurator.embedding.base import Embedder, LazyEmbedder
from kbcurator.errors import ConfigError
from kbcurator.gaps.clustering import LONG_TAIL
from kbcurator.gaps.coverage import (
    VERDICTS,
    CoveragePolicy,
    ReleaseVectors,
    TicketJudgement,
    Verdict,
    judge_tickets,
)
from kbcurator.gaps.labels import gap_title, label_clusters
from kbcurator.gaps.pipeline import (
    LoadedTickets,
    cluster_gaps,
    describe_clusters,
    embed_tickets,
    read_tickets,
    ticket_source_for_file,
    write_cluster_outputs,
)
from kbcurator.gaps.readable import Vocabulary
from kbcurator.gaps.report import (
    ArticleVolume,
    GapStore,
    HitRate,
    HitRateStore,
    LongTailQuestion,
    ScoredGap,
    TicketOutcome,
    article_volumes,
    gaps_markdown,
    kb_hit_rate,
    score_gaps,
    ticket_outcomes,
    unanswered_long_tail,
    write_gap_exports,
)
from kbcurator.gaps.tracking import PreviousCluster
from kbcurator.index import golden
from kbcurator.index.embedding_cache import EmbeddingCache
from kbcurator.index.store import IndexStore, manifest_of
from kbcurator.records import GapCluster, IndexRelease, Rejected, Ticket
from kbcurator.reindex import RunContext, start_run
from kbcurator.settings import Settings


@dataclass(frozen=True, slots=True)
class GapsJob:
    """What one gaps run works from; built once by :func:`start_gaps`."""

    settings: Settings
    store: IndexStore
    release: IndexRelease  # the release every cluster is scored against, pinned at the start
    model: str  # the release's embedding model: ticket vectors must be comparable with its chunk vectors
    run: RunContext
    run_at: datetime
    config_path: str | None = None


@dataclass(frozen=True, slots=True)
class TicketSet:
    """The tickets of every source that count for gap analysis."""

    tickets: tuple[Ticket, ...]
    rejected: tuple[Rejected, ...]
    loaded: int  # valid tickets before selection
    golden_from_links: int = 0  # golden questions new or changed from tickets that link their solving article


@dataclass(frozen=True, slots=True)
class Clustering:
    """Tickets, their vectors and cluster labels (``-1``: long tail), and the described clusters.

    From a gaps run (:func:`cluster`), ``judgement`` is the per-ticket coverage decision made first, and only the
    tickets it does not answer carry a cluster label: an answered ticket is ``-1`` but not long tail.
    """

    tickets: tuple[Ticket, ...]
    vectors: np.ndarray
    labels: np.ndarray
    clusters: tuple[GapCluster, ...]  # largest first
    model: str
    dimension: int
    embedded: int  # texts embedded now (the rest came from the cache)
    noise_share_before: float
    judgement: TicketJudgement | None = None
    # One flag per ticket: unreadable (``gaps.readable``), kept in the long tail; None when the model has no
    # vocabulary to tell (every ticket then counts as readable).
    unreadable: np.ndarray | None = None

    @property
    def unreadable_count(self) -> int:
        return int(self.unreadable.sum()) if self.unreadable is not None else 0

    @property
    def clustered(self) -> int:
        """How many tickets were clustered: those the release does not answer, or all without a release."""
        if self.judgement is None:
            return len(self.tickets)
        return len(self.tickets) - int(self.judgement.answered.sum())

    @property
    def long_tail(self) -> int:
        in_no_cluster = self.labels == LONG_TAIL
        if self.judgement is not None:
            in_no_cluster &= ~self.judgement.answered
        return int(in_no_cluster.sum())

    @property
    def long_tail_share(self) -> float:
        """The long tail's share of the clustered tickets."""
        return round(self.long_tail / self.clustered, 4) if self.clustered else 0.0


@dataclass(frozen=True, slots=True)
class GapsResult:
    """One gaps run: the ranked gaps, what became of the previous run's, and where the reports are."""

    run_id: str
    run_dir: Path
    release_tag: str
    summary: dict[str, Any]  # the counts written to clusters.json and shown at the top of gaps.md
    gaps: tuple[ScoredGap, ...]  # largest priority first
    resolved: tuple[PreviousCluster, ...]
    long_tail: tuple[LongTailQuestion, ...]  # one-off questions the release does not answer
    tickets: tuple[TicketOutcome, ...]  # per ticket: cluster, answered or not, best article
    exports: dict[str, Path]  # "json", "csv"
    markdown: str  # gaps.md, also the ``kb-gaps`` artifact
    # The share of the counted tickets the release answers, overall and per source, with the previous run's.
    hit_rate: HitRate | None = None
    # Per closest article, its tickets by verdict: the answered volume (feeds the failing-article view).
    articles: tuple[ArticleVolume, ...] = ()

    @property
    def open_gaps(self) -> int:
        return sum(g.coverage.action != "covered" for g in self.gaps)

    def as_dict(self) -> dict[str, Any]:
        """What the gaps flow returns (and the CLI prints from)."""
        return {
            **self.summary,
            "open_gaps": self.open_gaps,
            "covered": len(self.gaps) - self.open_gaps,
            "resolved": len(self.resolved),
            "long_tail_unanswered": sum(q.reason == "one_off" for q in self.long_tail),
            "run_dir": str(self.run_dir),
            "exports": {k: str(v) for k, v in self.exports.items()},
            "gaps": [
                {
                    "gap_id": g.gap_id,
                    "title": gap_title(g.cluster.central_query, g.cluster.representatives, fallback=g.cluster.label),
                    "label": g.cluster.label,
                    "size": g.cluster.size,
                    "action": g.coverage.action,
                    "coverage": g.coverage.coverage_score,
                    "trend": g.trend,
                    "suggestion": g.coverage.suggestion(),
                    "ticket_ids": list(g.cluster.ticket_ids),
                }
                for g in self.gaps
            ],
        }


def start_gaps(settings: Settings, version: str = "current", *, config_path: str | None = None) -> GapsJob:
    """Check that tickets are declared, pin the release to score against and make the run folder."""
    if not settings.tickets:
        raise ConfigError(f"no ticket sources declared under 'tickets:' in {config_path or 'the settings'}")
    store = IndexStore(settings.index_uri, storage_options=settings.index_storage_options)
    release = store.resolve(version)
    model = manifest_of(release)["model"]
    return GapsJob(settings, store, release, model, start_run(settings.runs_dir), datetime.now(UTC), config_path)


def read_source(
    source: TicketSourceConfig,
    job: GapsJob | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    full: bool = False,
) -> LoadedTickets:
    """One ticket source: the tickets that count, the rows quarantined, and how many were valid.

    A helpdesk API source (``zendesk_api``) keeps its tickets and cursor in the job's index database and reads its
    token from ``environ`` (the caller's environment: the CLI's or the flow's); ``full`` refetches it.
    """
    return read_tickets(source, store=job.store if job else None, environ=environ, full=full)


def gather(job: GapsJob, loaded: Sequence[LoadedTickets]) -> TicketSet:
    """The tickets of every source, in source order; fewer than two is an error (nothing to cluster).

    Tickets that link the article that solved them (counted or not) become golden questions for that article,
    stored in the index database: the next publish's retrieval gate checks that it still retrieves them.
    """
    tickets = tuple(t for batch in loaded for t in batch.tickets)
    if len(tickets) < 2:
        where = job.config_path or "the settings"
        raise ConfigError(f"fewer than 2 tickets count for gap analysis in {where}: nothing to cluster")
    rejected = tuple(r for batch in loaded for r in batch.rejected)
    golden_added = 0
    if job.settings.retrieval.from_ticket_links:
        linked = golden.ticket_link_questions(t for batch in loaded for t in batch.linked)
        golden_added = golden.GoldenStore(job.store).update_refs("ticket_link", linked) if linked else 0
    return TicketSet(tickets, rejected, sum(batch.loaded for batch in loaded), golden_added)


def cluster_tickets(
    tickets: Sequence[Ticket],
    embedder: Embedder,
    cache: EmbeddingCache,
    *,
    vocabulary: Vocabulary | None = None,
    representatives: int = 5,
) -> Clustering:
    """Embed (through the cache), cluster and name every ticket, as ``kbcurator cluster`` does without a release:
    each ticket counts as not answered, and those ``vocabulary`` calls unreadable stay in the long tail, as in
    ``gaps``."""
    vectors, embedded = embed_tickets(tickets, embedder, cache)
    texts = [t.text for t in tickets]
    unreadable = vocabulary.unreadable(texts) if vocabulary is not None else None
    not_answered: list[Verdict] = ["unanswered" for _ in tickets]
    result = cluster_gaps(vectors, not_answered, unreadable=unreadable)
    names = label_clusters(texts, result.labels, vectors, n_representatives=representatives)
    return Clustering(
        tickets=tuple(tickets),
        vectors=vectors,
        labels=result.labels,
        clusters=tuple(describe_clusters(tickets, result.labels, names)),
        model=embedder.name,
        dimension=embedder.dimension,
        embedded=embedded,
        noise_share_before=result.noise_share_before,
        unreadable=unreadable,
    )


def coverage_policy(settings: Settings) -> CoveragePolicy:
    """The per-ticket and per-gap coverage rule, from ``settings.gaps``."""
    gaps = settings.gaps
    return CoveragePolicy(
        answered_lift=gaps.answered_lift, related_lift=gaps.related_lift, covered_share=gaps.covered_share
    )


def cluster(
    job: GapsJob, tickets: TicketSet, *, embedder: Embedder | None = None, vocabulary: Vocabulary | None = None
) -> Clustering:
    """Coverage first, then clusters: embed the run's tickets with the release's own model (or ``embedder``, which
    must be it), decide per ticket whether the pinned release answers it, and cluster only the tickets it does not
    answer, the partly answered ones apart from the rest, into gaps. Tickets the model's ``vocabulary`` (default:
    read from the release's model) calls unreadable join no gap."""
    embedding = job.settings.embedding
    if embedder is None:
        # Loaded only if a ticket's text is not in the embedding cache yet: a rerun over the same tickets (or a
        # night that only adds a few) loads no model when all are cached (seconds of a cold start).
        dimension = int(manifest_of(job.release).get("dimension") or 0)
        load = functools.partial(embedder_for, embedding, job.model)
        embedder = LazyEmbedder(job.model, dimension, load) if dimension else load()
    vectors, embedded = embed_tickets(tickets.tickets, embedder, EmbeddingCache(job.store))
    judgement = judge_tickets(vectors, ReleaseVectors(job.store, job.release), coverage_policy(job.settings))
    texts = [t.text for t in tickets.tickets]
    vocabulary = vocabulary or Vocabulary.for_model(job.model)
    unreadable = vocabulary.unreadable(texts) if vocabulary is not None else None
    gap_labels = cluster_gaps(vectors, judgement.verdicts, unreadable=unreadable)
    names = label_clusters(texts, gap_labels.labels, vectors, n_representatives=job.settings.gaps.representatives)
    return Clustering(
        tickets=tuple(tickets.tickets),
        vectors=vectors,
        labels=gap_labels.labels,
        clusters=tuple(describe_clusters(tickets.tickets, gap_labels.labels, names)),
        model=embedder.name,
        dimension=embedder.dimension,
        embedded=embedded,
        noise_share_before=gap_labels.noise_share_before,
        judgement=judgement,
        unreadable=unreadable,
    )


def score(job: GapsJob, tickets: TicketSet, clustering: Clustering) -> GapsResult:
    """Score each gap against the pinned release, store the run beside the previous ones, write the reports."""
    gaps = job.settings.gaps
    summary = {
        "run_id": job.run.run_id,
        "release": job.release.tag,
        "tickets": len(tickets.tickets),
        "loaded": tickets.loaded,
        "quarantined": len(tickets.rejected),
        "embedded": clustering.embedded,
        "n_clusters": len(clustering.clusters),
        "noise_share_before_reassignment": round(clustering.noise_share_before, 4),
        "long_tail_share": clustering.long_tail_share,
        "unreadable": clustering.unreadable_count,
    }
    if clustering.judgement is not None:
        summary["verdicts"] = {v: len(clustering.judgement.rows(v)) for v in VERDICTS}
    policy = coverage_policy(job.settings)
    kb = ReleaseVectors(job.store, job.release)
    gap_store = GapStore(job.store)
    vectors, labels = clustering.vectors, clustering.labels
    scored, resolved = score_gaps(
        clustering.clusters,
        clustering.tickets,
        vectors,
        kb,
        policy,
        gap_store.previous(),
        run_id=job.run.run_id,
        escalation_weight=gaps.escalation_weight,
    )
    gap_store.write_run(
        run_id=job.run.run_id,
        run_at=job.run_at,
        release_tag=job.release.tag,
        gaps=scored,
        resolved=resolved,
        dimension=clustering.dimension,
    )
    flags = clustering.unreadable
    long_tail = unanswered_long_tail(clustering.tickets, vectors, labels, kb, policy, unreadable=flags)
    outcomes = ticket_outcomes(clustering.tickets, vectors, labels, scored, kb, policy, unreadable=flags)
    hit_rates = HitRateStore(job.store)
    hit_rate = kb_hit_rate(outcomes, run_id=job.run.run_id, release_tag=job.release.tag, previous=hit_rates.latest())
    hit_rates.write(hit_rate, run_at=job.run_at)
    summary["kb_hit_rate"] = hit_rate.as_dict()
    articles = article_volumes(outcomes)
    run_dir = job.run.run_dir
    write_cluster_outputs(run_dir, clustering.tickets, labels, clustering.clusters, tickets.rejected, summary)
    exports = write_gap_exports(run_dir, scored, long_tail, tickets=outcomes, hit_rate=hit_rate, articles=articles)
    markdown = gaps_markdown(
        scored,
        resolved,
        release_tag=job.release.tag,
        summary=summary,
        long_tail=long_tail,
        hit_rate=hit_rate,
        articles=articles,
    )
    (run_dir / "gaps.md").write_text(markdown, encoding="utf-8")
    return GapsResult(
        run_id=job.run.run_id,
        run_dir=run_dir,
        release_tag=job.release.tag,
        summary=summary,
        gaps=tuple(scored),
        resolved=tuple(resolved),
        long_tail=tuple(long_tail),
        tickets=tuple(outcomes),
        exports=exports,
        markdown=markdown,
        hit_rate=hit_rate,
        articles=tuple(articles),
    )


def run_gaps(
    settings: Settings,
    version: str = "current",
    *,
    config_path: str | None = None,
    embedder: Embedder | None = None,
    vocabulary: Vocabulary | None = None,
    environ: Mapping[str, str] | None = None,
    full: bool = False,
) -> GapsResult:
    """The whole gaps run in this process (the flow runs the same steps as tasks).

    ``embedder``: the release's embedding model already loaded (default: loaded by the name the release records);
    ``vocabulary``: its word pieces (default: read from it). ``environ`` and ``full``: see :func:`read_source`.
    """
    job = start_gaps(settings, version, config_path=config_path)
    tickets = gather(job, [read_source(source, job, environ=environ, full=full) for source in settings.tickets])
    return score(job, tickets, cluster(job, tickets, embedder=embedder, vocabulary=vocabulary))


@dataclass(frozen=True, slots=True)
class ClusterExport:
    """``kbcurator cluster``: a ticket export clustered on its own, with no release."""

    clustering: Clustering
    summary: dict[str, Any]
    paths: dict[str, Path]  # "assignments", "clusters", "rejected"


def cluster_export(
    loaded: LoadedTickets, out_dir: Path, *, model: str, cache_uri: str, name: str = "the export"
) -> ClusterExport:
    """Cluster one export's tickets and write ``assignments.csv``, ``clusters.json`` and ``rejected.jsonl``.

    ``loaded``: the export as :func:`read_source` read it; ``name`` names it in the error for too few tickets.
    """
    if len(loaded.tickets) < 2:
        raise ConfigError(f"{name}: fewer than 2 usable tickets, nothing to cluster")
    clustering = cluster_tickets(
        loaded.tickets,
        load_embedder(model),
        EmbeddingCache(IndexStore(cache_uri)),
        vocabulary=Vocabulary.for_model(model),
    )
    summary = {
        "tickets": len(loaded.tickets),
        "quarantined": len(loaded.rejected),
        "model": clustering.model,
        "embedded": clustering.embedded,
        "n_clusters": len(clustering.clusters),
        "noise_share_before_reassignment": round(clustering.noise_share_before, 4),
        "long_tail_share": clustering.long_tail_share,
        "unreadable": clustering.unreadable_count,
    }
    paths = write_cluster_outputs(
        out_dir, loaded.tickets, clustering.labels, clustering.clusters, loaded.rejected, summary
    )
    return ClusterExport(clustering, summary, paths)


def ticket_source(
    tickets: str, *, fmt: str | None = None, declared: dict[str, Any] | None = None, declared_in: str = ""
) -> TicketSourceConfig:
    """The ticket source for an export file: declared in a YAML (column mapping, selection, PII patterns) with
    its location (and format, when given) replaced, or read from the file's suffix."""
    if declared is None:
        return ticket_source_for_file(tickets, fmt=fmt)
    values = {"id": "tickets", **declared, "location": tickets, **({"format": fmt} if fmt else {})}
    try:
        return TicketSourceConfig.model_validate(values)
    except ValueError as exc:
        raise ConfigError(f"invalid ticket source in {declared_in}: {exc}") from exc
