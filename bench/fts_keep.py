"""Keeping the full-text index across small publishes against rebuilding it: disk, time and answers.

Why publish rebuilds the full-text index every time while it keeps the vector index (measured here, LanceDB
0.40): a kept full-text index answers correctly (the rows it lacks are scanned, deleted ones masked), but that
scan is slow. Two copies of one chunks table take the same rounds of small changes, each merged as publish
merges them and tagged as a release is. After each round one copy rebuilds its full-text index (what publish
does) and the other keeps the one it has. Reported per arm: seconds of the index step, bytes the index folder
grew by per round (tags keep every release's files), and query time; across arms, how many of each query's
top 10 agree (the data is the same, only the index differs).

    python bench/fts_keep.py --index /tmp/kbscale4/scale-100/index    # chunk texts of an existing index
    python bench/fts_keep.py --rows 50000                             # synthetic texts

The changes per round: ``--change`` of the rows (default 1%), half rewritten, a quarter deleted, a quarter added.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LANCEDB_LOG", "error")
REPO = Path(__file__).resolve().parents[1]

import lancedb  # noqa: E402
import pyarrow as pa  # noqa: E402

RESULTS = REPO / "bench" / "results"


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def base_texts(index: str | None, rows: int, rng: random.Random) -> list[str]:
    if index:
        if not (Path(index) / "chunks.lance").is_dir():
            raise SystemExit(f"fts_keep: no chunks table in {index}: give a kbcurator index folder (--index)")
        table = lancedb.connect(index).open_table("chunks")
        texts: list[str] = table.search().select(["text"]).limit(None).to_arrow()["text"].to_pylist()
        return texts[:rows] if rows else texts
    # Zipf-like vocabulary: a few words everywhere, most words rare, as in help-center text.
    vocabulary = [f"w{i}" for i in range(20000)]
    weights = [1.0 / (i + 1) for i in range(len(vocabulary))]
    return [" ".join(rng.choices(vocabulary, weights, k=rng.randint(30, 120))) for _ in range(rows or 50000)]


def merge(table: Any, data: pa.Table) -> None:
    # As publish merges chunks: upsert changed rows by id, delete rows that are gone.
    (
        table.merge_insert("chunk_id")
        .when_matched_update_all(where="target.row_hash != source.row_hash")
        .when_not_matched_insert_all()
        .when_not_matched_by_source_delete()
        .execute(data)
    )


def as_table(rows: dict[str, tuple[str, str]]) -> pa.Table:
    ids = sorted(rows)
    return pa.table(
        {"chunk_id": ids, "text": [rows[i][0] for i in ids], "row_hash": [rows[i][1] for i in ids]},
    )


def search_ms(table: Any, queries: list[str]) -> tuple[list[list[str]], list[float]]:
    hits, times = [], []
    for query in queries:
        started = time.perf_counter()
        found = table.search(query, query_type="fts").select(["chunk_id"]).limit(10).to_arrow()
        times.append((time.perf_counter() - started) * 1000)
        hits.append(found["chunk_id"].to_pylist())
    return hits, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", help="read chunk texts from this kbcurator index (default: synthetic texts)")
    parser.add_argument("--rows", type=int, default=0, help="rows to use (0: all of --index, or 50,000 synthetic)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--change", type=float, default=0.01, help="share of rows changed per round")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "fts_keep.json")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    texts = base_texts(args.index, args.rows, rng)
    rows = {f"c{i:07d}": (text, f"h{i}") for i, text in enumerate(texts)}
    next_id = len(rows)
    # Each round's changes, fixed up front so both arms take exactly the same ones.
    rounds: list[dict[str, tuple[str, str]]] = []
    state = dict(rows)
    for r in range(args.rounds):
        ids = sorted(state)
        changed = max(4, int(args.change * len(ids)))
        picked = rng.sample(ids, changed)
        rewrite, delete = picked[: changed // 2], picked[changed // 2 : changed // 2 + changed // 4]
        for chunk_id in rewrite:
            donor = state[rng.choice(ids)][0]
            state[chunk_id] = (f"{donor} rewritten{r} round{r}", f"r{r}-{chunk_id}")
        for chunk_id in delete:
            del state[chunk_id]
        for _ in range(changed // 4):
            state[f"c{next_id:07d}"] = (f"{state[rng.choice(rewrite)][0]} addition{r}", f"a{r}-{next_id}")
            next_id += 1
        rounds.append(dict(state))
    words = [w for text in rng.sample(texts, min(len(texts), 2000)) for w in text.split() if w.isalnum()]
    queries = [" ".join(rng.sample(words, 2)) for _ in range(args.queries // 2)]
    queries += [f"rewritten{rng.randrange(args.rounds)} {rng.choice(words)}" for _ in range(args.queries // 2)]

    work = Path(tempfile.mkdtemp(prefix="fts_keep_"))
    results: dict[str, Any] = {"rows": len(rows), "rounds": args.rounds, "change": args.change, "arms": {}}
    last_hits: dict[str, list[list[str]]] = {}
    try:
        for arm in ("rebuild", "keep"):
            folder = work / arm
            table = lancedb.connect(str(folder)).create_table("chunks", as_table(rows))
            started = time.perf_counter()
            table.create_index("text", config=lancedb.index.FTS(), replace=True)
            first_s = time.perf_counter() - started
            table.tags.create("release-0001", int(table.version))
            grown, index_s, reused = [], [], []
            for r, state in enumerate(rounds):
                before = folder_bytes(folder)
                merge(table, as_table(state))
                started = time.perf_counter()
                if arm == "rebuild":
                    table.create_index("text", config=lancedb.index.FTS(), replace=True)
                reused.append(arm == "keep")
                index_s.append(time.perf_counter() - started)
                table.tags.create(f"release-{r + 2:04d}", int(table.version))
                grown.append(folder_bytes(folder) - before)
            fts = [c for c in table.list_indices() if "text" in list(c.columns)]
            unindexed = int(table.index_stats(fts[0].name).num_unindexed_rows) if fts else None
            hits, times = search_ms(table, queries)
            last_hits[arm] = hits
            results["arms"][arm] = {
                "first_build_s": round(first_s, 2),
                "index_step_s": [round(s, 3) for s in index_s],
                "index_step_s_median": round(statistics.median(index_s), 3),
                "reused": reused,
                "grown_mb_per_round": [round(g / 1e6, 2) for g in grown],
                "grown_mb_median": round(statistics.median(grown) / 1e6, 2),
                "folder_mb": round(folder_bytes(folder) / 1e6, 1),
                "unindexed_rows_at_end": unindexed,
                "query_ms_p50": round(statistics.median(times), 2),
                "query_ms_p95": round(sorted(times)[int(0.95 * (len(times) - 1))], 2),
            }
            print(arm, json.dumps(results["arms"][arm]), flush=True)
        agree = [
            len(set(a) & set(b)) / max(len(a), len(b), 1)
            for a, b in zip(last_hits["rebuild"], last_hits["keep"], strict=True)
        ]
        results["top10_agreement_mean"] = round(statistics.mean(agree), 4)
        results["queries_identical_top10"] = sum(1 for a in agree if a == 1.0)
        rebuild, keep = results["arms"]["rebuild"], results["arms"]["keep"]
        results["ratios"] = {
            "growth_per_round_rebuild_over_keep": round(
                rebuild["grown_mb_median"] / max(keep["grown_mb_median"], 1e-6), 1
            ),
            "index_step_rebuild_over_keep": round(
                rebuild["index_step_s_median"] / max(keep["index_step_s_median"], 1e-6), 1
            ),
            "query_p50_keep_over_rebuild": round(keep["query_ms_p50"] / rebuild["query_ms_p50"], 2),
        }
        print(
            f"top-10 agreement {results['top10_agreement_mean']:.3f} "
            f"({results['queries_identical_top10']}/{len(agree)} identical); ratios {results['ratios']}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
