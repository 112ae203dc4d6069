"""The reindex use case: one run pinned to one base release, and every decision about what gets published.

A flow (or any caller) loads the settings once, calls :func:`start_reindex`, builds a candidate, checks it, and
hands both to :func:`decide`, then :func:`publish_decided` and :func:`finish`. The run's base release is read
once, at the start: its counts bound the checks, its rows are what "changed" and "vanished" mean, and the
publish refuses a candidate whose base is no longer current (``index.publish``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from kbcurator import reindex as steps
from kbcurator.analysis.corpus import dead_links_from
from kbcurator.errors import ValidationFailed
from kbcurator.index.build import ReleaseCandidate
from kbcurator.index.publish import publish
from kbcurator.index.store import IndexStore, manifest_of
from kbcurator.quality import ValidationReport
from kbcurator.records import IndexRelease, Rejected
from kbcurator.settings import Settings, SourceConfig

Action = Literal["publish", "unchanged", "blocked"]


@dataclass(frozen=True, slots=True)
class ReindexJob:
    """What one reindex run works from; built once by :func:`start_reindex`."""

    settings: Settings
    store: IndexStore
    sources: tuple[SourceConfig, ...]
    run: steps.RunContext
    base: IndexRelease | None  # the release current when the run started
    force_publish: bool = False

    @property
    def base_counts(self) -> tuple[int | None, int | None]:
        """(articles, chunks) of the base release, or (None, None) before the first publish."""
        if self.base is None:
            return None, None
        counts = manifest_of(self.base).get("counts", {})
        return counts.get("articles"), counts.get("chunks")


@dataclass(frozen=True, slots=True)
class Decision:
    """What the run does with its candidate, and the line a person reads about it."""

    action: Action
    outcome: str
    changes: steps.Changes
    manifest: dict[str, Any] = field(default_factory=dict)  # action "publish" only
    vanished: tuple[steps.VanishedArticle, ...] = ()  # action "blocked" only
    blocked_message: str = ""
    failed_checks: tuple[str, ...] = ()


def start_reindex(settings: Settings, config_path: str | None, *, force_publish: bool = False) -> ReindexJob:
    """Check the sources, open the index, pin the base release and make the run folder."""
    sources = steps.require_sources(settings, config_path)
    store = IndexStore(settings.index_uri, storage_options=settings.index_storage_options)
    base = store.current()
    run = steps.start_run(settings.runs_dir)
    return ReindexJob(settings, store, tuple(sources), run, base, force_publish)


def decide(
    job: ReindexJob, candidate: ReleaseCandidate, rejected: Sequence[Rejected], report: ValidationReport
) -> Decision:
    """Blocked when a check failed; unchanged when nothing differs from the base (unless forced); else publish."""
    changes = steps.changes_since_current(job.store, candidate, base=job.base)
    base_tag = job.base.tag if job.base else None
    if not report.success:
        failed = tuple(o.label for o in report.failed)
        vanished = steps.vanished_articles(job.store, changes, base=job.base)
        removed_chunks = len(changes.chunks.removed)
        return Decision(
            action="blocked",
            outcome=f"checks FAILED: nothing published; {base_tag or 'no release'} stays current",
            changes=changes,
            vanished=tuple(vanished),
            blocked_message=steps.blocked_publish_message(failed, base_tag, vanished, removed_chunks),
            failed_checks=failed,
        )
    if changes.unchanged and not job.force_publish and job.base is not None:
        return Decision(
            action="unchanged", outcome=f"unchanged since {job.base.tag}: nothing to publish", changes=changes
        )
    manifest = {
        "run_id": job.run.run_id,
        "source_snapshot": steps.source_snapshot(job.sources, candidate),
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
    # The outcome a person reads if the publish itself then fails (a lock held too long, a stale base).
    publish_failed = f"publish failed: nothing published; {base_tag or 'no release'} stays current"
    return Decision(action="publish", outcome=publish_failed, changes=changes, manifest=manifest)


def publish_decided(job: ReindexJob, candidate: ReleaseCandidate, decision: Decision) -> IndexRelease | None:
    """Carry the decision out: publish (the new release), nothing (None), or fail naming what would vanish."""
    if decision.action == "blocked":
        raise ValidationFailed(decision.blocked_message, failed=list(decision.failed_checks))
    if decision.action == "unchanged":
        return None
    release = publish(
        job.store,
        candidate,
        checks_passed=True,
        manifest=decision.manifest,
        ann=job.settings.ann,
        lock_timeout_s=job.settings.publish_lock_timeout_s,
    )
    (job.run.run_dir / "manifest.json").write_text(release.manifest_json)
    return release


def finish(
    job: ReindexJob,
    candidate: ReleaseCandidate,
    rejected: Sequence[Rejected],
    report: ValidationReport,
    decision: Decision,
    release: IndexRelease | None,
    timings: dict[str, float],
) -> tuple[dict[str, Any], str]:
    """Write the run folder's summary.md, result.json (and vanished.json when blocked); returns (result, summary)."""
    run_dir = job.run.run_dir
    outcome = f"published {release.tag}" if release is not None else decision.outcome
    current = job.store.current()
    current_tag = current.tag if current else None
    result: dict[str, Any] = {
        "run_id": job.run.run_id,
        "run_dir": str(run_dir),
        "index_uri": job.settings.index_uri,
        "articles": candidate.stats.articles,
        "chunks": candidate.stats.chunks,
        "rejected": len(rejected),
        "checks_passed": report.success,
        "data_docs": report.data_docs_path,
        "changes": decision.changes.as_dict(),
        "outcome": outcome,
        "release": release.tag if release is not None else None,
        "current": current_tag,
        "build": asdict(candidate.stats),
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    vanished_section = None
    if decision.action == "blocked":
        removed_chunks = len(decision.changes.chunks.removed)
        vanished_section = steps.vanished_markdown(decision.vanished, removed_chunks)
        (run_dir / "vanished.json").write_text(json.dumps([asdict(a) for a in decision.vanished], indent=1))
        result["vanished"] = {"articles": len(decision.vanished), "chunks": removed_chunks}
    summary = steps.run_summary_markdown(
        run=job.run,
        outcome=outcome,
        release_tag=result["release"],
        current_tag=current_tag,
        candidate=candidate,
        changes=decision.changes,
        rejected=rejected,
        checks_markdown=report.summary_markdown(),
        index_uri=job.settings.index_uri,
        vanished_section=vanished_section,
    )
    (run_dir / "summary.md").write_text(summary)
    write_result(job, result)
    return result, summary


def write_result(job: ReindexJob, result: dict[str, Any]) -> None:
    (job.run.run_dir / "result.json").write_text(json.dumps(result, indent=1, default=str))
