"""What every detector reads and returns."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Protocol

import numpy as np

from kbcurator.analysis.neighbours import NeighbourIndex
from kbcurator.config.health import ReviewSettings
from kbcurator.records import Article, Chunk, Finding, Severity


@dataclass(frozen=True, eq=False)
class AuditCorpus:
    """One state of the KB as the detectors see it.

    Attributes:
        articles: every article in the audited state.
        chunks: their chunks; ``chunk_vectors[i]`` is the L2-normalised embedding of ``chunks[i]``.
        run_at: "now" for age and dated-content rules (UTC), fixed per run so results are reproducible.
        index_version: the release tag audited ("" for an unpublished source).
        dead_links: URLs the crawl found gone (404/410) -> why, e.g. "HTTP 404 while crawling".
        reviews: per-source review rules by source id; sources not listed use the defaults.
        escalations: article id -> redacted escalated ticket queries whose best-matching article it is.
    """

    articles: Sequence[Article]
    chunks: Sequence[Chunk]
    chunk_vectors: np.ndarray
    run_at: datetime
    index_version: str = ""
    dead_links: Mapping[str, str] = field(default_factory=dict)
    reviews: Mapping[str, ReviewSettings] = field(default_factory=dict)
    escalations: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # A prebuilt k-NN index over chunk_vectors' rows (a published release's vector index), or None: search
    # in memory.
    chunk_index: NeighbourIndex | None = None

    def __post_init__(self) -> None:
        if len(self.chunks) != len(self.chunk_vectors):
            raise ValueError(f"{len(self.chunks)} chunks but {len(self.chunk_vectors)} vectors")

    def review_for(self, source_id: str) -> ReviewSettings:
        return self.reviews.get(source_id) or ReviewSettings()

    @cached_property
    def article_by_id(self) -> dict[str, Article]:
        return {article.article_id: article for article in self.articles}

    @cached_property
    def article_by_url(self) -> dict[str, Article]:
        return {article.url: article for article in self.articles}

    @cached_property
    def chunk_rows_by_article(self) -> dict[str, list[int]]:
        rows: dict[str, list[int]] = {}
        for row, chunk in enumerate(self.chunks):
            rows.setdefault(chunk.article_id, []).append(row)
        return rows

    @cached_property
    def article_vectors(self) -> np.ndarray:
        """Row i is article i's mean chunk vector, re-normalised (zeros for an article without chunks)."""
        dim = self.chunk_vectors.shape[1] if self.chunk_vectors.ndim == 2 else 0
        out = np.zeros((len(self.articles), dim), dtype=np.float32)
        for i, article in enumerate(self.articles):
            rows = self.chunk_rows_by_article.get(article.article_id)
            if rows:
                mean = self.chunk_vectors[rows].mean(axis=0)
                norm = float(np.linalg.norm(mean))
                if norm > 0:
                    out[i] = mean / norm
        return out

    @cached_property
    def inbound_links(self) -> dict[str, int]:
        """Article id -> how many other articles link to it (for choosing a canonical article)."""
        counts: dict[str, int] = {}
        for article in self.articles:
            for link in {link.split("#", 1)[0] for link in article.links}:  # anchors of one page count once
                target = self.article_by_url.get(link)
                if target is not None and target.article_id != article.article_id:
                    counts[target.article_id] = counts.get(target.article_id, 0) + 1
        return counts


class Detector(Protocol):
    """Finds one kind of health problem. ``name`` and ``version`` go into every finding it makes."""

    name: str
    version: str

    def detect(self, corpus: AuditCorpus) -> Iterator[Finding]: ...


def severity_for(score: float, *, medium: float = 0.4, high: float = 0.7) -> Severity:
    if score >= high:
        return "high"
    if score >= medium:
        return "medium"
    return "low"
