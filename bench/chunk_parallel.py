"""Chunking in one process against several (issue 20): articles/s, the speed-up, and where it pays back its start-up.

Chunks the real help centers (DuckDuckGo's and Bitwarden's: 406 articles, 2,311 chunks, read from ../shared/data
as bench/build_bench.py reads them; ``--times 5`` chunks them 5 times over, ~2,000 articles) through
``kbcurator.usecases.execution.InProcess.chunk`` with ``chunking.processes`` 1 and N,
``chunking.parallel_min_articles`` 0, and checks that every run gives the same chunks in the same order. Each
figure is the median of ``--repeat`` runs; the machine's load average is printed beside it (other work on the box
slows the processes unevenly: quote figures from a quiet run).

  - "1 process" is timed in a parent that has chunked before (unstructured already imported): what a warm worker
    pays. A fresh CLI process pays the parent's own start-up ("cold parent", printed once) on top of it.
  - "N processes" includes starting the pool: spawned children import lancedb, unstructured and the tokenizer.
  - "pool start-up" is a pool of N chunking one tiny batch each: the fixed cost of going parallel.
  - break-even: the articles from which N processes beat one, from the start-up and the steady speed-up; and the
    same estimated for a quiet box from CPU time, at ``--quiet-speedup`` (N processes over one there).
  - "this box now": N pure-Python loops against one, first: ~1.0 says other work holds the cores (re-run later).

    python bench/chunk_parallel.py [--processes 2] [--repeat 3] [--limit N] [--times K] [--quiet-speedup 1.45]
                                   [--out bench/results/chunk_parallel.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, cast

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "src")]

from kbcurator.runtime import apply_runtime_defaults  # noqa: E402

apply_runtime_defaults()


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def spin(_: int = 0) -> float:
    """A pure-Python loop (as bench/dask_chunking.py's): what one core does alone."""
    started = time.perf_counter()
    total = 0
    for i in range(20_000_000):
        total += i & 7
    return time.perf_counter() - started


def child_probe(articles: list[Any], policy: Any) -> dict[str, float]:
    """Run in a spawned child: its time to chunk (imports included) and its peak memory."""
    import resource

    from kbcurator.index.build import chunk_batch

    started = time.perf_counter()
    chunk_batch(articles, policy)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "first_batch_s": time.perf_counter() - started,
        "cpu_s": usage.ru_utime + usage.ru_stime,  # the child's whole life: interpreter, imports, one batch
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=2, help="the parallel run's process count")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=int, default=0, help="chunk only the first N articles (0: all)")
    parser.add_argument("--times", type=int, default=1, help="chunk the articles this many times over (more work)")
    parser.add_argument("--quiet-speedup", type=float, default=1.45, help="N processes over 1 on a quiet box")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "chunk_parallel.json"))
    args = parser.parse_args()

    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from build_bench import corpus_sources

    from kbcurator.chunking import ChunkPolicy
    from kbcurator.index.build import chunk_batch
    from kbcurator.index.store import IndexStore
    from kbcurator.ingest import read_articles
    from kbcurator.settings import Settings, SourceConfig
    from kbcurator.usecases.execution import InProcess

    sources = corpus_sources("helpcenters")
    if sources is None:
        raise SystemExit("the help centers are not in ../shared/data")
    articles = []
    for source in sources:
        read, _ = read_articles(SourceConfig.model_validate(source))
        articles.extend(read)
    if args.limit:
        articles = articles[: args.limit]
    articles = articles * args.times
    policy = ChunkPolicy()
    print(f"{len(articles):,} articles; {os.cpu_count()} CPUs; load average {load()}", flush=True)

    context = multiprocessing.get_context("spawn")
    one_spin = spin()
    with ProcessPoolExecutor(args.processes, mp_context=context) as pool:
        list(pool.map(abs, range(args.processes)))  # the processes are up before the clock starts
        started = time.perf_counter()
        list(pool.map(spin, range(args.processes)))
        box_speedup = args.processes * one_spin / (time.perf_counter() - started)
    print(f"this box now: {args.processes} pure-Python loops run {box_speedup:.2f}x one (~1.0: it is busy)", flush=True)

    started, cpu = time.perf_counter(), time.process_time()
    chunk_batch(articles[:1], policy)
    cold_parent, cold_parent_cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"cold parent (unstructured's import and first article): {cold_parent:.1f} s, {cold_parent_cpu:.1f} s CPU")

    probes: list[dict[str, Any]] = []
    for _ in range(args.repeat):
        load_before = load()
        started = time.perf_counter()
        with ProcessPoolExecutor(args.processes, mp_context=context) as pool:
            futures = [pool.submit(child_probe, articles[i : i + 1], policy) for i in range(args.processes)]
            children = [f.result() for f in futures]
            seconds = time.perf_counter() - started  # the children's exit is in the chunking runs
        probes.append({"seconds": seconds, "children": children, "load": load_before})
        print(f"pool start-up ({args.processes} processes): {probes[-1]['seconds']:.1f} s, load {load_before}")

    store = cast(IndexStore, None)  # chunking never reads the store
    reference: list[str] | None = None
    runs: dict[int, list[dict[str, Any]]] = {1: [], args.processes: []}
    for _ in range(args.repeat):
        for processes in runs:
            settings = Settings.model_validate({"chunking": {"processes": processes, "parallel_min_articles": 0}})
            load_before = load()
            started, cpu = time.perf_counter(), time.process_time()
            batches = InProcess(settings, store).chunk(articles, policy)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            ids = [row["chunk_id"] for batch in batches for row in batch.rows]
            if reference is None:
                reference = ids
            elif ids != reference:
                raise SystemExit(f"{processes} processes gave other chunks than 1 process")
            loads = f"{load_before} / {load()}"
            runs[processes].append({"seconds": seconds, "parent_cpu_s": cpu, "batches": len(batches), "load": loads})
            print(f"{processes} process(es): {seconds:.1f} s, {len(articles) / seconds:.1f} articles/s, load {loads}")

    one = statistics.median(r["seconds"] for r in runs[1])
    many = statistics.median(r["seconds"] for r in runs[args.processes])
    start_up = statistics.median(p["seconds"] for p in probes)
    per_article = one / len(articles)
    # Steady speed-up: the parallel run less its start-up, against one process.
    steady = one / max(many - start_up, 1e-9)
    break_even = start_up / (per_article * (1 - 1 / steady)) if steady > 1 else float("nan")
    # The same on a quiet box, from CPU time (less moved by other work than wall time): a child's start-up is its
    # CPU time less its one article (the children start side by side, one a core), an article costs the serial
    # run's CPU time, and 2 processes on this box run ``--quiet-speedup`` times one (the measure: 1.45).
    child_cpu = statistics.median(c["cpu_s"] for p in probes for c in p["children"])
    cpu_per_article = statistics.median(r["parent_cpu_s"] for r in runs[1]) / len(articles)
    quiet_start_up = child_cpu - cpu_per_article
    quiet_break_even = quiet_start_up / (cpu_per_article * (1 - 1 / args.quiet_speedup))
    summary = {
        "articles": len(articles),
        "chunks": len(reference or []),
        "processes": args.processes,
        "repeat": args.repeat,
        "cold_parent_s": round(cold_parent, 2),
        "one_process_s": round(one, 2),
        "one_process_articles_per_s": round(len(articles) / one, 1),
        "ms_per_article": round(1000 * per_article, 1),
        f"{args.processes}_processes_s": round(many, 2),
        f"{args.processes}_processes_articles_per_s": round(len(articles) / many, 1),
        "speedup": round(one / many, 2),
        "pool_start_up_s": round(start_up, 2),
        "child_peak_rss_mb": round(max(c["peak_rss_mb"] for p in probes for c in p["children"])),
        "steady_speedup": round(steady, 2),
        "break_even_articles": None if break_even != break_even else round(break_even),
        "child_cpu_s": round(child_cpu, 2),
        "cpu_ms_per_article": round(1000 * cpu_per_article, 1),
        "quiet_speedup_assumed": args.quiet_speedup,
        "quiet_break_even_articles": round(quiet_break_even),
        "quiet_break_even_cold_parent_articles": round(
            max(0.0, quiet_start_up - cold_parent_cpu) / (cpu_per_article * (1 - 1 / args.quiet_speedup))
        ),
        "box_speedup_now": round(box_speedup, 2),
        "load_average_after": load(),
        "runs": runs,
        "probes": probes,
    }
    n = args.processes
    print(f"| articles | 1 process | articles/s | {n} processes | articles/s | speed-up | pool start-up | break-even |")
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {len(articles):,} | {one:.1f} s | {len(articles) / one:.1f} | {many:.1f} s | {len(articles) / many:.1f} "
        f"| {one / many:.2f}x | {start_up:.1f} s | ~{break_even:,.0f} articles |"
    )
    print(f"steady speed-up {steady:.2f}x; child peak RSS {summary['child_peak_rss_mb']} MB; load now {load()}")
    print(
        f"quiet-box estimate from CPU time: a child's start-up {quiet_start_up:.1f} s CPU, "
        f"{1000 * cpu_per_article:.0f} ms CPU an article, at {args.quiet_speedup}x for {args.processes} processes "
        f"break-even ~{quiet_break_even:,.0f} articles after a warm parent, "
        f"~{summary['quiet_break_even_cold_parent_articles']:,} in a fresh process (its own start-up spared)"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
