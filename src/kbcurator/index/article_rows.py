"""The articles a reindex run has read, kept in the index database rather than in the process.

A run writes each source's articles to its read table (``staged_read_<run id>``) as they are parsed, a slice at a
time, and keeps in memory only their ids and content hashes (~0.2 KB an article in Arrow, against ~12 KB as
Python objects: 40,600 articles were 0.5 GB). :class:`ArticleRows` is a sequence of :class:`Article` over that
table: the build plans from the ids and hashes, and the chunking reads the articles back a batch at a time. The
table is the run's own and is dropped once the candidate's articles table is written (``kbcurator.index.staging``
explains the staging tables and how a killed run's are removed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

import numpy as np
import pyarrow as pa

from kbcurator.index import schema
from kbcurator.index.staging import StagedRows, columns_of
from kbcurator.index.store import IndexStore, lance_errors
from kbcurator.records import Article

ARTICLE_FIELDS = tuple(field.name for field in dataclasses.fields(Article))
# Articles read back from the table at a time (whole rows, bodies included: ~1 MB at 8 KB an article).
_READ_ROWS = 128
# Articles converted to Arrow and written at a time while a source is read.
_WRITE_ARTICLES = 1_024


def staged_reads(store: IndexStore, run_id: str) -> StagedRows:
    """The run's table of the articles it reads, in the order read (``schema.articles_schema``; the chunk policy
    column is filled when the candidate's articles are written)."""
    return StagedRows(store, f"{schema.STAGED_PREFIX}read_{run_id}", schema.articles_schema())


def articles_table(articles: Sequence[Article], chunk_policy: str) -> pa.Table:
    """Articles as rows of the articles table."""
    rows = [{**{name: getattr(a, name) for name in ARTICLE_FIELDS}, "links": list(a.links)} for a in articles]
    for row in rows:
        row["chunk_policy"] = chunk_policy
    return pa.Table.from_pylist(rows, schema=schema.articles_schema())


def article_of(row: dict[str, Any]) -> Article:
    """An article from a row of the articles table."""
    return Article(**{name: row[name] for name in ARTICLE_FIELDS if name != "links"}, links=tuple(row["links"] or ()))


class ArticleWriter:
    """Appends articles to a run's read table as a source yields them, a slice at a time."""

    def __init__(self, rows: StagedRows) -> None:
        self._rows = rows
        self.pending: list[Article] = []  # added, not yet written

    def add(self, article: Article) -> None:
        self.pending.append(article)
        if len(self.pending) >= _WRITE_ARTICLES:
            self.flush()

    def flush(self) -> None:
        """Write what is added (each slice is written through: none waits in the table's own buffer)."""
        if self.pending:
            self._rows.append(articles_table(self.pending, ""))
            self.pending = []
        self._rows.flush()


class ArticleRows(Sequence[Article]):
    """Some rows of a run's read table, in order, as a sequence of articles read back on demand.

    ``ids`` and ``hashes`` (the article ids and content hashes of these rows) are in memory; an article is read
    when it is asked for, and iterating reads ``_READ_ROWS`` at a time. A slice is another view, read nothing.
    """

    def __init__(
        self, rows: StagedRows, ids: pa.Array, hashes: pa.Array, positions: np.ndarray | None = None, *, table: Any
    ) -> None:
        self._rows = rows
        self._table = table  # the read table's LanceDB handle
        self._all_ids = ids
        self._all_hashes = hashes
        self._positions = np.arange(len(ids), dtype=np.int64) if positions is None else positions

    @classmethod
    def of(cls, store: IndexStore, rows: StagedRows) -> ArticleRows:
        """Every article of the read table ``rows`` of ``store``."""
        keys = columns_of(rows, ["article_id", "content_hash"])
        with lance_errors(f"cannot open {rows.name!r}"):
            table = store.db.open_table(rows.name)
        ids, hashes = keys["article_id"].combine_chunks(), keys["content_hash"].combine_chunks()
        return cls(rows, ids, hashes, table=table)

    def __len__(self) -> int:
        return len(self._positions)

    @overload
    def __getitem__(self, index: int) -> Article: ...

    @overload
    def __getitem__(self, index: slice) -> ArticleRows: ...

    def __getitem__(self, index: int | slice) -> Article | ArticleRows:
        if isinstance(index, slice):
            return self.subset(self._positions[index])
        return self._read(self._positions[[index]])[0]

    def __iter__(self) -> Iterator[Article]:
        for start in range(0, len(self._positions), _READ_ROWS):
            yield from self._read(self._positions[start : start + _READ_ROWS])

    def subset(self, positions: np.ndarray) -> ArticleRows:
        """The rows at ``positions`` of the read table (not of this view), in the order given."""
        chosen = np.asarray(positions, dtype=np.int64)
        return ArticleRows(self._rows, self._all_ids, self._all_hashes, chosen, table=self._table)

    def select(self, keep: Iterable[bool]) -> ArticleRows:
        """The rows of this view for which ``keep`` is true."""
        mask = np.fromiter(keep, dtype=bool, count=len(self._positions))
        return self.subset(self._positions[mask])

    def ids(self) -> list[str]:
        return [str(v) for v in self._all_ids.take(pa.array(self._positions)).to_pylist()]

    def hashes(self) -> list[str]:
        return [str(v) for v in self._all_hashes.take(pa.array(self._positions)).to_pylist()]

    def tables(self, chunk_policy: str, columns: list[str] | None = None) -> Iterator[pa.Table]:
        """These rows as rows of the articles table (``columns``, or all), a few hundred at a time."""
        for start in range(0, len(self._positions), _READ_ROWS * 8):
            table = self._take(self._positions[start : start + _READ_ROWS * 8], columns)
            if "chunk_policy" in table.column_names:
                policy = pa.array([chunk_policy] * table.num_rows, type=pa.string())
                table = table.set_column(table.schema.get_field_index("chunk_policy"), "chunk_policy", policy)
            yield table

    def _read(self, positions: np.ndarray) -> list[Article]:
        return [article_of(row) for row in self._take(positions, None).to_pylist()]

    def _take(self, positions: np.ndarray, columns: list[str] | None) -> pa.Table:
        names = columns or self._rows.schema.names
        if not len(positions):
            return pa.Table.from_pylist([], schema=pa.schema([self._rows.schema.field(n) for n in names]))
        self._rows.flush()
        order = np.argsort(positions, kind="stable")
        read = names if "article_id" in names else [*names, "article_id"]
        with lance_errors(f"cannot read the run's articles from {self._rows.name!r}"):
            data = self._table.take_offsets(positions[order].tolist()).select(read).to_arrow()
        # Offsets are taken in ascending order; each row is put back where ``positions`` asks for it, and checked
        # against the id held for it (the read table is only ever appended to, so offsets do not move).
        expected = self._all_ids.take(pa.array(positions[order])).to_pylist()
        got = data["article_id"].to_pylist()
        if got != expected:
            by_id = {article_id: i for i, article_id in enumerate(got)}
            missing = [a for a in expected if a not in by_id]
            if missing:
                raise ValueError(f"{len(missing)} articles are missing from {self._rows.name!r}")
            data = data.take(pa.array([by_id[a] for a in expected]))
        data = data.select(names)
        return data.take(pa.array(np.argsort(order, kind="stable")))


class RunReads:
    """A run's read table: created when its first source is read, dropped when the run has no more use for it.

    A source read that fails part-way takes back what it wrote (the table goes back to its version before the
    read), so a retried source is not staged twice.
    """

    def __init__(self, store: IndexStore, run_id: str) -> None:
        self._store = store
        self._run_id = run_id
        self.rows: StagedRows | None = None

    def write(self, articles: Iterable[Article]) -> int:
        """Stage ``articles`` in the order given; returns how many. All or none: on an error none stays."""
        if self.rows is None:
            self.rows = staged_reads(self._store, self._run_id)
        with lance_errors(f"cannot open {self.rows.name!r}"):
            table = self._store.db.open_table(self.rows.name)
            before = int(table.version)
        writer = ArticleWriter(self.rows)
        count = 0
        try:
            for article in articles:
                writer.add(article)
                count += 1
            writer.flush()
        except BaseException:
            with lance_errors(f"cannot take back the articles staged in {self.rows.name!r}"):
                table.restore(before)
            raise
        return count

    def articles(self) -> ArticleRows | None:
        """Every article staged so far, in the order read (None: nothing was read yet)."""
        return ArticleRows.of(self._store, self.rows) if self.rows is not None else None

    def drop(self) -> None:
        if self.rows is not None:
            self.rows.drop()
            self.rows = None
