"""Contradictions: two articles that say different things about the same thing.

Only chunks of different articles that a k-nearest-neighbour search puts side by side are compared. Within a
pair of chunks, sentences are aligned when they share most of their content words once figures and negations
are masked (words weighted by how rare they are in the corpus), then three rule-based checks look for what a
reader would call a contradiction:

- ``quantity``: the same thing with different figures ("refunds within 30 days" vs "within 14 days"), units
  normalised by :mod:`kbcurator.analysis.quantities` so "two weeks" agrees with "14 days";
- ``polarity``: the same statement, once affirmed and once denied ("is included" vs "is not included",
  "free" vs "paid", "required" vs "optional");
- ``yes_no``: the same question (a title or a question heading) answered "Yes" in one article and "No" in
  another.

A :class:`SentencePairJudge` (an NLI cross-encoder, where its weights are available offline) may be given: it
scores the rule hits and adds an ``nli`` check for aligned sentences the rules pass over.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kbcurator.analysis.base import AuditCorpus
from kbcurator.analysis.neighbours import candidate_pairs
from kbcurator.analysis.quantities import (
    Quantity,
    agree,
    comparable,
    extract_quantities,
    relative_difference,
    restates,
)
from kbcurator.config.health import ContradictionSettings
from kbcurator.records import Article, Chunk, Evidence, Finding, Severity, make_finding_id

logger = logging.getLogger(__name__)


class SentencePairJudge(Protocol):
    """Scores sentence pairs for contradiction, e.g. an NLI cross-encoder."""

    def contradiction(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """The probability, 0..1, that the second sentence of each ``(premise, hypothesis)`` pair contradicts
        the first."""
        ...


class CrossEncoderJudge:
    """A :class:`SentencePairJudge` over a sentence-transformers NLI ``CrossEncoder``.

    The label that means contradiction is read from the model's ``config.id2label``; ``batch_size`` bounds
    memory. Build it from a local model folder with :meth:`from_path` (nothing is downloaded).
    """

    def __init__(self, model: Any, *, batch_size: int = 32) -> None:
        labels = {int(k): str(v).lower() for k, v in model.config.id2label.items()}
        found = [index for index, label in labels.items() if label.startswith("contradict")]
        if not found:
            raise ValueError(f"the model has no contradiction label: {sorted(labels.values())}")
        self._model = model
        self._index = found[0]
        self._batch_size = batch_size

    @classmethod
    def from_path(cls, path: str, *, batch_size: int = 32) -> CrossEncoderJudge:
        from sentence_transformers import CrossEncoder

        return cls(CrossEncoder(path, local_files_only=True), batch_size=batch_size)

    def contradiction(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        if not pairs:
            return []
        scores = self._model.predict(list(pairs), apply_softmax=True, batch_size=self._batch_size)
        return [float(row[self._index]) for row in scores]


# --- words ---------------------------------------------------------------------------------------------------

_WORD = re.compile(r"<[a-z]+>|[A-Za-z0-9]+(?:['’][A-Za-z]+)?")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOPWORDS = _words(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by could did do does doing down during each either else etc even ever every few for from
    further get gets got had has have having he her here hers herself him himself his how however i if in into
    is it its itself just let like may me might more most much must my myself now of off on once only or other
    our ours ourselves out over own per please same shall she should so some such than that the their theirs
    them themselves then there these they this those through thus to too under until up upon us use used using
    very via was we were what when where whether which while who whom why will with within would yet you your
    yours yourself yourselves e g ie eg s t can make makes made one also able least especially approximately
    around nearly almost roughly always usually often sometimes generally typically currently still already
    simply really it's it'll you're you'll you've you'd we're we'll we've they're they'll they've i'm i'll i've
    that's there's here's what's let's"""
)
_NEGATORS = _words(
    """not no never cannot can't won't don't doesn't didn't isn't aren't wasn't weren't shouldn't mustn't hasn't
    haven't hadn't wouldn't couldn't nobody nothing none neither nor"""
)
# Words that sit between a negator and what it denies ("is not yet available", "do not need to").
_NEGATION_SKIP = _words(
    """be been being is are was were am have has had do does did will would can could should must shall to a an
    the yet currently always ever necessarily any longer also generally usually really get"""
)
# Opposites read as one concept with a sign: "paid" is "free" denied, "optional" is "required" denied.
_LEXICON: dict[str, tuple[str, int]] = {}
for _concept, _positive, _negative in (
    ("free", "free", "paid charge charged charges fee fees"),
    ("required", "required mandatory compulsory", "optional"),
    ("supported", "supported", "unsupported"),
    ("enabled", "enabled", "disabled"),
    ("available", "available", "unavailable"),
    ("included", "included", "excluded"),
    ("possible", "possible", "impossible"),
    ("allowed", "allowed permitted", "prohibited forbidden banned"),
    ("encrypted", "encrypted", "unencrypted"),
    ("safe", "safe", "unsafe"),
    ("secure", "secure", "insecure"),
    ("necessary", "necessary", "unnecessary"),
    ("likely", "likely", "unlikely"),
    ("able", "able", "unable"),
    ("effective", "effective", "ineffective"),
    ("compatible", "compatible", "incompatible"),
    ("known", "known", "unknown"),
    ("recommended", "recommended", "discouraged"),
):
    for _word in _positive.split():
        _LEXICON[_word] = (_concept, 1)
    for _word in _negative.split():
        _LEXICON[_word] = (_concept, -1)
# A hedge is not a denial: "you may not see symptoms" does not contradict "you may see symptoms".
_HEDGES = frozenset({"may", "might", "could"})
# Clauses these open state a condition or a circumstance, not the claim itself.
_SUBORDINATORS = _words(
    """if unless whether when whenever once although though while because since until who which whose"""
)
_YES = re.compile(r"^\W*(yes|absolutely|certainly|of course)\b(?!-)", re.IGNORECASE)
_NO = re.compile(r"^\W*(no|unfortunately,? no(?:t)?|not at (?:this|the moment)|not currently)\b(?!-)", re.IGNORECASE)
# A sentence ends at . ! ? before a capital, at a line break, and where a scrape glued two sentences ("died.The").
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’)]*\s+(?=[\"“(\[]?[A-Z0-9])|\n+|(?<=[a-z]{2}[.!?])(?=[A-Z][a-z])")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "U.S.", "U.K.", "Dr.", "Mr.", "Mrs.", "Ms.", "No.", "approx.", "St.")


def _norm_word(word: str) -> str:
    word = word.lower().replace("’", "'")
    if word.startswith("<"):
        return word
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


# the stop list as the words are compared: normalised ("always" reads "alway")
_STOPWORDS = _STOPWORDS | frozenset(_norm_word(w) for w in _STOPWORDS)


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences (and list items, table rows, headings: one per line) of ``text``."""
    spans = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        before = text[max(start, match.start() - 8) : match.start()]
        if match.group(0).strip() == "" and "\n" not in match.group(0) and before.endswith(_ABBREVIATIONS):
            continue
        if text[start : match.start()].strip():
            spans.append((start, match.start()))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        out.append((s, e))
    return out


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    word: str  # normalised
    start: int
    end: int
    in_figure: bool = False  # a word of a count's span ("AI features" in "two AI features")


@dataclass(frozen=True, slots=True)
class _Polar:
    """A polar claim in a sentence: ``concept`` affirmed (+1) or denied (-1), and the words that say so."""

    concept: str
    sign: int
    start: int
    end: int
    main: bool  # in the main clause, not in an "if ..." or "when ..." clause
    context: frozenset[str]  # content words around it: what is affirmed or denied
    index: int  # token index of the word affirmed or denied


@dataclass(frozen=True, slots=True)
class _Sentence:
    article_id: str
    chunk_id: str
    text: str
    masked: str  # figures replaced by their dimension, lower-cased, words normalised: what the sentence says
    words: frozenset[str]  # content words of ``masked``, negators left out, opposites as their concept
    main_words: frozenset[str]  # the content words outside subordinate clauses
    quantities: tuple[Quantity, ...]
    contexts: tuple[frozenset[str], ...]  # content words near each quantity
    polar: tuple[_Polar, ...]
    question: bool
    tokens: tuple[_Token, ...] = field(repr=False)
    content: tuple[str, ...] = field(repr=False)  # each token's content word, "" for function words
    sub: tuple[bool, ...] = field(repr=False)  # each token: in a subordinate clause

    @property
    def quantity_keys(self) -> frozenset[tuple[str, str]]:
        return frozenset((q.dimension, q.unit) for q in self.quantities)


def _analyse(text: str, article_id: str, chunk_id: str) -> _Sentence:
    quantities = tuple(extract_quantities(text))
    tokens = _tokens(text, quantities)
    sub = _subordinate_flags(tokens, text)
    content = tuple(_content_word(token.word) for token in tokens)
    polar = tuple(_polarity(tokens, sub, content, text))
    words = frozenset(c for c in content if c)
    main_words = frozenset(c for c, in_sub in zip(content, sub, strict=True) if c and not in_sub)
    # what surrounds a figure, less the words a count holds: those are its unit, the same on both sides
    plain = [k for k, token in enumerate(tokens) if not token.in_figure]
    contexts = []
    for quantity in quantities:
        placeholder = next(n for n, k in enumerate(plain) if tokens[k].start == quantity.span[0])
        contexts.append(_near([content[k] for k in plain], placeholder, 6))
    return _Sentence(
        article_id=article_id,
        chunk_id=chunk_id,
        text=text,
        masked=" ".join(token.word for token in tokens),
        words=words,
        main_words=main_words,
        quantities=quantities,
        contexts=tuple(contexts),
        polar=polar,
        question=text.rstrip().endswith("?"),
        tokens=tuple(tokens),
        content=content,
        sub=tuple(sub),
    )


def _near(content: Sequence[str], index: int, width: int) -> frozenset[str]:
    """Content words within ``width`` tokens of ``index`` (figures left out: they are what may differ)."""
    return frozenset(
        content[k]
        for k in range(max(0, index - width), min(len(content), index + width + 1))
        if k != index and content[k] and not content[k].startswith("<")
    )


def _tokens(text: str, quantities: Sequence[Quantity]) -> list[_Token]:
    """Words of the sentence, each quantity one placeholder token ("<duration>"). A count keeps the words of
    what it counts after its placeholder ("two AI features": "<count>", "ai", "feature"): they say what the
    sentence is about, where a unit ("days") says no more than the dimension."""
    tokens: list[_Token] = []
    position = 0
    for quantity in (*quantities, None):
        stop = quantity.span[0] if quantity else len(text)
        for match in _WORD.finditer(text, position, stop):
            tokens.append(_Token(match.group(0), _norm_word(match.group(0)), match.start(), match.end()))
        if quantity is not None:
            start, end = quantity.span
            tokens.append(_Token(text[start:end], f"<{quantity.dimension}>", start, end))
            if quantity.dimension in {"count", "setting"}:  # a setting keeps its name, as a count its noun
                for match in _WORD.finditer(text, start, end):
                    word = _norm_word(match.group(0))
                    if word.isalpha() and word not in _NUMBER_WORDS:
                        tokens.append(_Token(match.group(0), word, match.start(), match.end(), in_figure=True))
            position = end
    return tokens


# Number words inside a count's span ("two", "twenty", "dozen"): the figure, which the placeholder stands for.
_NUMBER_WORDS = _words(
    """zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen
    seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million
    billion dozen half a an"""
)


def _content_word(word: str) -> str:
    if word in _NEGATORS or word.endswith("n't"):
        return ""
    if word in _LEXICON:
        return f"<{_LEXICON[word][0]}>"
    if word in _STOPWORDS or (len(word) < 2 and not word.startswith("<")) or word.isdigit():
        return ""
    return word


def _subordinate_flags(tokens: Sequence[_Token], text: str) -> list[bool]:
    """Which tokens sit in a subordinate clause: from a subordinator to the next comma, semicolon or the end, or
    to where a new subject and its verb start the main clause without a comma ("once deleted it cannot be
    recovered", "if you lose it you can't sign in")."""
    flags = [False] * len(tokens)
    inside = False
    opened = 0
    for k, token in enumerate(tokens):
        if token.word in _SUBORDINATORS:
            inside, opened = True, k
        elif inside and k - opened >= 2 and _main_clause_starts(tokens, k) and tokens[opened].word not in _RELATIVES:
            inside = False
        flags[k] = inside
        if inside and k + 1 < len(tokens) and _CLAUSE_BREAK.search(text, token.end, tokens[k + 1].start):
            inside = False
    return flags


_CLAUSE_BREAK = re.compile(r"[,;:()]")
_SUBJECTS = _words("it you we they he she i")
_SUBJECT_AND_VERB = _words("it's it'll you're you'll you've we're we'll we've they're they'll they've i'm i'll")
_FINITE = _words(
    """can cannot can't could will won't would may might should shouldn't must is isn't are aren't was wasn't were
    does doesn't do don't did didn't has hasn't have haven't had need needs"""
)
# Words after which a subject and verb are what is said or known, inside the clause ("if the app says it can't")
_REPORTING = _words(
    """say says said think thinks know knows sure mean means see sees show shows tell tells find finds notice
    notices confirm confirms check checks ask asks that whether if and or but"""
)


def _main_clause_starts(tokens: Sequence[_Token], k: int) -> bool:
    """Whether token ``k`` is a subject pronoun with its verb that begins a new clause, not a word of the one
    before it (an object pronoun is followed by no verb: "if you lose it you can't")."""
    word = tokens[k].word
    if tokens[k - 1].word in _REPORTING:
        return False
    if word in _SUBJECT_AND_VERB:
        return True
    return word in _SUBJECTS and k + 1 < len(tokens) and tokens[k + 1].word in _FINITE


def _polarity(tokens: Sequence[_Token], sub: Sequence[bool], content: Sequence[str], text: str) -> Iterator[_Polar]:
    negated_at: dict[int, int] = {}  # index of the denied word -> index of its negator
    for k, token in enumerate(tokens):
        word = token.word
        if not (word in _NEGATORS or word.endswith("n't")):
            continue
        if k > 0 and tokens[k - 1].word in _HEDGES:
            continue
        if word == "not" and k + 1 < len(tokens) and tokens[k + 1].word in {"only", "just"}:
            continue
        if word == "no" and (k + 1 >= len(tokens) or (tokens[k + 1].start > token.end + 1 and k == 0)):
            continue  # "No, ..." answers a question; the yes_no check reads it
        plain = None  # the first word it reaches that is not an auxiliary: what it denies when no content word is
        for m in _reach(tokens, k, text):
            word_m = tokens[m].word
            if plain is None and word_m.isalpha() and not (word_m in _NEGATION_SKIP or word_m in _HEDGES):
                plain = m
            if word_m in _NEGATION_SKIP or word_m in _HEDGES or not content[m]:
                continue
            if word_m.startswith("<"):
                continue  # "is not a 12-month plan": the denial is of the plan; the figure is the quantity check's
            if _content_word(word_m):
                negated_at[m] = k
            break
        else:
            # a denial of function words only still denies something: "cannot do more than" denies "more",
            # "cannot also be used" denies "used"
            if plain is not None:
                negated_at[plain] = k
    for m, token in enumerate(tokens):
        if token.word in _LEXICON:
            concept, sign = _LEXICON[token.word]
        elif m in negated_at:
            concept, sign = token.word, 1
        else:
            continue
        if m in negated_at:
            sign = -sign
            start = tokens[negated_at[m]].start
        else:
            start = token.start
        if token.word in {"charge", "fee"} and m >= 2 and (tokens[m - 2].word, tokens[m - 1].word) == ("free", "of"):
            continue  # "free of charge" is one claim
        yield _Polar(concept, sign, start, token.end, not sub[m], _near(content, m, _POLAR_WIDTH), m)
    yield from _coordinated_modals(tokens, sub, content, text)


# A modal, plain or denied, and the modal it is: "can't" and "cannot" are "can" denied.
_MODAL_BASE = {
    "can": "can", "cannot": "can", "can't": "can", "will": "will", "won't": "will", "should": "should",
    "shouldn't": "should", "must": "must", "mustn't": "must", "would": "would", "wouldn't": "would",
}  # fmt: skip


def _coordinated_modals(
    tokens: Sequence[_Token], sub: Sequence[bool], content: Sequence[str], text: str
) -> Iterator[_Polar]:
    """Two modals joined by "and"/"or" before one verb ("cannot and will not have access", "can and should not
    have the tools"): each says its own thing of that verb's object, so each is a claim of its own ("will" with
    "access"), affirmed or denied, and "cannot and will have access" contradicts "cannot and will not"."""
    k = 0
    while k < len(tokens):
        first = _MODAL_BASE.get(tokens[k].word)
        if first is None:
            k += 1
            continue
        modals: list[tuple[str, int, int]] = []  # (modal, sign, token index)
        m = k
        while m < len(tokens) and (base := _MODAL_BASE.get(tokens[m].word)) is not None:
            denied = tokens[m].word != base or (m + 1 < len(tokens) and tokens[m + 1].word == "not")
            modals.append((base, -1 if denied else 1, m))
            m += 2 if m + 1 < len(tokens) and tokens[m + 1].word == "not" else 1
            if m < len(tokens) - 1 and tokens[m].word in {"and", "or"} and tokens[m + 1].word in _MODAL_BASE:
                if _CLAUSE_BREAK.search(text, tokens[m - 1].end, tokens[m + 1].start):
                    break
                m += 1
                continue
            break
        if len(modals) < 2 or len({base for base, _, _ in modals}) < len(modals):
            k += 1  # one modal, or a choice between a modal and its denial ("can or cannot share"): no claim
            continue
        # what the modals say something of: the first content word after them, within their clause
        target = next(
            (n for n in _reach(tokens, m - 1, text) if content[n] and not tokens[n].word.startswith("<")), None
        )
        if target is not None:
            for base, sign, at in modals:
                yield _Polar(
                    f"{base}:{tokens[target].word}",
                    sign,
                    tokens[at].start,
                    tokens[target].end,
                    not sub[target],
                    _near(content, target, _POLAR_WIDTH),
                    target,
                )
        k = m


# Words that say which of a thing's figures is meant.
_ROLES = frozenset({"default", "maximum", "max", "minimum", "min", "recommended", "average", "typical", "initial"})
_POLAR_WIDTH = 4  # content words either side of a polar word that say what it is about


# --- the detector --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Hit:
    check: str
    a: _Sentence
    b: _Sentence
    values_a: tuple[str, ...]  # normalised, for the id
    values_b: tuple[str, ...]
    highlights_a: tuple[str, ...]
    highlights_b: tuple[str, ...]
    thing: str
    score: float
    severity: Severity
    summary: str
    extra: dict[str, float] = field(default_factory=dict)


class ContradictionDetector:
    """Finds articles that contradict each other: different figures, opposite claims, opposite answers.

    Args:
        settings: thresholds (see :class:`~kbcurator.analysis.config.ContradictionSettings`).
        judge: an optional NLI model; without one the rule-based checks stand on their own.
    """

    name = "contradictions"
    version = "1"

    def __init__(self, settings: ContradictionSettings, judge: SentencePairJudge | None = None) -> None:
        self.settings = settings
        self.judge = judge

    def detect(self, corpus: AuditCorpus) -> Iterator[Finding]:
        if not self.settings.enabled or len(corpus.chunks) < 2:
            return
        sentences = [self._sentences(chunk) for chunk in corpus.chunks]
        sentences = _drop_templates(sentences, self.settings.template_articles)
        weights = _idf(sentences)
        owners = [chunk.article_id for chunk in corpus.chunks]
        pairs = candidate_pairs(
            corpus.chunk_vectors,
            k=self.settings.neighbours,
            min_similarity=self.settings.candidate_similarity,
            owners=owners,
            index=corpus.chunk_index,
        )
        hits: list[_Hit] = []
        unexplained: list[tuple[_Sentence, _Sentence, float]] = []
        by_articles: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for i, j, _ in pairs:
            i, j = (i, j) if owners[i] < owners[j] else (j, i)
            by_articles.setdefault((owners[i], owners[j]), []).append((i, j))
        totals = [[sum(weights(w) for w in s.words) for s in chunk] for chunk in sentences]
        for chunk_pairs in by_articles.values():
            for a, b, jaccard, aligned in self._counterparts(chunk_pairs, sentences, totals, weights):
                found = self._compare(a, b, jaccard, aligned, weights)
                hits.extend(found)
                if not found and self.judge is not None and a.text != b.text:
                    unexplained.append((a, b, aligned))
        article_pairs = set(by_articles)
        hits.extend(self._yes_no(corpus, article_pairs, weights))
        if self.judge is not None:
            hits = self._judge(hits, unexplained)
        yield from self._findings(hits, corpus)

    # -- sentences --

    def _sentences(self, chunk: Chunk) -> list[_Sentence]:
        try:
            return self._analyse_chunk(chunk)
        except Exception:  # odd text in one article must not stop the audit of the others
            logger.warning("contradictions: skipped chunk %s", chunk.chunk_id, exc_info=True)
            return []

    def _analyse_chunk(self, chunk: Chunk) -> list[_Sentence]:
        out = []
        for start, end in split_sentences(chunk.text or ""):
            text = chunk.text[start:end]
            if len(text) > 1000:  # a table or a run-on list, not a statement
                continue
            sentence = _analyse(text, chunk.article_id, chunk.chunk_id)
            if len(sentence.words) >= self.settings.min_sentence_words and not sentence.question:
                out.append(sentence)
        return out

    def _counterparts(
        self,
        chunk_pairs: list[tuple[int, int]],
        sentences: list[list[_Sentence]],
        totals: list[list[float]],
        weights: _Idf,
    ) -> Iterator[tuple[_Sentence, _Sentence, float, float]]:
        """Sentence pairs of two articles that are each other's counterpart: aligned enough, and each (nearly)
        the best match of the other, so a sentence that the other article repeats word for word is not also
        compared with that article's other sentences ("default lifespan of 7 days" with "maximum lifespan of
        31 days")."""
        scored: list[tuple[tuple[int, int], tuple[int, int], float, float]] = []
        best: dict[tuple[str, int, int], float] = {}
        twinned: set[tuple[str, int, int]] = set()
        for i, j in chunk_pairs:
            for m, a in enumerate(sentences[i]):
                for n, b in enumerate(sentences[j]):
                    if a.text == b.text:
                        jaccard, aligned = 1.0, 1.0
                        twinned.update((("a", i, m), ("b", j, n)))
                    else:
                        shared = sum(weights(w) for w in a.words & b.words)
                        jaccard, aligned = _alignment_of(shared, totals[i][m], totals[j][n])
                    if aligned < self.settings.sentence_overlap:
                        continue
                    scored.append(((i, m), (j, n), jaccard, aligned))
                    best["a", i, m] = max(best.get(("a", i, m), 0.0), aligned)
                    best["b", j, n] = max(best.get(("b", j, n), 0.0), aligned)
        margin = self.settings.counterpart_margin
        seen: set[tuple[tuple[int, int], tuple[int, int]]] = set()
        for (i, m), (j, n), jaccard, aligned in scored:
            if ((i, m), (j, n)) in seen:
                continue
            seen.add(((i, m), (j, n)))
            # a sentence with a word-for-word twin in the other article is compared with nothing else there; an
            # alignment of 1.0 is not enough to tell the twin, since negations are left out of it ("Safe example"
            # aligns fully with "Unsafe example" when a copy holds both)
            if (("a", i, m) in twinned or ("b", j, n) in twinned) and sentences[i][m].text != sentences[j][n].text:
                continue
            slack_a = margin if best["a", i, m] < 1.0 else 0.0
            slack_b = margin if best["b", j, n] < 1.0 else 0.0
            if aligned >= best["a", i, m] - slack_a and aligned >= best["b", j, n] - slack_b:
                yield sentences[i][m], sentences[j][n], jaccard, aligned

    def _compare(self, a: _Sentence, b: _Sentence, jaccard: float, aligned: float, weights: _Idf) -> list[_Hit]:
        if a.text == b.text:
            return []
        hits: list[_Hit] = []
        if a.quantity_keys & b.quantity_keys:
            hits.extend(self._quantity(a, b, aligned, weights))
        # a denial contradicts only a statement that is otherwise the same, so containment does not count here
        if (a.polar or b.polar) and jaccard >= self.settings.polarity_overlap:
            hit = self._polarity(a, b, jaccard, weights)
            if hit is not None:
                hits.append(hit)
        return hits

    def _quantity(self, a: _Sentence, b: _Sentence, aligned: float, weights: _Idf) -> Iterator[_Hit]:
        for qa, ca in zip(a.quantities, a.contexts, strict=True):
            # a figure that some figure of the other sentence restates is not in conflict
            if any(comparable(qa, qb) and restates(qa, qb) for qb in b.quantities):
                continue
            best: tuple[float, Quantity, frozenset[str]] | None = None
            for qb, cb in zip(b.quantities, b.contexts, strict=True):
                if not comparable(qa, qb) or any(comparable(qb, q) and restates(qb, q) for q in a.quantities):
                    continue
                if ca & _ROLES and cb & _ROLES and ca & _ROLES != cb & _ROLES:
                    continue  # "default lifespan of 7 days" and "maximum lifespan of 31 days" are two figures
                context = _context_agreement(ca, cb, a.words, b.words, weights)
                if context >= self.settings.context_overlap and (best is None or context > best[0]):
                    best = (context, qb, cb)
            if best is None:
                continue
            context, qb, cb = best
            difference = relative_difference(qa, qb)
            score = round(min(1.0, 0.6 * aligned + 0.4 * min(1.0, difference / 0.5)), 3)
            severity: Severity = "medium"
            if qa.dimension in {"money", "data", "duration", "percent", "length", "temperature", "mass"}:
                severity = "high" if difference >= 0.25 else "medium" if difference >= 0.1 else "low"
            # what the figures are about, less the noun a count already names ("three lines" for "open menu")
            thing = _thing(a, (ca & cb) - {_norm_word(w) for w in _WORD.findall(qa.text)})
            summary = f"'{qa.text}' vs '{qb.text}'" + (f" for {thing}" if thing else "")
            yield _Hit(
                check="quantity",
                a=a,
                b=b,
                values_a=(qa.describe(),),
                values_b=(qb.describe(),),
                highlights_a=(qa.text,),
                highlights_b=(qb.text,),
                thing=thing,
                score=score,
                severity=severity,
                summary=summary,
            )

    def _polarity(self, a: _Sentence, b: _Sentence, aligned: float, weights: _Idf) -> _Hit | None:
        matched = []
        claims_b = _claims(b, a)
        for claim_a in _claims(a, b):
            # the counterpart is the claim whose surroundings are most alike ("do not create cookies" pairs
            # with "do not create cookies", not with "the ability to create a history" in the same sentence)
            best: tuple[float, float, _Claim] | None = None
            for claim_b in claims_b:
                if claim_b.concept != claim_a.concept or claim_b.main != claim_a.main:
                    continue
                alike = _weighted_jaccard(claim_a.context, claim_b.context, weights)
                context = _context_agreement(claim_a.context, claim_b.context, a.words, b.words, weights)
                if best is None or (alike, context) > best[:2]:
                    best = (alike, context, claim_b)
            if best is not None and best[1] >= self.settings.context_overlap:
                matched.append((claim_a, best[2]))
        if any(not x.main and x.sign != y.sign and not _states_fact(a, x.index) for x, y in matched):
            return None  # the conditions differ: "if you don't ..., you can't" vs "if you do ..., you can"
        conflicts = sorted(
            ((x, y) for x, y in matched if x.sign != y.sign and not _exclusive(x, y)), key=lambda pair: pair[0].concept
        )
        if not conflicts:
            return None
        claim_a, claim_b = conflicts[0]
        return _Hit(
            check="polarity",
            a=a,
            b=b,
            values_a=(f"{claim_a.concept}: {'yes' if claim_a.sign > 0 else 'no'}",),
            values_b=(f"{claim_b.concept}: {'yes' if claim_b.sign > 0 else 'no'}",),
            highlights_a=(claim_a.words,),
            highlights_b=(claim_b.words,),
            thing=claim_a.concept,
            score=round(aligned, 3),
            severity="medium",
            summary=f"'{claim_a.words}' vs '{claim_b.words}' about {_thing(a, a.words & b.words)}",
        )

    def _yes_no(self, corpus: AuditCorpus, article_pairs: Iterable[tuple[str, ...]], weights: _Idf) -> Iterator[_Hit]:
        answered: dict[str, list[tuple[frozenset[str], str, _Sentence, int]]] = {}
        by_question: dict[frozenset[str], list[str]] = {}
        for article in corpus.articles:
            try:
                found = list(_answered_questions(article, corpus))
            except (AttributeError, TypeError, ValueError):
                continue  # an odd article is skipped, never fatal
            if found:
                answered[article.article_id] = found
                for words, *_ in found:
                    by_question.setdefault(words, []).append(article.article_id)
        pairs = {p for p in article_pairs if p[0] in answered and p[1] in answered}
        for members in by_question.values():
            members = sorted(set(members))[: self.settings.max_same_question]
            pairs.update((x, y) for n, x in enumerate(members) for y in members[n + 1 :])
        for first, second in sorted(pairs):
            for words_a, question_a, answer_a, sign_a in answered[first]:
                for words_b, _, answer_b, sign_b in answered[second]:
                    if sign_a == sign_b:
                        continue
                    similarity = _weighted_jaccard(words_a, words_b, weights)
                    if similarity < self.settings.question_similarity or _negations(words_a) != _negations(words_b):
                        continue
                    said_a = _YES.match(answer_a.text) or _NO.match(answer_a.text)
                    said_b = _YES.match(answer_b.text) or _NO.match(answer_b.text)
                    if said_a is None or said_b is None:
                        continue
                    word_a = answer_a.text[said_a.start(1) : said_a.end(1)]
                    word_b = answer_b.text[said_b.start(1) : said_b.end(1)]
                    yield _Hit(
                        check="yes_no",
                        a=answer_a,
                        b=answer_b,
                        values_a=("yes" if sign_a > 0 else "no", " ".join(sorted(words_a))),
                        values_b=("yes" if sign_b > 0 else "no", " ".join(sorted(words_b))),
                        highlights_a=(word_a,),
                        highlights_b=(word_b,),
                        thing=question_a,
                        score=round(similarity, 3),
                        severity="high",
                        summary=f"'{word_a}' vs '{word_b}' to \"{_clip(question_a, 90)}\"",
                    )

    def _judge(self, hits: list[_Hit], unexplained: list[tuple[_Sentence, _Sentence, float]]) -> list[_Hit]:
        assert self.judge is not None
        rule_pairs = [(h.a.text, h.b.text) for h in hits]
        other_pairs = [(a.text, b.text) for a, b, _ in unexplained]
        both = rule_pairs + other_pairs
        # NLI is asymmetric; a contradiction either way round counts
        forward = self.judge.contradiction(both)
        backward = self.judge.contradiction([(b, a) for a, b in both])
        probability = [max(f, r) for f, r in zip(forward, backward, strict=True)]
        out = []
        for hit, p in zip(hits, probability[: len(hits)], strict=True):
            hit.score = round((hit.score + p) / 2, 3)
            hit.extra["nli"] = p
            out.append(hit)
        for (a, b, aligned), p in zip(unexplained, probability[len(hits) :], strict=True):
            if p < self.settings.nli_threshold:
                continue
            shared = a.words & b.words
            out.append(
                _Hit(
                    check="nli",
                    a=a,
                    b=b,
                    values_a=(a.masked,),
                    values_b=(b.masked,),
                    highlights_a=(),
                    highlights_b=(),
                    thing=_thing(a, shared),
                    score=round(p * aligned, 3),
                    severity="medium",
                    summary=f"contradicting statements (NLI {p:.2f})" + (f" about {_thing(a, shared)}"),
                    extra={"nli": p},
                )
            )
        return out

    def _findings(self, hits: list[_Hit], corpus: AuditCorpus) -> Iterator[Finding]:
        # one finding per article pair, check and conflicting values: the best-aligned sentence pair speaks
        best: dict[tuple[str, ...], tuple[_Hit, str]] = {}
        for hit in hits:
            first, second = (hit.a, hit.b) if hit.a.article_id < hit.b.article_id else (hit.b, hit.a)
            values = (hit.values_a, hit.values_b) if first is hit.a else (hit.values_b, hit.values_a)
            dedupe = (hit.check, first.article_id, second.article_id, repr(values))
            key = f"{values[0]}|{values[1]}|{first.masked}|{second.masked}"
            kept = best.get(dedupe)
            if kept is None or (hit.score, key) > (kept[0].score, kept[1]):
                best[dedupe] = (hit, key)
        for hit, key in sorted(best.values(), key=lambda item: (-item[0].score, item[1])):
            first_is_a = hit.a.article_id < hit.b.article_id
            sides = [
                (hit.a, hit.highlights_a, hit.values_a),
                (hit.b, hit.highlights_b, hit.values_b),
            ]
            if not first_is_a:
                sides.reverse()
            evidence = tuple(
                Evidence(
                    article_id=sentence.article_id,
                    text=sentence.text,
                    chunk_id=sentence.chunk_id,
                    highlights=tuple(h for h in highlights if h and h in sentence.text),
                    link=_url(corpus, sentence.article_id),
                    detail=values[0],
                )
                for sentence, highlights, values in sides
            )
            article_ids = (sides[0][0].article_id, sides[1][0].article_id)
            yield Finding(
                finding_id=make_finding_id("contradiction", hit.check, article_ids, key),
                kind="contradiction",
                check=hit.check,
                article_ids=article_ids,
                score=max(0.0, min(1.0, hit.score)),
                severity=hit.severity,
                summary=hit.summary,
                action="review",
                evidence=evidence,
                detector=self.name,
                detector_version=self.version,
                found_at=corpus.run_at,
            )


def _drop_templates(sentences: list[list[_Sentence]], min_articles: int) -> list[list[_Sentence]]:
    """Leave out template lines: the same words in ``min_articles`` or more articles with a figure that varies
    from page to page ("Updated 3 days ago", "12 of 15 found this helpful"). One page that states a policy
    differently from five others still differs from a single shared wording, so it is kept; so is a line whose
    figures all overlap ("30 days", "30-60 days", "30-90 days"): one figure stated more or less exactly, not a
    figure that changes with the page, as a date or a vote count does."""
    articles: dict[tuple[str, frozenset[tuple[str, str]]], set[str]] = {}
    values: dict[tuple[str, frozenset[tuple[str, str]]], dict[tuple[str, ...], tuple[Quantity, ...]]] = {}
    for chunk in sentences:
        for s in chunk:
            if s.quantities:
                key = (s.masked, s.quantity_keys)  # "3 lines" and "3 dots" are not one line's values
                articles.setdefault(key, set()).add(s.article_id)
                values.setdefault(key, {})[tuple(q.describe() for q in s.quantities)] = s.quantities
    template = {
        key
        for key, ids in articles.items()
        if len(ids) >= min_articles and len(values[key]) >= 3 and not _overlapping(list(values[key].values()))
    }
    if not template:
        return sentences
    return [[s for s in chunk if (s.masked, s.quantity_keys) not in template] for chunk in sentences]


def _overlapping(stated: Sequence[tuple[Quantity, ...]]) -> bool:
    """Whether every two of the figures a line states, position by position, can both be true."""
    return all(
        len(x) == len(y) and all(comparable(p, q) and agree(p, q) for p, q in zip(x, y, strict=True))
        for x, y in itertools.combinations(stated, 2)
    )


def _url(corpus: AuditCorpus, article_id: str) -> str:
    article = corpus.article_by_id.get(article_id)
    return article.url if article is not None else ""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class _Idf:
    """Inverse document frequency of content words over chunks: shared rare words align sentences, shared
    everyday words ("account", "browser") much less. A figure's dimension ("<duration>") weighs 1, as an
    everyday word does."""

    weights: dict[str, float]
    unseen: float  # a word no chunk has (a question's): as rare as can be

    def __call__(self, word: str) -> float:
        if word.startswith("<"):
            return 1.0
        return self.weights.get(word, self.unseen)


def _idf(sentences: Sequence[Sequence[_Sentence]]) -> _Idf:
    df: Counter[str] = Counter()
    for chunk in sentences:
        df.update(set().union(*(s.words for s in chunk)) if chunk else set())
    n = max(1, len(sentences))
    return _Idf({word: math.log((n + 1) / (count + 1)) + 1.0 for word, count in df.items()}, math.log(n + 1) + 1.0)


def _alignment_of(shared: float, total_a: float, total_b: float) -> tuple[float, float]:
    """How much two sentences say the same, from the weight of their shared words and of each one's words:
    their weighted Jaccard, and the mean of it and of how much of the shorter one the longer one contains (so
    a sentence restated inside a longer one, "Twenty public health labs in California, including ..., are now
    testing", still aligns)."""
    union = total_a + total_b - shared
    smaller = min(total_a, total_b)
    if union <= 0 or smaller <= 0:
        return 0.0, 0.0
    jaccard = shared / union
    return jaccard, (jaccard + shared / smaller) / 2


def _weighted_jaccard(a: frozenset[str], b: frozenset[str], weights: _Idf) -> float:
    union = a | b
    if not union:
        return 0.0
    shared = sum(weights(w) for w in a & b)
    return shared / sum(weights(w) for w in union)


def _context_agreement(
    ca: frozenset[str], cb: frozenset[str], words_a: frozenset[str], words_b: frozenset[str], weights: _Idf
) -> float:
    """How much of what surrounds each figure the other sentence also says (1.0 when both figures have no
    words around them): "refund within 30 days" vs "exchange within 14 days" share "within" and "days" but
    not the thing."""
    found = sum(weights(w) for w in ca if w in words_b) + sum(weights(w) for w in cb if w in words_a)
    total = sum(weights(w) for w in ca) + sum(weights(w) for w in cb)
    return found / total if total else 1.0


def _thing(sentence: _Sentence, words: Iterable[str], limit: int = 4) -> str:
    """A few of the shared words, in the order the sentence says them: what the conflict is about."""
    wanted = {w for w in words if not w.startswith("<")}
    out: list[str] = []
    for match in _WORD.finditer(sentence.text):
        word = _norm_word(match.group(0))
        if word in wanted and match.group(0).lower() not in out:
            out.append(match.group(0).lower())
            wanted.discard(word)
        if len(out) >= limit:
            break
    return " ".join(out)


@dataclass(frozen=True, slots=True)
class _Claim:
    concept: str
    sign: int
    words: str  # as written: "is not included", "included"
    context: frozenset[str]
    main: bool
    around: frozenset[str]  # every word near it, function words too ("only", "other")
    index: int  # token index of the word affirmed or denied


def _claims(s: _Sentence, other: _Sentence) -> list[_Claim]:
    """What ``s`` affirms or denies, including what ``other`` denies and ``s`` merely says: against "is not
    available", a plain "is available" is a claim too."""
    out = [
        _Claim(p.concept, p.sign, s.text[p.start : p.end], p.context, p.main, _around(s, p.index), p.index)
        for p in s.polar
    ]
    explicit = {(p.concept, p.end) for p in s.polar}
    wanted = {p.concept for p in other.polar if p.concept not in _LEXICON_CONCEPTS}
    denied = _in_denial(s)
    # a function word denied ("cannot do more") is said plainly by the same words ("can do more"), not by the
    # word alone in another phrase ("and more")
    led = {(p.concept, other.tokens[p.index - 1].word) for p in other.polar if not other.content[p.index]}
    plain = [
        c or (t.word if k > 0 and (t.word, s.tokens[k - 1].word) in led else "")
        for k, (c, t) in enumerate(zip(s.content, s.tokens, strict=True))
    ]
    for k, word in enumerate(plain):
        # "does not support unsolicited assertions" does not state "unsolicited" plainly
        if word in wanted and (word, s.tokens[k].end) not in explicit and k not in denied:
            context = _near(s.content, k, _POLAR_WIDTH)
            out.append(_Claim(word, 1, s.tokens[k].text, context, not s.sub[k], _around(s, k), k))
    return out


def _in_denial(s: _Sentence) -> set[int]:
    """Token indices within a negation's reach: up to four words after a negator, within its clause."""
    out: set[int] = set()
    for k, token in enumerate(s.tokens):
        if token.word in _NEGATORS or token.word.endswith("n't"):
            out.update(_reach(s.tokens, k, s.text))
    return out


def _reach(tokens: Sequence[_Token], k: int, text: str, words: int = 4) -> Iterator[int]:
    """Indices of the tokens a negator at ``k`` reaches: the next ``words`` words within its clause ("If you
    don't, you will be logged out": the denial ends at the comma), a figure not counted among them ("is not a
    3-in-1 plan" reaches "plan")."""
    left = words
    for m in range(k + 1, len(tokens)):
        if left == 0 or _CLAUSE_BREAK.search(text, tokens[m - 1].end, tokens[m].start):
            return
        yield m
        word = tokens[m].word
        if not (word.startswith("<") or word.isdigit() or tokens[m].in_figure):
            left -= 1


# A clause these open says something of what it follows ("apps, which do not track you"): a claim, not a
# condition, so a denial there is compared like one in the main clause.
_RELATIVES = frozenset({"which", "who", "whose"})


# A clause these open gives a reason or concedes a fact ("because the link is encrypted", "though you can
# schedule them"): it states something, as a main clause does, rather than a condition.
_FACTUAL = frozenset({"because", "although", "though"})
_MODALS = _words("can cannot can't could will won't would may might should shouldn't must")


def _opener_at(s: _Sentence, index: int) -> int | None:
    """Where the subordinator that opens the clause holding token ``index`` is (None in the main clause)."""
    for k in range(min(index, len(s.tokens) - 1), -1, -1):
        if not s.sub[k]:
            return None
        if s.tokens[k].word in _SUBORDINATORS:
            return k
    return None


def _opener(s: _Sentence, index: int) -> str:
    """The subordinator that opens the clause holding token ``index`` ("" in the main clause)."""
    at = _opener_at(s, index)
    return "" if at is None else s.tokens[at].word


def _states_fact(s: _Sentence, index: int) -> bool:
    """Whether the clause holding token ``index`` states something rather than a condition: the main clause, a
    relative clause ("apps, which do not track you"), a reason or a concession ("because ...", "though ..."),
    and a contrasting "while" ("some sites take a day, while others can take weeks"). A "while" of time
    ("while the VPN is reconnecting", "while signed in", "while you are offline") is a condition."""
    at = _opener_at(s, index)
    if at is None:
        return True
    word = s.tokens[at].word
    if word in _RELATIVES or word in _FACTUAL:
        return True
    if word != "while":
        return False
    clause = [t.word for k, t in enumerate(s.tokens) if k > at and s.sub[k]]
    if not clause or clause[0].endswith(("ing", "ed")) or " ".join(clause).find("in progress") >= 0:
        return False  # "while browsing", "while signed in", "while a scan is in progress"
    verbs = [w for w in clause if w not in _NEGATORS]
    if any(w in _BE and nxt.endswith("ing") for w, nxt in itertools.pairwise(verbs)):
        return False  # "while the VPN is attempting to reconnect"
    return bool(_MODALS & set(clause)) or clause[0] not in {"you", "your", "you're"}


_BE = _words("is are was were be been being am 's 're")


def _around(s: _Sentence, index: int, width: int = 6) -> frozenset[str]:
    return frozenset(t.word for t in s.tokens[max(0, index - width) : index + width + 1])


def _exclusive(x: _Claim, y: _Claim) -> bool:
    """ "X is the only VPN that works with Y" and "Y won't work with other VPNs" are one claim, not two."""
    return bool({"only"} & (x.around | y.around) and _OTHERS & (x.around | y.around))


_OTHERS = frozenset({"other", "others", "else"})


_LEXICON_CONCEPTS = frozenset(concept for concept, _ in _LEXICON.values())


def _surface(text: str, word: str) -> str:
    for match in _WORD.finditer(text):
        if _norm_word(match.group(0)) == word:
            return match.group(0)
    return word


def _negations(words: frozenset[str]) -> int:
    return sum(1 for w in words if w.startswith("¬"))


def _question_words(question: str) -> frozenset[str]:
    """Content words of a question; negators are kept (as "¬") so "Can I ...?" differs from "Can't I ...?"."""
    out = set()
    for match in _WORD.finditer(question):
        word = _norm_word(match.group(0))
        if word in _NEGATORS or word.endswith("n't"):
            out.add("¬" + word)
            continue
        if word in _STOPWORDS:
            continue
        out.add(word)
    return frozenset(out)


def _answered_questions(article: Article, corpus: AuditCorpus) -> Iterator[tuple[frozenset[str], str, _Sentence, int]]:
    """Questions an article answers with a plain yes or no: its title, and question headings in its text.

    Yields (question words, question, the answer's first sentence, +1 for yes / -1 for no).
    """
    text = article.text or ""
    lines = [line.strip() for line in text.split("\n")]
    lines = [line for line in lines if line]
    questions: list[tuple[str, str]] = []
    if article.title.strip().endswith("?") and lines:
        first = lines[1] if lines[0] == article.title.strip() and len(lines) > 1 else lines[0]
        questions.append((article.title.strip(), first))
    for n, line in enumerate(lines[:-1]):
        if line.endswith("?") and len(line) <= 200 and line != article.title.strip():
            questions.append((line, lines[n + 1]))
    chunk_rows = corpus.chunk_rows_by_article.get(article.article_id, [])
    for question, answer in questions:
        spans = split_sentences(answer)
        if not spans:
            continue
        first_sentence = answer[spans[0][0] : spans[0][1]]
        sign = 1 if _YES.match(first_sentence) else -1 if _NO.match(first_sentence) else 0
        if sign == 0:
            continue
        chunk_id = next(
            (corpus.chunks[row].chunk_id for row in chunk_rows if first_sentence in corpus.chunks[row].text),
            corpus.chunks[chunk_rows[0]].chunk_id if chunk_rows else "",
        )
        sentence = _analyse(first_sentence, article.article_id, chunk_id)
        words = _question_words(question)
        if words:
            yield words, question, sentence, sign
