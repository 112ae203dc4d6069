"""Running the detectors over one corpus: every detector runs, one that fails is recorded, not fatal."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from kbcurator.analysis.base import AuditCorpus, Detector
from kbcurator.config.health import HealthSettings
from kbcurator.records import SEVERITIES, Finding, Rejected, RejectionCode

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditResult:
    """What one audit found, on which index version, and how long each detector took."""

    findings: list[Finding]
    index_version: str
    run_at: datetime
    articles: int
    chunks: int
    seconds_by_detector: dict[str, float]
    failed_detectors: list[Rejected] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        """kind -> check -> number of findings."""
        out: dict[str, dict[str, int]] = {}
        for finding in self.findings:
            out.setdefault(finding.kind, {}).setdefault(finding.check, 0)
            out[finding.kind][finding.check] += 1
        return out

    def severity_counts(self) -> dict[str, int]:
        seen = Counter(f.severity for f in self.findings)
        return {s: seen.get(s, 0) for s in reversed(SEVERITIES)}


def default_detectors(settings: HealthSettings) -> list[Detector]:
    """The detectors the settings enable, in report order."""
    from kbcurator.analysis.contradictions import ContradictionDetector
    from kbcurator.analysis.duplicates import DuplicateDetector
    from kbcurator.analysis.staleness import StalenessDetector

    detectors: list[Detector] = []
    if settings.stale.enabled:
        detectors.append(StalenessDetector(settings.stale))
    if settings.duplicates.enabled:
        detectors.append(DuplicateDetector(settings.duplicates))
    if settings.contradictions.enabled:
        detectors.append(ContradictionDetector(settings.contradictions))
    return detectors


# Detectors whose findings depend only on the release's content and their own settings: an audit of a release
# they already audited reuses their findings (``analysis.store.DetectorMemo``). Staleness is not one: its age and
# dated-content rules move with the date, its link and failing-article checks with the crawl and the tickets.
CONTENT_ONLY_DETECTORS = frozenset({"duplicates", "contradictions"})


@dataclass(frozen=True)
class DetectorRun:
    """One detector's part of an audit: what it found, or why it failed, and how long it took."""

    detector: str
    findings: list[Finding]
    seconds: float
    failure: Rejected | None = None
    reused: bool = False  # its findings come from an earlier audit of the same release (no time spent)


def run_detector(corpus: AuditCorpus, detector: Detector) -> DetectorRun:
    """Run one detector. One that raises is a bug, but must not hide what the others find: its error is
    recorded as a ``Rejected`` (stage ``audit``) and logged."""
    clock = time.perf_counter()
    try:
        found = list(detector.detect(corpus))
    except Exception as exc:  # see docstring: recorded, logged, reported
        logger.exception("detector %s failed", detector.name)
        why = f"detector failed: {type(exc).__name__}: {exc}"
        failure = Rejected(detector.name, "audit", why, code=RejectionCode.DETECTOR_FAILED)
        return DetectorRun(detector.name, [], time.perf_counter() - clock, failure)
    return DetectorRun(detector.name, found, time.perf_counter() - clock)


def combine_runs(corpus: AuditCorpus, runs: Sequence[DetectorRun]) -> AuditResult:
    """The audit from its detectors' runs (wherever they ran): findings worst first and unique by id."""
    findings: dict[str, Finding] = {}
    for run in runs:
        for finding in run.findings:
            kept = findings.get(finding.finding_id)
            if kept is None or finding.score > kept.score:
                findings[finding.finding_id] = finding
    # A duplicate set's suggested canonical must not be an article that contradicts another member: settled here,
    # once every detector has run, wherever they ran. Imported here: readers of stored findings (triage, the review
    # app) need none of the detectors' modules (datasketch, imported by the duplicates module only where it hashes).
    from kbcurator.analysis.duplicates import settle_canonicals

    findings = {f.finding_id: f for f in settle_canonicals(corpus, list(findings.values()))}
    rank = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    ordered = sorted(findings.values(), key=lambda f: (rank[f.severity], -f.score, f.kind, f.check, f.finding_id))
    return AuditResult(
        findings=ordered,
        index_version=corpus.index_version,
        run_at=corpus.run_at,
        articles=len(corpus.articles),
        chunks=len(corpus.chunks),
        seconds_by_detector={run.detector: run.seconds for run in runs},
        failed_detectors=[run.failure for run in runs if run.failure is not None],
    )


def run_audit(corpus: AuditCorpus, detectors: Sequence[Detector]) -> AuditResult:
    """Run every detector here, one after the other; a detector that fails is recorded, not fatal."""
    return combine_runs(corpus, [run_detector(corpus, detector) for detector in detectors])
