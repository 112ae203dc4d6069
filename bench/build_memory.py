"""Peak memory of a full build (issue 20): the reindex use case on the help centers grown to each scale, one fresh
process per scale, with the resident memory sampled per stage.

    python bench/build_memory.py [--scales 10 100] [--work DIR] [--out bench/results/build_memory.json]

Each scale's corpus is bench/scale.py's (DuckDuckGo's and Bitwarden's help centers and their perturbed replicas,
generated under ``--work`` unless there). A child process runs ``usecases.reindex.run_reindex`` (audit off) into an
empty index, as ``kbcurator reindex`` runs it, and samples its own resident memory (VmRSS) every 0.1 s, labelled with
the step running: read, build, check, evaluate, publish. The chunking processes' peak is reported apart
(``ru_maxrss`` of the largest child): it depends on the batch, not on the help center.

Linux only: it reads /proc/self/status.

Embedder: bench/scale.py's stand-in (``bench-lexical-hashing-384``, hashed words, 384 dimensions), named so: MiniLM
would take hours at 100x on 2 cores, and a build's memory does not depend on what the vectors mean, only on their
number and size, which are the same.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from scale import STAND_IN, corpus_dir, say, write_config  # noqa: E402

STEPS = ("start_reindex", "_read_with_retries", "build", "check", "evaluate", "decide", "publish_decided", "finish")


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(scale: int, work: Path, seed: int) -> dict[str, Any]:
    """One full build in this process; its peak resident memory per step."""
    sys.path.insert(0, str(BENCH.parent))
    import checks
    from kbcurator.settings import load_settings
    from kbcurator.usecases import reindex as usecase

    corpus, generated = corpus_dir(work, scale, seed)
    index = work / f"scale-{scale}" / "memory-index"
    shutil.rmtree(index, ignore_errors=True)
    shutil.rmtree(index.parent / f"{index.name}-runs", ignore_errors=True)
    config = write_config(work / f"scale-{scale}" / "memory.yaml", corpus, index, STAND_IN)
    settings = load_settings(str(config))

    step = ["imports"]
    peaks: dict[str, float] = {}
    running = [True]

    def sample() -> None:
        while running[0]:
            label = step[0]
            peaks[label] = max(peaks.get(label, 0.0), _rss_mb())
            time.sleep(0.1)

    def labelled(name: str, function: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            step[0] = name
            try:
                return function(*args, **kwargs)
            finally:
                peaks[name] = max(peaks.get(name, 0.0), _rss_mb())

        return run

    for name in STEPS:
        setattr(usecase, name, labelled(name.strip("_").replace("_with_retries", ""), getattr(usecase, name)))
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    result = usecase.run_reindex(settings, str(config), checks.release_suites_for, audit=False, on_progress=say)
    seconds = time.perf_counter() - started
    running[0] = False
    sampler.join()
    shutil.rmtree(index, ignore_errors=True)
    return {
        "scale": scale,
        "articles": result["articles"],
        "chunks": result["chunks"],
        "outcome": result["outcome"],
        "seconds": round(seconds, 1),
        "timings": result["timings"],
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "chunking_process_peak_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "peak_by_step_mb": {name: round(value) for name, value in peaks.items()},
        "corpus": generated,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--work", type=Path, default=Path("/tmp/kbcurator-build-memory"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "build_memory.json")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.work, args.seed)))
        return
    rows = []
    for scale in args.scales:
        say(f"{scale}x: full build in a fresh process ...")
        command = [sys.executable, __file__, "--child", str(scale), "--work", str(args.work), "--seed", str(args.seed)]
        done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(
        "| scale | articles / chunks | full build | peak (this process) | read | build | check | publish "
        "| chunking process peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        steps = row["peak_by_step_mb"]
        print(
            f"| {row['scale']}x | {row['articles']:,} / {row['chunks']:,} | {row['seconds']:.0f} s "
            f"| {row['peak_mb']:,} MB | {steps.get('read', 0):,} | {steps.get('build', 0):,} "
            f"| {steps.get('check', 0):,} | {steps.get('publish_decided', 0):,} "
            f"| {row['chunking_process_peak_mb']:,} MB |"
        )
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        print(f"\npeak {last['scale']}x / {first['scale']}x: {last['peak_mb'] / first['peak_mb']:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
