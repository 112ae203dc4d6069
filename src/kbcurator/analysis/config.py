"""Settings of the health audit: per-source review rules and each detector's thresholds.

Defaults work on the bundled sample; the README explains each one.
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


class DuplicateSettings(BaseModel):
    enabled: bool = True
    shingle_words: int = 5  # word shingles for MinHash
    num_perm: int = 128
    near_threshold: float = 0.8  # estimated Jaccard of two whole articles
    section_threshold: float = 0.8  # estimated Jaccard of two sections (chunks) of different articles
    min_section_chars: int = 200  # shorter sections are boilerplate-sized and not compared
    semantic_article_similarity: float = 0.92  # cosine of article vectors (mean of their chunks)
    neighbours: int = 10  # nearest neighbours searched per article or chunk


class ContradictionSettings(BaseModel):
    enabled: bool = True
    candidate_similarity: float = 0.7  # cosine of two chunks of different articles to compare them
    neighbours: int = 10
    sentence_overlap: float = 0.5  # share of content words two sentences must share to be about the same thing


class HealthSettings(BaseModel):
    stale: StaleSettings = Field(default_factory=StaleSettings)
    duplicates: DuplicateSettings = Field(default_factory=DuplicateSettings)
    contradictions: ContradictionSettings = Field(default_factory=ContradictionSettings)
