"""The nightly chain in the order a KB owner needs it: reindex (with its health audit), gaps, report.

Each step is its own subflow run, so it also runs alone (``kbcurator reindex``, ``gaps``, ``report``). A blocked
or failed reindex still lets the gaps and the report run against the release that stays current, so the morning
report exists; the nightly then fails with the reindex's error. The on-call engineer's webhook is called on a
failed or blocked night (``notify`` in the settings).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, runtime
from prefect.states import State

from flows.gaps import gaps_flow
from flows.reindex import reindex_flow
from flows.report import report_flow
from kbcurator.errors import ValidationFailed
from kbcurator.index.store import IndexStore
from kbcurator.notify import RunNotice, send_notice
from kbcurator.settings import load_settings

DEFAULT_CONFIG = "kb_sources/sample.yaml"


def _error_of(state: State[Any]) -> BaseException | None:
    try:
        state.result()
    except BaseException as exc:  # the subflow's own exception, re-raised by Prefect
        return exc
    return None


@flow(name="nightly", log_prints=True)
def nightly_flow(
    config: str = DEFAULT_CONFIG,
    index_uri: str | None = None,
    model: str | None = None,
    force_publish: bool = False,
    audit: bool = True,
    gaps: bool = True,
) -> dict[str, Any]:
    """Reindex and audit, then the gaps against the release left current, then the report.

    Args:
        config: a settings YAML (see kb_sources/).
        index_uri: overrides the file's index_uri.
        model: overrides the embedding model.
        force_publish: publish a new release even when nothing changed since the current one.
        audit: audit the release left current (artifact ``kb-health``).
        gaps: run the gaps step when the config declares ticket sources.
    """
    logger = get_run_logger()
    settings = load_settings(config, index_uri=index_uri)
    steps: dict[str, Any] = {}
    reindexed = reindex_flow(
        config=config, index_uri=index_uri, model=model, force_publish=force_publish, audit=audit, return_state=True
    )
    failure = _error_of(reindexed)
    steps["reindex"] = {"error": str(failure)} if failure else reindexed.result()
    has_release = IndexStore(settings.index_uri, storage_options=settings.index_storage_options).current() is not None
    if gaps and settings.tickets and has_release:
        found = gaps_flow(config=config, index_uri=index_uri, return_state=True)
        gaps_failure = _error_of(found)
        steps["gaps"] = {"error": str(gaps_failure)} if gaps_failure else found.result()
        failure = failure or gaps_failure
    elif gaps:
        logger.info("gaps skipped: %s", "no ticket sources declared" if has_release else "no release yet")
    if has_release:
        run_dir = steps["reindex"].get("run_dir")
        steps["report"] = report_flow(config=config, index_uri=index_uri, run_dir=run_dir)

    outcome = str(failure) if failure else steps["reindex"]["outcome"]
    kind = "blocked" if isinstance(failure, ValidationFailed) else "failed" if failure else "published"
    if kind == "published" and not steps["reindex"].get("release"):
        kind = "unchanged"
    details = [f"{name}: {step['error']}" for name, step in steps.items() if "error" in step]
    if "report" in steps:
        details.append(f"report: {steps['report']['latest']}")
    notice = RunNotice(
        kind=kind, flow="nightly", summary=outcome, details=tuple(details), run_url=runtime.flow_run.ui_url
    )
    sent = send_notice(settings.notify, notice)
    if sent.error:
        logger.warning("notification not delivered: %s", sent.error)
    if failure is not None:
        raise failure
    return steps


if __name__ == "__main__":
    nightly_flow()
