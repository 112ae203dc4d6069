"""Duplicate articles and duplicated sections: exact copies, near copies, pasted sections, paraphrases.

Four checks, each comparing only what a candidate search puts side by side, never all pairs:

- ``exact``: the same text once case, whitespace and punctuation are ignored (one hash per article).
- ``near``: whole articles whose word shingles overlap (Jaccard) at least ``near_threshold``. Candidates come
  from MinHash LSH buckets (datasketch); every candidate is verified with the exact Jaccard of the shingle sets.
- ``semantic``: article vectors (mean of their chunk vectors) at least ``semantic_article_similarity`` apart,
  candidates from a k-nearest-neighbour search (``neighbours.candidate_pairs``), except a short page quoting
  the other under a title of its own (a note, an excerpt: containment is not duplication, and the section check
  finds a pasted section) and two pages sharing little of their vocabulary (translations): see ``_unlike``.
  Two pages asking the same question (the same title, when it is a question or specific enough to name one
  task, held by a few pages at most) are grouped by title instead and need only a cosine of
  ``_SAME_QUESTION_SIMILARITY``: an older version left beside a rewritten answer, or two teams' answers to it.
- ``section``: a section (chunk) with at least ``min_section_chars`` of text outside template blocks, of which
  ``section_threshold`` or more (containment) is also in one section of another article: a section pasted
  inside a longer article. A pasted section is a small part of its new chunk, so its Jaccard with it is too low
  for LSH to find; sections are paired instead through an inverted index of their shingles, which stays small
  because template shingles are left out (see below) and a shingle held by more than ``_MAX_POSTINGS`` sections
  (a large set of near copies, already reported whole) is skipped.

Article pairs are grouped into duplicate sets (connected components): one finding per set. Its check is the
strongest kind of evidence that holds the whole set together (``exact`` when every member is a copy of the
others, else ``near`` when copies and near copies connect it, else ``semantic``) and its score is the weakest
link of the strongest chain (the bottleneck of a maximum spanning tree; 1.0 for exact, Jaccard for near,
cosine for semantic). Each finding suggests a canonical article (newest ``updated_at``, then most linked-to,
then longest, among the members that are not a copy, a short page quoting another member, or in a contradiction
with another member: see ``choose_canonical``), says why and why not the others, and quotes the sentences the other
members have and the canonical one lacks. Exact copies are to be retired; everything else merged. The detector
runs apart from the contradiction detector: ``settle_canonicals`` re-chooses with the audit's contradictions.

Section findings leave out pairs already in one duplicate set and group duplicated sections by the duplicate
sets that share them: one finding per group, listing each shared section with both chunks quoted.

Boilerplate rule: a ``shingle_words``-word shingle found in ``section_template_articles`` or more articles (a
duplicate set counts once) is template text, such as a shared "Still stuck? Contact support" footer or a reusable
setup block: a block repeated that widely is deliberate, not a copy to merge. Section comparison ignores
template shingles, and a section with less than ``min_section_chars`` of other text is not looked for
elsewhere, so two articles quoting the same short boilerplate stay quiet.

Articles in different locales are translations, not duplicates, and are never paired.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import numpy as np

from kbcurator.analysis.base import AuditCorpus, severity_for
from kbcurator.analysis.neighbours import candidate_pairs
from kbcurator.config.health import DuplicateSettings
from kbcurator.records import Article, Chunk, Evidence, Finding, Severity, make_finding_id

if TYPE_CHECKING:
    from datasketch import MinHash

_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_NO_SHINGLES = np.zeros(0, dtype=np.uint32)
# LSH has a soft edge around its threshold; querying a little below it and verifying exactly keeps pairs that
# sit just above the threshold from slipping through.
_LSH_MARGIN = 0.1
_MIN_SENTENCE_WORDS = 4  # "Still stuck?" and headings are not what a merge needs to carry over
_MAX_ADDED_QUOTED = 3
_MAX_QUOTED_MEMBERS = 20
_EXCERPT_CHARS = 300
_OLDEST = datetime.min.replace(tzinfo=UTC)
# Stronger checks win when a set is held together by several kinds of evidence.
_CHECK_ORDER = ("exact", "near", "semantic")
# Sections sharing one shingle, beyond which the shingle is not used to pair them (see _shared_shingle_counts).
_MAX_POSTINGS = 32
# A semantic pair is not a duplicate when the shorter article is at most this share of the longer one's length and
# this share of its shingles is found there (a note or an excerpt quoting it, see _unlike) ...
_EXCERPT_LENGTH_SHARE = 0.5
_EXCERPT_QUOTED = 0.4
# ... or when the two share less than this share of the smaller vocabulary (two languages). On the tuning set
# (bench/health/duplicate_cases.py) translations shared 0.06-0.41 and paraphrases 0.65-1.0.
_MIN_SHARED_VOCABULARY = 0.5
# Two pages asking the same question (the same specific title, see _question_key) answer it twice, however
# differently they word the answer: an older version left beside the current one, or two teams' answers. Their
# vectors need only be this close (about the top 3% of all article pairs of a help center); on the tuning set
# such pairs scored 0.73-1.0, a rewritten answer or a stub pointing elsewhere the lowest.
_SAME_QUESTION_SIMILARITY = 0.7
# A title held by more articles than this is a label ("Overview", "Release notes"), not one question.
_MAX_SAME_TITLE = 4
_TITLE_STOPWORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how", "i", "if", "in"}
    | {"is", "it", "my", "of", "on", "or", "our", "the", "this", "to", "what", "when", "where", "which", "who"}
    | {"why", "will", "with", "you", "your"}
)


def normalise(text: str) -> str:
    """Casefolded words joined by single spaces: punctuation and whitespace differences vanish."""
    return " ".join(_WORD.findall(text.casefold()))


@dataclass(frozen=True, slots=True)
class _Edge:
    a: int
    b: int
    check: str
    strength: float
    same_question: bool = False  # a semantic edge between two pages under the same question (see _question_key)


class _Shingler:
    """Word k-shingles as sorted unique 32-bit hashes, stable across runs and machines."""

    def __init__(self, words: int) -> None:
        self.words = max(1, words)
        self._codes: dict[str, int] = {}

    def __call__(self, normalised: str) -> np.ndarray:
        tokens = normalised.split()
        if not tokens:
            return _NO_SHINGLES
        for token in set(tokens).difference(self._codes):
            self._codes[token] = self._code(token)
        codes = np.fromiter(map(self._codes.__getitem__, tokens), dtype=np.uint64, count=len(tokens))
        k = min(self.words, len(codes))
        n = len(codes) - k + 1
        rolled = np.zeros(n, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for offset in range(k):
                rolled = rolled * np.uint64(0x100000001B3) + codes[offset : offset + n]
            rolled ^= rolled >> np.uint64(29)
            rolled *= np.uint64(0xBF58476D1CE4E5B9)
            rolled ^= rolled >> np.uint64(32)
        return _sorted_unique((rolled & np.uint64(0xFFFFFFFF)).astype(np.uint32))

    @staticmethod
    def _code(token: str) -> int:
        return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    # np.unique hashes in NumPy 2 and took 21 s on 10 million shingle codes that a sort dedupes in 0.3 s.
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def _counted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values, sorted, and how often each occurs."""
    ordered = np.sort(values)
    if not len(ordered):
        return ordered, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return ordered[starts], np.diff(np.r_[starts, len(ordered)])


def _minhashes(shingle_sets: Sequence[np.ndarray], num_perm: int) -> list[MinHash]:
    # Imported here: datasketch loads scipy (1-2.5 s), which an audit that reuses this detector's findings, or only
    # settles canonicals, never needs.
    from datasketch import MinHash

    # The shingles are already 32-bit hashes: hashing them again would only cost time.
    return MinHash.bulk((s.tolist() for s in shingle_sets), num_perm=num_perm, hashfunc=int)


def _lsh_candidates(minhashes: Sequence[MinHash], threshold: float, num_perm: int) -> set[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, that share an LSH bucket at about ``threshold`` Jaccard."""
    if len(minhashes) < 2:
        return set()
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=min(max(threshold, 0.05), 0.99), num_perm=num_perm)
    with lsh.insertion_session() as session:
        for key, minhash in enumerate(minhashes):
            session.insert(key, minhash, check_duplication=False)
    pairs: set[tuple[int, int]] = set()
    for key, minhash in enumerate(minhashes):
        for other in lsh.query(minhash):
            if other != key:
                pairs.add((key, other) if key < other else (other, key))
    return pairs


def _overlap(a: np.ndarray, b: np.ndarray) -> int:
    return len(np.intersect1d(a, b, assume_unique=True))


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    if not len(a) or not len(b):
        return 0.0
    shared = _overlap(a, b)
    return shared / (len(a) + len(b) - shared)


def _shared_shingle_counts(
    sets: Sequence[np.ndarray], units: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(i, j, shared shingles)`` arrays for every pair of sets of different units that share a shingle.

    An inverted index, not all pairs: a shingle carried by more than ``_MAX_POSTINGS`` sets is skipped. Template
    shingles are already gone, so only a large set of near copies (reported at article level) reaches that cap.
    """
    nothing = np.zeros(0, dtype=np.int64)
    if len(sets) < 2:
        return nothing, nothing, nothing
    shingles = np.concatenate(sets)
    owners = np.repeat(np.arange(len(sets), dtype=np.int64), [len(x) for x in sets])
    order = np.argsort(shingles, kind="stable")
    shingles, owners = shingles[order], owners[order]
    starts = np.flatnonzero(np.r_[True, shingles[1:] != shingles[:-1]])
    sizes = np.diff(np.r_[starts, len(shingles)])
    unit_of = np.asarray(units, dtype=np.int64)
    n = np.int64(len(sets))
    codes = []
    for size in range(2, _MAX_POSTINGS + 1):
        first = starts[sizes == size]
        if not len(first):
            continue
        left, right = np.triu_indices(size, k=1)
        a = owners[first[:, None] + left[None, :]].ravel()
        b = owners[first[:, None] + right[None, :]].ravel()
        apart = unit_of[a] != unit_of[b]
        a, b = a[apart], b[apart]
        codes.append(np.minimum(a, b) * n + np.maximum(a, b))
    if not codes:
        return nothing, nothing, nothing
    pairs, counts = _counted(np.concatenate(codes))
    return pairs // n, pairs % n, counts


class _StageClock:
    """Adds the wall time of each ``with clock(stage):`` block to ``into[stage]``."""

    def __init__(self, into: dict[str, float]) -> None:
        self.into = into

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.into[stage] = self.into.get(stage, 0.0) + time.perf_counter() - start


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[max(ra, rb)] = min(ra, rb)
        return True


def _bottleneck(members: Sequence[int], edges: Sequence[_Edge]) -> float:
    """Weakest edge of the maximum spanning tree over ``edges`` (Kruskal): the link holding the set together."""
    index = {m: i for i, m in enumerate(members)}
    forest = _UnionFind(len(members))
    weakest = 1.0
    for edge in sorted(edges, key=lambda e: -e.strength):
        if forest.union(index[edge.a], index[edge.b]):
            weakest = min(weakest, edge.strength)
    return weakest


def _connected(members: Sequence[int], edges: Sequence[_Edge]) -> bool:
    index = {m: i for i, m in enumerate(members)}
    forest = _UnionFind(len(members))
    joined = 1
    for edge in edges:
        joined += forest.union(index[edge.a], index[edge.b])
    return joined == len(members)


def _sentences(text: str) -> list[tuple[str, str]]:
    """(original, normalised) sentences long enough to matter."""
    out = []
    for raw in _SENTENCE_END.split(text):
        sentence = " ".join(raw.split())
        key = normalise(sentence)
        if len(key.split()) >= _MIN_SENTENCE_WORDS:
            out.append((sentence, key))
    return out


def _excerpt(text: str, limit: int = _EXCERPT_CHARS) -> str:
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0] + " …"


def _unlike(first: Article, second: Article, one: str, two: str, shingler: _Shingler) -> bool:
    """Whether two articles the vectors put together are still not the same article said twice:

    - a short page quoting the other (a note, an excerpt, a section's landing page): at most
      ``_EXCERPT_LENGTH_SHARE`` of the other's length, with ``_EXCERPT_QUOTED`` or more of its shingles
      found there, under a title of its own. Containment is the section check's business; an older, shorter
      version of the same article keeps its title and stays a duplicate.
    - two languages: sharing less than ``_MIN_SHARED_VOCABULARY`` of the smaller vocabulary (a Czech and a
      Slovak translation share names, not words), whatever locale the source declared.
    """
    words_one, words_two = set(one.split()), set(two.split())
    smaller = min(len(words_one), len(words_two))
    if not smaller or len(words_one & words_two) < _MIN_SHARED_VOCABULARY * smaller:
        return True
    short, long = (one, two) if len(one) <= len(two) else (two, one)
    if len(short) > _EXCERPT_LENGTH_SHARE * len(long) or normalise(first.title) == normalise(second.title):
        return False
    quoted = shingler(short)
    return _overlap(quoted, shingler(long)) >= _EXCERPT_QUOTED * len(quoted)


def _question_key(title: str) -> str:
    """The normalised title when it names one question or task: a question ("What is a coronavirus?") or three
    or more content words ("Export vault items to CSV"); "" for a label any page may carry ("Overview", "Tip of
    the week")."""
    key = normalise(title)
    content = [w for w in key.split() if w not in _TITLE_STOPWORDS and not w.isdigit()]
    if not content or (not title.strip().endswith("?") and len(content) < 3):
        return ""
    return key


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class DuplicateDetector:
    """Finds duplicate articles and duplicated sections (see the module docstring for the rules)."""

    name = "duplicates"
    version = "1"

    def __init__(self, settings: DuplicateSettings, *, contradicting: Iterable[Iterable[str]] = ()) -> None:
        self.settings = settings
        # Article id pairs known to contradict each other: neither is suggested as a set's canonical article.
        self.contradicting = frozenset(frozenset(pair) for pair in contradicting)
        # Seconds per stage of the last run (normalise, shingles, minhash, lsh, verify, knn, grouping, sections),
        # for benchmarks and the audit log.
        self.stage_seconds: dict[str, float] = {}

    def detect(self, corpus: AuditCorpus) -> Iterator[Finding]:
        s = self.settings
        self.stage_seconds = {}
        clock = _StageClock(self.stage_seconds)
        shingler = _Shingler(s.shingle_words)
        with clock("normalise"):
            rows = [i for i, a in enumerate(corpus.articles) if self._usable(a)]
            texts = {i: normalise(corpus.articles[i].text) for i in rows}
            rows = [i for i in rows if len(texts[i]) >= s.min_article_chars]
            locale = {i: str(corpus.articles[i].locale or "").casefold() for i in rows}
            edges = self._exact_edges(rows, texts, locale)
        copies = {e.b for e in edges}
        representatives = [i for i in rows if i not in copies]  # the first of each set of exact copies
        with clock("shingles"):
            shingles = {i: shingler(texts[i]) for i in representatives}
        edges += self._near_edges(representatives, shingles, locale, clock)
        with clock("knn"):
            semantic = self._semantic_edges(corpus, rows, edges, texts, shingler)
            edges += [e for e in semantic if locale[e.a] == locale[e.b]]

        with clock("grouping"):
            sets = self._sets(rows, edges)
            set_of = {row: n for n, members in enumerate(sets) for row in members}
            edges_of: dict[int, list[_Edge]] = {}
            for edge in edges:
                edges_of.setdefault(set_of[edge.a], []).append(edge)
            findings = [self._set_finding(corpus, m, edges_of[n]) for n, m in enumerate(sets) if len(m) > 1]
        yield from findings
        with clock("sections"):
            template = self._template_shingles(
                [shingles[i] for i in representatives], [set_of[i] for i in representatives]
            )
            findings = list(self._section_findings(corpus, shingler, rows, set_of, template, locale))
        yield from findings

    # ------------------------------------------------------------------ article level

    @staticmethod
    def _usable(article: Article) -> bool:
        return isinstance(article.text, str) and bool(article.article_id)

    @staticmethod
    def _exact_edges(rows: Sequence[int], texts: dict[int, str], locale: dict[int, str]) -> list[_Edge]:
        by_hash: dict[tuple[str, str], list[int]] = {}
        for i in rows:
            by_hash.setdefault((locale[i], hashlib.sha256(texts[i].encode("utf-8")).hexdigest()), []).append(i)
        edges = []
        for group in by_hash.values():
            # A star around the first copy: enough to connect the set, linear in its size.
            edges += [_Edge(group[0], other, "exact", 1.0) for other in group[1:]]
        return edges

    def _near_edges(
        self,
        representatives: Sequence[int],
        shingles: dict[int, np.ndarray],
        locale: dict[int, str],
        clock: _StageClock,
    ) -> list[_Edge]:
        s = self.settings
        sets = [shingles[i] for i in representatives]
        with clock("minhash"):
            minhashes = _minhashes(sets, s.num_perm)
        with clock("lsh"):
            candidates = _lsh_candidates(minhashes, s.near_threshold - _LSH_MARGIN, s.num_perm)
        with clock("verify"):
            return self._verified(representatives, sets, candidates, locale)

    def _verified(
        self,
        representatives: Sequence[int],
        sets: Sequence[np.ndarray],
        candidates: set[tuple[int, int]],
        locale: dict[int, str],
    ) -> list[_Edge]:
        s = self.settings
        edges = []
        for x, y in sorted(candidates):
            if locale[representatives[x]] != locale[representatives[y]]:
                continue
            jaccard = _jaccard(sets[x], sets[y])
            if jaccard >= s.near_threshold:
                # One edge between the first copies: exact edges already join every other copy to them.
                edges.append(_Edge(representatives[x], representatives[y], "near", jaccard))
        return edges

    def _semantic_edges(
        self,
        corpus: AuditCorpus,
        rows: Sequence[int],
        known: Sequence[_Edge],
        texts: dict[int, str],
        shingler: _Shingler,
    ) -> list[_Edge]:
        s = self.settings
        vectors = corpus.article_vectors
        if vectors.ndim != 2 or vectors.shape[1] == 0 or not len(rows):
            return []
        chosen = np.asarray(rows, dtype=np.int64)
        subset = vectors[chosen]
        finite = np.isfinite(subset).all(axis=1) & (np.abs(subset).sum(axis=1) > 0)
        chosen, subset = chosen[finite], subset[finite]
        have = {(e.a, e.b) for e in known} | {(e.b, e.a) for e in known}
        edges = []
        for x, y, sim in candidate_pairs(subset, k=s.neighbours, min_similarity=s.semantic_article_similarity):
            a, b = int(chosen[x]), int(chosen[y])
            if (a, b) not in have and not _unlike(corpus.articles[a], corpus.articles[b], texts[a], texts[b], shingler):
                edges.append(_Edge(a, b, "semantic", min(1.0, sim)))
                have |= {(a, b), (b, a)}
        # The same question asked twice: grouped by title, not searched, so a reworded answer is found too.
        by_title: dict[str, list[int]] = {}
        for n, row in enumerate(chosen.tolist()):
            key = _question_key(corpus.articles[row].title)
            if key:
                by_title.setdefault(key, []).append(n)
        unit = subset / np.maximum(np.linalg.norm(subset, axis=1, keepdims=True), 1e-12)
        for members in by_title.values():
            if not 2 <= len(members) <= _MAX_SAME_TITLE:
                continue
            for m, x in enumerate(members):
                for y in members[m + 1 :]:
                    a, b = int(chosen[x]), int(chosen[y])
                    sim = float(unit[x] @ unit[y])
                    if (a, b) not in have and sim >= _SAME_QUESTION_SIMILARITY:
                        edges.append(_Edge(a, b, "semantic", min(1.0, sim), same_question=True))
        return edges

    @staticmethod
    def _sets(rows: Sequence[int], edges: Sequence[_Edge]) -> list[list[int]]:
        index = {row: n for n, row in enumerate(rows)}
        forest = _UnionFind(len(rows))
        for edge in edges:
            forest.union(index[edge.a], index[edge.b])
        sets: dict[int, list[int]] = {}
        for row in rows:
            sets.setdefault(forest.find(index[row]), []).append(row)
        return list(sets.values())

    def _set_finding(self, corpus: AuditCorpus, members: list[int], edges: list[_Edge]) -> Finding:
        articles = [corpus.articles[i] for i in members]
        check = _CHECK_ORDER[-1]
        for n, candidate in enumerate(_CHECK_ORDER):
            if _connected(members, [e for e in edges if e.check in _CHECK_ORDER[: n + 1]]):
                check = candidate
                break
        allowed = _CHECK_ORDER[: _CHECK_ORDER.index(check) + 1]
        score = _bottleneck(members, [e for e in edges if e.check in allowed])
        choice = choose_canonical(corpus, articles, self.contradicting)
        title_of = {i: corpus.articles[i].title for i in members}
        best_link: dict[int, _Edge] = {}
        for edge in edges:
            for end in (edge.a, edge.b):
                if end not in best_link or _CHECK_ORDER.index(edge.check) < _CHECK_ORDER.index(best_link[end].check):
                    best_link[end] = edge
        relation_of: dict[str, str] = {}
        for row, link in best_link.items():
            other = link.b if link.a == row else link.a
            relation_of[corpus.articles[row].article_id] = f"{_describe(link)} '{title_of[other]}'"
        article_ids = tuple(sorted(a.article_id for a in articles))
        return Finding(
            finding_id=make_finding_id("duplicate", check, article_ids, "set"),
            kind="duplicate",
            check=check,
            article_ids=article_ids,
            score=round(float(score), 4),
            severity=_severity(check, score, self.settings),
            summary=_set_summary(check, len(articles), score, choice.article.title),
            action="retire" if check == "exact" else "merge",
            evidence=_set_evidence(corpus, articles, choice, relation_of),
            detector=self.name,
            detector_version=self.version,
            found_at=corpus.run_at,
        )

    # ------------------------------------------------------------------ section level

    def _template_shingles(self, article_sets: Sequence[np.ndarray], units: Sequence[int]) -> np.ndarray:
        """Shingles found in ``section_template_articles`` or more duplicate sets (a lone article is its own set)."""
        if len(set(units)) < self.settings.section_template_articles or not article_sets:
            return _NO_SHINGLES
        shingles = np.concatenate(article_sets).astype(np.uint64)
        owners = np.repeat(np.asarray(units, dtype=np.uint64), [len(x) for x in article_sets])
        # Each (shingle, set) once, however many members of the set carry it; then sets per shingle.
        distinct = _sorted_unique((shingles << np.uint64(32)) | owners)
        values, counts = _counted(distinct >> np.uint64(32))
        return values[counts >= self.settings.section_template_articles].astype(np.uint32)

    def _section_findings(
        self,
        corpus: AuditCorpus,
        shingler: _Shingler,
        rows: Sequence[int],
        set_of: dict[int, int],
        template: np.ndarray,
        locale: dict[int, str],
    ) -> Iterator[Finding]:
        s = self.settings
        row_of = {corpus.articles[i].article_id: i for i in rows}
        candidates = [c for c in corpus.chunks if c.article_id in row_of and isinstance(c.text, str)]
        all_shingles = [shingler(normalise(c.text)) for c in candidates]
        if not all_shingles:
            return
        # One membership test for every chunk's shingles at once, then split back per chunk.
        flat = np.concatenate(all_shingles)
        outside = ~np.isin(flat, template, assume_unique=False) if len(template) else np.ones(len(flat), dtype=bool)
        bounds = np.cumsum([len(x) for x in all_shingles])[:-1]
        chunks: list[Chunk] = []
        distinctive: list[np.ndarray] = []
        is_query: list[bool] = []
        for chunk, shingles, kept in zip(
            candidates,
            all_shingles,
            np.split(flat[outside], np.searchsorted(np.flatnonzero(outside), bounds)),
            strict=True,
        ):
            if not len(kept):
                continue
            chunks.append(chunk)
            distinctive.append(kept)
            # A section is looked for elsewhere only by its text outside template blocks, if that is long enough;
            # any section may contain one.
            is_query.append(len(chunk.text) * len(kept) / len(shingles) >= s.min_section_chars)
        if not any(is_query):
            return
        units = [set_of[row_of[c.article_id]] for c in chunks]
        # One duplicated section per contained chunk: it and every chunk that holds it. Chaining through a long
        # chunk that holds two different short ones would call unrelated sections copies of each other.
        containers: dict[int, list[tuple[int, int, float]]] = {}
        left, right, shared = _shared_shingle_counts(distinctive, units)
        # Most pairs share a shingle or two by chance: drop them in bulk before looking at any one.
        sizes = np.array([len(d) for d in distinctive])
        queries = np.array(is_query)
        enough = (queries[left] & (shared >= s.section_threshold * sizes[left])) | (
            queries[right] & (shared >= s.section_threshold * sizes[right])
        )
        for x, y, count in zip(left[enough].tolist(), right[enough].tolist(), shared[enough].tolist(), strict=True):
            if locale[row_of[chunks[x].article_id]] != locale[row_of[chunks[y].article_id]]:
                continue
            for query, other in ((x, y), (y, x)):
                containment = count / len(distinctive[query])
                if is_query[query] and containment >= s.section_threshold:
                    containers.setdefault(query, []).append((query, other, containment))
        grouped: dict[frozenset[int], list[tuple[int, int, float]]] = {}
        for query, found in containers.items():
            grouped.setdefault(frozenset({query, *(m[1] for m in found)}), []).extend(found)
        # A section and its twins hold each other, so each copy finds a share of the others: keep the widest view
        # of one duplicated section and drop the views it includes.
        sections: dict[frozenset[int], list[tuple[int, int, float]]] = {}
        kept_by_chunk: dict[int, list[frozenset[int]]] = {}
        for members in sorted(grouped, key=lambda m: (-len(m), sorted(m))):
            if any(members <= wider for wider in kept_by_chunk.get(min(members), [])):
                continue
            sections[members] = grouped[members]
            for member in members:
                kept_by_chunk.setdefault(member, []).append(members)
        # One finding per group of duplicate sets: a section shared with an article and with its near copy is
        # one problem, not two.
        by_units: dict[frozenset[int], list[list[tuple[int, int, float]]]] = {}
        for section_matches in sections.values():
            by_units.setdefault(frozenset(units[i] for m in section_matches for i in m[:2]), []).append(section_matches)
        findings = []
        for groups in by_units.values():
            article_ids = tuple(sorted({chunks[i].article_id for g in groups for m in g for i in m[:2]}))
            findings.append((article_ids, groups))
        for article_ids, groups in sorted(findings):
            yield self._section_finding(corpus, chunks, article_ids, groups)

    def _section_finding(
        self,
        corpus: AuditCorpus,
        chunks: Sequence[Chunk],
        article_ids: tuple[str, ...],
        groups: list[list[tuple[int, int, float]]],
    ) -> Finding:
        articles = [corpus.article_by_id[a] for a in article_ids]
        canonical = choose_canonical(corpus, articles, self.contradicting).article
        by_id = {a.article_id: a for a in articles}
        evidence: list[Evidence] = []
        strengths = []
        headings = []
        for section_matches in sorted(groups, key=lambda g: min(chunks[i].chunk_id for m in g for i in m[:2])):
            strength = max(m[2] for m in section_matches)
            strengths.append(strength)
            members = sorted({i for m in section_matches for i in m[:2]}, key=lambda i: chunks[i].chunk_id)
            heading = _heading(chunks[members[0]])
            headings.append(heading)
            for i in members:
                chunk = chunks[i]
                partners = {j for m in section_matches if i in m[:2] for j in m[:2] if j != i}
                elsewhere = sorted({by_id[chunks[j].article_id].title for j in partners})
                evidence.append(
                    Evidence(
                        article_id=chunk.article_id,
                        chunk_id=chunk.chunk_id,
                        text=_excerpt(chunk.text),
                        link=by_id[chunk.article_id].url,
                        detail=f"section '{_heading(chunk)}' is {strength:.0%} the same as one in "
                        + ", ".join(f"'{t}'" for t in elsewhere),
                    )
                )
        score = max(strengths)
        n = len(articles)
        sections = f"section '{headings[0]}'" if len(groups) == 1 else f"{len(groups)} sections"
        others = n - 1
        summary = (
            f"The {sections} appear{'s' if len(groups) == 1 else ''} in {n} articles: keep "
            f"{'it' if len(groups) == 1 else 'them'} in '{canonical.title}' and link there from the "
            f"{'other' if others == 1 else f'{others} others'}"
        )
        return Finding(
            finding_id=make_finding_id("duplicate", "section", article_ids, "sections"),
            kind="duplicate",
            check="section",
            article_ids=article_ids,
            score=round(float(score), 4),
            severity=_severity("section", score, self.settings),
            summary=summary,
            action="merge",
            evidence=tuple(evidence),
            detector=self.name,
            detector_version=self.version,
            found_at=corpus.run_at,
        )


def _set_summary(check: str, n: int, score: float, canonical_title: str) -> str:
    what = {
        "exact": f"{n} articles have the same text",
        "near": f"{n} articles are near copies of each other (word overlap {score:.0%} or more)",
        "semantic": f"{n} articles say the same thing in other words (similarity {score:.2f} or more)",
    }[check]
    todo = (
        f"keep '{canonical_title}' and retire {_plural(n - 1, 'copy') if n > 2 else 'the copy'}"
        if check == "exact"
        else f"merge into '{canonical_title}'"
    )
    return f"{what}: {todo}"


def _set_evidence(
    corpus: AuditCorpus, articles: Sequence[Article], choice: CanonicalChoice, relation_of: dict[str, str]
) -> tuple[Evidence, ...]:
    """The canonical article first (why it, and why not the others), then what each other member adds."""
    canonical = choice.article
    evidence = [
        Evidence(
            article_id=canonical.article_id,
            text=_excerpt(canonical.text),
            link=canonical.url,
            detail=_canonical_detail(corpus, choice),
        )
    ]
    canonical_sentences = {key for _, key in _sentences(canonical.text)}
    others = [a for a in articles if a.article_id != canonical.article_id]
    # A very large set (a template gone wrong, a bulk import) is quoted in part; the finding names every member.
    for article in others[:_MAX_QUOTED_MEMBERS]:
        added = [raw for raw, key in _sentences(article.text) if key not in canonical_sentences]
        relation = relation_of.get(article.article_id, "")
        adds = (
            f"adds {_plural(len(added), 'sentence')} the canonical article lacks"
            if added
            else "adds nothing the canonical article lacks"
        )
        quoted = added[:_MAX_ADDED_QUOTED]
        evidence.append(
            Evidence(
                article_id=article.article_id,
                text=" … ".join(quoted) if quoted else _excerpt(article.text),
                highlights=tuple(quoted),
                link=article.url,
                detail=(f"{relation}; " if relation else "") + adds,
            )
        )
    return tuple(evidence)


# ------------------------------------------------------------------ the canonical article
#
# The article a duplicate set should be merged into. Newest first, then most linked-to, then longest, among the
# members that are none of: a copy (a copy mark in the title or URL, or the same text as an older member), a short
# page that mostly quotes another member, or an article that contradicts another member (merging into it would
# keep the wrong one of the two statements). When every member is one of those, the rule relaxes in that order
# from the last: contradictions first (then the member that contradicts the fewest others is kept: one of the
# majority, not the odd one out), then quoting pages, then copies, and the evidence says so.

_COPY = "copy"
_STUB = "stub"
_CONTRADICTS = "contradicts"
_RELAX_ORDER = (_CONTRADICTS, _STUB, _COPY)
# A mark that makes a title a copy or a draft by itself: "Refunds (copy)", "Refunds [Copy 2]", "Refunds - Copy".
_TITLE_MARKS = (
    re.compile(r"\s*[(\[]\s*(copy|duplicate|draft)(?:\s*\d+)?\s*[)\]]", re.IGNORECASE),
    re.compile(r"\s+[-–]\s+(copy)(?:\s*\(?\d+\)?)?\s*$", re.IGNORECASE),
)
# Words that make a title a copy only when what is left is another member's title: "Copy of your invoice" on its
# own is an article about invoices.
_TITLE_AFFIXES = (
    re.compile(r"^\s*(copy)\s+of\s+", re.IGNORECASE),
    re.compile(r"\s+(copy)(?:\s*\d+)?\s*$", re.IGNORECASE),
    re.compile(r"\s+(?:v\d+\s+)?(draft)\s*$", re.IGNORECASE),
    re.compile(r"^\s*(draft)\s*[:\-–]\s*", re.IGNORECASE),
    re.compile(r"\s*\((\d)\)\s*$"),  # "Refunds (2)", as a file manager names a second copy
)
# The same in a URL's last path segment, again only when what is left names another member.
_SLUG_AFFIXES = (
    re.compile(r"^(copy)-of-"),
    re.compile(r"-(copy)(?:-?\d+)?$"),
    re.compile(r"-(?:v\d+-)?(draft)$"),
)
_SLUG_EXTENSION = re.compile(r"\.(?:html?|md|php|aspx?)$")
_SLUG_ID = re.compile(r"^\d+-")  # Zendesk-style "360001234-refunds"
# A member at most this share of another's length, with at least ``_QUOTED_SHARE`` of its sentences (by length)
# also in that member, is a note that quotes it, not the article to keep.
_STUB_LENGTH_SHARE = 0.5
_QUOTED_SHARE = 0.5
_STUB_HOSTS = 5  # the longest members a short one is compared with
_MAX_PASSED_OVER = 5


@dataclass(frozen=True, slots=True)
class CanonicalChoice:
    """The article to keep in a duplicate set and the members passed over, each with why (best ranked first).

    ``caveat`` is set when every member had a reason against it and the rule had to relax.
    """

    article: Article
    passed_over: tuple[tuple[Article, str], ...] = ()
    caveat: str = ""


def choose_canonical(
    corpus: AuditCorpus, articles: Sequence[Article], contradicting: Collection[frozenset[str]] = frozenset()
) -> CanonicalChoice:
    """The member to keep: newest, then most linked-to, then longest, of those that are not a copy, a short page
    quoting another member, or in a contradiction (an article id pair of ``contradicting``) with another member."""
    inbound = corpus.inbound_links

    def rank(article: Article) -> tuple[datetime, int, int]:
        return (_updated(article) or _OLDEST, inbound.get(article.article_id, 0), len(article.text))

    # Sorting by id first makes a full tie pick the same article every run (sorted() is stable).
    ranked = sorted(sorted(articles, key=lambda a: a.article_id), key=rank, reverse=True)
    by_id = {a.article_id: a for a in ranked}
    opponents: dict[str, list[Article]] = {}
    for pair in contradicting:
        ends = [by_id[i] for i in pair if i in by_id]
        if len(ends) == 2:
            opponents.setdefault(ends[0].article_id, []).append(ends[1])
            opponents.setdefault(ends[1].article_id, []).append(ends[0])
    reasons = _reasons_against(ranked, opponents)
    relaxed: set[str] = set()
    for step in (None, *_RELAX_ORDER):
        if step is not None:
            relaxed.add(step)
        eligible = [a for a in ranked if all(kind in relaxed for kind, _ in reasons.get(a.article_id, ()))]
        if eligible:
            break
    if _CONTRADICTS in relaxed:
        # Every candidate disagrees with someone: keep one of the majority, not the odd one out.
        fewest = min(len(opponents.get(a.article_id, ())) for a in eligible)
        eligible = [a for a in eligible if len(opponents.get(a.article_id, ())) == fewest]
    chosen = eligible[0]
    passed = tuple((a, reasons[a.article_id][0][1]) for a in ranked if a is not chosen and a.article_id in reasons)
    caveat = ""
    own = reasons.get(chosen.article_id, ())
    if own:
        caveat = f"no member is free of a reason against it; this one has the least ({', '.join(w for _, w in own)})"
        if any(kind == _CONTRADICTS for kind, _ in own):
            caveat += ": settle which is right before merging"
    return CanonicalChoice(chosen, passed, caveat)


def _updated(article: Article) -> datetime | None:
    if not isinstance(article.updated_at, datetime):
        return None
    return article.updated_at if article.updated_at.tzinfo else article.updated_at.replace(tzinfo=UTC)


def _reasons_against(
    articles: Sequence[Article], opponents: dict[str, list[Article]]
) -> dict[str, list[tuple[str, str]]]:
    """Article id -> ``(kind, why)`` for each reason not to keep it, strongest first."""
    out: dict[str, list[tuple[str, str]]] = {}
    title_keys = {a.article_id: normalise(a.title) for a in articles}
    slug_keys = {a.article_id: {_slug(a.url), "-".join(title_keys[a.article_id].split())} - {""} for a in articles}
    # Counted, not rebuilt per member: a bulk-import set can hold thousands of articles.
    titles = Counter(title_keys.values())
    slugs = Counter(key for keys in slug_keys.values() for key in keys)
    for article in articles:
        own_title, own_slugs = title_keys[article.article_id], slug_keys[article.article_id]

        def other_title(key: str, own: str = own_title) -> bool:
            return bool(key) and titles[key] > (key == own)

        def other_slug(key: str, own: set[str] = own_slugs) -> bool:
            return bool(key) and slugs[key] > (key in own)

        mark = _copy_mark(article, other_title, other_slug)
        if mark:
            out.setdefault(article.article_id, []).append((_COPY, f"a {mark}"))
    # The same text as an unmarked older member: made later from it.
    by_text: dict[str, list[Article]] = {}
    for article in articles:
        if article.article_id not in out:
            by_text.setdefault(normalise(article.text), []).append(article)
    for group in by_text.values():
        dated = [a for a in group if _updated(a) is not None]
        if len(dated) < 2:
            continue
        original = min(dated, key=lambda a: (_updated(a), a.article_id))
        for article in dated:
            updated, first = _updated(article), _updated(original)
            if updated is not None and first is not None and updated > first:
                why = f"an exact copy of '{original.title}', made later"
                out.setdefault(article.article_id, []).append((_COPY, why))
    # A page quotes one of the longest members (the main article), if any.
    hosts = [(a, normalise(a.text)) for a in sorted(articles, key=lambda a: -len(a.text))[: _STUB_HOSTS + 1]]
    host_keys: dict[str, set[str]] = {}
    for article in articles:
        host = _quoted_host(article, hosts, host_keys)
        if host is not None:
            out.setdefault(article.article_id, []).append((_STUB, f"a short page quoting '{host.title}'"))
    for article in articles:
        against = [a.title for a in opponents.get(article.article_id, ())]
        if against:
            out.setdefault(article.article_id, []).append(
                (_CONTRADICTS, "contradicts " + ", ".join(f"'{t}'" for t in sorted(against)))
            )
    return out


def _slug(url: str) -> str:
    last = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1].casefold().replace("_", "-")
    return _SLUG_ID.sub("", _SLUG_EXTENSION.sub("", last))


def _copy_mark(article: Article, other_title: Callable[[str], bool], other_slug: Callable[[str], bool]) -> str:
    """ "copy" or "draft" when the title or URL marks the article as one, else ""."""
    title = article.title or ""
    for pattern in _TITLE_MARKS:
        found = pattern.search(title)
        if found:
            return "draft" if found.group(1).casefold() == "draft" else "copy"
    for pattern in _TITLE_AFFIXES:
        found = pattern.search(title)
        if found and other_title(normalise(pattern.sub(" ", title, count=1))):
            return "draft" if found.group(1).casefold() == "draft" else "copy"
    slug = _slug(article.url)
    for pattern in _SLUG_AFFIXES:
        found = pattern.search(slug)
        if found and other_slug(pattern.sub("", slug, count=1).strip("-")):
            return found.group(1)
    return ""


def _quoted_host(
    article: Article, hosts: Sequence[tuple[Article, str]], host_keys: dict[str, set[str]]
) -> Article | None:
    """The much longer member (of ``hosts``: the longest, with their normalised text) whose text holds most of
    ``article``'s sentences, if there is one. ``host_keys`` caches the hosts' sentence keys."""
    mine = _sentences(article.text)
    if not mine:
        return None
    length = len(normalise(article.text))
    total = sum(len(key) for _, key in mine)
    for host, text in hosts:
        if host is article or length > _STUB_LENGTH_SHARE * len(text):
            continue
        keys = host_keys.get(host.article_id)
        if keys is None:
            keys = host_keys[host.article_id] = {key for _, key in _sentences(host.text)}
        quoted = sum(len(key) for _, key in mine if key in keys or key in text)
        if quoted >= _QUOTED_SHARE * total:
            return host
    return None


def _canonical_detail(corpus: AuditCorpus, choice: CanonicalChoice) -> str:
    parts = [f"suggested canonical: {_why_canonical(corpus, choice.article)}"]
    if choice.caveat:
        parts.append(choice.caveat)
    shown = choice.passed_over[:_MAX_PASSED_OVER]
    parts += [f"not '{article.title or article.url}': {why}" for article, why in shown]
    if len(choice.passed_over) > len(shown):
        parts.append(f"and {len(choice.passed_over) - len(shown)} more passed over")
    return "; ".join(parts)


def _why_canonical(corpus: AuditCorpus, article: Article) -> str:
    updated = _updated(article)
    when = updated.date().isoformat() if updated is not None else "no date"
    links = corpus.inbound_links.get(article.article_id, 0)
    return f"updated {when}, {_plural(links, 'inbound link')}, {len(article.text):,} characters"


def contradiction_pairs(findings: Iterable[Finding]) -> frozenset[frozenset[str]]:
    """The article id pairs of an audit's contradiction findings."""
    return frozenset(
        frozenset(f.article_ids) for f in findings if f.kind == "contradiction" and len(set(f.article_ids)) == 2
    )


def settle_canonicals(corpus: AuditCorpus, findings: Sequence[Finding], *, shingle_words: int = 5) -> list[Finding]:
    """The findings, with each duplicate finding's canonical article chosen again now that the audit's
    contradictions are known: never an article that contradicts another member of its set.

    The detectors run apart (in parallel on workers), so the duplicate detector cannot see the contradictions;
    this runs once on the combined findings. Finding ids do not change. A set whose canonical article changes
    gets its evidence rebuilt around the new one (each member's relation is then to that article).
    """
    pairs = contradiction_pairs(findings)
    if not pairs:
        return list(findings)
    row = {a.article_id: n for n, a in enumerate(corpus.articles)}
    return [
        _settled(corpus, f, pairs, row, shingle_words)
        if f.kind == "duplicate" and any(pair <= set(f.article_ids) for pair in pairs)
        else f
        for f in findings
    ]


def _settled(
    corpus: AuditCorpus, finding: Finding, pairs: frozenset[frozenset[str]], row: dict[str, int], shingle_words: int
) -> Finding:
    if not all(a in row for a in finding.article_ids):
        return finding  # an article the corpus no longer holds: nothing to choose from
    articles = sorted((corpus.article_by_id[a] for a in finding.article_ids), key=lambda a: row[a.article_id])
    after = choose_canonical(corpus, articles, pairs)
    if finding.check == "section":
        before = choose_canonical(corpus, articles).article
        if before.article_id == after.article.article_id:
            return finding
        summary = finding.summary.replace(
            f" in '{before.title}' and link there", f" in '{after.article.title}' and link there", 1
        )
        return replace(finding, summary=summary)
    first = finding.evidence[0] if finding.evidence else None
    if (
        first is not None
        and first.detail.startswith("suggested canonical")
        and first.article_id == after.article.article_id
    ):
        detail = _canonical_detail(corpus, after)
        return replace(finding, evidence=(replace(first, detail=detail), *finding.evidence[1:]))
    shingler = _Shingler(shingle_words)
    relation_of = {
        a.article_id: _relation(corpus, a, after.article, shingler, row) for a in articles if a is not after.article
    }
    return replace(
        finding,
        summary=_set_summary(finding.check, len(articles), finding.score, after.article.title),
        evidence=_set_evidence(corpus, articles, after, relation_of),
    )


def _relation(
    corpus: AuditCorpus, article: Article, canonical: Article, shingler: _Shingler, row: dict[str, int]
) -> str:
    mine, theirs = normalise(article.text), normalise(canonical.text)
    if mine == theirs:
        return f"exact copy of '{canonical.title}'"
    overlap = _jaccard(shingler(mine), shingler(theirs))
    if overlap >= 0.5:
        return f"{overlap:.0%} word overlap with '{canonical.title}'"
    vectors = corpus.article_vectors
    if vectors.ndim == 2 and vectors.shape[1]:
        similarity = float(vectors[row[article.article_id]] @ vectors[row[canonical.article_id]])
        return f"similarity {similarity:.2f} with '{canonical.title}'"
    return f"{overlap:.0%} word overlap with '{canonical.title}'"


def _describe(edge: _Edge) -> str:
    if edge.check == "exact":
        return "exact copy of"
    if edge.check == "near":
        return f"{edge.strength:.0%} word overlap with"
    if edge.same_question:
        return f"the same question (similarity {edge.strength:.2f}) as"
    return f"similarity {edge.strength:.2f} with"


def _heading(chunk: Chunk) -> str:
    if chunk.heading_path:
        return chunk.heading_path[-1]
    first = chunk.text.strip().split("\n", 1)[0]
    return _excerpt(first, 60)


def _severity(check: str, score: float, settings: DuplicateSettings) -> Severity:
    """Exact copies are the surest and cheapest to fix; a paraphrase or a shared section asks for judgment."""
    if check == "exact":
        return "high"
    if check == "near":
        return severity_for(score, medium=0.0, high=0.9)
    return "medium"
