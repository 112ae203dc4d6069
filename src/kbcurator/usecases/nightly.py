"""The nightly chain's decisions: which steps run after the reindex, and what the on-call engineer is told.

The order is reindex (with its health audit), gaps, report. A blocked or failed reindex still lets the gaps and
the report run against the release that stays current, so the morning report exists; the night then fails with
the first step's error, after the notice went out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kbcurator.errors import KBError, ValidationFailed
from kbcurator.index.store import IndexStore
from kbcurator.notify import RunNotice, send_notice
from kbcurator.settings import NoticeKind, Settings

if TYPE_CHECKING:  # the reindex use case is imported when the night runs, not with this module
    from kbcurator.usecases.reindex import SuiteFactory


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


def run_nightly(
    settings: Settings,
    config_path: str | None,
    suites: SuiteFactory,
    *,
    force_publish: bool = False,
    audit: bool = True,
    gaps: bool = True,
    allow_retrieval_drop: bool = False,
    environ: Mapping[str, str] | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], tuple[str, ...], BaseException | None]:
    """The night in this process, without Prefect (``kbcurator nightly``'s default; the flow runs the same steps
    as subflows). Returns the steps' results, the notes to print and the night's first failure, for the caller
    to raise once it has said the rest (the gaps, the report and the notice went ahead, as in the flow).
    ``suites``: ``checks.release_suites_for``."""
    from kbcurator.usecases.gaps import run_gaps
    from kbcurator.usecases.reindex import run_reindex
    from kbcurator.usecases.report import publish_report, start_report

    steps: dict[str, Any] = {}
    failure: BaseException | None = None
    try:
        steps["reindex"] = run_reindex(
            settings,
            config_path,
            suites,
            force_publish=force_publish,
            allow_retrieval_drop=allow_retrieval_drop,
            audit=audit,
            on_progress=on_progress,
        )
    except KBError as exc:
        steps["reindex"], failure = {"error": str(exc)}, exc
    plan = plan_after_reindex(settings, gaps=gaps)
    if plan.gaps:
        try:
            steps["gaps"] = run_gaps(settings, config_path=config_path, environ=environ).as_dict()
        except KBError as exc:
            steps["gaps"], failure = {"error": str(exc)}, failure or exc
    if plan.report:
        steps["report"] = publish_report(start_report(settings), run_dir_of(steps)).as_dict()
    return steps, plan.skipped + close_night(settings, steps, failure, run_url=None), failure
