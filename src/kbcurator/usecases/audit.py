"""The audit use case: stale, duplicate and contradictory articles, in one pinned release or in declared sources.

A caller loads the settings once and calls :func:`start_audit` (which pins the release), then
:func:`escalations`, :func:`read_corpus`, :func:`detect` (on an executor) and :func:`record`; or
:func:`run_audit` for all of it in this process. :func:`audit_sources` audits sources that were never indexed
(``kbcurator audit --source``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kbcurator.analysis.audit import (
    CONTENT_ONLY_DETECTORS,
    AuditResult,
    DetectorRun,
    combine_runs,
    default_detectors,
)
from kbcurator.analysis.base import AuditCorpus
from kbcurator.analysis.corpus import corpus_from_release
from kbcurator.analysis.pipeline import audit_corpus, read_source_corpus, reviews_of, write_audit_outputs
from kbcurator.analysis.report import health_markdown
from kbcurator.analysis.store import DetectorMemo, FindingStore
from kbcurator.config.health import ReviewSettings
from kbcurator.embedding import embedder_for
from kbcurator.errors import KBError
from kbcurator.gaps.coverage import ReleaseVectors
from kbcurator.gaps.escalations import ticket_escalations
from kbcurator.index.embedding_cache import EmbeddingCache
from kbcurator.index.store import IndexStore, manifest_of
from kbcurator.records import IndexRelease, Rejected
from kbcurator.reindex import start_run
from kbcurator.settings import Settings
from kbcurator.usecases.execution import Executor, InProcess


@dataclass(frozen=True, slots=True)
class AuditJob:
    """What one audit works from; built once by :func:`start_audit`."""

    settings: Settings
    store: IndexStore
    release: IndexRelease  # the release audited, pinned at the start
    run_id: str
    run_dir: Path
    run_at: datetime  # "now" for age and dated-content rules, fixed for the run


@dataclass(frozen=True, slots=True)
class Escalations:
    """Escalated tickets by the article that should answer them (the failing-article check's input)."""

    by_article: dict[str, tuple[str, ...]]
    notes: tuple[str, ...] = ()  # what a person reads in the log
    warnings: tuple[str, ...] = ()  # the check was skipped, and why


@dataclass(frozen=True, slots=True)
class AuditOutcome:
    """One stored audit: what it found, what changed since the previous one, and where the reports are."""

    job: AuditJob
    result: AuditResult
    new: int  # findings not in the previous audit
    resolved: int  # findings of the previous audit gone now
    exports: dict[str, str]  # "json" (findings.json), "markdown" (health.md)
    markdown: str  # the ``kb-health`` artifact
    outcome: str  # one line

    def as_dict(self) -> dict[str, Any]:
        """What the audit flow returns."""
        return {
            "run_id": self.job.run_id,
            "run_dir": str(self.job.run_dir),
            "release": self.job.release.tag,
            "findings": len(self.result.findings),
            "new": self.new,
            "resolved": self.resolved,
            "counts": self.result.counts(),
            "severity": self.result.severity_counts(),
            "failed_detectors": [f.record_id for f in self.result.failed_detectors],
            "exports": self.exports,
            "outcome": self.outcome,
        }


def start_audit(
    settings: Settings, version: str = "current", *, run_dir: str | None = None, as_of: datetime | None = None
) -> AuditJob:
    """Open the index, pin the release to audit and choose the run folder (``run_dir``, or a new one)."""
    store = IndexStore(settings.index_uri, storage_options=settings.index_storage_options)
    release = store.resolve(version)
    if run_dir is None:
        run = start_run(settings.runs_dir)
        run_id, folder = run.run_id, run.run_dir
    else:
        folder = Path(run_dir)
        run_id = folder.name
    return AuditJob(settings, store, release, run_id, folder, as_of or datetime.now(UTC))


def escalations(job: AuditJob) -> Escalations:
    """Which articles answer escalated tickets. Unreadable tickets cost the failing-article check, not the audit."""
    settings = job.settings
    if not settings.tickets:
        return Escalations({})
    model = manifest_of(job.release).get("model", settings.embedding.model)
    warnings: tuple[str, ...] = ()
    try:
        found = ticket_escalations(
            settings.tickets,
            ReleaseVectors(job.store, job.release),
            embedder_factory=lambda: embedder_for(settings.embedding, model),
            cache=EmbeddingCache(job.store),
            min_lift=settings.gaps.answered_lift,
        )
    except KBError as exc:
        found, warnings = {}, (f"failing-article check skipped: {exc}",)
    return Escalations(found, (f"{len(found)} articles answer escalated tickets",), warnings)


def read_corpus(job: AuditJob, escalated: Escalations) -> AuditCorpus:
    """The pinned release's articles, chunks and vectors, as the detectors see them."""
    settings = job.settings
    return corpus_from_release(
        job.store,
        job.release,
        run_at=job.run_at,
        reviews=reviews_of(settings),
        escalations=escalated.by_article,
        ann=settings.ann,
    )


def detect(
    job: AuditJob, corpus: AuditCorpus, executor: Executor, *, on_progress: Callable[[str], None] | None = None
) -> AuditResult:
    """Every enabled detector over the corpus, wherever the executor runs them; one that fails is recorded.

    The content-only detectors (duplicates, contradictions) are not run again on a release they have already
    audited with the same code and settings: their stored findings are reused (``DetectorMemo``). Staleness
    always runs: its rules move with the date, the crawl and the tickets.
    """
    memo = DetectorMemo(job.store)
    tag, seq = job.release.tag, job.release.seq
    keys = {
        d.name: DetectorMemo.key(d, tag, seq)
        for d in default_detectors(job.settings.health)
        if d.name in CONTENT_ONLY_DETECTORS
    }
    reused: list[DetectorRun] = []
    for name, key in keys.items():
        found = memo.get(key)
        if found is not None:
            reused.append(DetectorRun(name, found, 0.0, reused=True))
    if reused and on_progress is not None:
        on_progress(f"{', '.join(r.detector for r in reused)}: reused from the last audit of {tag} (same content)")
    names = [d.name for d in default_detectors(job.settings.health)]
    fresh = executor.detect(corpus, seq, only=[n for n in names if n not in {r.detector for r in reused}])
    for run in fresh:
        if run.detector in keys and run.failure is None:
            memo.put(keys[run.detector], run.detector, tag, run.findings)
    order = {name: i for i, name in enumerate(names)}
    return combine_runs(corpus, sorted([*fresh, *reused], key=lambda r: order.get(r.detector, len(order))))


def record(job: AuditJob, corpus: AuditCorpus, result: AuditResult) -> AuditOutcome:
    """Store the findings beside the release, diffed against the previous audit, and write the reports."""
    findings = FindingStore(job.store)
    diff = findings.diff(result)
    findings.write_run(job.run_id, result, diff)
    owners, reviews = _review_rules(job.settings)
    exports = write_audit_outputs(job.run_dir, result, diff, corpus.article_by_id, owners=owners, reviews=reviews)
    new, resolved = len(diff.new_ids), len(diff.resolved)
    return AuditOutcome(
        job=job,
        result=result,
        new=new,
        resolved=resolved,
        exports=exports,
        markdown=health_markdown(result, diff, corpus.article_by_id, owners=owners, reviews=reviews),
        outcome=f"{len(result.findings)} findings on {job.release.tag} ({new} new, {resolved} resolved)",
    )


def run_audit(
    settings: Settings,
    version: str = "current",
    *,
    run_dir: str | None = None,
    as_of: datetime | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> AuditOutcome:
    """The whole audit in this process (the flow runs the same steps, on the executor the settings name)."""
    job = start_audit(settings, version, run_dir=run_dir, as_of=as_of)
    corpus = read_corpus(job, escalations(job))
    with InProcess(settings, job.store) as executor:
        return record(job, corpus, detect(job, corpus, executor, on_progress=on_progress))


@dataclass(frozen=True, slots=True)
class SourceAudit:
    """``kbcurator audit --source``: declared sources audited without any index."""

    result: AuditResult
    rejected: tuple[Rejected, ...]  # pages and chunks skipped
    exports: dict[str, str]  # "json", "markdown"


def audit_sources(settings: Settings, out_dir: Path, *, run_at: datetime | None = None) -> SourceAudit:
    """Read, chunk and embed every declared source (nothing is published), audit it and write the reports."""
    embedding = settings.embedding
    embedder = embedder_for(embedding)
    corpus, rejected = read_source_corpus(settings, embedder=embedder, run_at=run_at or datetime.now(UTC))
    result = audit_corpus(corpus, settings)  # no index, so no executor: the detectors run here
    owners, reviews = _review_rules(settings)
    exports = write_audit_outputs(out_dir, result, None, corpus.article_by_id, rejected, owners=owners, reviews=reviews)
    return SourceAudit(result, tuple(rejected), exports)


def _review_rules(settings: Settings) -> tuple[dict[str, str], dict[str, ReviewSettings]]:
    """Source id -> owner and -> review rules: who gets each review-due list, and its interval."""
    return {s.id: s.owner for s in settings.sources if s.owner}, reviews_of(settings)
