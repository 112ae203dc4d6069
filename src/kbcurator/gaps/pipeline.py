"""Tickets to clusters: the steps the ``cluster`` command and the ``gaps`` flow share.

Every step takes explicit arguments; the embedder, the clusterer and the cache are injected.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from kbcurator.config.tickets import TicketSourceConfig
from kbcurator.embedding.base import Embedder
from kbcurator.errors import ConfigError
from kbcurator.gaps.clustering import LONG_TAIL, TicketClusterer
from kbcurator.gaps.coverage import Verdict
from kbcurator.gaps.labels import ClusterLabel
from kbcurator.gaps.tickets import load_tickets, select_tickets
from kbcurator.index.embedding_cache import EmbeddingCache, embed_with_cache
from kbcurator.index.store import IndexStore
from kbcurator.records import GapCluster, Rejected, Ticket, sha256_hex
from kbcurator.spreadsheet import sheet_text

_SUFFIX_FORMATS: dict[str, Literal["csv", "jsonl", "zendesk"]] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "zendesk",
}


def ticket_source_for_file(
    path: str | Path, *, source_id: str = "tickets", fmt: str | None = None
) -> TicketSourceConfig:
    """A ticket source for a bare export file, its format read from the suffix unless given."""
    location = Path(path)
    chosen = fmt or _SUFFIX_FORMATS.get(location.suffix.lower())
    if chosen is None:
        raise ConfigError(f"cannot tell the format of {location}: use --format csv, jsonl or zendesk")
    return TicketSourceConfig.model_validate({"id": source_id, "format": chosen, "location": str(location)})


@dataclass(frozen=True, slots=True)
class LoadedTickets:
    tickets: tuple[Ticket, ...]  # the ones that count for gap analysis (see TicketSelection)
    rejected: tuple[Rejected, ...]
    loaded: int  # valid tickets before selection
    # Valid tickets, counted or not, that name the article that solved them: golden questions for the index.
    linked: tuple[Ticket, ...] = ()


def read_tickets(
    source: TicketSourceConfig,
    *,
    store: IndexStore | None = None,
    environ: Mapping[str, str] | None = None,
    full: bool = False,
) -> LoadedTickets:
    """One source's tickets. A ``zendesk_api`` source keeps its tickets and cursor in ``store`` and reads its token
    from ``environ``; ``full`` refetches it from the start of its window."""
    valid: list[Ticket] = []
    rejected: list[Rejected] = []
    for item in load_tickets(source, store=store, environ=environ, full=full):
        if isinstance(item, Rejected):
            rejected.append(item)
        else:
            valid.append(item)
    linked = tuple(t for t in valid if t.solved_by)
    return LoadedTickets(tuple(select_tickets(valid, source.which)), tuple(rejected), len(valid), linked)


def embed_tickets(tickets: Sequence[Ticket], embedder: Embedder, cache: EmbeddingCache) -> tuple[np.ndarray, int]:
    """One vector per ticket, and how many texts were embedded now: a ticket text embedded before with the
    same model comes from the cache."""
    hashes = [sha256_hex(t.text) for t in tickets]
    vectors, embedded = embed_with_cache(dict(zip(hashes, (t.text for t in tickets), strict=True)), embedder, cache)
    if not hashes:
        return np.zeros((0, embedder.dimension), dtype=np.float32), 0
    return np.stack([vectors[h] for h in hashes]).astype(np.float32), embedded


@dataclass(frozen=True, slots=True)
class GapLabels:
    """Gap cluster ids per ticket (``-1``: in no gap) and the share the clusterer itself left as noise."""

    labels: np.ndarray
    noise_share_before: float


# Clustered into gaps, each verdict on its own: a gap of partly answered questions ("extend article X") never
# absorbs questions the KB does not touch ("write a new article"), nor the reverse.
GAP_VERDICTS: tuple[Verdict, ...] = ("unanswered", "partly")


def cluster_gaps(
    vectors: np.ndarray,
    verdicts: Sequence[Verdict],
    clusterer: TicketClusterer | None = None,
    *,
    unreadable: np.ndarray | None = None,
) -> GapLabels:
    """Coverage first, then clusters: cluster only the tickets the release does not answer, the unanswered and
    the partly answered ones separately; answered tickets join no gap (``-1``). Cluster ids are unique across
    the two groups, unanswered first. Tickets flagged ``unreadable`` (``gaps.readable``) join no gap either:
    they stay in the long tail, where the report lists them."""
    if len(verdicts) != len(vectors):
        raise ValueError(f"{len(verdicts)} verdicts but {len(vectors)} vectors")
    if unreadable is not None and len(unreadable) != len(vectors):
        raise ValueError(f"{len(unreadable)} readability flags but {len(vectors)} vectors")
    skip = np.zeros(len(vectors), dtype=bool) if unreadable is None else np.asarray(unreadable, dtype=bool)
    clusterer = clusterer or TicketClusterer()
    labels = np.full(len(vectors), LONG_TAIL, dtype=np.int64)
    offset, noise, clustered = 0, 0.0, 0
    for verdict in GAP_VERDICTS:
        rows = np.asarray([i for i, v in enumerate(verdicts) if v == verdict and not skip[i]], dtype=np.int64)
        if len(rows) < 2:  # one question is no cluster; it stays in the long tail
            continue
        result = clusterer.fit_predict(vectors[rows])
        found = np.asarray(result.labels)
        labels[rows] = np.where(found == LONG_TAIL, LONG_TAIL, found + offset)
        offset = int(labels.max()) + 1 if (labels != LONG_TAIL).any() else offset
        noise += float(result.noise_share_before) * len(rows)
        clustered += len(rows)
    return GapLabels(labels, noise / clustered if clustered else 0.0)


def describe_clusters(
    tickets: Sequence[Ticket],
    labels: np.ndarray,
    names: dict[int, ClusterLabel],
) -> list[GapCluster]:
    """GapCluster records from cluster labels and their c-TF-IDF names (largest cluster first)."""
    members: dict[int, list[int]] = {}
    for row, label in enumerate(labels.tolist()):
        if label != LONG_TAIL:
            members.setdefault(int(label), []).append(row)
    clusters = []
    for cluster_id, rows in members.items():
        name = names.get(cluster_id)  # absent only when the caller labels nothing (tests, a bare export)
        dates = [d for d in (tickets[r].created_at for r in rows) if d is not None]
        clusters.append(
            GapCluster(
                cluster_id=cluster_id,
                label=name.label if name else f"cluster {cluster_id}",
                keywords=tuple(name.keywords) if name else (),
                central_query=name.central_query if name else tickets[rows[0]].text,
                representatives=tuple(name.representatives) if name else (),
                size=len(rows),
                escalation_share=round(sum(tickets[r].escalated for r in rows) / len(rows), 4),
                first_seen_at=min(dates) if dates else None,
                last_seen_at=max(dates) if dates else None,
                ticket_ids=tuple(tickets[r].ticket_id for r in rows),
            )
        )
    return sorted(clusters, key=lambda c: (-c.size, c.cluster_id))


def write_cluster_outputs(
    out_dir: Path,
    tickets: Sequence[Ticket],
    labels: np.ndarray,
    clusters: Iterable[GapCluster],
    rejected: Sequence[Rejected],
    summary: dict[str, Any],
    *,
    long_tail_listed: int = 200,
) -> dict[str, Path]:
    """Write ``assignments.csv`` (ticket_id, cluster_id; -1 = long tail), ``clusters.json`` and
    ``rejected.jsonl``. Every text written is the redacted one held by the Ticket records; a ticket id that a
    spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``) is written as text."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "assignments": out_dir / "assignments.csv",
        "clusters": out_dir / "clusters.json",
        "rejected": out_dir / "rejected.jsonl",
    }
    with paths["assignments"].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ticket_id", "cluster_id"])
        for ticket, label in zip(tickets, labels.tolist(), strict=True):
            writer.writerow([sheet_text(ticket.ticket_id), int(label)])
    tail = [t.text for t, label in zip(tickets, labels.tolist(), strict=True) if label == LONG_TAIL]
    document = {
        **summary,
        "clusters": [
            {
                "id": c.cluster_id,
                "label": c.label,
                "keywords": list(c.keywords),
                "size": c.size,
                "escalation_share": c.escalation_share,
                "first_seen_at": c.first_seen_at.isoformat() if c.first_seen_at else None,
                "last_seen_at": c.last_seen_at.isoformat() if c.last_seen_at else None,
                "central_query": c.central_query,
                "representative_queries": list(c.representatives),
            }
            for c in clusters
        ],
        "long_tail": {"size": len(tail), "queries": tail[:long_tail_listed]},
    }
    paths["clusters"].write_text(json.dumps(document, indent=1, ensure_ascii=False), encoding="utf-8")
    with paths["rejected"].open("w", encoding="utf-8") as handle:
        for item in rejected:
            handle.write(json.dumps(asdict(item)) + "\n")
    return paths
