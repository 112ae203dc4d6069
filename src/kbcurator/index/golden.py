"""Golden questions and how well a release retrieves their articles: recall@k and MRR, and what a release lost.

A golden question names the article(s) that answer it, by URL or article id; any one of them counts. Questions
come from a file declared in the settings, from ticket exports that link the article that solved the ticket, and
from resolved gaps; they are stored in the ``golden_questions`` table with where each came from.

Ranking is by article: an article's score for a question is the cosine similarity of its best chunk (what a RAG
service taking one hit per article sees), searched exactly over every chunk of the release, so the candidate (in
memory, not published) and the current release are measured the same way. A question with a locale is ranked
among articles of that locale only. recall@k: the share of questions with an expected article in the top k.
MRR: the mean of 1 / rank of the best-ranked expected article (0 when no expected article is in the release).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from kbcurator.errors import ConfigError
from kbcurator.index import schema
from kbcurator.index.build import ReleaseCandidate, vector_matrix
from kbcurator.index.staging import batches_of, columns_of
from kbcurator.index.store import IndexStore, lance_errors, sql_text
from kbcurator.records import IndexRelease, Ticket, sha256_hex

Origin = Literal["file", "ticket_link", "resolved_gap"]
LossReason = Literal["vanished", "rewritten", "outranked"]


@dataclass(frozen=True, slots=True)
class GoldenQuestion:
    question: str
    expected: tuple[str, ...]  # article URLs or ids; any one answers
    origin: Origin
    origin_ref: str = ""  # the file, the ticket key, the gap id
    locale: str = ""  # "": any locale
    release_tag: str = ""  # resolved_gap: the release that answered it
    added_at: datetime | None = None

    @property
    def golden_id(self) -> str:
        key = json.dumps([self.origin, self.origin_ref, " ".join(self.question.split()).casefold(), self.locale])
        return f"golden-{sha256_hex(key)[:12]}"


def read_golden_file(path: str | Path) -> list[GoldenQuestion]:
    """The questions of a CSV (question, expected, locale; expected articles separated by ``|``) or JSONL file.

    Raises:
        ConfigError: the file is missing, unreadable, or a row lacks a question or an expected article.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the golden questions file {file}: {exc}") from exc
    rows: list[dict[str, object]] = []
    if file.suffix.lower() in (".jsonl", ".ndjson"):
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{file}, line {number}: not JSON ({exc.msg})") from exc
    else:
        rows = list(csv.DictReader(text.splitlines()))
    questions: list[GoldenQuestion] = []
    for number, row in enumerate(rows, start=1):
        question = str(row.get("question") or "").strip()
        raw = row.get("expected") or ""
        expected = tuple(e.strip() for e in (raw if isinstance(raw, list) else str(raw).split("|")) if e.strip())
        if not question or not expected:
            raise ConfigError(f"{file}, row {number}: a golden question needs 'question' and 'expected'")
        locale = str(row.get("locale") or "").strip()
        questions.append(GoldenQuestion(question, expected, "file", str(file), locale))
    return questions


class GoldenStore:
    """The ``golden_questions`` table of one index database."""

    def __init__(self, store: IndexStore) -> None:
        self._store = store

    def all(self) -> list[GoldenQuestion]:
        return [
            GoldenQuestion(
                question=row["question"],
                expected=tuple(row["expected"] or ()),
                origin=row["origin"],
                origin_ref=row["origin_ref"] or "",
                locale=row["locale"] or "",
                release_tag=row["release_tag"] or "",
                added_at=row["added_at"],
            )
            for row in self._store.rows(schema.GOLDEN_QUESTIONS)
        ]

    def replace(self, origin: Origin, questions: Sequence[GoldenQuestion]) -> None:
        """Make ``questions`` the only ones of ``origin`` (a file edited since: its removed lines go too)."""
        unique = list({q.golden_id: q for q in questions}.values())  # a question twice in the file counts once
        table = self._store.open_or_create(schema.GOLDEN_QUESTIONS, schema.golden_questions_schema())
        with lance_errors("cannot write the golden questions"):
            table.delete(f"origin = '{origin}'")
            if unique:
                table.add(_rows(unique))

    def add(self, questions: Sequence[GoldenQuestion]) -> int:
        """Add questions not stored yet (by id); returns how many were new."""
        known = {q.golden_id for q in self.all()}
        new = list({q.golden_id: q for q in questions if q.golden_id not in known}.values())
        if new:
            table = self._store.open_or_create(schema.GOLDEN_QUESTIONS, schema.golden_questions_schema())
            with lance_errors("cannot write the golden questions"):
                table.add(_rows(new))
        return len(new)

    def update_refs(self, origin: Origin, questions: Sequence[GoldenQuestion]) -> int:
        """Store ``questions``, each replacing the stored ones of ``origin`` with its ``origin_ref`` (a ticket whose
        text or linked article changed since it was last read); others stay. Returns how many were new or changed."""
        unique = list({q.golden_id: q for q in questions}.values())
        known = {q.golden_id for q in self.all()}
        changed = [q for q in unique if q.golden_id not in known]
        if not changed:
            return 0
        table = self._store.open_or_create(schema.GOLDEN_QUESTIONS, schema.golden_questions_schema())
        refs = sorted({q.origin_ref for q in changed})
        with lance_errors("cannot write the golden questions"):
            for start in range(0, len(refs), 500):
                listed = ", ".join(sql_text(ref) for ref in refs[start : start + 500])
                table.delete(f"origin = '{origin}' AND origin_ref IN ({listed})")
            table.add(_rows(changed))
        return len(changed)


def ticket_link_questions(tickets: Iterable[Ticket]) -> list[GoldenQuestion]:
    """Golden questions from tickets an agent solved by linking an article: the ticket's (already redacted) text
    asks, the linked articles answer. ``origin_ref`` is ``source_id:ticket_id``."""
    return [
        GoldenQuestion(" ".join(t.text.split()), t.solved_by, "ticket_link", f"{t.source_id}:{t.ticket_id}")
        for t in tickets
        if t.solved_by and t.text.strip()
    ]


def _rows(questions: Iterable[GoldenQuestion]) -> pa.Table:
    now = datetime.now(UTC)
    rows = [
        {
            "golden_id": q.golden_id,
            "question": q.question,
            "expected": list(q.expected),
            "locale": q.locale,
            "origin": q.origin,
            "origin_ref": q.origin_ref,
            "release_tag": q.release_tag,
            "added_at": q.added_at or now,
        }
        for q in questions
    ]
    return pa.Table.from_pylist(rows, schema=schema.golden_questions_schema())


# -- measuring -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReleaseView:
    """One release's chunk vectors and article facts: what ranking articles for a question needs."""

    label: str  # the release tag, or "candidate"
    # The chunks a block at a time: (vectors, unit rows; per row, its article's position in ``article_ids``, -1 for
    # none). Read when a question is ranked, never held whole: at 200k chunks the vectors are ~330 MB a release.
    chunk_blocks: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]
    article_ids: tuple[str, ...]
    titles: tuple[str, ...]
    urls: tuple[str, ...]
    locales: tuple[str, ...]
    content_hashes: tuple[str, ...]
    by_ref: dict[str, int]  # article id, and URL without fragment or trailing slash -> position

    def position(self, refs: Iterable[str]) -> list[int]:
        """The positions of the articles that ``refs`` (ids or URLs) name."""
        found = {self.by_ref.get(ref, self.by_ref.get(_url_key(ref), -1)) for ref in refs}
        return sorted(found - {-1})


def _url_key(url: str) -> str:
    return url.split("#", 1)[0].rstrip("/").casefold()


_BLOCK_ROWS = 65_536


def view_of(label: str, articles: pa.Table, chunk_batches: Callable[[], Iterable[pa.RecordBatch]]) -> ReleaseView:
    """A view of a release's ``articles`` table and its chunks, which ``chunk_batches`` reads (``article_id`` and
    ``vector`` columns, a batch at a time) each time the view ranks questions."""
    article_ids = tuple(articles["article_id"].to_pylist())
    position = {a: i for i, a in enumerate(article_ids)}

    def chunk_blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for batch in chunk_batches():
            if not batch.num_rows:
                continue
            owners = np.asarray([position.get(a, -1) for a in batch["article_id"].to_pylist()], dtype=np.int64)
            yield vector_matrix(batch["vector"]), owners

    urls = tuple(u or "" for u in articles["url"].to_pylist())
    by_ref: dict[str, int] = {}
    for i, (article_id, url) in enumerate(zip(article_ids, urls, strict=True)):
        by_ref[article_id] = i
        by_ref.setdefault(_url_key(url), i)
    return ReleaseView(
        label=label,
        chunk_blocks=chunk_blocks,
        article_ids=article_ids,
        titles=tuple(t or "" for t in articles["title"].to_pylist()),
        urls=urls,
        locales=tuple((loc or "").casefold() for loc in articles["locale"].to_pylist()),
        content_hashes=tuple(h or "" for h in articles["content_hash"].to_pylist()),
        by_ref=by_ref,
    )


_ARTICLE_COLUMNS = ["article_id", "title", "url", "locale", "content_hash"]


def candidate_view(candidate: ReleaseCandidate) -> ReleaseView:
    chunks = candidate.chunks
    return view_of(
        "candidate",
        columns_of(candidate.articles, _ARTICLE_COLUMNS),
        lambda: batches_of(chunks, ["article_id", "vector"], batch_rows=_BLOCK_ROWS),
    )


def release_view(store: IndexStore, release: IndexRelease) -> ReleaseView:
    articles = store.read_table(schema.ARTICLES, release.articles_version, _ARTICLE_COLUMNS)
    return view_of(
        release.tag,
        articles,
        lambda: store.batches(schema.CHUNKS, release.chunks_version, ["article_id", "vector"], batch_rows=_BLOCK_ROWS),
    )


def article_scores(view: ReleaseView, queries: np.ndarray, *, block_rows: int = _BLOCK_ROWS) -> np.ndarray:
    """(questions, articles): each article's best chunk similarity to each question; -inf for no chunk."""
    scores = np.full((len(queries), len(view.article_ids)), -np.inf, dtype=np.float32)
    if not len(queries):
        return scores
    for vectors, owners in view.chunk_blocks():
        keep = owners >= 0  # a chunk whose article is not in the release cannot be ranked
        order = np.argsort(owners[keep], kind="stable")
        matrix, codes_all = vectors[keep][order], owners[keep][order]
        for start in range(0, len(matrix), block_rows):  # bounds the question x chunk matrix
            block = queries @ matrix[start : start + block_rows].T
            codes = codes_all[start : start + block_rows]
            starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
            best = np.maximum.reduceat(block, starts, axis=1)
            columns = codes[starts]
            scores[:, columns] = np.maximum(scores[:, columns], best)
    return scores


@dataclass(frozen=True, slots=True)
class QuestionRank:
    golden_id: str
    rank: int | None  # of the best-ranked expected article; None: no expected article in the release
    found: int  # the expected article ranked best (position in the view), -1 when none
    top: int  # the article ranked first (position in the view), -1 when none


@dataclass(frozen=True, slots=True)
class Measure:
    """One release's retrieval on the golden questions."""

    label: str
    k: int
    ranks: tuple[QuestionRank, ...]

    @property
    def questions(self) -> int:
        return len(self.ranks)

    @property
    def recall_at_k(self) -> float:
        return _mean([r.rank is not None and r.rank <= self.k for r in self.ranks])

    @property
    def mrr(self) -> float:
        return _mean([1.0 / r.rank if r.rank else 0.0 for r in self.ranks])

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "release": self.label,
            "questions": self.questions,
            f"recall_at_{self.k}": round(self.recall_at_k, 4),
            "mrr": round(self.mrr, 4),
        }


def _mean(values: Sequence[float | bool]) -> float:
    return float(np.mean(values)) if values else 0.0


def measure(view: ReleaseView, questions: Sequence[GoldenQuestion], vectors: np.ndarray, k: int) -> Measure:
    """Rank every question's expected articles in ``view`` (``vectors``: the questions embedded, unit rows)."""
    scores = article_scores(view, vectors)
    locales = np.asarray(view.locales)
    ranks: list[QuestionRank] = []
    for row, question in enumerate(questions):
        score = scores[row]
        if question.locale:
            score = np.where(locales == question.locale.casefold(), score, -np.inf)
        expected = [p for p in view.position(question.expected) if np.isfinite(score[p])]
        top = int(np.argmax(score)) if len(score) and np.isfinite(score.max()) else -1
        if not expected:
            ranks.append(QuestionRank(question.golden_id, None, -1, top))
            continue
        found = max(expected, key=lambda p: score[p])
        rank = 1 + int((score > score[found]).sum())
        ranks.append(QuestionRank(question.golden_id, rank, found, top))
    return Measure(view.label, k, tuple(ranks))


@dataclass(frozen=True, slots=True)
class LostQuestion:
    """A golden question the current release answers in its top k and the candidate does not, and why."""

    golden_id: str
    question: str
    origin: str
    article_title: str
    article_url: str
    reason: LossReason
    rank_before: int
    rank_after: int | None  # None: the article is gone
    above: str  # the title of the article the candidate ranks first instead

    def describe(self) -> str:
        article = f"{self.article_title or self.article_url} ({self.article_url})"
        if self.reason == "vanished":
            return f"“{self.question}”: its article {article} is not in the candidate"
        why = "was rewritten and " if self.reason == "rewritten" else ""
        return (
            f"“{self.question}”: its article {article} {why}fell from rank {self.rank_before} to {self.rank_after}, "
            f"below “{self.above}”"
        )


def lost_questions(
    questions: Sequence[GoldenQuestion],
    before: Measure,
    after: Measure,
    base: ReleaseView,
    candidate: ReleaseView,
) -> list[LostQuestion]:
    """The questions ``before`` (the current release) had in its top k and ``after`` (the candidate) has not."""
    lost: list[LostQuestion] = []
    for question, old, new in zip(questions, before.ranks, after.ranks, strict=True):
        if old.rank is None or old.rank > before.k or (new.rank is not None and new.rank <= after.k):
            continue
        article_id = base.article_ids[old.found]
        title, url = base.titles[old.found], base.urls[old.found]
        still = candidate.position([article_id])
        reason: LossReason
        if new.rank is None or not still:
            reason = "vanished"
        elif candidate.content_hashes[still[0]] != base.content_hashes[old.found]:
            reason = "rewritten"
        else:
            reason = "outranked"
        above = candidate.titles[new.top] if new.top >= 0 else ""
        lost.append(
            LostQuestion(
                question.golden_id,
                question.question,
                question.origin,
                title,
                url,
                reason,
                old.rank,
                new.rank if reason != "vanished" else None,
                above,
            )
        )
    return lost


@dataclass(frozen=True, slots=True)
class RetrievalSummary:
    """What a release's manifest says of its retrieval gate, for the report and the review app."""

    k: int
    questions: int
    recall_at_k: float
    mrr: float
    baseline_recall_at_k: float | None  # the release it replaced, on the same questions
    lost: int  # golden questions that lost their article in this release
    overridden: bool


def retrieval_summary(manifest: dict[str, Any]) -> RetrievalSummary | None:
    """None when the release was published without golden questions (or before the gate existed)."""
    record = manifest.get("retrieval")
    if not isinstance(record, dict) or not record.get("questions"):
        return None
    k = int(record.get("k", 5))
    candidate = record.get("candidate") or {}
    baseline = record.get("baseline") or None
    return RetrievalSummary(
        k=k,
        questions=int(record["questions"]),
        recall_at_k=float(candidate.get(f"recall_at_{k}", 0.0)),
        mrr=float(candidate.get("mrr", 0.0)),
        baseline_recall_at_k=float(baseline[f"recall_at_{k}"]) if baseline and f"recall_at_{k}" in baseline else None,
        lost=len(record.get("lost") or ()),
        overridden=bool(record.get("overridden")),
    )
