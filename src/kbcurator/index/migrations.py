"""Numbered migrations of an index's database: each applied once, in order, and recorded in the database.

The model is simonw/llm's ``migrations.py``: a list of functions, each bringing the database one step further,
and a table (here ``kbcurator_meta``) naming the ones already applied. ``IndexStore`` calls :func:`migrate` when
it opens a database: a database stamped with a newer schema version than this code knows is refused
(:class:`IndexTooNew`); an older one is brought up to date before anything reads it.

A new database is stamped with the current version when its first table is created (:func:`stamp_new`): it has
nothing to migrate. A database with kbcurator's tables but no ``kbcurator_meta`` table was written before schema
versions (up to commit 50666b5) and starts at version 0.

To change a table: change its schema in ``index.schema``, add a function below with ``@migration`` that turns
the previous layout into the new one (it must be safe to run twice: two processes may open an old database at
once), and raise ``schema.SCHEMA_VERSION`` to the number of migrations.

A new table is not a change: it needs no migration and no new version. ``IndexStore.open_or_create`` creates it
when it is first written, in an old database as in a new one, and a kbcurator from before it opens the database
as before (it never reads the table). Raising the version for it would only make that kbcurator refuse the
database. ``tickets`` and ``ticket_cursors`` (the helpdesk API's stored tickets and cursors) came this way.
So did ``golden_questions`` (the retrieval gate's questions), ``gap_runs`` (each gaps run's KB hit rate) and
``detector_memo`` (content-only detectors' findings per release, reused by an audit of an unchanged release).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from kbcurator import __version__
from kbcurator.errors import PublishError
from kbcurator.index import schema

logger = logging.getLogger(__name__)

Migration = Callable[[Any], None]  # takes the lancedb connection

MIGRATIONS: list[Migration] = []


class IndexTooNew(PublishError):
    """The database was written by a newer kbcurator, with a schema version this code does not know."""


def migration(function: Migration) -> Migration:
    """Append ``function`` to :data:`MIGRATIONS`: its number is its position, from 1."""
    MIGRATIONS.append(function)
    return function


def numbered() -> list[tuple[int, Migration]]:
    return list(enumerate(MIGRATIONS, start=1))


# -- the migrations ---------------------------------------------------------------------------------------------


@migration
def m001_adopt_unversioned(db: Any) -> None:
    """Adopt a database written before schema versions (kbcurator up to commit 50666b5).

    Its tables already have the columns ``index.schema`` defines (the fixture in ``tests/data`` shows it): the
    version is only recorded. A table that lacks some of them, written by a still older kbcurator, is named in
    a warning and left as it is; a rebuild into a new index is what brings it up to date.
    """
    wanted: dict[str, pa.Schema] = {
        schema.ARTICLES: schema.articles_schema(),
        schema.CHUNKS: schema.chunks_schema(1),
        schema.RELEASES: schema.releases_schema(),
        schema.EMBEDDING_CACHE: schema.embedding_cache_schema(),
        schema.PARSE_MEMO: schema.parse_memo_schema(),
        schema.FINDINGS: schema.findings_schema(),
        schema.GAPS: schema.gaps_schema(1),
        schema.TRIAGE: schema.triage_schema(),
    }
    present = set(table_names(db))
    for name, table_schema in wanted.items():
        if name not in present:
            continue
        missing = sorted(set(table_schema.names) - set(db.open_table(name).schema.names))
        if missing:
            logger.warning("table %r of this index lacks the columns %s: rebuild it into a new index", name, missing)


@migration
def m002_ticket_solved_by(db: Any) -> None:
    """Give the helpdesk API's stored tickets a ``solved_by`` column (the article an agent linked), empty."""
    if schema.TICKETS not in set(table_names(db)):
        return
    table = db.open_table(schema.TICKETS)
    if "solved_by" not in table.schema.names:  # safe to run twice
        table.add_columns(schema.tickets_schema().field("solved_by"))


# -- applying them ----------------------------------------------------------------------------------------------


def table_names(db: Any) -> list[str]:
    result = db.list_tables()
    return list(getattr(result, "tables", result))


def _applied(db: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = db.open_table(schema.META).to_arrow().to_pylist()
    return rows


def schema_version(db: Any) -> int:
    """The database's schema version: 0 when it has no ``kbcurator_meta`` table (new, or written before)."""
    if schema.META not in table_names(db):
        return 0
    return max((int(row["schema_version"]) for row in _applied(db)), default=0)


def _record(db: Any, done: Sequence[tuple[int, Migration]]) -> None:
    now = datetime.now(UTC)
    rows = [
        {"schema_version": number, "migration": function.__name__, "applied_at": now, "applied_by": __version__}
        for number, function in done
    ]
    table = db.create_table(schema.META, schema=schema.meta_schema(), exist_ok=True)
    # Keyed on the migration's name: two processes migrating one database at once record it once.
    merge = table.merge_insert("migration").when_not_matched_insert_all()
    merge.execute(pa.Table.from_pylist(rows, schema=schema.meta_schema()))


def stamp_new(db: Any) -> None:
    """Record a new database as created at the current schema version (no migration has anything to do)."""
    if schema.META not in table_names(db):
        _record(db, numbered())


def migrate(db: Any, uri: str) -> list[str]:
    """Check the database's schema version and apply the migrations it lacks; returns their names.

    An empty database is left alone (``stamp_new`` stamps it when its first table is created).

    Raises:
        IndexTooNew: the database's schema version is newer than this code's.
    """
    names = table_names(db)
    if schema.META in names:
        rows = _applied(db)
        version = max((int(row["schema_version"]) for row in rows), default=0)
        if version > schema.SCHEMA_VERSION:
            raise IndexTooNew(
                f"the index at {uri} has schema version {version}, newer than this kbcurator {__version__} reads "
                f"(up to {schema.SCHEMA_VERSION}): upgrade kbcurator to open it"
            )
        done = {str(row["migration"]) for row in rows}
    elif any(name in names for name in schema.TABLES):
        done = set()
    else:
        return []
    todo = [(number, function) for number, function in numbered() if function.__name__ not in done]
    for number, function in todo:
        logger.info("index %s: applying migration %d (%s)", uri, number, function.__name__)
        function(db)
        _record(db, [(number, function)])
    if todo:
        logger.warning(
            "index %s migrated to schema version %d: %s",
            uri,
            schema.SCHEMA_VERSION,
            ", ".join(f.__name__ for _, f in todo),
        )
    return [function.__name__ for _, function in todo]
