"""Executors: where the heavy stages of a build and an audit run. The use cases call the same stages in the same
order; an executor decides only where each runs (datatrove's ``executor/`` is the model).

:class:`InProcess` runs them here, one after the other. The flows add one that runs them as tasks on a Dask
cluster (``flows/execution.py``); any object with these methods will do.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

import numpy as np

from kbcurator.analysis.audit import DetectorRun, default_detectors, run_detector
from kbcurator.analysis.base import AuditCorpus
from kbcurator.chunking import ChunkPolicy
from kbcurator.embedding import embedder_for, embedder_name
from kbcurator.embedding.base import Embedder
from kbcurator.errors import KBError
from kbcurator.index.build import ChunkedBatch, chunk_batch
from kbcurator.index.embedding_cache import EmbeddingCache, embed_with_cache
from kbcurator.index.store import IndexStore, manifest_of
from kbcurator.records import Article
from kbcurator.settings import Settings


class Executor(Protocol):
    """Runs the stages; entered once around a run (a cluster starts and stops there)."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None: ...

    def embedder_identity(self) -> tuple[str, int]:
        """(name, dimension) of the embedder the settings name."""
        ...

    def chunk(self, articles: Sequence[Article], policy: ChunkPolicy) -> Iterator[ChunkedBatch]:
        """Chunk the articles, in one batch or many; the batches come in the articles' order, each as soon as it
        and those before it are done (the build embeds and stores one while the next is chunked)."""
        ...

    def embed(self, texts_by_hash: dict[str, str], model: str) -> tuple[dict[str, np.ndarray], int]:
        """A vector for every hash (through the embedding cache) and how many texts were embedded now."""
        ...

    def detect(
        self, corpus: AuditCorpus, release_seq: int | None, only: Collection[str] | None = None
    ) -> list[DetectorRun]:
        """Every enabled detector's run over the corpus (``release_seq``: the release it was read from); ``only``:
        just the detectors of these names."""
        ...


class InProcess:
    """Every stage on this machine: chunking in one batch here, or in spawned processes from
    ``chunking.parallel_min_articles`` articles; embedding checkpointed into the cache every
    ``embedding.checkpoint_every`` chunks; detectors one after the other."""

    def __init__(self, settings: Settings, store: IndexStore, *, on_progress: Callable[[str], None] | None = None):
        self._settings = settings
        self._store = store
        self._say = on_progress or (lambda _message: None)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        return None

    def _embedder(self) -> Embedder:
        embedding = self._settings.embedding
        return embedder_for(embedding)

    def embedder_identity(self) -> tuple[str, int]:
        """The model's recorded name and dimension: from the current release's manifest when it was built with
        the model the settings name (an unchanged night then loads no model: ~7 s), else from the loaded model."""
        embedding = self._settings.embedding
        spec = embedding.model
        expected = (
            None if ":" in spec and not Path(spec).expanduser().is_dir() else embedder_name(spec, embedding.backend)
        )
        current = self._store.current() if expected else None
        manifest = manifest_of(current) if current is not None else {}
        if manifest.get("model") == expected and manifest.get("dimension"):
            return str(expected), int(manifest["dimension"])
        embedder = self._embedder()
        return embedder.name, embedder.dimension

    def chunk(self, articles: Sequence[Article], policy: ChunkPolicy) -> Iterator[ChunkedBatch]:
        """One batch in this process, or contiguous batches in ``chunking.processes`` processes when there are at
        least ``chunking.parallel_min_articles`` articles (the chunks are the same either way, in the same order).

        Raises:
            KBError: a chunking process failed or died; the error of the failing batch is chained.
        """
        chunking = self._settings.chunking
        processes = chunk_processes(chunking.processes)
        max_batch = self._settings.execution.chunk_batch_articles
        if processes < 2 or len(articles) < max(2, chunking.parallel_min_articles):
            if articles:
                self._say(f"chunking {len(articles):,} articles in this process")
            if len(articles) <= max_batch:
                return iter([chunk_batch(articles, policy)])
            # A batch at a time, as the processes would: the build holds one batch's chunk rows, not all of them.
            return (chunk_batch(batch, policy) for batch in chunk_batches(articles, 1, max_batch))
        batches = chunk_batches(articles, processes, max_batch)
        processes = min(processes, len(batches))
        self._say(f"chunking {len(articles):,} articles in {processes} processes ({len(batches)} batches)")
        return _chunk_in_processes(batches, policy, processes, self._say)

    def embed(self, texts_by_hash: dict[str, str], model: str) -> tuple[dict[str, np.ndarray], int]:
        if not texts_by_hash:
            return {}, 0  # nothing new to embed: no model to load
        return embed_with_cache(
            texts_by_hash,
            self._embedder(),
            EmbeddingCache(self._store),
            batch_size=self._settings.embedding.checkpoint_every,
            on_batch=lambda done, total: self._say(f"embedded {done}/{total} chunks"),
        )

    def detect(
        self, corpus: AuditCorpus, release_seq: int | None, only: Collection[str] | None = None
    ) -> list[DetectorRun]:
        detectors = default_detectors(self._settings.health)
        return [run_detector(corpus, d) for d in detectors if only is None or d.name in only]


# With ``chunking.processes`` unset: one chunking process per CPU this process may run on, at most this many. Each
# process imports unstructured, spaCy, lancedb and the tokenizer on its own (~0.5 GB, seconds of start-up), and
# chunking is not the only thing a build host runs.
AUTO_MAX_PROCESSES = 8
# A batch is at most ``execution.chunk_batch_articles`` articles (the Dask executor's task), and small enough that
# each process gets about this many: processes take the next batch when they finish one, so a slow batch delays the
# end by at most a quarter of a process's share.
BATCHES_PER_PROCESS = 4


def chunk_processes(setting: int | None) -> int:
    """The number of chunking processes ``chunking.processes`` asks for (None: the CPUs this process may use)."""
    if setting is not None:
        return max(1, setting)
    try:
        available = len(os.sched_getaffinity(0))  # the CPUs this process may run on (taskset, cgroup cpusets)
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, AUTO_MAX_PROCESSES))


def chunk_batches(articles: Sequence[Article], processes: int, max_batch: int) -> list[Sequence[Article]]:
    """Contiguous batches in the articles' order: at most ``max_batch`` articles each, and about
    ``BATCHES_PER_PROCESS`` per process when the articles are fewer than that would fill. Slices of ``articles``:
    articles a run staged are read only when their batch is sent."""
    size = max(1, min(max_batch, math.ceil(len(articles) / (processes * BATCHES_PER_PROCESS))))
    return [articles[start : start + size] for start in range(0, len(articles), size)]


# Batches sent to the chunking processes ahead of the one the build waits for, per process: enough that no process
# waits for work, few enough that the batches waiting (articles sent, chunk rows come back) stay a handful.
_BATCHES_AHEAD_PER_PROCESS = 2


def _chunk_in_processes(
    batches: list[Sequence[Article]], policy: ChunkPolicy, processes: int, say: Callable[[str], None]
) -> Iterator[ChunkedBatch]:
    """``chunk_batch`` over each batch in a pool of spawned processes; the results in the batches' order, each
    yielded as soon as it and every batch before it are done (and then let go: the pool keeps no finished batch).

    At most ``_BATCHES_AHEAD_PER_PROCESS`` batches per process are sent ahead of the one yielded next, so a build
    whose embedding is slower than its chunking does not pile up every batch's chunk rows, and a batch of articles
    the run staged is read only when it is sent.

    Spawned, not forked: by now this process may hold threads of its own (OpenBLAS's and pyarrow's jemalloc thread
    from importing numpy and lancedb, ONNX Runtime's or torch's pools after an embedder was loaded, the tokenizer's),
    and a fork copies their locks in whatever state they are, which can hang the child. Forkserver would fork from
    a clean server, but its gain is preloading the imports once, and preloading them starts those same threads in
    the server; a spawned child imports them itself, all children at once, and the server would outlive the pool.
    """
    context = multiprocessing.get_context("spawn")
    total = sum(len(batch) for batch in batches)
    ahead = processes * _BATCHES_AHEAD_PER_PROCESS
    pool = ProcessPoolExecutor(max_workers=processes, mp_context=context)
    try:
        futures: list[Future[ChunkedBatch] | None] = []
        pending: set[Future[ChunkedBatch]] = set()
        sizes: dict[Future[ChunkedBatch], int] = {}
        done_articles = said = given = 0
        while given < len(batches):
            while len(futures) < len(batches) and len(futures) - given < ahead:
                batch = list(batches[len(futures)])  # read here (staged articles), pickled to the process
                future = pool.submit(chunk_batch, batch, policy)
                futures.append(future)
                pending.add(future)
                sizes[future] = len(batch)
            done, pending = wait(pending, return_when=FIRST_COMPLETED) if pending else (set(), pending)
            for future in done:
                error = future.exception()
                if isinstance(error, KBError):
                    raise error  # what chunking in this process raises too (e.g. no tokenizer for the token limit)
                if error is not None:
                    raise _chunking_failed(error, processes) from error
                done_articles += sizes.pop(future)
            if pending and done_articles * 10 // total > said:  # every tenth, not every batch (800 at 100x)
                said = done_articles * 10 // total
                say(f"chunked {done_articles:,}/{total:,} articles")
            while given < len(futures):
                head = futures[given]
                if head is None or head in pending:
                    break
                futures[given] = None  # the pool's future is the only other holder of the batch's rows
                given += 1
                yield head.result()
    finally:
        # On an error the batches not started are dropped and the running ones end with their batch. Waited for:
        # shutdown(wait=False) leaves the pool's thread to a Python exit that can raise or hang (CPython gh-83279,
        # gh-83386, gh-132969), for the second or so the children take to exit.
        pool.shutdown(wait=True, cancel_futures=True)


def _chunking_failed(error: BaseException, processes: int) -> KBError:
    if isinstance(error, BrokenProcessPool):
        return KBError(
            f"a chunking process died (killed, out of memory or crashed) while chunking in {processes} processes: "
            "nothing was built; set chunking.processes: 1 (KB_CHUNKING__PROCESSES=1) to chunk in this process"
        )
    return KBError(f"chunking failed in a chunking process: {type(error).__name__}: {error}")
