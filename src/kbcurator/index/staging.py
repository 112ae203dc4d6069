"""A reindex run's candidate in the index database, written a batch at a time while the build runs.

The build adds each batch of chunk rows (with their vectors) as it is embedded, and the candidate's articles as
it goes; the run then checks the candidate, measures its golden questions and publishes it by reading these two
tables a batch or a few columns at a time. The process never holds the candidate whole, so its memory grows with
the help center only by what stays small: ids and hashes (a chunk row with its MiniLM vector is ~2.5 KB in Arrow,
~12 KB as Python objects; an article ~8 KB in Arrow; 200k chunks made gigabytes).

A candidate assembled in memory (``build_candidate``, tests, benchmarks) keeps its tables in memory; the functions
here read either kind the same way. The tables are the run's own (``schema.STAGED_PREFIX``, the kind, the run id)
and are dropped when the run ends; one left by a killed run is dropped by a later run once it is
``STAGED_MAX_AGE`` old (a run still writing it then is not plausible).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import pyarrow as pa

from kbcurator.index import schema
from kbcurator.index.store import IDS_PER_FILTER, PAGE_ROWS, IndexStore, lance_errors, pages, sql_in

logger = logging.getLogger(__name__)

STAGED_MAX_AGE = timedelta(days=2)
# Rows buffered before one write: each write is a LanceDB fragment and version, and 16k rows of MiniLM chunks are
# ~40 MB in Arrow.
_WRITE_ROWS = 16_384
_READ_ROWS = 65_536


class StagedRows:
    """One table of a run's candidate in the index database (its chunks, or its articles): appended to while the
    build runs, then read (``columns_of``, ``batches_of``, ``reader_of``) until the run drops it."""

    def __init__(self, store: IndexStore, name: str, table_schema: pa.Schema) -> None:
        self.name = name
        self._store = store
        self._table = store.create_staged(name, table_schema)
        self.schema: pa.Schema = self._table.schema  # as LanceDB stores it: what its batches carry
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self.num_rows = 0

    def append(self, part: pa.Table) -> None:
        """Add rows (the table's columns); written once enough are buffered."""
        self._pending.append(part.select(self.schema.names))
        self._pending_rows += part.num_rows
        self.num_rows += part.num_rows
        if self._pending_rows >= _WRITE_ROWS:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered; the build calls it once the last rows are added."""
        if not self._pending:
            return
        data = pa.concat_tables(self._pending)
        self._pending, self._pending_rows = [], 0
        with lance_errors(f"cannot write the staged rows to {self.name!r}"):
            self._table.add(data)

    def _table_now(self) -> Any:
        self.flush()
        return self._table

    def columns(self, columns: list[str]) -> pa.Table:
        with lance_errors(f"cannot read the staged rows in {self.name!r}"):
            table = self._table_now()
            return table.search().select(columns).limit(None).to_arrow().select(columns)

    def batches(self, columns: list[str] | None, batch_rows: int) -> Iterator[pa.RecordBatch]:
        # A page (one query) at a time: a streaming scan reads ahead with the table's size (``store.pages``).
        with lance_errors(f"cannot read the staged rows in {self.name!r}"):
            yield from pages(self._table_now(), columns, batch_rows)

    def matching(self, column: str, values: list[str]) -> Iterator[pa.RecordBatch]:
        """The rows whose ``column`` is one of ``values``, ``IDS_PER_FILTER`` values per query: the few rows a
        publish rewrites, without reading the rest of the table."""
        with lance_errors(f"cannot read the staged rows in {self.name!r}"):
            table = self._table_now()
            for start in range(0, len(values), IDS_PER_FILTER):
                query = table.search().where(sql_in(column, values[start : start + IDS_PER_FILTER]))
                yield from query.limit(None).to_arrow().to_batches()

    def drop(self) -> None:
        """Remove the table (the run is over). Best effort: a later run removes what is left."""
        self._pending, self._pending_rows = [], 0
        try:
            self._store.drop_table(self.name)
        except Exception as exc:  # the run's outcome stands; drop_stale_staging removes it later
            logger.warning("could not remove the staging table %s: %s", self.name, exc)


def staged_chunks(store: IndexStore, run_id: str, dimension: int) -> StagedRows:
    """The run's staging table for its candidate's chunks (``schema.chunks_schema``)."""
    return StagedRows(store, f"{schema.STAGED_PREFIX}chunks_{run_id}", schema.chunks_schema(dimension))


def staged_articles(store: IndexStore, run_id: str) -> StagedRows:
    """The run's staging table for its candidate's articles (``schema.articles_schema``)."""
    return StagedRows(store, f"{schema.STAGED_PREFIX}articles_{run_id}", schema.articles_schema())


Rows: TypeAlias = pa.Table | StagedRows


def columns_of(rows: Rows, columns: list[str]) -> pa.Table:
    """Whole columns of a candidate's table: only small ones (ids, hashes, titles), never its text or vectors."""
    return rows.select(columns) if isinstance(rows, pa.Table) else rows.columns(columns)


def batches_of(
    rows: Rows, columns: list[str] | None = None, *, batch_rows: int = _READ_ROWS
) -> Iterator[pa.RecordBatch]:
    """A candidate's table (``columns``, or all of them) a batch of at most ``batch_rows`` rows at a time; one empty
    batch (with the columns) when there is no row."""
    table = (rows.select(columns) if columns else rows) if isinstance(rows, pa.Table) else None
    batches = table.to_batches(max_chunksize=batch_rows) if table is not None else rows.batches(columns, batch_rows)
    empty = True
    for batch in batches:
        empty = False
        yield batch
    if empty:
        table_schema = table.schema if table is not None else rows.schema
        names = columns or table_schema.names
        yield pa.RecordBatch.from_pylist([], schema=pa.schema([table_schema.field(n) for n in names]))


def reader_of(rows: Rows) -> pa.RecordBatchReader:
    """Every row and column of a candidate's table, as a stream (what a publish merges from)."""
    if isinstance(rows, pa.Table):
        return rows.to_reader(max_chunksize=PAGE_ROWS)
    return pa.RecordBatchReader.from_batches(rows.schema, rows.batches(None, PAGE_ROWS))


def drop_staging(rows: Rows) -> None:
    """Drop a candidate's staging table; nothing for a table in memory."""
    if isinstance(rows, StagedRows):
        rows.drop()


def drop_stale_staging(store: IndexStore, *, now: datetime | None = None) -> list[str]:
    """Remove the staging tables of runs started more than ``STAGED_MAX_AGE`` ago (left by killed runs)."""
    limit = (now or datetime.now(UTC)) - STAGED_MAX_AGE
    dropped = []
    for name in store.table_names():
        if not name.startswith(schema.STAGED_PREFIX):
            continue
        run_id = name.removeprefix(schema.STAGED_PREFIX).partition("_")[2]
        try:
            started = datetime.strptime(run_id.split("-", 1)[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            continue  # not a run id this code makes: not ours to remove
        if started < limit:
            store.drop_table(name)
            dropped.append(name)
    return dropped
