"""Recall and cost of the LanceDB vector index against exact k-NN, on synthetic clustered unit vectors (or on
real embeddings with ``--vectors``).

For each row count: build the index (IVF_PQ, IVF_HNSW_SQ) on a chunks-like table, search every row's 10
nearest other rows in batched queries through :class:`~kbcurator.index.ann.LanceChunkIndex` at a few search
breadths, and measure recall@10 against an exact search on a fixed sample of rows. For context, the
in-memory paths the detectors use without an index: exact blocked search and the faiss HNSW graph.

    python bench/ann_recall.py --rows 100000 50000 20000 --nprobes 10 20 --refine 0 4 --ef-per-k 2 --in-memory

Figures and what they say: ``bench/ann_recall.md``. Each run is long on 2 cores (about 30 minutes for
the command above): pick rows and types.

Synthetic data: ``rows / 40`` cluster centres on the 384-d sphere, each row a centre plus Gaussian noise of
a per-row scale (0.6-1.4 of the centre's norm), re-normalised: cosine to its centre 0.6-0.85, to a neighbour
in its cluster about 0.35-0.75, like sentence embeddings of one help topic.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("LANCEDB_LOG", "error")

import lancedb
import numpy as np
import pyarrow as pa

from kbcurator.analysis.neighbours import nearest_neighbours, recall_at_k
from kbcurator.index import ann
from kbcurator.index.ann import LanceChunkIndex, build_vector_index
from kbcurator.settings import AnnSettings

DIM = 384
K = 10
SAMPLE = 2000


def clustered(rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(1, rows // 40), DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    members = rng.integers(0, len(centres), rows)
    scale = rng.uniform(0.6, 1.4, size=(rows, 1)).astype(np.float32)
    data = centres[members] + scale * rng.normal(size=(rows, DIM)).astype(np.float32) / np.sqrt(DIM)
    return (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)


def real_vectors(paths: list[str]) -> np.ndarray:
    parts = []
    for path in paths:
        loaded = np.load(path)
        parts.append(loaded["vectors"] if path.endswith(".npz") else loaded)
    data = np.unique(np.concatenate(parts).astype(np.float32), axis=0)  # repeated texts are not neighbours
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def exact_for(vectors: np.ndarray, sample: np.ndarray) -> np.ndarray:
    sims = vectors[sample] @ vectors.T
    sims[np.arange(len(sample)), sample] = -np.inf
    top = np.argpartition(-sims, K - 1, axis=1)[:, :K]
    return np.take_along_axis(top, np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1), axis=1)


def table_of(vectors: np.ndarray, where: str) -> Any:
    db = lancedb.connect(where)
    ids = pa.array([f"c{i:07d}" for i in range(len(vectors))])
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM)
    return db.create_table("chunks", pa.table({"chunk_id": ids, "vector": column}), mode="overwrite")


def reader_queries(
    table: Any, queries: np.ndarray, own: np.ndarray, settings: AnnSettings | None
) -> tuple[float, np.ndarray]:
    """One query at a time, as ``KBIndex.search`` sends them (LanceDB re-ranks), each row's own hit dropped."""
    found = np.full((len(queries), K), -1, dtype=np.int64)
    start = time.perf_counter()
    for n, query in enumerate(queries):
        search = table.search(query).distance_type("cosine")
        search = ann.tune_query(search, settings, K + 1, hnsw=ann.is_hnsw(table)) if settings else search
        ids = search.select(["chunk_id"]).limit(K + 1).to_arrow()["chunk_id"].to_pylist()
        rows = [r for r in (int(i[1:]) for i in ids) if r != own[n]][:K]
        found[n, : len(rows)] = rows
    return time.perf_counter() - start, found


def row(*cells: object) -> None:
    print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 50_000, 100_000])
    parser.add_argument("--types", nargs="+", default=["IVF_PQ", "IVF_HNSW_SQ"])
    parser.add_argument("--nprobes", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--refine", type=int, nargs="+", default=[0, 4])
    parser.add_argument("--ef-per-k", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--in-memory", action="store_true", help="also time the in-memory exact and faiss paths")
    parser.add_argument("--exact-below", type=int, default=60_000, help="in-memory exact search only below this")
    parser.add_argument("--single", type=int, default=200, help="single queries timed as the reader sends them")
    parser.add_argument(
        "--vectors",
        nargs="+",
        default=None,
        help="real embeddings instead of synthetic ones: .npy files or .npz files with a 'vectors' array (e.g. the "
        "MiniLM caches other benchmarks leave in bench/results); all rows of all files, one run",
    )
    args = parser.parse_args()
    if args.vectors:
        real = real_vectors(args.vectors)
        args.rows = [len(real)]
    print(f"k={K}, recall@{K} over {SAMPLE} sampled rows, {os.cpu_count()} CPUs\n")
    row("rows", "path", "parameters", "build s", "query all rows s", f"recall@{K}")
    row(*["---"] * 6)
    for rows in args.rows:
        vectors = real if args.vectors else clustered(rows)
        sample = np.random.default_rng(1).choice(rows, size=min(SAMPLE, rows), replace=False)
        truth = exact_for(vectors, sample)
        if args.in_memory:
            paths = [("in-memory exact", rows + 1)] if rows < args.exact_below else []
            for label, below in [*paths, ("in-memory faiss HNSW", 0)]:
                start = time.perf_counter()
                found, _ = nearest_neighbours(vectors, K, exact_below=below)
                row(
                    rows,
                    label,
                    "",
                    "",
                    f"{time.perf_counter() - start:.1f}",
                    f"{recall_at_k(found[sample], truth):.3f}",
                )
        with tempfile.TemporaryDirectory() as where:
            table = table_of(vectors, where)
            ids = [f"c{i:07d}" for i in range(rows)]
            single = sample[: args.single]
            reader_truth = truth[: args.single]
            seconds, found = reader_queries(table, vectors[single], single, None)
            row(rows, "reader, flat scan", "", "", f"{1000 * seconds / len(single):.1f} ms/query", "1.000")
            for index_type in args.types:
                settings = AnnSettings(min_rows=1, index_type=index_type)
                built = build_vector_index(table, settings)
                shape = {key: built[key] for key in ("num_partitions", "num_sub_vectors", "m") if key in built}
                if index_type == "IVF_PQ":
                    grid = [(p, r, None) for p in args.nprobes for r in args.refine]
                else:  # a handful of partitions, all probed; ef sets the breadth
                    grid = [(max(args.nprobes), r, e) for e in args.ef_per_k for r in args.refine]
                for nprobes, refine, ef_per_k in grid:
                    if ef_per_k is not None:
                        ann._HNSW_EF_PER_K = ef_per_k
                    search = AnnSettings(
                        min_rows=1, index_type=index_type, nprobes=nprobes, refine_factor=refine or None
                    )
                    start = time.perf_counter()
                    # With the vectors in memory, as an audit has them: exact re-ranking of refine x k candidates.
                    found, _ = LanceChunkIndex(table, ids, search, vectors=vectors).search(vectors, K)
                    seconds = time.perf_counter() - start
                    params = f"{shape} nprobes={nprobes} refine={refine or '-'}" + (
                        f" ef={max(ann._HNSW_MIN_EF, ef_per_k * (K * (refine or 1) + 1))}" if ef_per_k else ""
                    )
                    recall = recall_at_k(found[sample], truth)
                    row(rows, index_type, params, built["seconds"], f"{seconds:.1f}", f"{recall:.3f}")
                    if ef_per_k in (None, args.ef_per_k[0]) and refine:  # the reader always re-ranks
                        seconds, found = reader_queries(table, vectors[single], single, search)
                        recall = recall_at_k(found, reader_truth)
                        per_query = f"{1000 * seconds / len(single):.1f} ms/query"
                        row(rows, f"reader, {index_type}", params, "", per_query, f"{recall:.3f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
