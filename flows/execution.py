"""Where the heavy tasks run: this process (the default) or a Dask cluster, chosen by ``settings.execution``.

Workers must be able to import kbcurator (and any ``module:Class`` embedder the settings name) and reach the
index URI. A remote cluster's workers also need ``PREFECT_API_URL`` set to the Prefect server the flow
reports to; a local cluster inherits this process's settings.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from types import TracebackType
from typing import Any, Self

import numpy as np
from prefect.client.orchestration import get_client
from prefect.futures import wait

from flows.worker_tasks import chunk_batch_task, detect_task, embed_batch_task, embedder_identity_task
from kbcurator.analysis.audit import DetectorRun, default_detectors
from kbcurator.analysis.base import AuditCorpus
from kbcurator.chunking import ChunkPolicy
from kbcurator.errors import ConfigError
from kbcurator.index.build import ChunkedBatch
from kbcurator.index.embedding_cache import EmbeddingCache
from kbcurator.index.store import IndexStore
from kbcurator.records import Article
from kbcurator.settings import ExecutionSettings, Settings
from kbcurator.usecases.execution import Executor, InProcess

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


def _batches(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[start : start + size]) for start in range(0, len(items), max(1, size))]


# Chunking batches in flight on a cluster whose size this process does not know (one at ``dask_address``); a local
# cluster gets two per worker when that is more.
_DASK_BATCHES_AHEAD = 16


class OnDask:
    """The use cases' stages as tasks on a Dask cluster (see :class:`kbcurator.usecases.execution.Executor`).

    The cluster starts when this is entered and stops when it is left. Chunking runs in batches of
    ``execution.chunk_batch_articles`` articles and embedding in batches of ``execution.embed_batch_chunks``
    chunks, so each task fits one worker; vectors go from the workers to the index's embedding cache, not back
    through the scheduler. Each detector is one task that reads the release from the index itself.
    """

    def __init__(self, settings: Settings, store: IndexStore, *, on_progress: Callable[[str], None]) -> None:
        self._settings = settings
        self._store = store
        self._say = on_progress
        self._runner: Any = None

    def __enter__(self) -> Self:
        execution = self._settings.execution
        self._say(f"running on {execution.dask_address or f'a local Dask cluster of {execution.local_workers}'}")
        require_scheduler(execution)
        self._runner = dask_task_runner(execution, api_url=str(get_client(sync_client=True).api_url))
        self._runner.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._runner.__exit__(kind, error, trace)

    def _submit(self, task: Any, **parameters: Any) -> Any:
        return self._runner.submit(task, parameters=parameters)

    def embedder_identity(self) -> tuple[str, int]:
        name, dimension = self._submit(embedder_identity_task, embedding=self._settings.embedding).result()
        return name, dimension

    def chunk(self, articles: Sequence[Article], policy: ChunkPolicy) -> Iterator[ChunkedBatch]:
        """The batches' chunks in order; the build embeds one while the next run. A few batches per worker are
        sent ahead, each read (the run's staged articles) only when it is sent, so the articles are never all in
        this process, nor all the chunk rows waiting in the cluster."""
        size = max(1, self._settings.execution.chunk_batch_articles)
        starts = range(0, len(articles), size)
        ahead = max(_DASK_BATCHES_AHEAD, 2 * self._settings.execution.local_workers)
        sent: deque[Any] = deque()
        for start in starts:
            sent.append(self._submit(chunk_batch_task, articles=list(articles[start : start + size]), policy=policy))
            if len(sent) > ahead:
                yield sent.popleft().result()
        while sent:
            yield sent.popleft().result()

    def embed(self, texts_by_hash: dict[str, str], model: str) -> tuple[dict[str, np.ndarray], int]:
        cache = EmbeddingCache(self._store)
        missing = sorted(set(texts_by_hash) - cache.known(model, list(texts_by_hash)))
        settings = self._settings
        futures = [
            self._submit(
                embed_batch_task,
                texts_by_hash={h: texts_by_hash[h] for h in hashes},
                embedding=settings.embedding,
                index_uri=settings.index_uri,
                storage_options=settings.index_storage_options,
            )
            for hashes in _batches(missing, settings.execution.embed_batch_chunks)
        ]
        wait(futures)
        embedded = sum(future.result() for future in futures)
        return cache.lookup(model, list(texts_by_hash)), embedded

    def detect(
        self, corpus: AuditCorpus, release_seq: int | None, only: Collection[str] | None = None
    ) -> list[DetectorRun]:
        names = [d.name for d in default_detectors(self._settings.health) if only is None or d.name in only]
        self._say(f"running {len(names)} detectors on Dask: {', '.join(names)}")
        futures = [
            self._submit(
                detect_task,
                settings=self._settings,
                release_seq=release_seq,
                detector=name,
                run_at=corpus.run_at,
                escalations=dict(corpus.escalations),
            )
            for name in names
        ]
        return [future.result() for future in futures]


def executor_for(settings: Settings, store: IndexStore, *, on_progress: Callable[[str], None]) -> Executor:
    """The executor ``settings.execution`` asks for: this process (the default) or a Dask cluster."""
    if settings.execution.distributed:
        return OnDask(settings, store, on_progress=on_progress)
    return InProcess(settings, store, on_progress=on_progress)
