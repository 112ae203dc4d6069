"""Failing articles: escalated tickets that the KB had an article for.

An escalated ticket whose question the release answers (its best chunk clears the calibrated ``answered_lift``,
see kbcurator.gaps.coverage) means the article was there and the customer still needed a human: the article is
unclear, wrong or incomplete. The staleness detector (kbcurator.analysis.staleness) turns these into
``failing_article`` findings; it takes them as plain data (article id -> queries), so the two features stay apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from kbcurator.config.tickets import TicketSourceConfig
from kbcurator.embedding.base import Embedder
from kbcurator.gaps.coverage import CoveragePolicy, ReleaseVectors, judge_tickets
from kbcurator.gaps.pipeline import embed_tickets
from kbcurator.gaps.tickets import load_tickets
from kbcurator.index.embedding_cache import EmbeddingCache
from kbcurator.records import Ticket


def escalations_by_article(
    tickets: Sequence[Ticket], vectors: np.ndarray, kb: ReleaseVectors, *, min_lift: float
) -> dict[str, tuple[str, ...]]:
    """Article id -> the (redacted) escalated queries it answers by the coverage rule, most similar first."""
    if len(tickets) != len(vectors):
        raise ValueError(f"{len(tickets)} tickets but {len(vectors)} vectors")
    escalated = [i for i, t in enumerate(tickets) if t.escalated]
    if not escalated:
        return {}
    # The gaps run's own per-ticket decision (gaps.coverage): "answered" here is "answered" in the gaps report.
    policy = CoveragePolicy(answered_lift=min_lift, related_lift=min_lift, covered_share=1.0)
    judgement = judge_tickets(vectors[escalated], kb, policy)
    found: dict[str, list[tuple[float, str]]] = {}
    for position, ticket_row in enumerate(escalated):
        row = int(judgement.chunk_rows[position])
        if row < 0 or judgement.verdicts[position] != "answered":
            continue  # no article answers it: a knowledge gap, not a failing article
        similarity = float(judgement.similarity[position])
        found.setdefault(kb.article_ids[row], []).append((similarity, tickets[ticket_row].text))
    return {article: tuple(text for _, text in sorted(hits, reverse=True)) for article, hits in found.items()}


def escalated_tickets(sources: Iterable[TicketSourceConfig]) -> list[Ticket]:
    """Every valid escalated ticket of the declared sources, whatever the gap selection (rejects are the gap
    flow's to report)."""
    return [item for source in sources for item in load_tickets(source) if isinstance(item, Ticket) and item.escalated]


def ticket_escalations(
    sources: Sequence[TicketSourceConfig],
    kb: ReleaseVectors,
    *,
    embedder_factory: Callable[[], Embedder],
    cache: EmbeddingCache,
    min_lift: float,
) -> dict[str, tuple[str, ...]]:
    """Escalations by article for the declared ticket sources; the model is loaded only if a ticket escalated."""
    tickets = escalated_tickets(sources)
    if not tickets:
        return {}
    vectors, _ = embed_tickets(tickets, embedder_factory(), cache)
    return escalations_by_article(tickets, vectors, kb, min_lift=min_lift)
