"""Settings of the health audit (kbcurator.analysis): per-source review rules and each detector's thresholds.

Defaults work on the bundled sample; the README explains each one. Defined here, below both ``kbcurator.settings``
(which composes them into ``Settings``) and ``kbcurator.analysis`` (which reads them), so that settings imports no
feature package.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ReviewSettings(BaseModel):
    """Per-source review rules, as Zendesk's and Guru's verification intervals."""

    interval_days: int = 365  # an article not updated for this long is due for review
    # Retired product names, plans or UI labels -> what to say instead ("" when nothing replaces it).
    deprecated_terms: dict[str, str] = Field(default_factory=dict)
    # Product or app name -> its current version, so "new in version 3" is stale once version 5 ships.
    current_versions: dict[str, str] = Field(default_factory=dict)


class StaleSettings(BaseModel):
    enabled: bool = True
    check_links: bool = True
    check_dated_content: bool = True
    # A finding for escalated tickets whose best-matching article is this one, from this many tickets.
    failing_min_tickets: int = 2
    # Age score: 0.3 just past the review interval, rising linearly to 1.0 at this many intervals.
    age_full_score_intervals: float = 3.0
    # An "as of <date>" or "starting <date>" statement is due for a re-check this long after its date.
    dated_statement_max_age_days: int = 365
    # "New in version N" is stale once the product's current major version is this many majors ahead.
    version_gap: int = 2
    # An internal link counts as a missing article only when it points under a folder that holds articles
    # (home, section, search and contact pages are not articles and are not reported).
    links_only_under_article_folders: bool = True
    # Headings count as #fragment anchors under their generated ids (kramdown, GitHub, Python-Markdown).
    anchors_from_headings: bool = True
    # Cosine of two article vectors (mean of their chunks) to compare their dates: near-copies only (MiniLM: a
    # rewritten copy scores 0.96-1.0, different articles on one topic up to 0.95 in the DuckDuckGo benchmark).
    superseded_similarity: float = 0.955
    superseded_min_days: int = 180  # the older article must be this much older than the newer one
    superseded_neighbours: int = 5  # nearest articles searched per article


class DuplicateSettings(BaseModel):
    enabled: bool = True
    shingle_words: int = 5  # word shingles for MinHash
    num_perm: int = 128
    # Jaccard of two whole articles' shingles (exact, after MinHash LSH candidates). On the DuckDuckGo tuning set
    # (bench/health/duplicate_cases.py) 0.65-0.75 all found every planted near copy and no pair labelled distinct.
    near_threshold: float = 0.7
    # Share of a section's shingles (chunk, template text left out) also found in a section of another article:
    # containment, not Jaccard, so a section pasted inside a longer one counts.
    section_threshold: float = 0.8
    min_section_chars: int = 200  # shorter sections are boilerplate-sized and not compared
    # A shingle found in this many articles or more (a duplicate set counts once) is template text, such as a
    # shared footer or setup block: section comparison ignores it.
    section_template_articles: int = 4
    min_article_chars: int = 50  # articles with less text (after normalising) are stubs and not compared
    # Cosine of article vectors (mean of their chunks). Tuning set: 0.90 doubles the false positives, 0.94 loses
    # a quarter of the paraphrases found; a full rewrite of an article scores about 0.88 with all-MiniLM-L6-v2.
    semantic_article_similarity: float = 0.92
    neighbours: int = 10  # nearest neighbours searched per article or chunk


class ContradictionSettings(BaseModel):
    enabled: bool = True
    candidate_similarity: float = 0.7  # cosine of two chunks of different articles to compare them
    neighbours: int = 10
    sentence_overlap: float = 0.5  # share of content words two sentences must share to be about the same thing
    # (words weighted by rarity in the corpus, figures masked, negations left out).
    polarity_overlap: float = 0.7  # the same, for "is" vs "is not" claims: near-identical statements only
    # Share of the words around two figures (or two claims) that the other sentence also says, to compare
    # them: keeps "refund within 30 days" apart from "exchange within 14 days".
    context_overlap: float = 0.7
    min_sentence_words: int = 2  # sentences with fewer content words ("Still stuck?") are not compared
    # Two sentences are compared only when each is within this much alignment of the other's best match in
    # the other article; a sentence repeated word for word there is compared with that twin only.
    counterpart_margin: float = 0.1
    question_similarity: float = 0.8  # weighted word overlap of two questions to count as the same question
    max_same_question: int = 20  # articles compared per identical question (a bucket of "FAQ" titles)
    # A sentence worded the same in this many articles with figures that vary (3+ values) is a template
    # line ("Updated 3 days ago") and is not compared.
    template_articles: int = 4
    nli_threshold: float = 0.9  # with an NLI judge: contradiction probability for an "nli" finding


class HealthSettings(BaseModel):
    stale: StaleSettings = Field(default_factory=StaleSettings)
    duplicates: DuplicateSettings = Field(default_factory=DuplicateSettings)
    contradictions: ContradictionSettings = Field(default_factory=ContradictionSettings)
