"""Name each ticket cluster: c-TF-IDF keywords, a short label, its most central query and representatives.

c-TF-IDF as in BERTopic: each cluster is one class-document; a term's weight in a cluster is its frequency
there (L1-normalised per cluster) times ``log(1 + A / f)``, where ``A`` is the average number of words per
cluster and ``f`` the term's frequency over all clusters. Words every cluster uses ("account", "please") sink;
words one cluster uses a lot rise. Unigrams and bigrams, English stop words removed.

A term with a word of four or more digits ("4111", "1111 1111", "ord-1234567") is never a keyword: it names no
topic, and it is where a card, phone or order number the redactor did not recognise would show in every
label and export of the cluster.

A gap's title is what a KB owner reads first: a short, cleaned question from the cluster, most central first
(greeting, sign-off, redaction placeholders and "I was wondering if" trimmed; the first sentence that asks
something), see :func:`gap_title`. The keyword label stays beside it, for telling clusters apart.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kbcurator.gaps.clustering import LONG_TAIL, centroids

_LABEL_WORDS = 3
_NUMBER_LIKE = re.compile(r"(?:\d\D?){3}\d")  # four digits in a word, one separator between allowed
_SEPARATOR = " · "


@dataclass(frozen=True, slots=True)
class ClusterLabel:
    """What a reviewer sees for one cluster.

    Attributes:
        cluster_id: the cluster's id in the labels array.
        keywords: the highest c-TF-IDF terms (unigrams and bigrams), best first.
        label: up to three keywords joined, e.g. "card · arrive · delivery" (a keyword whose words are already
            in the label is skipped); the central query when there are no keywords.
        central_query: the member text nearest the cluster centroid.
        representatives: the most central member texts, distinct, most central first.
        size: number of members.
        title: a readable name, a short cleaned question from the cluster (see :func:`gap_title`).
    """

    cluster_id: int
    keywords: tuple[str, ...]
    label: str
    central_query: str
    representatives: tuple[str, ...]
    size: int
    title: str = ""


_MIN_CLASSES_FOR_CORPUS_TERMS = 4
_CORPUS_TERM_SHARE = 0.5


def label_clusters(
    texts: Sequence[str],
    labels: np.ndarray,
    vectors: np.ndarray,
    *,
    top_n_words: int = 5,
    n_representatives: int = 5,
) -> dict[int, ClusterLabel]:
    """Label every cluster in ``labels`` (the long tail, ``-1``, gets no label).

    Args:
        texts: the clustered texts, one per row of ``vectors``.
        labels: cluster id per text, ``-1`` for the long tail.
        vectors: the embeddings that were clustered (original space).
        top_n_words: keywords kept per cluster.
        n_representatives: representative texts kept per cluster.
    """
    labels = np.asarray(labels)
    vectors = np.asarray(vectors, dtype=np.float32)
    if not len(texts) == len(labels) == len(vectors):
        raise ValueError(f"texts, labels and vectors differ in length: {len(texts)}, {len(labels)}, {len(vectors)}")
    cluster_ids = [int(c) for c in np.unique(labels) if c != LONG_TAIL]
    if not cluster_ids:
        return {}
    keywords = _class_tfidf_keywords(texts, labels, cluster_ids, top_n_words)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    centres = centroids(unit, labels)
    out: dict[int, ClusterLabel] = {}
    for cluster_id in cluster_ids:
        rows = np.flatnonzero(labels == cluster_id)
        # Stable sort: equally central members keep their input order, so labels are reproducible.
        order = rows[np.argsort(-(unit[rows] @ centres[cluster_id]), kind="stable")]
        representatives = _distinct([texts[int(i)] for i in order], n_representatives)
        words = keywords.get(cluster_id, ())
        central = texts[int(order[0])]
        label = _label(words, central)
        out[cluster_id] = ClusterLabel(
            cluster_id=cluster_id,
            keywords=words,
            label=label,
            central_query=central,
            representatives=representatives,
            size=len(rows),
            title=gap_title(central, representatives, fallback=label),
        )
    return out


def _class_tfidf_keywords(
    texts: Sequence[str], labels: np.ndarray, cluster_ids: list[int], top_n: int
) -> dict[int, tuple[str, ...]]:
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer

    # Hyphenated words stay whole ("covid-19", "e-mail"), so a product name does not become a bare number.
    vectorizer = CountVectorizer(stop_words="english", ngram_range=(1, 2), token_pattern=r"(?u)\b\w[\w-]*\w\b")
    try:
        # Counted per text, then summed per cluster: joining a cluster's texts into one string first (as
        # BERTopic does) would invent bigrams across two texts' boundary.
        per_text = vectorizer.fit_transform(texts)
    except ValueError:  # every text is stop words or punctuation: there is no vocabulary at all
        return {}
    terms = vectorizer.get_feature_names_out()
    # The long tail takes part as one more class: its words are evidence of what is common, not of a topic.
    classes = [*cluster_ids, LONG_TAIL] if (labels == LONG_TAIL).any() else cluster_ids
    row_of = {c: i for i, c in enumerate(classes)}
    membership = sparse.csr_matrix(
        (np.ones(len(labels)), ([row_of[int(c)] for c in labels.tolist()], np.arange(len(labels)))),
        shape=(len(classes), len(labels)),
    )
    tf = np.asarray((membership @ per_text).todense(), dtype=np.float64)
    words_per_class = tf.sum(axis=1)
    frequency = tf.sum(axis=0)
    idf = np.log(1.0 + float(words_per_class.mean()) / np.maximum(frequency, 1.0))
    tf = np.divide(tf, words_per_class[:, None], out=np.zeros_like(tf), where=words_per_class[:, None] > 0)
    scores = tf * idf
    if len(cluster_ids) >= _MIN_CLASSES_FOR_CORPUS_TERMS:
        # A term in most clusters is the corpus's subject ("covid-19" in a COVID help desk), not a topic.
        present = (tf[: len(cluster_ids)] > 0).mean(axis=0)
        scores[:, present > _CORPUS_TERM_SHARE] = 0.0
    out: dict[int, tuple[str, ...]] = {}
    for row, cluster_id in enumerate(cluster_ids):
        # Ties broken by term, so the same input always gives the same keywords.
        ranked = sorted(np.flatnonzero(scores[row] > 0).tolist(), key=lambda j: (-scores[row, j], terms[j]))
        kept = [str(terms[j]) for j in ranked if not any(_NUMBER_LIKE.search(word) for word in terms[j].split())]
        out[cluster_id] = tuple(kept[:top_n])
    return out


def _label(keywords: Sequence[str], fallback: str) -> str:
    """The first few keywords, skipping one whose words are all in the label already ("card · card arrive")."""
    kept: list[str] = []
    seen: set[str] = set()
    for keyword in keywords:
        words = set(keyword.split())
        if words <= seen:
            continue
        kept.append(keyword)
        seen |= words
        if len(kept) == _LABEL_WORDS:
            break
    # A cluster of stop words only ("hi", "thanks!") still needs a name: its central query.
    return _SEPARATOR.join(kept) if kept else fallback.strip()[:80]


def _distinct(texts: Sequence[str], limit: int) -> tuple[str, ...]:
    seen: set[str] = set()
    kept: list[str] = []
    for text in texts:
        key = " ".join(text.lower().split())
        if key in seen:
            continue
        seen.add(key)
        kept.append(text)
        if len(kept) == limit:
            break
    return tuple(kept)


# --- readable titles --------------------------------------------------------------------------------------

_TITLE_CHARS = 80
_TITLE_MIN_WORDS = 3
_TITLE_MAX_WORDS = 16
_CANDIDATES = 3  # the most central texts tried for a title
_PLACEHOLDER = re.compile(r"\[[A-Z][A-Z_]*\]")
_GREETING = re.compile(
    r"^(?:hi|hello|hey|dear|greetings|good (?:morning|afternoon|evening))\b[^.!?,:;\n]{0,30}[,.!:;]?\s+",
    re.IGNORECASE,
)
_SIGN_OFF = re.compile(
    r"[\s,.;:!-]*\b(?:thanks?(?: you)?(?: (?:so|very) much)?|many thanks|thx|regards|best regards|cheers|kind regards)"
    r"\b[^?]*$",
    re.IGNORECASE,
)
# Dropped only when a question follows ("I was wondering how to ..." -> "How to ..."): without its lead-in,
# "I was wondering whether the card arrives" would read "Whether the card arrives".
_LEAD_IN = re.compile(
    r"^(?:i (?:was|am) wondering|i(?:'d| would) like to know|i want to know|i need to know|can you tell me|"
    r"could you (?:please )?tell me|please (?:tell|let) me(?: know)?|quick question|question)[,:]?\s+"
    r"(?=(?:how|what|when|where|why|which|who|can|could|is|are|do|does)\b)",
    re.IGNORECASE,
)
_SPACE_BEFORE_MARK = re.compile(r"\s+([?.!,;:])")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")


def gap_title(central_query: str, representatives: Sequence[str] = (), *, fallback: str = "") -> str:
    """A readable name for a gap: a short cleaned question from its most central texts.

    The central query comes first, then the next most central representatives; from each, the first sentence
    that asks something (else its first sentence) of ``_TITLE_MIN_WORDS`` to ``_TITLE_MAX_WORDS`` words, cleaned
    of greetings, sign-offs, redaction placeholders and lead-ins, capitalised and cut at a word near 80
    characters. When none is long enough, the central query cleaned and cut, then ``fallback`` (the keyword
    label). Texts are the redacted ones; nothing is invented.
    """
    candidates = [central_query, *[r for r in representatives if r != central_query][: _CANDIDATES - 1]]
    for text in candidates:
        phrase = _question_phrase(text)
        if phrase:
            return phrase
    cleaned = _clean(central_query)
    return _cut(cleaned) if cleaned else fallback.strip()


def _clean(text: str) -> str:
    text = _PLACEHOLDER.sub(" ", text or "")
    text = _SPACE_BEFORE_MARK.sub(r"\1", " ".join(text.split()))
    text = _GREETING.sub("", text)
    text = _SIGN_OFF.sub("", text)
    return text.strip(" ,;:-")


def _question_phrase(text: str) -> str:
    sentences = [_clean(m.group()) for m in _SENTENCE.finditer(_clean(text))]
    sentences = [_LEAD_IN.sub("", s).strip(" ,;:-").rstrip(".!") for s in sentences]
    usable = [s for s in sentences if _TITLE_MIN_WORDS <= len(s.split()) <= _TITLE_MAX_WORDS]
    asked = [s for s in usable if s.endswith("?")]
    chosen = (asked or usable or [""])[0]
    return _cut(chosen) if chosen else ""


def _cut(text: str) -> str:
    if len(text) > _TITLE_CHARS:
        text = text[:_TITLE_CHARS].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"
    return text[:1].upper() + text[1:]
