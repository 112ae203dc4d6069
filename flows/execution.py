"""Where the heavy tasks run: this process (the default) or a Dask cluster, chosen by ``settings.execution``.

Workers must be able to import kbcurator (and any ``module:Class`` embedder the settings name) and reach the
index URI. A remote cluster's workers also need ``PREFECT_API_URL`` set to the Prefect server the flow
reports to; a local cluster inherits this process's settings.
"""

from __future__ import annotations

from typing import Any

from kbcurator.errors import ConfigError
from kbcurator.settings import ExecutionSettings

_SCHEDULER_CONNECT_S = 10


def require_scheduler(execution: ExecutionSettings) -> None:
    """Fail fast, naming the address, when the configured Dask scheduler cannot be reached.

    Without this a typo in the address surfaces as a bare connection timeout from deep inside the task runner.
    """
    if not execution.dask_address:
        return
    from distributed import Client

    try:
        Client(execution.dask_address, timeout=_SCHEDULER_CONNECT_S, set_as_default=False).close()
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {execution.dask_address} (execution.dask_address): {exc}; "
            "nothing was built or published"
        ) from exc


def dask_task_runner(execution: ExecutionSettings, *, api_url: str | None = None) -> Any:
    """A ``DaskTaskRunner`` for the scheduler the settings name, or for a local cluster of worker processes.

    ``api_url`` (the Prefect API this flow reports to) is handed to local workers: without it each worker
    process would start a temporary Prefect server of its own (seconds each, and task runs nobody sees).
    """
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:  # a slim install without the extra
        raise ConfigError("settings.execution asks for Dask, but prefect-dask is not installed") from exc
    if execution.dask_address:
        return DaskTaskRunner(address=execution.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": execution.local_workers,
            "threads_per_worker": execution.threads_per_worker,
            "processes": True,
            # No dashboard port: a nightly run on a shared box must not collide with another one.
            "dashboard_address": None,
            "env": {"PREFECT_API_URL": api_url} if api_url else {},
        }
    )
