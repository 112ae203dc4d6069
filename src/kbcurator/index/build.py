"""Turn parsed articles into the rows of a release, reusing what the current release already holds.

An article whose content hash and chunking policy match the current release (embedded with the same
model) keeps its chunks and vectors without being partitioned or embedded again; other articles are
chunked, and their chunks are embedded only when the embedding cache lacks their content hash.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kbcurator.chunking import ChunkPolicy, chunk_articles, embedding_input
from kbcurator.embedding.base import Embedder
from kbcurator.index import schema
from kbcurator.index.article_rows import ArticleRows, articles_table
from kbcurator.index.embedding_cache import EmbeddingCache, embed_with_cache
from kbcurator.index.staging import Rows, StagedRows
from kbcurator.index.store import IndexStore, manifest_of
from kbcurator.records import Article, Chunk, IndexRelease, Rejected, RejectionCode

_ARTICLE_FIELDS_ON_CHUNKS = ("url", "title", "locale", "updated_at")


@dataclass(frozen=True, slots=True)
class BuildStats:
    articles: int
    chunks: int
    articles_reused: int
    articles_chunked: int
    chunks_embedded: int
    chunks_from_cache: int
    chunk_seconds: float
    embed_seconds: float


@dataclass(frozen=True, slots=True)
class ReleaseCandidate:
    """Everything a publish needs, before the checks have run."""

    # Each an Arrow table (assembled in memory), or the run's staging table (a reindex): read them through
    # ``kbcurator.index.staging`` (columns_of, batches_of, reader_of), which take either.
    articles: Rows
    chunks: Rows
    model: str
    dimension: int
    chunk_policy: str
    stats: BuildStats
    rejected: tuple[Rejected, ...] = field(default=())
    # The release current when the build started (its seq; 0: none yet). Publish refuses the candidate if another
    # release became current meanwhile: its change list and row-count checks were made against this one.
    # None: assembled by hand, base unknown, not checked.
    base_seq: int | None = None


def vector_matrix(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A fixed-size-list vector column as one (rows, dimension) float32 matrix."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    dimension = array.type.list_size
    return np.asarray(array.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, dimension)


def chunks_table(rows: Sequence[dict[str, Any]], matrix: np.ndarray, dimension: int) -> pa.Table:
    """The chunks table from rows without vectors and their vectors, row ``i`` of ``matrix`` for ``rows[i]``."""
    target = schema.chunks_schema(dimension)
    vector_field = target.field("vector")
    table = pa.Table.from_pylist(list(rows), schema=pa.schema([f for f in target if f.name != "vector"]))
    if len(matrix) != table.num_rows or (len(matrix) and matrix.shape[1] != dimension):
        raise ValueError(f"{len(matrix)} vectors of shape {matrix.shape[1:]} for {table.num_rows} rows of {dimension}")
    flat = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1), type=pa.float32())
    vectors = pa.FixedSizeListArray.from_arrays(flat, type=vector_field.type)
    return table.append_column(vector_field, vectors).select(target.names)


def _row_hash(row: dict[str, Any]) -> str:
    payload = {k: v for k, v in row.items() if k not in ("vector", "row_hash")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _chunk_row(article: Article, chunk: Chunk) -> dict[str, Any]:
    return {
        "chunk_id": chunk.chunk_id,
        "article_id": chunk.article_id,
        "position": chunk.position,
        "text": chunk.text,
        "heading_path": list(chunk.heading_path),
        "heading": " > ".join(chunk.heading_path),
        "char_start": chunk.char_start,
        "char_end": chunk.char_end,
        "content_hash": chunk.content_hash,
        "url": article.url,
        "title": article.title,
        "locale": article.locale,
        "updated_at": article.updated_at,
    }


_REUSE_READ_ROWS = 8_192


def _reusable_article_ids(
    store: IndexStore, current: IndexRelease | None, keys: Iterable[tuple[str, str]], model: str, policy: str
) -> tuple[set[str], int]:
    """The unchanged articles the current release holds under this model and policy, and how many chunks it has
    of them (only the chunks' article ids are read here)."""
    if current is None:
        return set(), 0
    manifest = manifest_of(current)
    if manifest.get("model") != model or manifest.get("chunk_policy") != policy:
        return set(), 0
    previous = store.read_table(
        schema.ARTICLES, current.articles_version, ["article_id", "content_hash", "chunk_policy"]
    )
    previous_hash = dict(zip(previous["article_id"].to_pylist(), previous["content_hash"].to_pylist(), strict=True))
    reuse = {article_id for article_id, content_hash in keys if previous_hash.get(article_id) == content_hash}
    if not reuse:
        return set(), 0
    owners = store.read_table(schema.CHUNKS, current.chunks_version, ["article_id"])["article_id"]
    count = pc.sum(pc.is_in(owners, value_set=pa.array(sorted(reuse), type=pa.string()))).as_py()
    return reuse, int(count or 0)


@dataclass(frozen=True, slots=True, eq=False)
class BuildPlan:
    """What a build starts from: the unique articles, and which of them the current release already holds."""

    # A tuple, or (a reindex) the articles the run staged as it read them (``ArticleRows``), read back when chunked.
    ordered: Sequence[Article]
    reuse_ids: frozenset[str]
    to_chunk: Sequence[Article]
    rejected: tuple[Rejected, ...]
    current_tag: str
    current_seq: int = 0
    reused_count: int = 0  # the current release's chunks of the unchanged articles
    # Those chunk rows, as stored (vectors included), read a batch at a time when the candidate takes them: Arrow
    # columns, never the whole table at once (at 200k chunks, ~0.5 GB).
    reused_batches: Callable[[], Iterator[pa.Table]] | None = None


@dataclass(frozen=True, slots=True)
class ChunkedBatch:
    """One batch of articles chunked (a unit of work a worker can do alone): rows still without vectors."""

    rows: tuple[dict[str, Any], ...]
    texts_by_hash: dict[str, str]  # content hash -> the text to embed
    article_ids: tuple[str, ...]  # articles that produced chunks
    rejected: tuple[Rejected, ...]
    seconds: float


def plan_build(articles: Iterable[Article], *, store: IndexStore, model: str, policy: ChunkPolicy) -> BuildPlan:
    """Drop repeated article ids (the first occurrence wins) and find what the current release can give back.

    ``articles`` staged by the run (``ArticleRows``) are planned from their ids and hashes alone: only the
    repeated ones are read, to name them."""
    rejected: list[Rejected] = []
    reason = "duplicate of an article already read"
    ordered: Sequence[Article]
    if isinstance(articles, ArticleRows):
        seen: set[str] = set()
        first: list[bool] = []
        for position, article_id in enumerate(articles.ids()):
            first.append(article_id not in seen)
            seen.add(article_id)
            if not first[-1]:
                again = articles[position]
                rejected.append(Rejected(again.url, "build", reason, again.source_id, code=RejectionCode.DUPLICATE))
        ordered = articles.select(first)
        keys = list(zip(ordered.ids(), ordered.hashes(), strict=True))
    else:
        unique: dict[str, Article] = {}
        for article in articles:
            if article.article_id in unique:
                rejected.append(Rejected(article.url, "build", reason, article.source_id, code=RejectionCode.DUPLICATE))
                continue
            unique[article.article_id] = article
        ordered = tuple(unique.values())
        keys = [(a.article_id, a.content_hash) for a in ordered]
    current = store.current()
    reuse_ids, reused_count = _reusable_article_ids(store, current, keys, model, policy.policy_hash)
    reused_batches = None
    if current is not None and reuse_ids:
        wanted = pa.array(sorted(reuse_ids), type=pa.string())
        version = current.chunks_version

        def reused_batches() -> Iterator[pa.Table]:
            for batch in store.batches(schema.CHUNKS, version, None, batch_rows=_REUSE_READ_ROWS):
                rows = pa.Table.from_batches([batch])
                kept = rows.filter(pc.is_in(rows["article_id"], value_set=wanted))
                if kept.num_rows:
                    yield kept

    to_chunk = [article_id not in reuse_ids for article_id, _ in keys]
    return BuildPlan(
        ordered=ordered,
        reuse_ids=frozenset(reuse_ids),
        to_chunk=_chosen(ordered, to_chunk),
        rejected=tuple(rejected),
        current_tag=current.tag if current else "",
        current_seq=current.seq if current else 0,
        reused_count=reused_count,
        reused_batches=reused_batches,
    )


def _chosen(articles: Sequence[Article], keep: list[bool]) -> Sequence[Article]:
    """The articles for which ``keep`` is true, in order (a view, for staged articles)."""
    if isinstance(articles, ArticleRows):
        return articles.select(keep)
    return tuple(a for a, kept in zip(articles, keep, strict=True) if kept)


def _article_fields(
    articles: Sequence[Article], wanted: Collection[str], names: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """``names`` of the articles whose ids are ``wanted``, by id (for staged articles, read as columns)."""
    if isinstance(articles, ArticleRows):
        chosen = articles.select(article_id in wanted for article_id in articles.ids())
        return {
            row["article_id"]: row for table in chosen.tables("", ["article_id", *names]) for row in table.to_pylist()
        }
    return {a.article_id: {name: getattr(a, name) for name in names} for a in articles if a.article_id in wanted}


def chunk_batch(articles: Iterable[Article], policy: ChunkPolicy) -> ChunkedBatch:
    """Chunk articles into rows awaiting vectors. Pure: needs neither the store nor the model."""
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    texts_by_hash: dict[str, str] = {}
    article_ids: list[str] = []
    rejected: list[Rejected] = []
    for outcome in chunk_articles(articles, policy):
        if isinstance(outcome, Rejected):
            rejected.append(outcome)
            continue
        article, chunks = outcome
        article_ids.append(article.article_id)
        for chunk in chunks:
            rows.append(_chunk_row(article, chunk))
            texts_by_hash[chunk.content_hash] = embedding_input(article.title, chunk.text)
    return ChunkedBatch(
        rows=tuple(rows),
        texts_by_hash=texts_by_hash,
        article_ids=tuple(article_ids),
        rejected=tuple(rejected),
        seconds=time.perf_counter() - started,
    )


def _ids_of(articles: Sequence[Article]) -> list[str]:
    return articles.ids() if isinstance(articles, ArticleRows) else [a.article_id for a in articles]


class CandidateParts:
    """The chunks table of a candidate, assembled part by part as the build goes: the rows reused from the current
    release, then each chunked batch with its vectors. Each part becomes Arrow columns when it is added, so a build
    holds its chunk rows as Python objects one batch at a time, not all at once."""

    _SLICE_ROWS = 4096  # articles made Arrow rows this many at a time

    def __init__(self, plan: BuildPlan, dimension: int, *, staged: tuple[StagedRows, StagedRows] | None = None) -> None:
        """``staged``: the (chunks, articles) tables to write the parts to as they come (a reindex), not to tables
        in memory."""
        self._plan = plan
        self._dimension = dimension
        self._staged = staged
        self._parts: list[pa.Table] = []
        self._article_ids: set[str] = set(plan.reuse_ids)
        self._new_hashes: set[str] = set()
        self._rejected: list[Rejected] = list(plan.rejected)
        if plan.reused_batches is not None:
            self._add_reused(plan.reused_batches())

    def _add_reused(self, reused: Iterable[pa.Table]) -> None:
        articles = _article_fields(self._plan.ordered, self._plan.reuse_ids, _ARTICLE_FIELDS_ON_CHUNKS)
        for part in reused:
            rows = part.drop_columns(["vector"]).to_pylist()
            for row in rows:
                article = articles[row["article_id"]]
                # Metadata copied from the article may change without the text changing (updated_at, url).
                for name in _ARTICLE_FIELDS_ON_CHUNKS:
                    row[name] = article[name]
            self._append(rows, vector_matrix(part["vector"]))

    def add(self, batch: ChunkedBatch, vectors: Mapping[str, np.ndarray]) -> None:
        """A chunked batch, with a vector for each of its chunks' content hashes."""
        self._article_ids.update(batch.article_ids)
        self._new_hashes.update(batch.texts_by_hash)
        self._rejected.extend(batch.rejected)
        if batch.rows:
            matrix = np.stack([vectors[row["content_hash"]] for row in batch.rows])
            self._append([dict(row) for row in batch.rows], matrix)

    def _append(self, rows: list[dict[str, Any]], matrix: np.ndarray) -> None:
        for row in rows:
            row["row_hash"] = _row_hash(row)
        part = chunks_table(rows, matrix, self._dimension)
        if self._staged is not None:
            self._staged[0].append(part)
        else:
            self._parts.append(part)

    def candidate(
        self,
        *,
        model: str,
        policy: ChunkPolicy,
        chunks_embedded: int,
        chunk_seconds: float,
        embed_seconds: float,
    ) -> ReleaseCandidate:
        """The release candidate of every part added."""
        plan = self._plan
        kept_in_order = _chosen(plan.ordered, [a in self._article_ids for a in _ids_of(plan.ordered)])
        chunks: Rows
        articles: Rows
        if self._staged is not None:
            chunks, articles = self._staged
            if isinstance(kept_in_order, ArticleRows):  # copied from the run's read table, a slice at a time
                for table in kept_in_order.tables(policy.policy_hash):
                    articles.append(table)
            else:
                for start in range(0, len(kept_in_order), self._SLICE_ROWS):  # Arrow a slice at a time
                    articles.append(articles_table(kept_in_order[start : start + self._SLICE_ROWS], policy.policy_hash))
            chunks.flush()
            articles.flush()
        else:
            articles = articles_table(kept_in_order, policy.policy_hash)
            if self._parts:
                chunks = pa.concat_tables(self._parts).combine_chunks()
            else:
                chunks = chunks_table([], np.zeros((0, self._dimension), dtype=np.float32), self._dimension)
        stats = BuildStats(
            articles=len(kept_in_order),
            chunks=chunks.num_rows,
            articles_reused=len(plan.reuse_ids),
            articles_chunked=len(plan.to_chunk),
            chunks_embedded=chunks_embedded,
            chunks_from_cache=len(self._new_hashes) - chunks_embedded,
            chunk_seconds=round(chunk_seconds, 3),
            embed_seconds=round(embed_seconds, 3),
        )
        return ReleaseCandidate(
            articles=articles,
            chunks=chunks,
            model=model,
            dimension=self._dimension,
            chunk_policy=policy.policy_hash,
            stats=stats,
            rejected=tuple(self._rejected),
            base_seq=plan.current_seq,
        )


def build_candidate(
    articles: Iterable[Article],
    *,
    store: IndexStore,
    embedder: Embedder,
    policy: ChunkPolicy,
    on_progress: Callable[[str], None] | None = None,
    checkpoint_every: int = 256,
) -> ReleaseCandidate:
    """Chunk and embed ``articles`` into a release candidate in this process (nothing is published here).

    Vectors are written to the embedding cache every ``checkpoint_every`` chunks, which bounds the
    work an interrupted run loses. The reindex flow runs the same stages as tasks on a Dask cluster when
    the settings ask for one.

    Duplicate article ids (the same canonical URL reached twice) keep the first occurrence.
    """
    say = on_progress or (lambda _message: None)
    plan = plan_build(articles, store=store, model=embedder.name, policy=policy)
    say(f"reusing {len(plan.reuse_ids)} unchanged articles ({plan.reused_count} chunks) from {plan.current_tag or '-'}")
    parts = CandidateParts(plan, embedder.dimension)
    batch = chunk_batch(plan.to_chunk, policy)
    say(f"chunked {len(plan.to_chunk)} new or changed articles into {len(batch.rows)} chunks in {batch.seconds:.1f} s")
    started = time.perf_counter()
    vectors, embedded = embed_with_cache(
        batch.texts_by_hash,
        embedder,
        EmbeddingCache(store),
        batch_size=checkpoint_every,
        on_batch=lambda done, total: say(f"embedded {done}/{total} chunks"),
    )
    parts.add(batch, vectors)
    return parts.candidate(
        model=embedder.name,
        policy=policy,
        chunks_embedded=embedded,
        chunk_seconds=batch.seconds,
        embed_seconds=time.perf_counter() - started,
    )
