"""The ``findings`` table: every audit's findings, stored with the index version they were computed on."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from kbcurator import __version__
from kbcurator.analysis.audit import AuditResult
from kbcurator.analysis.base import Detector
from kbcurator.index import schema
from kbcurator.index.schema import findings_schema
from kbcurator.index.store import IndexStore, lance_errors
from kbcurator.records import Evidence, Finding

FINDINGS_TABLE = schema.FINDINGS


@dataclass(frozen=True)
class AuditDiff:
    """What changed since the previous audit: new finding ids, and findings that are gone (fixed or moot)."""

    previous_run_id: str | None
    previous_index_version: str | None
    new_ids: frozenset[str]
    resolved: tuple[Finding, ...]
    first_seen_at: dict[str, datetime]


def finding_to_row(finding: Finding) -> dict[str, Any]:
    return {
        "finding_id": finding.finding_id,
        "kind": finding.kind,
        "check": finding.check,
        "article_ids": list(finding.article_ids),
        "score": float(finding.score),
        "severity": finding.severity,
        "summary": finding.summary,
        "action": finding.action,
        "evidence_json": json.dumps([asdict(e) for e in finding.evidence], ensure_ascii=False),
        "detector": finding.detector,
        "detector_version": finding.detector_version,
        "found_at": finding.found_at,
    }


def finding_from_row(row: dict[str, Any]) -> Finding:
    evidence = tuple(
        Evidence(**{**item, "highlights": tuple(item.get("highlights", ()))})
        for item in json.loads(row["evidence_json"] or "[]")
    )
    found_at = row["found_at"]
    if isinstance(found_at, datetime) and found_at.tzinfo is None:
        found_at = found_at.replace(tzinfo=UTC)
    return Finding(
        finding_id=row["finding_id"],
        kind=row["kind"],
        check=row["check"],
        article_ids=tuple(row["article_ids"] or ()),
        score=float(row["score"]),
        severity=row["severity"],
        summary=row["summary"],
        action=row["action"],
        evidence=evidence,
        detector=row["detector"],
        detector_version=row["detector_version"],
        found_at=found_at,
    )


class FindingStore:
    """Append-only history of audits in the index's database; the latest run by ``run_at`` is "current"."""

    def __init__(self, store: IndexStore) -> None:
        self._store = store

    def _rows(self) -> list[dict[str, Any]]:
        return self._store.rows(FINDINGS_TABLE)

    def latest_run(self) -> tuple[str, str, list[Finding]] | None:
        """``(run_id, index_version, findings)`` of the latest audit, or None before the first."""
        rows = self._rows()
        if not rows:
            return None
        last = max(rows, key=lambda r: (r["run_at"], r["run_id"]))
        mine = [r for r in rows if r["run_id"] == last["run_id"] and r["finding_id"]]
        return last["run_id"], last["index_version"], [finding_from_row(r) for r in mine]

    def diff(self, result: AuditResult) -> AuditDiff:
        rows = self._rows()
        first_seen: dict[str, datetime] = {}
        for row in rows:
            if row["finding_id"] and row["first_seen_at"] is not None:
                seen = row["first_seen_at"]
                if row["finding_id"] not in first_seen or seen < first_seen[row["finding_id"]]:
                    first_seen[row["finding_id"]] = seen
        current_ids = {f.finding_id for f in result.findings}
        latest = self.latest_run()
        if latest is None:
            return AuditDiff(None, None, frozenset(current_ids), (), {i: result.run_at for i in current_ids})
        run_id, index_version, previous = latest
        previous_ids = {f.finding_id for f in previous}
        return AuditDiff(
            previous_run_id=run_id,
            previous_index_version=index_version,
            new_ids=frozenset(current_ids - previous_ids),
            resolved=tuple(f for f in previous if f.finding_id not in current_ids),
            first_seen_at={i: first_seen.get(i, result.run_at) for i in current_ids},
        )

    def write_run(self, run_id: str, result: AuditResult, diff: AuditDiff) -> int:
        """Store one audit. A clean audit still writes a marker row, so the next run compares against it."""
        rows = [
            {
                "run_id": run_id,
                "run_at": result.run_at,
                "index_version": result.index_version,
                "first_seen_at": diff.first_seen_at.get(f.finding_id, result.run_at),
                **finding_to_row(f),
            }
            for f in result.findings
        ]
        if not rows:
            rows = [
                {
                    "run_id": run_id,
                    "run_at": result.run_at,
                    "index_version": result.index_version,
                    "finding_id": "",
                    "article_ids": [],
                }
            ]
        table = self._store.open_or_create(FINDINGS_TABLE, findings_schema())
        with lance_errors("cannot write the findings table"):
            table.add(pa.Table.from_pylist(rows, schema=findings_schema()))
        return len(result.findings)


# How many memo rows are kept: enough for the current release and a few before it (an audit of an older release
# by tag), small enough that reading the keys stays cheap.
_MEMO_ROWS_KEPT = 12


class DetectorMemo:
    """Findings of content-only detectors (duplicates, contradictions) per release, so an audit of a release it
    has seen, with the same detector code and settings, reuses them instead of running them again.

    Only for detectors whose findings depend on nothing but the release's articles, chunks and vectors and their
    own settings: not staleness (its age and dated-content rules move with the date, its link and failing-article
    checks with the crawl and the tickets). The key hashes the release, the detector's name, version, settings,
    the source of its module and kbcurator's version, so any change to what it would find runs it again.
    """

    def __init__(self, store: IndexStore) -> None:
        self._store = store

    @staticmethod
    def key(detector: Detector, release_tag: str, release_seq: int) -> str:
        # The detector's whole package: a detector calls helpers beside it (quantities, text rules).
        module = sys.modules.get(type(detector).__module__)
        folder = Path(module.__file__).parent if module is not None and module.__file__ else None
        source = b"".join(p.read_bytes() for p in sorted(folder.glob("*.py"))) if folder is not None else b""
        settings: Any = getattr(detector, "settings", None)
        dumped = settings.model_dump_json() if hasattr(settings, "model_dump_json") else repr(settings)
        parts = [release_tag, str(release_seq), detector.name, getattr(detector, "version", ""), dumped, __version__]
        digest = hashlib.sha256("\x1f".join(parts).encode())
        digest.update(hashlib.sha256(source).digest())
        return digest.hexdigest()

    def get(self, key: str) -> list[Finding] | None:
        """The findings stored under ``key``, or None when there are none (not the same as no findings)."""
        for row in self._store.rows(schema.DETECTOR_MEMO, ["memo_key", "findings_json"]):
            if row["memo_key"] == key:
                return [_finding_from_json(item) for item in json.loads(row["findings_json"])]
        return None

    def put(self, key: str, detector: str, release_tag: str, findings: list[Finding]) -> None:
        rows = [
            {
                "memo_key": key,
                "detector": detector,
                "release_tag": release_tag,
                "created_at": datetime.now(UTC),
                "findings_json": json.dumps([finding_to_row(f) for f in findings], default=str, ensure_ascii=False),
            }
        ]
        table = self._store.open_or_create(schema.DETECTOR_MEMO, schema.detector_memo_schema())
        with lance_errors("cannot write the detector memo"):
            table.add(pa.Table.from_pylist(rows, schema=schema.detector_memo_schema()))
            memos = self._store.rows(schema.DETECTOR_MEMO, ["memo_key", "created_at"])
            old = sorted(memos, key=lambda r: r["created_at"])[:-_MEMO_ROWS_KEPT]
            if old:  # keys are hex digests: safe to quote
                table.delete("memo_key IN (" + ", ".join(f"'{r['memo_key']}'" for r in old) + ")")


def _finding_from_json(item: dict[str, Any]) -> Finding:
    found_at = item.get("found_at")
    return finding_from_row({**item, "found_at": datetime.fromisoformat(found_at) if found_at else None})
