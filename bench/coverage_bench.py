"""Per-ticket coverage and gap-level decisions, on the sample and on a set the thresholds never saw.

Two labelled sets, each a help center and tickets labelled answered / partial / unanswered against it:

- **sample**: the bundled CDC help center (111 articles) and its 171 hand-labelled tickets
  (``bench/data/coverage_labels.csv``). The default thresholds (``CoveragePolicy``: ``answered_lift`` 0.27,
  ``related_lift`` 0.25) were calibrated on it (``bench/calibrate_coverage.py``, 2-fold, stratified sha256(id)
  split); the explored model below is fitted on its *calibration half* only, and reported on its held-out half.
- **mqp** (``../shared/data/medical-question-pairs``, never used to fit anything): 1,524 doctor-written seed
  patient questions, each with a same-intent rewrite and a hard-negative rewrite (another question on the same
  subject). Half the seeds (sha256 of the seed text even) are the KB, one article each; the 3,048 rewrites are
  the tickets: the same-intent rewrite of a KB seed is *answered*, the hard negative of a KB seed *partial* (its
  subject is in the KB, its question is not), both rewrites of a withheld seed *unanswered*.

Figures, per set:

- per ticket: ROC AUC (answered vs the rest) of raw best-chunk cosine and of the lift, and the accuracy of the
  default rule (lift >= ``answered_lift``); on the sample, also the held-out half alone;
- gap level, the share of tickets whose gap status is right (in an open gap or unanswered long tail = not
  answered): **before**, clusters first and one decision per cluster (the old ``kbcurator gaps``: a cluster is
  covered when ``covered_share`` of its tickets are answered, and every member takes that decision); **after**,
  coverage first (``judge_tickets``, then ``cluster_gaps`` on the tickets not answered), as the gaps use case runs
  now; and the three-way (answered / partly / unanswered) accuracy of the per-ticket verdicts;
- explored, not adopted: a logistic model on lift, raw cosine, lexical cover of the ticket's key terms by its
  best article and by that article's title, fitted on the sample's calibration half; and, on mqp, the lift
  threshold a KB would get from its own labels (fitted on one half of the mqp seeds, reported on the other).

    python bench/coverage_bench.py [--work DIR] [--out bench/results/coverage_bench.json]

``--work DIR`` keeps the two indexes and the ticket vectors there and reuses them on the next run.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from calibrate_coverage import MODEL, auc, read_labels, read_tickets, split_halves  # noqa: E402

MQP = REPO.parent / "shared" / "data" / "medical-question-pairs" / "mqp.csv"


@dataclass
class LabelledSet:
    name: str
    kb: Any  # ReleaseVectors
    chunk_texts: list[str]
    ids: list[str]
    texts: list[str]
    labels: np.ndarray  # answered / partial / unanswered
    vectors: np.ndarray
    calibration: np.ndarray  # rows the explored model may be fitted on (none for mqp)
    seed_half: np.ndarray  # mqp: which half of the seeds a ticket's seed is in (the KB-own threshold split)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _index(work: Path, name: str, articles: Sequence[Any], embedder: Any, policy: Any) -> tuple[Any, list[str]]:
    from kbcurator.gaps.coverage import ReleaseVectors
    from kbcurator.index import schema
    from kbcurator.index.build import build_candidate
    from kbcurator.index.publish import publish
    from kbcurator.index.store import IndexStore

    store = IndexStore(str(work / f"{name}_index"))
    try:
        release = store.resolve("current")
    except Exception:  # no release yet: build one
        candidate = build_candidate(articles, store=store, embedder=embedder, policy=policy)
        release = publish(store, candidate, checks_passed=True, manifest={})
    texts = store.read_table(schema.CHUNKS, release.chunks_version, ["text"])["text"].to_pylist()
    return ReleaseVectors(store, release), texts


def _vectors(work: Path, name: str, texts: list[str], embedder: Any) -> np.ndarray:
    path = work / f"{name}_tickets_{_sha(''.join(texts))[:12]}.npy"
    if path.exists():
        return np.load(path)
    vectors = np.asarray(embedder.embed(texts), dtype=np.float32)
    np.save(path, vectors)
    return vectors


def sample_set(work: Path, embedder: Any) -> LabelledSet:
    from kbcurator.chunking import ChunkPolicy
    from kbcurator.ingest import read_articles
    from kbcurator.settings import load_settings

    settings = load_settings(str(REPO / "kb_sources" / "sample.yaml"))
    articles, _ = read_articles(settings.sources[0])
    kb, chunk_texts = _index(work, "sample", articles, embedder, ChunkPolicy.from_settings(settings))
    labels_by_id = read_labels(REPO / "bench" / "data" / "coverage_labels.csv")
    texts_by_id = read_tickets(REPO / "kb_sources" / "sample_tickets" / "tickets.csv")
    ids = sorted(labels_by_id)
    texts = [texts_by_id[i] for i in ids]
    half = split_halves(labels_by_id)
    calibration = np.array([half[i] == "calibration" for i in ids])
    return LabelledSet(
        "sample",
        kb,
        chunk_texts,
        ids,
        texts,
        np.array([labels_by_id[i]["label"] for i in ids]),
        _vectors(work, "sample", texts, embedder),
        calibration,
        calibration,
    )


def mqp_set(work: Path, embedder: Any) -> LabelledSet | None:
    from kbcurator.chunking import ChunkPolicy
    from kbcurator.records import Article, make_article_id, sha256_hex

    if not MQP.exists():
        print(f"skipping mqp: {MQP} not found")
        return None
    seeds: dict[str, dict[str, str]] = {}
    with MQP.open(newline="", encoding="utf-8") as handle:
        for _dr, seed, rewrite, label in csv.reader(handle):
            seeds.setdefault(seed, {})["same" if label == "1" else "other"] = rewrite
    in_kb = {s for s in seeds if int(_sha(s)[:8], 16) % 2 == 0}
    articles = []
    for seed in sorted(in_kb):
        url = f"https://help.example.com/articles/{_sha(seed)[:12]}"
        articles.append(
            Article(
                make_article_id("mqp", url),
                "mqp",
                url,
                seed,
                "General",
                "en-us",
                f"<h1>{seed}</h1>",
                seed,
                datetime(2026, 1, 1, tzinfo=UTC),
                sha256_hex(seed),
            )
        )
    kb, chunk_texts = _index(work, "mqp", articles, embedder, ChunkPolicy())
    ids, texts, labels, half = [], [], [], []
    for seed in sorted(seeds):
        for kind, rewrite in sorted(seeds[seed].items()):
            ids.append(f"{_sha(seed)[:12]}-{kind}")
            texts.append(rewrite)
            labels.append(("answered" if kind == "same" else "partial") if seed in in_kb else "unanswered")
            half.append(int(_sha(seed)[8:16], 16) % 2 == 0)
    return LabelledSet(
        "mqp",
        kb,
        chunk_texts,
        ids,
        texts,
        np.array(labels),
        _vectors(work, "mqp", texts, embedder),
        np.zeros(len(ids), dtype=bool),
        np.array(half),
    )


# ---------------------------------------------------------------- the explored model's features

_STOP = frozenset(
    re.findall(
        r"\w+",
        "the and for with from are was were been being does did have has had you your our their this that "
        "these those what which who whom whose when where why how can could should would will shall may might "
        "must not there here than then also just about into over under again more most some any all each "
        "other such only own same both few out its get got ",
    )
)


def _terms(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {w[:-1] if len(w) > 4 and w.endswith("s") else w for w in words if len(w) >= 3 and w not in _STOP}


def features(data: LabelledSet, best: np.ndarray, lift: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """lift, raw cosine, IDF-weighted share of the ticket's terms in its best article, and in that article's title."""
    kb = data.kb
    article_terms: dict[str, set[str]] = {}
    for article_id, title, text in zip(kb.article_ids, kb.titles, data.chunk_texts, strict=True):
        article_terms.setdefault(article_id, _terms(title)).update(_terms(text))
    df: dict[str, int] = {}
    for terms in article_terms.values():
        for term in terms:
            df[term] = df.get(term, 0) + 1
    n = len(article_terms)
    lexical, title = [], []
    for text, row in zip(data.texts, rows.tolist(), strict=True):
        terms = _terms(text)
        weight = {t: math.log((n + 1) / (df.get(t, 0) + 0.5)) for t in terms}
        total = sum(weight.values()) or 1.0
        lexical.append(sum(w for t, w in weight.items() if t in article_terms[kb.article_ids[row]]) / total)
        title.append(sum(w for t, w in weight.items() if t in _terms(kb.titles[row])) / total)
    return np.column_stack([lift, best, lexical, title])


# ---------------------------------------------------------------- figures


def accuracy(decided: np.ndarray, truth: np.ndarray) -> float:
    return round(float(np.mean(decided == truth)), 3) if len(truth) else float("nan")


def gap_levels(data: LabelledSet, policy: Any | None = None) -> dict[str, Any]:
    """Gap-level accuracy before and after, under ``policy`` (default: ``CoveragePolicy()``)."""
    from kbcurator.gaps.clustering import LONG_TAIL, TicketClusterer
    from kbcurator.gaps.coverage import CoveragePolicy, cluster_coverage, judge_tickets
    from kbcurator.gaps.pipeline import cluster_gaps

    policy = policy or CoveragePolicy()
    answered = data.labels == "answered"
    judged = judge_tickets(data.vectors, data.kb, policy)
    own = judged.answered

    started = time.perf_counter()
    labels = TicketClusterer().fit_predict(data.vectors).labels
    before = own.copy()  # the long tail: each ticket's own decision, as before
    for cluster_id in np.unique(labels[labels != LONG_TAIL]):
        rows = np.flatnonzero(labels == cluster_id)
        before[rows] = cluster_coverage(data.vectors[rows], data.kb, policy).action == "covered"
    mixed = sum(0 < answered[labels == c].sum() < (labels == c).sum() for c in np.unique(labels[labels != LONG_TAIL]))
    before_s = time.perf_counter() - started

    started = time.perf_counter()
    gap_labels = cluster_gaps(data.vectors, judged.verdicts).labels
    in_gap = gap_labels != LONG_TAIL
    after = ~in_gap & own  # in a gap or unanswered in the long tail: not answered
    after_s = time.perf_counter() - started
    three_way = np.where(data.labels == "partial", "partly", data.labels)
    return {
        "before_cluster_first": accuracy(before, answered),
        "after_coverage_first": accuracy(after, answered),
        "clusters_before": len(np.unique(labels[labels != LONG_TAIL])),
        "clusters_mixing_answered_and_not_before": int(mixed),
        "gaps_after": len(np.unique(gap_labels[in_gap])),
        "answered_tickets_in_a_gap_after": int((in_gap & answered).sum()),
        "three_way_verdict_accuracy": accuracy(np.asarray(judged.verdicts), three_way),
        "seconds_before": round(before_s, 1),
        "seconds_after": round(after_s, 1),
    }


def per_ticket(data: LabelledSet, model: Any | None) -> dict[str, Any]:
    from kbcurator.gaps.coverage import CoveragePolicy

    policy = CoveragePolicy()
    best, rows = data.kb.best(data.vectors)
    lift = data.kb.lift(data.vectors, best)
    answered = data.labels == "answered"
    subsets = {"all": np.ones(len(answered), dtype=bool)}
    if data.calibration.any():
        subsets["held_out"] = ~data.calibration
    out: dict[str, Any] = {"n": len(answered), "answered": int(answered.sum()), "labels": {}}
    x = features(data, best, lift, rows)
    for name, pick in subsets.items():
        out[name] = {
            "n": int(pick.sum()),
            "answered": int(answered[pick].sum()),
            "auroc_raw_cosine": auc(best[pick], answered[pick]),
            "auroc_lift": auc(lift[pick], answered[pick]),
            "accuracy_lift_default": accuracy(lift[pick] >= policy.answered_lift, answered[pick]),
        }
        if model is not None:
            p = model.predict_proba(x[pick])[:, 1]
            out[name]["explored_model_auroc"] = auc(p, answered[pick])
            out[name]["explored_model_accuracy_at_0.5"] = accuracy(p >= 0.5, answered[pick])
    out["lift_quartiles_by_label"] = {
        label: [round(float(v), 3) for v in np.quantile(lift[data.labels == label], [0.25, 0.5, 0.75])]
        for label in ("answered", "partial", "unanswered")
        if (data.labels == label).any()
    }
    if data.name == "mqp":  # what a KB's own labels would give: threshold fitted on one half, reported on the other
        from calibrate_coverage import choose_threshold

        fit, test = data.seed_half, ~data.seed_half
        own = choose_threshold(lift[fit], answered[fit])
        out["own_threshold"] = {
            "answered_lift": round(own, 3),
            "fitted_on": "mqp seeds of half A",
            "accuracy_on_half_b": accuracy(lift[test] >= own, answered[test]),
            "default_accuracy_on_half_b": accuracy(lift[test] >= policy.answered_lift, answered[test]),
        }
    return out


def fit_model(data: LabelledSet) -> Any:
    from sklearn.linear_model import LogisticRegression

    best, rows = data.kb.best(data.vectors)
    lift = data.kb.lift(data.vectors, best)
    x = features(data, best, lift, rows)
    pick = data.calibration
    return LogisticRegression(C=10.0).fit(x[pick], data.labels[pick] == "answered")


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"## Coverage: per ticket and per gap ({result['model']}, {result['seconds']} s)",
        "",
        "Defaults calibrated on the sample's calibration half (2-fold, README); the explored model fitted on the "
        "same half; mqp never fitted on.",
        "",
        "| set | tickets (answered) | AUROC cosine | AUROC lift | acc. lift >= default | explored model AUROC / acc "
        "| gap-level acc. before -> after | 3-way acc. |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, figures in result["sets"].items():
        gap = figures["gap_level"]
        for subset in ("all", "held_out"):
            if subset not in figures["per_ticket"]:
                continue
            f = figures["per_ticket"][subset]
            explored = (
                f"{f['explored_model_auroc']} / {f['explored_model_accuracy_at_0.5']}"
                if "explored_model_auroc" in f
                else "-"
            )
            gap_cell = f"{gap['before_cluster_first']} -> **{gap['after_coverage_first']}**" if subset == "all" else "-"
            three = gap["three_way_verdict_accuracy"] if subset == "all" else "-"
            lines.append(
                f"| {name} {subset} | {f['n']} ({f['answered']}) | {f['auroc_raw_cosine']} | {f['auroc_lift']} | "
                f"{f['accuracy_lift_default']} | {explored} | {gap_cell} | {three} |"
            )
    lines.append("")
    for name, figures in result["sets"].items():
        gap = figures["gap_level"]
        lines.append(
            f"- {name}: before, {gap['clusters_mixing_answered_and_not_before']} of {gap['clusters_before']} clusters "
            f"mixed answered and unanswered tickets; after, {gap['gaps_after']} gaps and "
            f"{gap['answered_tickets_in_a_gap_after']} tickets labelled answered in a gap. Lift quartiles by label: "
            f"{figures['per_ticket']['lift_quartiles_by_label']}."
        )
        own = figures["per_ticket"].get("own_threshold")
        if own:
            lines.append(
                f"- {name}: the default threshold does not transfer; fitted on half A of its own labels, "
                f"answered_lift {own['answered_lift']} scores {own['accuracy_on_half_b']} on half B "
                f"(default: {own['default_accuracy_on_half_b']})."
            )
            levels = figures.get("gap_level_own_threshold")
            if levels:
                lines.append(
                    f"- {name}, that threshold (half A), no partly band, all tickets: gap-level accuracy "
                    f"{levels['before_cluster_first']} before -> {levels['after_coverage_first']} after "
                    f"({levels['clusters_mixing_answered_and_not_before']} of {levels['clusters_before']} clusters "
                    f"mixed before; {levels['gaps_after']} gaps after)."
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="keep the indexes and ticket vectors here (reused next run)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "coverage_bench.json")
    args = parser.parse_args()

    from kbcurator.embedding import load_embedder
    from kbcurator.gaps.coverage import CoveragePolicy

    started = time.perf_counter()
    embedder = load_embedder(MODEL)
    with tempfile.TemporaryDirectory(prefix="kbcurator-coverage-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        sets = [s for s in (sample_set(work, embedder), mqp_set(work, embedder)) if s is not None]
        model = fit_model(sets[0])
        result: dict[str, Any] = {
            "model": MODEL,
            "calibrated_on": "sample calibration half (stratified sha256(id) split of bench/data/coverage_labels.csv)",
            "explored_model": {
                "features": ["lift", "raw_cosine", "lexical_cover_best_article", "lexical_cover_title"],
                "coefficients": [round(float(c), 3) for c in model.coef_[0]],
                "intercept": round(float(model.intercept_[0]), 3),
            },
            "sets": {s.name: {"per_ticket": per_ticket(s, model), "gap_level": gap_levels(s)} for s in sets},
        }
        for s in sets:  # the gap level again under the threshold the set's own labels give (see own_threshold)
            own = result["sets"][s.name]["per_ticket"].get("own_threshold")
            if own:
                lift = own["answered_lift"]
                levels = gap_levels(s, CoveragePolicy(answered_lift=lift, related_lift=lift))
                result["sets"][s.name]["gap_level_own_threshold"] = levels
    result["seconds"] = round(time.perf_counter() - started, 1)
    summary = markdown(result)
    result["markdown"] = summary
    print(summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
