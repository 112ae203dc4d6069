"""The LanceDB database behind an index: tables, releases, and which release is current.

Any URI LanceDB accepts works (a local directory, ``s3://...`` with ``storage_options``); nothing here
assumes a local path except creating the directory for a plain local one.

Opening a database checks its schema version (``index.migrations``): one written by a newer kbcurator is refused,
an older one is migrated first, so a database written before a migration needs write access the first time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lancedb
import pyarrow as pa

from kbcurator.errors import PublishError
from kbcurator.index import migrations, schema
from kbcurator.records import IndexRelease

CURRENT = "current"
TAG_PREFIX = "release-"
# LanceDB's cache of table manifests and file metadata, per open database (see IndexStore).
METADATA_CACHE_BYTES = 128 * 1024 * 1024

logger = logging.getLogger(__name__)


def tag_for(seq: int) -> str:
    """The tag a publish puts on both tables' versions: ``release-0007`` for release 7."""
    return f"{TAG_PREFIX}{seq:04d}"


# A panic inside LanceDB's Rust code (a damaged data file can cause one) reaches Python as one of these, never
# as an OSError: pyo3's PanicException derives from BaseException, not Exception, and the async runtime's
# RustPanic from Exception only. Matched by name: neither module can be imported to name the class.
_RUST_PANICS = frozenset({"PanicException", "RustPanic"})


def is_rust_panic(exc: BaseException) -> bool:
    return type(exc).__name__ in _RUST_PANICS


@contextmanager
def lance_errors(action: str) -> Iterator[None]:
    """Map LanceDB/Arrow/IO exceptions, Rust panics included, to ``PublishError`` at this boundary."""
    try:
        yield
    except PublishError:
        raise
    except (OSError, ValueError, RuntimeError, pa.ArrowException) as exc:
        raise PublishError(f"{action}: {exc}") from exc
    except BaseException as exc:
        if not is_rust_panic(exc):
            raise  # KeyboardInterrupt, SystemExit and our own bugs stay what they are
        first_line = (str(exc).strip().splitlines() or ["no message"])[0]
        raise PublishError(
            f"{action}: LanceDB panicked ({type(exc).__name__}: {first_line}); a data file may be damaged"
        ) from exc


def is_local_uri(uri: str) -> bool:
    """A local directory (plain path or ``file://``), as opposed to an object store."""
    return "://" not in uri or uri.startswith("file://")


class IndexStore:
    """A handle on one kbcurator database. Cheap to create; opens tables lazily."""

    def __init__(self, uri: str, *, storage_options: dict[str, str] | None = None) -> None:
        self.uri = uri
        if is_local_uri(uri):
            Path(uri.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        with lance_errors(f"cannot open index at {uri}"):
            # interval 0: every read sees the latest committed release, even from a long-lived handle. The session
            # bounds LanceDB's metadata cache (1 GiB by default): it keeps the manifest of every version a handle
            # sees, and a build that writes a table a few hundred times filled it with hundreds of MB of manifests.
            session = lancedb.Session(metadata_cache_size_bytes=METADATA_CACHE_BYTES)
            self.db = lancedb.connect(
                uri, storage_options=storage_options, read_consistency_interval=timedelta(0), session=session
            )
        with lance_errors(f"cannot bring the index at {uri} to schema version {schema.SCHEMA_VERSION}"):
            # The names of the migrations this open applied (none for a current or a new database).
            self.migrated: list[str] = migrations.migrate(self.db, uri)

    # -- tables -------------------------------------------------------------------------------
    def table_names(self) -> list[str]:
        with lance_errors("cannot list tables"):
            result = self.db.list_tables()
        names = getattr(result, "tables", result)
        return list(names)

    def has_table(self, name: str) -> bool:
        return name in self.table_names()

    def open_or_create(self, name: str, table_schema: pa.Schema) -> Any:
        with lance_errors(f"cannot open table {name!r} in {self.uri}"):
            if self.has_table(name):
                return self.db.open_table(name)
            migrations.stamp_new(self.db)  # the first table of a new database: it starts at the current version
            return self.db.create_table(name, schema=table_schema, exist_ok=True)

    def create_staged(self, name: str, table_schema: pa.Schema) -> Any:
        """An empty table ``name`` for a run's staged rows (``schema.STAGED_PREFIX``), replacing any."""
        with lance_errors(f"cannot create the staging table {name!r} in {self.uri}"):
            migrations.stamp_new(self.db)  # as open_or_create: a new database starts at the current version
            return self.db.create_table(name, schema=table_schema, mode="overwrite")

    def drop_table(self, name: str) -> None:
        """Remove table ``name`` and its data (a run's staging table; no table a release points at)."""
        with lance_errors(f"cannot remove the table {name!r} from {self.uri}"):
            self.db.drop_table(name)

    def schema_version(self) -> int:
        """The schema version recorded in the database (0 before its first table is created)."""
        with lance_errors(f"cannot read the schema version of {self.uri}"):
            return migrations.schema_version(self.db)

    def rows(self, name: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
        """Every row of table ``name`` as it is now (its latest version), ``columns`` only when given; ``[]``
        before the table exists.

        For the tables kept beside the releases (findings, gaps, triage): their readers take rows from here
        instead of opening the database themselves.
        """
        if not self.has_table(name):
            return []
        with lance_errors(f"cannot read the {name} table"):
            table = self.db.open_table(name)
            data = table.search().select(columns).limit(None).to_arrow() if columns else table.to_arrow()
        return list(data.to_pylist())

    def open_at(self, name: str, version: int) -> Any:
        """A table handle pinned to one version (what a release points at)."""
        with lance_errors(f"cannot open {name!r} at version {version}"):
            table = self.db.open_table(name)
            table.checkout(version)
            return table

    # -- releases -----------------------------------------------------------------------------
    def releases_stamp(self) -> int | None:
        """A value that changes whenever the releases table does (a publish or a rollback commits a version of
        it), read without opening the table: the modification time of its local ``_versions`` folder, -1 before
        the table exists. None for an index on object storage, where no such cheap look exists.

        Lets a long-lived reader (the search API) keep the release list between requests: reading it costs
        ~3 ms, more than the rest of a search's own work.
        """
        if not is_local_uri(self.uri):
            return None
        versions = Path(self.uri.removeprefix("file://")) / f"{schema.RELEASES}.lance" / "_versions"
        try:
            return versions.stat().st_mtime_ns
        except FileNotFoundError:
            return -1

    def releases(self) -> list[IndexRelease]:
        if not self.has_table(schema.RELEASES):
            return []
        with lance_errors("cannot read releases"):
            rows = self.db.open_table(schema.RELEASES).to_arrow().to_pylist()
        return sorted((_release_from_row(row) for row in rows), key=lambda r: r.seq)

    def current(self) -> IndexRelease | None:
        releases = self.releases()
        return releases[-1] if releases else None

    def resolve(self, ref: str | int | None = None) -> IndexRelease:
        """A release by ``None``/"current", sequence number, or tag (the latest release with that tag)."""
        releases = self.releases()
        if not releases:
            raise PublishError(f"no release has been published in {self.uri} yet")
        if ref is None or ref == CURRENT:
            return releases[-1]
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            seq = int(ref)
            for release in releases:
                if release.seq == seq:
                    return release
            raise PublishError(f"no release number {seq} in {self.uri}")
        for release in reversed(releases):
            if release.tag == ref:
                return release
        known = ", ".join(sorted({r.tag for r in releases}))
        raise PublishError(f"no release tagged {ref!r} in {self.uri} (known: {known})")

    def remove_orphan_tags(self) -> list[str]:
        """Delete the ``release-NNNN`` table tags that no release row names; returns them as ``table:tag``.

        A publish killed between tagging its table versions and recording its release row leaves such a tag,
        and a plain LanceDB ``checkout(tag)`` would serve its never-published rows. Call it holding the publish
        lock. On an object store, where there is no lock, a tag numbered past the current release may belong to
        a publish still running in another process, so only tags up to the current number are removed there.
        """
        releases = self.releases()
        named = {release.tag for release in releases}
        last_seq = releases[-1].seq if releases else 0
        exclusive = is_local_uri(self.uri)
        removed: list[str] = []
        for name in (schema.ARTICLES, schema.CHUNKS):
            if not self.has_table(name):
                continue
            with lance_errors(f"cannot remove orphan release tags from {name!r}"):
                tags = self.db.open_table(name).tags
                for tag in list(tags.list()):
                    if not tag.startswith(TAG_PREFIX) or tag in named:
                        continue
                    number = tag.removeprefix(TAG_PREFIX)
                    if not exclusive and (not number.isdigit() or int(number) > last_seq):
                        continue
                    tags.delete(tag)
                    removed.append(f"{name}:{tag}")
        if removed:
            logger.warning("removed release tags no release was recorded for (a killed publish): %s", removed)
        return removed

    def append_release(self, release: IndexRelease) -> None:
        """The commit point of a publish or rollback: readers of "current" switch when this row lands."""
        table = self.open_or_create(schema.RELEASES, schema.releases_schema())
        row = {
            "seq": release.seq,
            "tag": release.tag,
            "kind": release.kind,
            "created_at": release.created_at,
            "articles_version": release.articles_version,
            "chunks_version": release.chunks_version,
            "previous_tag": release.previous_tag,
            "manifest_json": release.manifest_json,
        }
        with lance_errors("cannot record the release"):
            table.add(pa.Table.from_pylist([row], schema=schema.releases_schema()))

    def read_table(self, name: str, version: int, columns: list[str] | None = None) -> pa.Table:
        """Table ``name`` at ``version``, whole: only ``columns`` are read when given (a release's ids and hashes,
        not its text and vectors: selecting after the read held the whole chunks table, ~0.5 GB at 200k chunks)."""
        table = self.open_at(name, version)
        with lance_errors(f"cannot read {name!r} at version {version}"):
            data = table.search().select(columns).limit(None).to_arrow() if columns else table.to_arrow()
        return data.select(columns) if columns else data

    def batches(
        self, name: str, version: int, columns: list[str] | None, *, batch_rows: int = 65_536
    ) -> Iterator[pa.RecordBatch]:
        """``columns`` (None: all) of ``name`` at ``version``, a batch of at most ``batch_rows`` rows at a time
        (read a page at a time: ``pages``)."""
        table = self.open_at(name, version)
        with lance_errors(f"cannot read {name!r} at version {version}"):
            yield from pages(table, columns, batch_rows)

    def scan(self, name: str, version: int, *, batch_rows: int = 4096) -> int:
        """Read every column of every row of ``name`` at ``version``, keeping none of it; returns the row count.

        Proves the version's data files decode (a table of vectors is read a page at a time, never whole).

        Raises:
            PublishError: a file is missing or damaged, or fewer rows decode than the version's metadata lists.
        """
        table = self.open_at(name, version)
        with lance_errors(f"cannot read {name!r} at version {version}"):
            listed = int(table.count_rows())
            read = sum(batch.num_rows for batch in pages(table, None, batch_rows))
        if read != listed:
            raise PublishError(f"{name!r} at version {version} lists {listed} rows but {read} could be read")
        return read


# Values per ``IN (...)`` filter (``sql_in``): a delete or a read of a few thousand ids in short SQL strings.
IDS_PER_FILTER = 1_000


def sql_text(value: str) -> str:
    """``value`` as a SQL (DataFusion) string literal, a quote inside doubled: the one quoting of every filter."""
    return "'" + value.replace("'", "''") + "'"


def sql_in(column: str, values: list[str]) -> str:
    """A filter for the rows whose ``column`` is one of ``values`` (string literals, see ``sql_text``)."""
    return f"{column} IN ({', '.join(sql_text(value) for value in values)})"


# Rows per page for a read or a write of whole rows (a MiniLM chunk row is ~2.5 KB in Arrow): measured streaming
# 200,000 chunk rows into a table, pages of 16,384 rows peaked at +267 MB and pages of 8,192 at +180 MB.
PAGE_ROWS = 8_192


def pages(table: Any, columns: list[str] | None, page_rows: int) -> Iterator[pa.RecordBatch]:
    """Every row of ``table`` as its handle sees it (``columns``, None: all), one query per page of at most
    ``page_rows`` rows, in the table's order.

    A streaming scan (``to_batches``) decodes ahead of its reader as far as Lance's IO buffer lets it (2 GiB by
    default), so its memory grows with the table: +72 MB reading 20,000 chunk rows, +406 MB for 200,000. A query
    per page (Lance pushes the limit and offset down to its fragments) holds about one page: +68 and +168 MB,
    and it took half the time (0.48 s against 0.9 s for 200,000 rows).
    """
    offset = 0
    while True:
        query = table.search()
        page = (query.select(columns) if columns else query).limit(page_rows).offset(offset).to_arrow()
        yield from page.to_batches(max_chunksize=page_rows)
        if page.num_rows < page_rows:
            return
        offset += page.num_rows


def _release_from_row(row: dict[str, Any]) -> IndexRelease:
    created = row["created_at"]
    if isinstance(created, datetime) and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return IndexRelease(
        seq=int(row["seq"]),
        tag=str(row["tag"]),
        kind=row["kind"],
        created_at=created,
        articles_version=int(row["articles_version"]),
        chunks_version=int(row["chunks_version"]),
        previous_tag=str(row["previous_tag"] or ""),
        manifest_json=str(row["manifest_json"]),
    )


def manifest_of(release: IndexRelease) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(release.manifest_json)
    return loaded
