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
from kbcurator.settings import load_settings
from kbcurator.usecases import nightly as usecase

DEFAULT_CONFIG = "kb_sources/sample.yaml"


def _outcome(state: State[Any]) -> tuple[dict[str, Any], BaseException | None]:
    """A subflow's result, or ``{"error": ...}`` and the subflow's own exception, re-raised by Prefect."""
    try:
        return state.result(), None
    except BaseException as exc:
        return {"error": str(exc)}, exc


@flow(name="nightly", log_prints=True)
def nightly_flow(
    config: str = DEFAULT_CONFIG,
    index_uri: str | None = None,
    model: str | None = None,
    force_publish: bool = False,
    audit: bool = True,
    gaps: bool = True,
    allow_retrieval_drop: bool = False,
) -> dict[str, Any]:
    """Reindex and audit, then the gaps against the release left current, then the report.

    Args:
        config: a settings YAML (see kb_sources/).
        index_uri: overrides the file's index_uri.
        model: overrides the embedding model.
        force_publish: publish a new release even when nothing changed since the current one.
        audit: audit the release left current (artifact ``kb-health``).
        gaps: run the gaps step when the config declares ticket sources.
        allow_retrieval_drop: publish although the golden questions' recall fails the retrieval gate.
    """
    logger = get_run_logger()
    settings = load_settings(config, index_uri=index_uri)
    steps: dict[str, Any] = {}
    reindexed = reindex_flow(
        config=config,
        index_uri=index_uri,
        model=model,
        force_publish=force_publish,
        audit=audit,
        allow_retrieval_drop=allow_retrieval_drop,
        return_state=True,
    )
    steps["reindex"], failure = _outcome(reindexed)
    plan = usecase.plan_after_reindex(settings, gaps=gaps)
    for reason in plan.skipped:
        logger.info(reason)
    if plan.gaps:
        steps["gaps"], gaps_failure = _outcome(gaps_flow(config=config, index_uri=index_uri, return_state=True))
        failure = failure or gaps_failure
    if plan.report:
        steps["report"] = report_flow(config=config, index_uri=index_uri, run_dir=usecase.run_dir_of(steps))
    for warning in usecase.close_night(settings, steps, failure, run_url=runtime.flow_run.ui_url):
        logger.warning(warning)
    usecase.raise_failure(failure)
    return steps


if __name__ == "__main__":
    nightly_flow()
