"""The read side for RAG services: open a release (current, a tag, or a number) and search it.

Every search names the score column it reads (``_distance``, ``_score``) in its projection: LanceDB otherwise adds
it itself and logs a deprecation warning on every search ("did not include `_distance`"). Hybrid search is fused
here (reciprocal rank fusion over a vector and a full-text search) rather than by LanceDB's hybrid builder, whose
two legs share one projection and so cannot each name their own score column.

A release without a vector index and of at most ``AnnSettings.exact_max_chunks`` chunks is searched in memory
(:class:`_InMemory`): its vectors, unit-normalised, and the columns a hit and a filter read are loaded once per view,
and a vector search is one matrix-vector product, with the same hits, in the same order, as LanceDB's flat scan at a
fraction of its cost. Full-text search stays in LanceDB.

A release with a vector index and of at most ``AnnSettings.hit_columns_max_chunks`` chunks keeps only the columns a
hit reads in memory (:class:`_HitColumns`, by LanceDB row id, read once per view): the search, its filter and its
re-ranking stay in LanceDB, which returns row ids and scores only, and the hits' columns come from memory, where
LanceDB would read them from disk one row and column at a time (about 40% of a vector search's time at 231k chunks).
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kbcurator.config.ann import AnnSettings
from kbcurator.embedding.base import Embedder
from kbcurator.errors import PublishError
from kbcurator.index import schema
from kbcurator.index.ann import VECTOR_COLUMN, has_vector_index, is_hnsw, tune_query
from kbcurator.index.build import vector_matrix
from kbcurator.index.store import CURRENT, IndexStore, lance_errors, manifest_of, sql_text
from kbcurator.records import IndexRelease
from kbcurator.runtime import release_freed_memory

SearchMode = Literal["vector", "hybrid", "fts"]

# Reciprocal rank fusion's constant, as in LanceDB's RRFReranker and the original paper (Cormack et al., 2009).
RRF_K = 60
_Loaded = TypeVar("_Loaded")  # what a view reads once per release (its chunks, or its hit columns)

_HIT_COLUMNS = [
    "chunk_id",
    "article_id",
    "url",
    "title",
    "heading",
    "heading_path",
    "text",
    "locale",
    "updated_at",
    "content_hash",
]
_SQL_SAFE_TEXT = re.compile(r"^[^\x00-\x1f\x7f]*$")


@dataclass(frozen=True, slots=True)
class SearchHit:
    chunk_id: str
    article_id: str
    url: str
    title: str
    heading: str
    text: str
    score: float  # what ranked the hit: cosine similarity (vector), fused RRF relevance (hybrid), BM25 (fts)
    similarity: float | None = None  # cosine similarity to the query, when the query was embedded
    heading_path: tuple[str, ...] = ()
    locale: str = ""
    updated_at: datetime | None = None
    content_hash: str = ""  # of the chunk's embedded text: identical chunks share it


@dataclass(frozen=True, slots=True)
class ArticleFacet:
    """What a search filters and de-duplicates on that only the articles table holds."""

    source_id: str
    section: str
    locale: str
    content_hash: str


@dataclass(frozen=True, slots=True)
class ChunkFilter:
    """Restricts a search to some chunks; every field left empty restricts nothing. Values are matched exactly.

    ``article_ids`` is what a filter on the articles table (a section) resolves to; ``source_ids`` match the
    prefix of the article id (``records.make_article_id``).
    """

    source_ids: tuple[str, ...] = ()
    article_ids: tuple[str, ...] | None = None  # None: any article; (): none
    locales: tuple[str, ...] = ()
    updated_after: datetime | None = None

    def where(self) -> str | None:
        """The filter as a LanceDB (DataFusion SQL) predicate, every value quoted; None when it filters nothing.

        Raises:
            ValueError: a value holds a control character (none of the index's values do).
        """
        clauses: list[str] = []
        if self.source_ids:
            clauses.append(
                "(" + " OR ".join(f"starts_with(article_id, {sql_string(s + ':')})" for s in self.source_ids) + ")"
            )
        if self.article_ids is not None:
            clauses.append(f"article_id IN ({_sql_list(self.article_ids)})" if self.article_ids else "FALSE")
        if self.locales:
            clauses.append(f"locale IN ({_sql_list(self.locales)})")
        if self.updated_after is not None:
            clauses.append(f"updated_at > {sql_timestamp(self.updated_after)}")
        return " AND ".join(clauses) or None


def sql_string(value: str) -> str:
    """``value`` as a SQL string literal: single quotes doubled, control characters refused."""
    if not _SQL_SAFE_TEXT.match(value):
        raise ValueError(f"a filter value may not hold control characters: {value[:40]!r}")
    return sql_text(value)


def sql_timestamp(moment: datetime) -> str:
    """A UTC timestamp literal (a naive ``moment`` is read as UTC, like every ``_at`` of the index)."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return f"TIMESTAMP '{moment.strftime('%Y-%m-%dT%H:%M:%S.%f')}+00:00'"


def _sql_list(values: Iterable[str]) -> str:
    return ", ".join(sql_string(value) for value in values)


def check_query_embedder(release: IndexRelease, embedder: Embedder) -> None:
    """Raises PublishError when ``embedder`` is not the model ``release`` was built with."""
    manifest = manifest_of(release)
    if embedder.name != manifest["model"] or embedder.dimension != manifest["dimension"]:
        raise PublishError(
            f"{release.tag} was built with {manifest['model']} ({manifest['dimension']} dims); "
            f"the query embedder is {embedder.name} ({embedder.dimension} dims)"
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MASKS_KEPT = 32  # filters whose row mask an in-memory view keeps (a search's fetch rounds reuse one)
# Below this share of the rows kept by a filter, the product reads only the kept rows' vectors.
_SUBSET_SHARE = 0.25


class _InMemory:
    """One release's chunks for exact vector search in memory: unit vectors and the columns hits and filters read.

    Row ``i`` of ``unit`` is item ``i`` of each of ``columns`` (the hit columns, as Python values: a hit's row is
    built from them in microseconds, where Arrow's ``to_pylist`` takes a quarter of a millisecond for 40 rows) and
    row ``i`` of ``filtered`` (the columns a filter reads). A search ranks by cosine similarity, ties by chunk id;
    a filter is the :class:`ChunkFilter` LanceDB would apply as SQL, evaluated with SQL's nulls (a null never
    matches).
    """

    def __init__(self, data: pa.Table) -> None:
        vectors = data["vector"].combine_chunks()
        count, dimension = len(vectors), vectors.type.list_size
        values = vectors.values.slice(vectors.offset * dimension, count * dimension)
        matrix = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(count, dimension)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        self.unit = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
        # What LanceDB never returns: a row without a vector, or a zero one (its cosine distance is undefined).
        searchable = (norms[:, 0] > 0) & ~np.asarray(vectors.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        self.searchable: np.ndarray | None = None if bool(searchable.all()) else searchable
        self.columns: dict[str, list[Any]] = {
            name: data[name].to_pylist() for name in _HIT_COLUMNS if name != "updated_at"
        }
        # updated_at as microseconds, made a datetime for a hit only (23k of them up front: ~0.3 s of zoneinfo).
        updated = pc.cast(data["updated_at"], pa.timestamp("us", tz="UTC")).cast(pa.int64())
        self.updated_valid = np.asarray(updated.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        self.updated_us = np.asarray(updated.fill_null(0).to_numpy(), dtype=np.int64)
        self.filtered = data.select(["article_id", "locale", "updated_at"]).combine_chunks()
        self.rank = np.empty(count, dtype=np.int64)  # of each row's chunk id in sorted order: breaks ties
        self.rank[pc.sort_indices(data["chunk_id"]).to_numpy()] = np.arange(count, dtype=np.int64)
        self.positions = {chunk_id: i for i, chunk_id in enumerate(self.columns["chunk_id"])}
        self._masks: OrderedDict[ChunkFilter, np.ndarray | None] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.rank)

    def search(self, vector: np.ndarray, limit: int, chunk_filter: ChunkFilter | None) -> list[dict[str, Any]]:
        """The top ``limit`` rows by cosine similarity to ``vector`` among those ``chunk_filter`` keeps, as
        :meth:`KBIndex._vector_rows` returns them (hit columns, ``_distance`` and ``similarity``)."""
        query = _unit(np.asarray(vector, dtype=np.float32).reshape(-1))
        kept = self.mask(chunk_filter)
        if kept is None:
            candidates, scores = None, _dot(self.unit, query)
        else:
            candidates = np.flatnonzero(kept)
            if len(candidates) < _SUBSET_SHARE * len(self):
                scores = _dot(self.unit[candidates], query)
            else:
                scores = _dot(self.unit, query)[candidates]
        ranks = self.rank if candidates is None else self.rank[candidates]
        top = _top(scores, ranks, limit)
        picked = top if candidates is None else candidates[top]
        rows: list[dict[str, Any]] = []
        for position, score in zip(picked.tolist(), scores[top].tolist(), strict=True):
            row = self.row(position)
            row["_distance"] = 1.0 - score
            row["similarity"] = score
            rows.append(row)
        return rows

    def row(self, position: int) -> dict[str, Any]:
        """The hit columns of row ``position``, as LanceDB returns them."""
        row = {name: values[position] for name, values in self.columns.items()}
        row["updated_at"] = (
            _EPOCH + timedelta(microseconds=int(self.updated_us[position])) if self.updated_valid[position] else None
        )
        return row

    def mask(self, chunk_filter: ChunkFilter | None) -> np.ndarray | None:
        """The rows a search may return under ``chunk_filter`` (None: every row)."""
        if chunk_filter is None:
            return self.searchable
        with self._lock:
            if chunk_filter in self._masks:
                self._masks.move_to_end(chunk_filter)
                return self._masks[chunk_filter]
        kept = self._filtered(chunk_filter)
        with self._lock:
            self._masks[chunk_filter] = kept
            while len(self._masks) > _MASKS_KEPT:
                self._masks.popitem(last=False)
        return kept

    def _filtered(self, chunk_filter: ChunkFilter) -> np.ndarray | None:
        """:meth:`ChunkFilter.where` as a row mask: each clause as SQL evaluates it, nulls as false."""
        clauses: list[Any] = []
        article_id = self.filtered["article_id"]
        if chunk_filter.source_ids:
            prefixes = [pc.starts_with(article_id, pattern=source + ":") for source in chunk_filter.source_ids]
            either = prefixes[0]
            for prefix in prefixes[1:]:
                either = pc.or_kleene(either, prefix)
            clauses.append(either)
        if chunk_filter.article_ids is not None:
            if not chunk_filter.article_ids:
                return np.zeros(len(self), dtype=bool)
            clauses.append(pc.is_in(article_id, value_set=pa.array(chunk_filter.article_ids, pa.string())))
        if chunk_filter.locales:
            clauses.append(pc.is_in(self.filtered["locale"], value_set=pa.array(chunk_filter.locales, pa.string())))
        if chunk_filter.updated_after is not None:
            moment = chunk_filter.updated_after
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
            column = self.filtered["updated_at"]
            clauses.append(pc.greater(column, pa.scalar(moment, type=pa.timestamp("us", tz="UTC")).cast(column.type)))
        if not clauses:
            return self.searchable
        kept = clauses[0]
        for clause in clauses[1:]:
            kept = pc.and_kleene(kept, clause)
        mask = np.asarray(pc.fill_null(kept, False).to_numpy(zero_copy_only=False), dtype=bool)
        return mask if self.searchable is None else mask & self.searchable


class _HitColumns:
    """The hit columns of one chunks table version in memory, by LanceDB row id (not the vectors).

    Row ids are those of the version the columns were read at, which is the version every search of the view reads:
    a row id LanceDB returns that is not here (none should be) makes :meth:`rows` return None, and the caller asks
    LanceDB for the columns instead.
    """

    def __init__(self, data: pa.Table) -> None:
        row_ids = np.asarray(data["_rowid"].to_numpy(), dtype=np.uint64)
        columns = data.select(_HIT_COLUMNS)
        if len(row_ids) > 1 and not bool(np.all(row_ids[1:] > row_ids[:-1])):
            order = np.argsort(row_ids, kind="stable")
            row_ids, columns = row_ids[order], columns.take(order)
        self.row_ids = row_ids
        # One chunk per column: taking 40 rows from the scan's hundreds of batches costs ~30 ms, from one ~0.2 ms.
        self.columns = columns.combine_chunks()

    def __len__(self) -> int:
        return len(self.row_ids)

    @property
    def nbytes(self) -> int:
        """The memory the columns and row ids hold."""
        return int(self.columns.nbytes + self.row_ids.nbytes)

    def rows(self, row_ids: np.ndarray) -> list[dict[str, Any]] | None:
        """The hit columns of ``row_ids``, in that order, as LanceDB returns them; None where one is not here."""
        wanted = np.asarray(row_ids, dtype=np.uint64)
        if len(wanted) == 0:
            return []
        positions = np.searchsorted(self.row_ids, wanted)
        if bool((positions >= len(self.row_ids)).any()):
            return None
        if not bool(np.array_equal(self.row_ids[positions], wanted)):
            return None
        return list(self.columns.take(positions).to_pylist())


def _dot(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``matrix @ vector`` in this thread: numpy's own loop, not BLAS, whose threads a matrix-vector product does not
    pay for (23k x 384 on 2 busy cores: 1.5 ms against 10 ms with OpenBLAS's threads, 3 ms with one), and which
    would contend with the other searches of a server's thread pool."""
    return np.einsum("ij,j->i", matrix, vector)


def _top(scores: np.ndarray, ranks: np.ndarray, limit: int) -> np.ndarray:
    """Positions of the ``limit`` highest ``scores``, highest first, equal scores in ``ranks`` order (a score
    equal to the last one kept is ranked with it, so which of equal scores make the cut is decided by ``ranks``)."""
    if limit <= 0 or len(scores) == 0:
        return np.zeros(0, dtype=np.int64)
    if len(scores) > limit:
        part = np.argpartition(-scores, limit - 1)[:limit]
        picked = np.flatnonzero(scores >= scores[part].min())
    else:
        picked = np.arange(len(scores))
    order = np.lexsort((ranks[picked], -scores[picked]))
    return picked[order[:limit]]


class KBIndex:
    """A pinned view of one release. ``refresh()`` moves a view opened on "current" to the newest one.

    Vector and hybrid search go through the release's vector index where its chunks version has one, with
    the search breadth of ``ann`` (defaults: :class:`~kbcurator.settings.AnnSettings`), the hits' columns read from
    memory up to ``ann.hit_columns_max_chunks`` chunks (read once per view); otherwise exactly: in memory up to
    ``ann.exact_max_chunks`` chunks (the release's vectors read once per view), else by LanceDB's flat scan.
    Thread-safe for searches; ``refresh()`` is not meant to run beside them.
    """

    def __init__(
        self,
        store: IndexStore,
        ref: str | int | None,
        embedder: Embedder | None,
        *,
        ann: AnnSettings | None = None,
        release: IndexRelease | None = None,
    ) -> None:
        self.store = store
        self._ref = CURRENT if ref is None else ref
        self._embedder = embedder
        self._ann = ann or AnnSettings()
        self.release: IndexRelease = release if release is not None else store.resolve(self._ref)
        self._chunks: Any = None
        self._vector_index: tuple[bool, bool] | None = None  # (has one, is HNSW) at the release's version
        self._facets: dict[str, ArticleFacet] | None = None
        # (release seq, its in-memory copy or None where searches go to LanceDB), once decided.
        self._memory: tuple[int, _InMemory | None] | None = None
        # (release seq, its hit columns or None where LanceDB reads them), once decided.
        self._columns: tuple[int, _HitColumns | None] | None = None
        self._memory_lock = threading.Lock()

    @property
    def manifest(self) -> dict[str, Any]:
        return manifest_of(self.release)

    @property
    def has_fts(self) -> bool:
        """Whether the release was published with a full-text index on the chunks' text."""
        return bool(self.manifest.get("fts"))

    def refresh(self) -> bool:
        """Follow "current" to a newer release; a view pinned to a tag or number never moves."""
        if self._ref != CURRENT:
            return False
        newest = self.store.resolve(CURRENT)
        moved = newest.seq != self.release.seq
        if moved:
            self.release, self._chunks, self._vector_index, self._facets = newest, None, None, None
            self._memory, self._columns = None, None
        return moved

    def _table(self) -> Any:
        if self._chunks is None:
            self._chunks = self.store.open_at(schema.CHUNKS, self.release.chunks_version)
        return self._chunks

    @property
    def has_vector_index(self) -> bool:
        """Whether searches of this release go through an approximate vector index (else they are exact)."""
        return self._index_kind()[0]

    def _index_kind(self) -> tuple[bool, bool]:
        if self._vector_index is None:
            table = self._table()
            with lance_errors(f"cannot list the indices of {self.release.tag}"):
                self._vector_index = (has_vector_index(table), is_hnsw(table))
        return self._vector_index

    @property
    def searches_in_memory(self) -> bool:
        """Whether vector searches of this release are answered from memory (loading it on the first call)."""
        return self._in_memory() is not None

    def _in_memory(self) -> _InMemory | None:
        """The release's chunks in memory, read on first use; None where vector searches go to LanceDB (a vector
        index, more chunks than ``exact_max_chunks``, or the path turned off)."""
        return self._once_per_release("_memory", self._read_in_memory)

    def _read_in_memory(self, release: IndexRelease) -> _InMemory | None:
        limit = self._ann.exact_max_chunks
        if limit <= 0 or self.has_vector_index:
            return None
        table = self._table()
        with lance_errors(f"cannot read the chunks of {release.tag}"):
            if table.count_rows() > limit:
                return None
            columns = list(dict.fromkeys([*_HIT_COLUMNS, "vector"]))
            return _InMemory(table.search().select(columns).limit(None).to_arrow())

    def _once_per_release(self, slot: str, read: Callable[[IndexRelease], _Loaded | None]) -> _Loaded | None:
        """What ``read`` makes of the view's release, kept in attribute ``slot`` as (release seq, value) and read
        again only when the view moves to another release (one thread reads; the others wait for it)."""
        cached = getattr(self, slot)
        if cached is not None and cached[0] == self.release.seq:
            return cast("_Loaded | None", cached[1])
        with self._memory_lock:
            release = self.release
            cached = getattr(self, slot)
            if cached is not None and cached[0] == release.seq:
                return cast("_Loaded | None", cached[1])
            value = read(release)
            setattr(self, slot, (release.seq, value))
            return value

    @property
    def hit_columns_in_memory(self) -> bool:
        """Whether the hits of searches through the vector index read their columns from memory (loading them on
        the first call)."""
        return self._hit_columns() is not None

    def _hit_columns(self) -> _HitColumns | None:
        """The release's hit columns in memory, read on first use; None where LanceDB reads them (no vector index,
        more chunks than ``hit_columns_max_chunks``, or the path turned off)."""
        return self._once_per_release("_columns", self._read_hit_columns)

    def _read_hit_columns(self, release: IndexRelease) -> _HitColumns | None:
        limit = self._ann.hit_columns_max_chunks
        if limit <= 0 or not self.has_vector_index:
            return None
        table = self._table()
        with lance_errors(f"cannot read the chunks of {release.tag}"):
            if table.count_rows() > limit:
                return None
            columns = _HitColumns(table.search().select(_HIT_COLUMNS).with_row_id(True).limit(None).to_arrow())
        # LanceDB's scan frees its buffers once copied; glibc keeps them (231k chunks: ~630 MB more after the read,
        # ~250 MB once trimmed: the columns' 226 MB and a little).
        release_freed_memory()
        return columns

    def _tuned(self, query: Any, k: int) -> Any:
        query = query.distance_type("cosine")  # the metric the index was trained with, and the one we report
        indexed, hnsw = self._index_kind()
        return tune_query(query, self._ann, k, hnsw=hnsw) if indexed else query

    def _embedder_for_release(self) -> Embedder:
        if self._embedder is None:
            from kbcurator.embedding.sentence import load_embedder

            self._embedder = load_embedder(self.manifest["model"])
        check_query_embedder(self.release, self._embedder)
        return self._embedder

    def article_facets(self) -> dict[str, ArticleFacet]:
        """Source, section, locale and content hash of every article of the release, by article id (read once)."""
        if self._facets is None:
            columns = ["article_id", "source_id", "section", "locale", "content_hash"]
            rows = self.store.read_table(schema.ARTICLES, self.release.articles_version, columns).to_pylist()
            self._facets = {
                row["article_id"]: ArticleFacet(
                    source_id=row["source_id"] or "",
                    section=row["section"] or "",
                    locale=row["locale"] or "",
                    content_hash=row["content_hash"] or "",
                )
                for row in rows
            }
        return self._facets

    def search(self, text: str, k: int = 5, mode: SearchMode = "hybrid") -> list[SearchHit]:
        """Top ``k`` chunks for ``text``. Hybrid falls back to vector search when the release has no
        full-text index."""
        return self.query(text, mode=mode, limit=k)

    def query(
        self,
        text: str,
        *,
        mode: SearchMode,
        limit: int,
        where: str | None = None,
        vector: np.ndarray | None = None,
        chunk_filter: ChunkFilter | None = None,
    ) -> list[SearchHit]:
        """The top ``limit`` chunks for ``text`` among those ``chunk_filter`` keeps, or ``where`` (a SQL predicate
        such as :meth:`ChunkFilter.where`; one of the two at most).

        ``vector`` is the query's embedding when the caller has it (a batch embeds its queries at once); vector
        and hybrid search embed ``text`` otherwise. Hybrid search without a full-text index is a vector search.
        A ``where`` string is searched by LanceDB, a ``chunk_filter`` in memory too (see :class:`KBIndex`).

        Raises:
            PublishError: the release cannot be read, or the query embedder is not the release's model.
            ValueError: both ``where`` and ``chunk_filter``, or a filter value that cannot be quoted.
        """
        if chunk_filter is not None:
            if where is not None:
                raise ValueError("a search takes a where string or a chunk filter, not both")
            where = chunk_filter.where()
        if mode == "fts":
            with lance_errors(f"full-text search failed on {self.release.tag}"):
                return _hits(self._fts_rows(text, limit, where, columns=self._hit_columns()), "_score", None)
        if vector is None:
            vector = self._embedder_for_release().embed([text])[0]
        with lance_errors(f"search failed on {self.release.tag}"):
            memory = self._in_memory() if where is None or chunk_filter is not None else None
            columns = self._hit_columns() if memory is None else None
            if memory is not None:
                vector_rows = memory.search(vector, limit, chunk_filter)
            else:
                vector_rows = self._vector_rows(vector, limit, where, columns)
            if mode == "vector" or not self.has_fts:
                return _hits(vector_rows, "similarity", vector)
            try:
                if memory is not None:
                    fts_rows = self._fts_rows_from(memory, text, limit, where, vector)
                else:
                    known = {row["chunk_id"] for row in vector_rows}
                    fts_rows = self._fts_rows(text, limit, where, columns=columns, vectors_except=known)
            except (RuntimeError, ValueError) as exc:  # the full-text index missing at this version
                if "index" not in str(exc).lower():
                    raise
                return _hits(vector_rows, "similarity", vector)
            return _fused(vector_rows, fts_rows, vector, limit)

    def _vector_rows(
        self, vector: np.ndarray, limit: int, where: str | None, columns: _HitColumns | None = None
    ) -> list[dict[str, Any]]:
        """LanceDB's vector search, its hits' columns from ``columns`` where given (LanceDB returns row ids)."""
        rows: list[dict[str, Any]] | None = None
        if columns is not None:
            found = self._nearest_row_ids(vector, limit, where)
            rows = columns.rows(found["_rowid"].to_numpy())
            if rows is not None:
                for row, distance in zip(rows, found["_distance"].to_pylist(), strict=True):
                    row["_distance"] = distance
        if rows is None:
            query = self._table().search(vector)
            if where:
                query = query.where(where, prefilter=True)
            query = self._tuned(query, limit).select([*_HIT_COLUMNS, "_distance"])
            rows = query.limit(limit).to_arrow().to_pylist()
        for row in rows:
            row["similarity"] = 1.0 - float(row["_distance"])
        return rows

    def _nearest_row_ids(self, vector: np.ndarray, limit: int, where: str | None) -> pa.Table:
        """Row ids (``_rowid``) and ``_distance`` of LanceDB's vector search, the same search as the full one.

        Asked through the table's async handle where LanceDB has one (the sync query builder asks the table for its
        schema three times a search, each a round trip to LanceDB's event loop: ~1.4 ms of a 9.4 ms search at 231k
        chunks, lancedb 0.40), else through the sync builder.
        """
        table = self._table()
        handle = _async_handle(table)
        if handle is None:
            query = table.search(vector)
            if where:
                query = query.where(where, prefilter=True)
            return self._tuned(query, limit).select(["_distance"]).with_row_id(True).limit(limit).to_arrow()
        from lancedb.background_loop import LOOP

        query = handle.vector_search(np.asarray(vector, dtype=np.float32)).column(VECTOR_COLUMN)
        if where:
            query = query.where(where)  # a prefilter, the async builder's default
        query = self._tuned(query, limit).select(["_distance"]).with_row_id().limit(limit)
        found: pa.Table = LOOP.run(query.to_arrow())
        return found

    def _text_row_ids(self, text: str, limit: int, where: str | None) -> pa.Table:
        """Row ids (``_rowid``) and ``_score`` of LanceDB's full-text search, as :meth:`_nearest_row_ids` asks."""
        table = self._table()
        handle = _async_handle(table)
        if handle is None:
            query = table.search(text, query_type="fts")
            if where:
                query = query.where(where, prefilter=True)
            return query.select(["_score"]).with_row_id(True).limit(limit).to_arrow()
        from lancedb.background_loop import LOOP

        query = handle.query().nearest_to_text(text)
        if where:
            query = query.where(where)
        found: pa.Table = LOOP.run(query.select(["_score"]).with_row_id().limit(limit).to_arrow())
        return found

    def _fts_rows_from(
        self, memory: _InMemory, text: str, limit: int, where: str | None, vector: np.ndarray
    ) -> list[dict[str, Any]]:
        """Full-text hits whose columns and similarity come from the release in memory: LanceDB returns only chunk
        ids and scores, so it does not read 40 rows' text from disk (about half of a full-text search's time)."""
        query = self._table().search(text, query_type="fts")
        if where:
            query = query.where(where, prefilter=True)
        found = query.select(["chunk_id", "_score"]).limit(limit).to_arrow()
        unit = _unit(np.asarray(vector, dtype=np.float32).reshape(-1))
        rows: list[dict[str, Any]] = []
        for chunk_id, score in zip(found["chunk_id"].to_pylist(), found["_score"].to_pylist(), strict=True):
            position = memory.positions.get(chunk_id)
            if position is None:  # not in the release's rows: cannot be, but ask LanceDB then
                return self._fts_rows(text, limit, where, vectors_except=set())
            row = memory.row(position)
            row["_score"] = score
            row["similarity"] = float(memory.unit[position] @ unit)
            rows.append(row)
        return rows

    def _fts_rows(
        self,
        text: str,
        limit: int,
        where: str | None,
        *,
        columns: _HitColumns | None = None,
        vectors_except: set[str] | None = None,
    ) -> list[dict[str, Any]]:
        """LanceDB's full-text search, its hits' columns from ``columns`` where given (LanceDB returns row ids).

        ``vectors_except``: the hits also carry their vector (``vector``), but for these chunk ids (the vector
        search's own hits, whose similarity the fusion already has): with ``columns``, only those few vectors
        are read from disk.
        """
        table = self._table()
        rows: list[dict[str, Any]] | None = None
        if columns is not None:
            found = self._text_row_ids(text, limit, where)
            row_ids = found["_rowid"].to_numpy()
            rows = columns.rows(row_ids)
            vectors: dict[int, np.ndarray] = {}
            wanted: list[int] = []
            if rows is not None and vectors_except is not None:
                wanted = [
                    row_id
                    for row_id, row in zip(row_ids.tolist(), rows, strict=True)
                    if row["chunk_id"] not in vectors_except
                ]
                vectors = _vectors_by_row_id(table, wanted)
            if rows is not None and len(vectors) == len(wanted):  # else (cannot be) LanceDB reads them all
                for row_id, row, score in zip(row_ids.tolist(), rows, found["_score"].to_pylist(), strict=True):
                    row["_score"] = score
                    if row_id in vectors:
                        row["vector"] = vectors[row_id]
                return rows
        query = table.search(text, query_type="fts")
        if where:
            query = query.where(where, prefilter=True)
        selected = [*_HIT_COLUMNS, "_score", *(["vector"] if vectors_except is not None else [])]
        return list(query.select(selected).limit(limit).to_arrow().to_pylist())


def _async_handle(table: Any) -> Any | None:
    """The ``AsyncTable`` a sync LanceDB table wraps (the same open table, caches and version), or None."""
    from lancedb.table import AsyncTable

    handle = getattr(table, "_table", None)
    return handle if isinstance(handle, AsyncTable) else None


def _vectors_by_row_id(table: Any, row_ids: list[int]) -> dict[int, np.ndarray]:
    """The vectors of ``row_ids`` (LanceDB does not promise its take's order: each is matched by its row id)."""
    if not row_ids:
        return {}
    taken = table.take_row_ids(row_ids).select(["vector"]).with_row_id().to_arrow()
    matrix = vector_matrix(taken["vector"])
    asked = set(row_ids)
    return {row_id: matrix[i] for i, row_id in enumerate(taken["_rowid"].to_pylist()) if row_id in asked}


def _fused(
    vector_rows: list[dict[str, Any]], fts_rows: list[dict[str, Any]], vector: np.ndarray, limit: int
) -> list[SearchHit]:
    """Reciprocal rank fusion of the two searches; every hit keeps its cosine similarity to the query."""
    by_id: dict[str, dict[str, Any]] = {}
    fused: dict[str, float] = {}
    for rows in (vector_rows, fts_rows):
        for rank, row in enumerate(rows, start=1):
            chunk_id = row["chunk_id"]
            by_id.setdefault(chunk_id, row)
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    query = _unit(vector)
    for row in by_id.values():
        if "similarity" not in row:  # found by full text only: its similarity from its stored vector
            row["similarity"] = float(_unit(np.asarray(row["vector"], dtype=np.float32)) @ query)
        row["_fused"] = fused[row["chunk_id"]]
    ranked = sorted(by_id.values(), key=lambda row: (-row["_fused"], -row["similarity"], row["chunk_id"]))
    return _hits(ranked[:limit], "_fused", vector)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def _hits(rows: Sequence[dict[str, Any]], score_column: str, vector: np.ndarray | None) -> list[SearchHit]:
    return [
        SearchHit(
            chunk_id=row["chunk_id"],
            article_id=row["article_id"],
            url=row["url"],
            title=row["title"],
            heading=row["heading"] or "",
            text=row["text"],
            score=float(row[score_column]),
            similarity=_finite(row.get("similarity")) if vector is not None else None,
            heading_path=tuple(row.get("heading_path") or ()),
            locale=row.get("locale") or "",
            updated_at=_utc(row.get("updated_at")),
            content_hash=row.get("content_hash") or "",
        )
        for row in rows
    ]


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def open_index(
    uri: str,
    version: str | int | None = None,
    *,
    embedder: Embedder | None = None,
    storage_options: dict[str, str] | None = None,
    ann: AnnSettings | None = None,
) -> KBIndex:
    """Open a release for reading: ``version`` is None or "current", a tag ("release-0003"), or a number.

    The query embedder defaults to the model recorded in the release's manifest; ``ann`` sets the search
    breadth through a vector index (``Settings.ann``), where the release has one.
    """
    return KBIndex(IndexStore(uri, storage_options=storage_options), version, embedder, ann=ann)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number
