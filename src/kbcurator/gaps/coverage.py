"""How well the KB already answers ticket queries, each on its own and as a cluster, against one index release.

Coverage comes first: :func:`judge_tickets` decides per ticket whether the release answers it, answers it only
partly, or does not answer it (:data:`Verdict`), and only the tickets it does not answer are clustered into gaps
(``kbcurator.usecases.gaps``). Deciding per cluster instead mixed answered and unanswered questions in one
decision: on the sample's 171 labelled tickets it was right for fewer tickets than the per-ticket rule (see
bench/coverage_bench.py).

A query counts as answered when its best chunk stands out from the rest of the KB: its *lift* (cosine
similarity to the best chunk minus the query's mean similarity to every chunk of the release) reaches
``answered_lift``. Raw cosine alone is a poor judge in a one-topic help center: every COVID-19 question is
~0.6 similar to every COVID-19 article, answered or not. Subtracting the query's background similarity
removes that shared component (on 171 hand-labelled tickets, AUC 0.83 for lift vs 0.76 for raw cosine; see
bench/calibrate_coverage.py). A cluster's coverage is the share of its queries answered. When coverage is
low, the cluster's median lift decides the fix: close (``related_lift``) means "extend the closest article",
otherwise "write a new article" (partial vs unanswered: AUC 0.69 for lift, 0.55 for raw cosine).

Given the cluster's (redacted) questions, each closest article also says which of them it does not answer: a
question whose best chunk *in that article* has a lift below ``answered_lift``. That is what "extend article X"
should add.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

from kbcurator.index import schema
from kbcurator.index.store import IndexStore
from kbcurator.records import IndexRelease

Action = Literal["covered", "extend", "write"]
# answered: its best chunk's lift reaches ``answered_lift``; partly: it reaches ``related_lift`` only (the KB has
# the topic, not this question's answer); unanswered: below both.
Verdict = Literal["answered", "partly", "unanswered"]
VERDICTS: tuple[Verdict, ...] = ("answered", "partly", "unanswered")


@dataclass(frozen=True, slots=True)
class CoveragePolicy:
    answered_lift: float = 0.27  # a ticket whose best chunk's lift reaches this is answered
    related_lift: float = 0.25  # below answered_lift, from this a ticket is partly answered ("extend")
    covered_share: float = 0.5  # a cluster with at least this share of answered queries is not a gap


@dataclass(frozen=True, slots=True)
class ArticleMatch:
    article_id: str
    title: str
    url: str
    queries: int  # how many of the cluster's queries have their best chunk in this article
    best_similarity: float
    # The cluster's questions this article does not answer, least answered first (redacted texts; empty when the
    # questions were not given).
    unanswered: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class QuestionFit:
    """How well one article answers one question: its best chunk's cosine similarity and lift."""

    question: str
    similarity: float
    lift: float
    answered: bool


@dataclass(frozen=True, slots=True)
class Coverage:
    coverage_score: float
    median_best_similarity: float
    median_lift: float
    best_articles: tuple[ArticleMatch, ...]
    action: Action

    def suggestion(self, *, quoted: int = 3) -> str:
        """What to do, naming the closest article and, where known, the questions it does not answer."""
        if self.action == "covered":
            return "covered: no action"
        closest = self.best_articles[0] if self.best_articles else None
        if self.action == "extend" and closest is not None:
            advice = f"extend article {closest.title!r} ({closest.url})"
            if closest.unanswered:
                advice += " to answer: " + _quote(closest.unanswered, quoted)
            return advice
        if closest is not None and closest.unanswered:
            return f"write a new article (the closest, {closest.title!r}, does not answer: " + (
                _quote(closest.unanswered, quoted) + ")"
            )
        return "write a new article"


def _quote(questions: Sequence[str], limit: int) -> str:
    shown = "; ".join(f"“{' '.join(q.split())}”" for q in questions[:limit])
    return shown + (f" and {len(questions) - limit} more" if len(questions) > limit else "")


class ReleaseVectors:
    """The chunk vectors of one release, held in memory for exact cosine search of many queries."""

    def __init__(self, store: IndexStore, release: IndexRelease) -> None:
        table = store.read_table(
            schema.CHUNKS, release.chunks_version, ["chunk_id", "article_id", "title", "url", "vector"]
        )
        self.release = release
        self.article_ids: list[str] = table["article_id"].to_pylist()
        self.titles: list[str] = table["title"].to_pylist()
        self.urls: list[str] = table["url"].to_pylist()
        vectors = np.asarray(table["vector"].to_pylist(), dtype=np.float32)
        self.matrix = vectors.reshape(len(self.article_ids), -1) if len(self.article_ids) else vectors
        # q . mean(chunks) == the query's mean similarity over the whole release, in one dot product.
        self.mean_vector = self.matrix.mean(axis=0) if len(self.article_ids) else self.matrix

    @cached_property
    def rows_by_article(self) -> dict[str, np.ndarray]:
        rows: dict[str, list[int]] = {}
        for row, article_id in enumerate(self.article_ids):
            rows.setdefault(article_id, []).append(row)
        return {a: np.asarray(r, dtype=np.int64) for a, r in rows.items()}

    def best(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(best cosine similarity, best chunk row) for each query vector (rows L2-normalised)."""
        if not len(self.article_ids) or not len(queries):
            return np.zeros(len(queries), dtype=np.float32), np.full(len(queries), -1)
        similarities = queries @ self.matrix.T
        rows = similarities.argmax(axis=1)
        return similarities[np.arange(len(queries)), rows], rows

    def lift(self, queries: np.ndarray, best: np.ndarray) -> np.ndarray:
        """Best similarity minus the query's mean similarity over the release (0 for an empty release)."""
        if not len(self.article_ids) or not len(queries):
            return np.zeros(len(queries), dtype=np.float32)
        return best - queries @ self.mean_vector


@dataclass(frozen=True, slots=True)
class TicketJudgement:
    """The per-ticket coverage decision for a batch of query vectors, one entry per row.

    ``chunk_rows`` index the release's chunks (``-1``: an empty release); ``verdicts`` follow the policy's lift
    thresholds, the same rule the KB hit rate counts.
    """

    similarity: np.ndarray  # best cosine similarity
    lift: np.ndarray  # best similarity minus the query's mean similarity over the release
    chunk_rows: np.ndarray
    verdicts: tuple[Verdict, ...]

    def __len__(self) -> int:
        return len(self.verdicts)

    def rows(self, verdict: Verdict) -> np.ndarray:
        """The positions of the queries with this verdict."""
        return np.asarray([i for i, v in enumerate(self.verdicts) if v == verdict], dtype=np.int64)

    @property
    def answered(self) -> np.ndarray:
        return np.asarray([v == "answered" for v in self.verdicts], dtype=bool)


def verdict_of(lift: float, policy: CoveragePolicy) -> Verdict:
    """Answered, partly or unanswered, from a query's lift (``related_lift`` above ``answered_lift`` leaves no
    partly band)."""
    if lift >= policy.answered_lift:
        return "answered"
    return "partly" if lift >= policy.related_lift else "unanswered"


def judge_tickets(
    query_vectors: np.ndarray, kb: ReleaseVectors, policy: CoveragePolicy, *, batch_rows: int = 1024
) -> TicketJudgement:
    """Decide per query whether the release answers it; ``batch_rows`` bounds the query x chunk matrix."""
    sims: list[np.ndarray] = []
    lifts: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    for start in range(0, len(query_vectors), batch_rows):
        queries = query_vectors[start : start + batch_rows]
        best, chunk_rows = kb.best(queries)
        sims.append(best)
        lifts.append(kb.lift(queries, best))
        rows.append(chunk_rows)
    similarity = np.concatenate(sims) if sims else np.zeros(0, dtype=np.float32)
    lift = np.concatenate(lifts) if lifts else np.zeros(0, dtype=np.float32)
    chunk_rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    verdicts = tuple(verdict_of(float(lf), policy) for lf in lift.tolist())
    return TicketJudgement(similarity, lift, chunk_rows, verdicts)


def article_fit(
    query_vectors: np.ndarray, questions: Sequence[str], kb: ReleaseVectors, article_id: str, policy: CoveragePolicy
) -> list[QuestionFit]:
    """For each question, how well one article answers it: its best chunk in that article, lift as for coverage.

    A question is answered by the article when that lift reaches ``policy.answered_lift``.
    """
    if len(questions) != len(query_vectors):
        raise ValueError(f"{len(questions)} questions but {len(query_vectors)} query vectors")
    rows = kb.rows_by_article.get(article_id)
    if rows is None or not len(query_vectors):
        return [QuestionFit(q, 0.0, 0.0, False) for q in questions]
    best = (query_vectors @ kb.matrix[rows].T).max(axis=1)
    lift = kb.lift(query_vectors, best)
    return [
        QuestionFit(q, round(float(s), 4), round(float(lf), 4), bool(lf >= policy.answered_lift))
        for q, s, lf in zip(questions, best.tolist(), lift.tolist(), strict=True)
    ]


def unanswered_questions(fits: Sequence[QuestionFit]) -> tuple[str, ...]:
    """The questions not answered, least answered first, each wording once."""
    seen: set[str] = set()
    out: list[str] = []
    for fit in sorted((f for f in fits if not f.answered), key=lambda f: f.lift):
        key = " ".join(fit.question.casefold().split())
        if key and key not in seen:
            seen.add(key)
            out.append(fit.question)
    return tuple(out)


def cluster_coverage(
    query_vectors: np.ndarray,
    kb: ReleaseVectors,
    policy: CoveragePolicy,
    *,
    top_articles: int = 3,
    questions: Sequence[str] | None = None,
) -> Coverage:
    """How well the release answers a cluster's queries, and what to do about it.

    ``questions`` are the queries' (redacted) texts, one per row of ``query_vectors``: given, each closest
    article lists the questions it does not answer.
    """
    if questions is not None and len(questions) != len(query_vectors):
        raise ValueError(f"{len(questions)} questions but {len(query_vectors)} query vectors")
    best, rows = kb.best(query_vectors)
    if not len(best):
        return Coverage(0.0, 0.0, 0.0, (), "write")
    lift = kb.lift(query_vectors, best)
    answered = float(np.mean(lift >= policy.answered_lift))
    median = float(np.median(best))
    counts: Counter[str] = Counter()
    best_row_of: dict[str, int] = {}
    best_sim_of: dict[str, float] = {}
    for similarity, row in zip(best.tolist(), rows.tolist(), strict=True):
        if row < 0:
            continue
        article_id = kb.article_ids[row]
        counts[article_id] += 1
        if similarity > best_sim_of.get(article_id, -1.0):
            best_sim_of[article_id], best_row_of[article_id] = similarity, row
    ranked = sorted(counts, key=lambda a: (-counts[a], -best_sim_of[a]))[:top_articles]
    matches = tuple(
        ArticleMatch(
            article_id=a,
            title=kb.titles[best_row_of[a]],
            url=kb.urls[best_row_of[a]],
            queries=counts[a],
            best_similarity=round(best_sim_of[a], 4),
            unanswered=unanswered_questions(article_fit(query_vectors, questions, kb, a, policy))
            if questions is not None
            else (),
        )
        for a in ranked
    )
    if answered >= policy.covered_share:
        action: Action = "covered"
    elif float(np.median(lift)) >= policy.related_lift:
        action = "extend"
    else:
        action = "write"
    return Coverage(round(answered, 4), round(median, 4), round(float(np.median(lift)), 4), matches, action)


def gap_priority(size: int, coverage_score: float, escalation_share: float, escalation_weight: float = 1.0) -> float:
    """Volume x (1 - coverage) x escalation weight: escalated clusters count up to (1 + weight) times."""
    return size * (1.0 - coverage_score) * (1.0 + escalation_weight * escalation_share)


def rank_gaps(priorities: Sequence[float]) -> list[float]:
    """Gap scores in 0..1: each cluster's priority over the largest in this run."""
    top = max(priorities, default=0.0)
    return [round(p / top, 4) if top > 0 else 0.0 for p in priorities]
