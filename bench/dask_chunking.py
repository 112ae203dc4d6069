"""Where a local Dask cluster's time goes on the reindex's chunking: the machine, Dask, or Prefect on Dask.

The scale benchmark (bench/scale.py) compares the whole reindex flow in-process against a local Dask cluster. This
script takes its heaviest stage apart, on the same articles, side by side in one run:

  1. the machine: a pure-Python loop in 1 process, then in N processes at once (N processes' speedup over one);
  2. chunking in this process: ``kbcurator.index.build.chunk_batch`` over every article;
  3. plain Dask: the same batches (``execution.chunk_batch_articles`` articles each) mapped over a LocalCluster of
     N single-threaded worker processes (cluster start timed apart);
  4. Prefect on Dask: the same batches as ``flows.worker_tasks.chunk_batch_task`` runs submitted from a flow on
     ``flows.execution.dask_task_runner`` (the reindex's own path), cluster start included as the flow pays it.

Every path must produce the same chunks (checked: chunk ids in order).

    python bench/dask_chunking.py --config CONFIG.yaml [--workers 2] [--limit N]
                                  [--out bench/results/dask_chunking.json]

CONFIG is a settings file whose sources are read (e.g. the one bench/scale.py writes under its --work folder for a
scale: ``<work>/scale-10/stand-in.yaml``); nothing is written to its index.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
)
sys.path[:0] = [str(REPO)]
from kbcurator.runtime import apply_runtime_defaults  # noqa: E402

apply_runtime_defaults(PREFECT_LOGGING_LEVEL="WARNING", DASK_LOGGING__DISTRIBUTED="warning")

_SPIN = 30_000_000


def spin(_: int = 0) -> float:
    """A pure-Python loop (no I/O, no GIL release): what one core does alone."""
    started = time.perf_counter()
    total = 0
    for i in range(_SPIN):
        total += i & 7
    return time.perf_counter() - started


def machine(workers: int) -> dict[str, float]:
    one = spin()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(abs, range(workers))  # the processes are up before the clock starts
        started = time.perf_counter()
        pool.map(spin, range(workers))
        together = time.perf_counter() - started
    return {
        "one_process_s": round(one, 2),
        f"{workers}_processes_s": round(together, 2),
        "speedup": round(workers * one / together, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="chunk only the first N articles (0: all)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "dask_chunking.json"))
    args = parser.parse_args()

    from distributed import Client, LocalCluster
    from prefect import flow

    from flows.execution import dask_task_runner
    from flows.worker_tasks import chunk_batch_task
    from kbcurator.chunking import ChunkPolicy
    from kbcurator.index.build import chunk_batch
    from kbcurator.ingest import read_articles
    from kbcurator.settings import ExecutionSettings, load_settings

    settings = load_settings(args.config)
    policy = ChunkPolicy.from_settings(settings)
    articles = [a for source in settings.sources for a in read_articles(source)[0]]
    if args.limit:
        articles = articles[: args.limit]
    size = settings.execution.chunk_batch_articles
    batches = [articles[start : start + size] for start in range(0, len(articles), size)]
    result: dict[str, Any] = {
        "articles": len(articles),
        "batches": len(batches),
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    print(f"{len(articles)} articles in {len(batches)} batches; {args.workers} workers", flush=True)

    result["machine"] = machine(args.workers)
    print("machine", result["machine"], flush=True)

    started = time.perf_counter()
    local = [chunk_batch(batch, policy) for batch in batches]
    result["in_process_s"] = round(time.perf_counter() - started, 2)
    expected = [row["chunk_id"] for batch in local for row in batch.rows]
    result["chunks"] = len(expected)
    print("in-process", result["in_process_s"], flush=True)

    started = time.perf_counter()
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    result["dask_start_s"] = round(time.perf_counter() - started, 2)
    try:
        started = time.perf_counter()
        futures = client.map(chunk_batch, batches, policy=policy, pure=False)
        plain = client.gather(futures)
        result["plain_dask_s"] = round(time.perf_counter() - started, 2)
        result["plain_dask_task_s_sum"] = round(sum(b.seconds for b in plain), 2)
    finally:
        client.close()
        cluster.close()
    if [row["chunk_id"] for batch in plain for row in batch.rows] != expected:
        raise SystemExit("plain Dask chunked differently from in-process")
    print("plain dask", result["plain_dask_s"], "task seconds summed", result["plain_dask_task_s_sum"], flush=True)

    @flow(name="bench-chunk-on-dask")
    def chunk_on_dask() -> list[Any]:
        futures = [chunk_batch_task.submit(batch, policy) for batch in batches]
        return [future.result() for future in futures]

    @flow(name="bench-prefect-dask")
    def timed() -> tuple[float, list[Any]]:
        # As the reindex flow does: workers are handed this flow's API server (started before the clock).
        from prefect.client.orchestration import get_client

        runner = dask_task_runner(
            ExecutionSettings(local_workers=args.workers), api_url=str(get_client(sync_client=True).api_url)
        )
        started = time.perf_counter()
        done = chunk_on_dask.with_options(task_runner=runner)()
        return time.perf_counter() - started, done

    seconds, through_prefect = timed()
    result["prefect_dask_s"] = round(seconds, 2)
    result["prefect_dask_task_s_sum"] = round(sum(b.seconds for b in through_prefect), 2)
    if [row["chunk_id"] for batch in through_prefect for row in batch.rows] != expected:
        raise SystemExit("Prefect on Dask chunked differently from in-process")
    print("prefect on dask", result["prefect_dask_s"], flush=True)

    base = result["in_process_s"]
    result["speedup"] = {
        "plain_dask": round(base / result["plain_dask_s"], 2),
        "plain_dask_with_start": round(base / (result["plain_dask_s"] + result["dask_start_s"]), 2),
        "prefect_dask": round(base / result["prefect_dask_s"], 2),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(
        "\n| path | seconds | speedup over in-process |\n|---|---|---|\n"
        f"| machine: {args.workers} pure-Python processes vs 1 | | {result['machine']['speedup']} |\n"
        f"| in-process chunking | {base} | 1.00 |\n"
        f"| plain Dask, {args.workers} workers (start {result['dask_start_s']} s apart) | {result['plain_dask_s']} "
        f"| {result['speedup']['plain_dask']} |\n"
        f"| Prefect tasks on Dask, {args.workers} workers (start included) | {result['prefect_dask_s']} "
        f"| {result['speedup']['prefect_dask']} |"
    )


if __name__ == "__main__":
    main()
