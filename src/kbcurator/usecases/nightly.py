"""The nightly chain's decisions: which steps run after the reindex, and what the on-call engineer is told.

The order is reindex (with its health audit), gaps, report. A blocked or failed reindex still lets the gaps and
the report run against the release that stays current, so the morning report exists; the night then fails with
the first step's error, after the notice went out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kbcurator.errors import ValidationFailed
from kbcurator.index.store import IndexStore
from kbcurator.notify import RunNotice, send_notice
from kbcurator.settings import NoticeKind, Settings


@dataclass(frozen=True, slots=True)
class NightPlan:
    """The steps that follow the reindex, decided once it is done."""

    gaps: bool  # ticket sources declared, gaps asked for, and a release to score against
    report: bool  # a release exists
    skipped: tuple[str, ...] = ()  # why a step asked for does not run


def plan_after_reindex(settings: Settings, *, gaps: bool) -> NightPlan:
    store = IndexStore(settings.index_uri, storage_options=settings.index_storage_options)
    has_release = store.current() is not None
    run_gaps = gaps and bool(settings.tickets) and has_release
    why = "no ticket sources declared" if has_release else "no release yet"
    return NightPlan(run_gaps, has_release, (f"gaps skipped: {why}",) if gaps and not run_gaps else ())


def run_dir_of(steps: Mapping[str, Any]) -> str | None:
    """The reindex's run folder (absent when the reindex failed before making one): the report's copy goes there."""
    run_dir: str | None = steps["reindex"].get("run_dir")
    return run_dir


def notice_of(steps: Mapping[str, Any], failure: BaseException | None, *, run_url: str | None) -> RunNotice:
    """Blocked (a failed check), failed, unchanged or published; the failed steps and the report in the details."""
    kind: NoticeKind = "blocked" if isinstance(failure, ValidationFailed) else "failed" if failure else "published"
    if kind == "published" and not steps["reindex"].get("release"):
        kind = "unchanged"
    details = [f"{name}: {step['error']}" for name, step in steps.items() if "error" in step]
    details += [f"report: {steps['report']['latest']}"] if "report" in steps else []
    summary = str(failure) if failure else steps["reindex"]["outcome"]
    return RunNotice(kind=kind, flow="nightly", summary=summary, details=tuple(details), run_url=run_url)


def close_night(
    settings: Settings, steps: Mapping[str, Any], failure: BaseException | None, *, run_url: str | None
) -> tuple[str, ...]:
    """Send the notice; returns the warnings to log (a notice not delivered)."""
    sent = send_notice(settings.notify, notice_of(steps, failure, run_url=run_url))
    return (f"notification not delivered: {sent.error}",) if sent.error else ()


def raise_failure(failure: BaseException | None) -> None:
    """The night fails with the first failed step's own error."""
    if failure is not None:
        raise failure
