"""The schema version kept in the database: an index written before versions opens, migrated, and reads the same;
one written by a newer kbcurator is refused in one line."""

from __future__ import annotations

import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import lancedb
import pyarrow as pa
import pytest
from builders import published_sample, sample_articles
from fakes import FakeHashingEmbedder

from kbcurator.analysis.store import FindingStore
from kbcurator.chunking import ChunkPolicy
from kbcurator.gaps.report import GapStore
from kbcurator.index import schema
from kbcurator.index.build import build_candidate
from kbcurator.index.migrations import MIGRATIONS, IndexTooNew
from kbcurator.index.publish import publish
from kbcurator.index.reader import open_index
from kbcurator.index.store import IndexStore
from kbcurator.triage import TriageStore

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "legacy_index.json").read_text(encoding="utf-8"))


@pytest.fixture
def legacy(tmp_path: Path) -> str:
    """A copy of the index written by kbcurator 50666b5 (tests/data/make_legacy_index.py): opening migrates it."""
    with tarfile.open(DATA / "legacy_index.tar.gz") as archive:
        archive.extractall(tmp_path, filter="data")
    return str(tmp_path / "legacy_index")


def _ids(store: IndexStore, name: str, version: int, column: str) -> list[str]:
    return sorted(store.read_table(name, version, [column])[column].to_pylist())


def test_an_index_written_before_schema_versions_opens_migrated_and_reads_the_same(legacy: str) -> None:
    assert schema.META not in lancedb.connect(legacy).list_tables().tables

    store = IndexStore(legacy)

    assert store.migrated == ["m001_adopt_unversioned", "m002_ticket_solved_by"]
    assert store.schema_version() == schema.SCHEMA_VERSION
    release = store.current()
    assert release is not None and release.tag == EXPECTED["current"]["tag"]
    assert [r.tag for r in store.releases()] == EXPECTED["releases"]
    assert _ids(store, schema.ARTICLES, release.articles_version, "article_id") == EXPECTED["article_ids"]
    assert _ids(store, schema.CHUNKS, release.chunks_version, "chunk_id") == EXPECTED["chunk_ids"]
    index = open_index(legacy, embedder=FakeHashingEmbedder(dimension=EXPECTED["dimension"]))
    for mode, answers in EXPECTED["search"].items():
        for query, chunk_ids in answers.items():
            assert [hit.chunk_id for hit in index.search(query, k=3, mode=mode)] == chunk_ids, (mode, query)
    # The tables kept beside the releases read as they did.
    latest = FindingStore(store).latest_run()
    assert latest is not None and [f.finding_id for f in latest[2]] == EXPECTED["finding_ids"]
    assert [g.gap_id for g in GapStore(store).previous()] == EXPECTED["gap_ids"]
    decision = TriageStore(store).current()[EXPECTED["finding_ids"][0]]
    assert decision.status == "accepted" and decision.decided_by == "ana"


def test_the_tables_of_the_old_code_have_the_columns_of_the_schema_module(legacy: str) -> None:
    """Nothing but the version differed before versioning: migration 1 only adopts the database."""
    db = lancedb.connect(legacy)
    dimension = EXPECTED["dimension"]
    wanted = {
        schema.ARTICLES: schema.articles_schema(),
        schema.CHUNKS: schema.chunks_schema(dimension),
        schema.RELEASES: schema.releases_schema(),
        schema.EMBEDDING_CACHE: schema.embedding_cache_schema(),
        schema.PARSE_MEMO: schema.parse_memo_schema(),
        schema.FINDINGS: schema.findings_schema(),
        schema.GAPS: schema.gaps_schema(dimension),
        schema.TRIAGE: schema.triage_schema(),
    }
    assert sorted(wanted) == sorted(schema.TABLES) == EXPECTED["tables"]
    for name, table_schema in wanted.items():
        assert db.open_table(name).schema.equals(table_schema), name


def test_a_second_open_does_not_migrate_again(legacy: str) -> None:
    IndexStore(legacy)
    again = IndexStore(legacy)

    assert again.migrated == []
    assert again.schema_version() == schema.SCHEMA_VERSION
    recorded = again.rows(schema.META)
    assert sorted(row["migration"] for row in recorded) == sorted(m.__name__ for m in MIGRATIONS)


def test_a_migrated_index_takes_the_next_release_on_top_of_its_own(legacy: str) -> None:
    store = IndexStore(legacy)
    embedder = FakeHashingEmbedder(dimension=EXPECTED["dimension"])
    candidate = build_candidate(sample_articles(), store=store, embedder=embedder, policy=ChunkPolicy())
    release = publish(store, candidate, checks_passed=True, manifest={})

    assert release.tag == "release-0003" and release.previous_tag == EXPECTED["current"]["tag"]
    assert store.resolve(EXPECTED["current"]["tag"]).chunks_version < release.chunks_version


def test_a_new_index_is_stamped_with_the_current_version_when_its_first_table_is_made(tmp_path: Path) -> None:
    uri = str(tmp_path / "index")
    empty = IndexStore(uri)
    assert empty.schema_version() == 0 and empty.table_names() == []  # opening writes nothing

    published_sample(uri)

    reopened = IndexStore(uri)
    assert reopened.migrated == []
    assert reopened.schema_version() == schema.SCHEMA_VERSION


def test_an_index_written_by_a_newer_kbcurator_is_refused_in_one_line(tmp_path: Path) -> None:
    uri = str(tmp_path / "index")
    published_sample(uri)
    row = {"schema_version": schema.SCHEMA_VERSION + 1, "migration": "m999_future", "applied_at": datetime.now(UTC)}
    row["applied_by"] = "99.0"
    lancedb.connect(uri).open_table(schema.META).add(pa.Table.from_pylist([row], schema=schema.meta_schema()))

    with pytest.raises(IndexTooNew) as refused:
        IndexStore(uri)

    message = str(refused.value)
    assert "\n" not in message
    assert f"schema version {schema.SCHEMA_VERSION + 1}" in message and "upgrade kbcurator" in message


def test_the_migrations_are_numbered_up_to_the_schema_version() -> None:
    assert len(MIGRATIONS) == schema.SCHEMA_VERSION
    assert [m.__name__[:5] for m in MIGRATIONS] == [f"m{n:03d}_" for n in range(1, len(MIGRATIONS) + 1)]


def test_a_version_1_tickets_table_gains_solved_by_and_its_tickets_read_as_before(tmp_path: Path) -> None:
    """Version 2 added ``solved_by`` to the helpdesk API's stored tickets: a version-1 table (as session 7 wrote
    it) gets the column, empty, and its tickets read unchanged; a second open migrates nothing."""
    from kbcurator.gaps.zendesk_api import TicketTables

    uri = str(tmp_path / "index")
    published_sample(uri)
    db = lancedb.connect(uri)
    version_1 = pa.schema([f for f in schema.tickets_schema() if f.name != "solved_by"])
    now = datetime.now(UTC)
    row = {"key": "desk:7", "source_id": "desk", "ticket_id": "7", "created_at": now, "updated_at": now}
    row |= {"subject": "Refund", "body": "Where is my refund?", "tags": ["billing"], "fetched_at": now}
    db.create_table(schema.TICKETS, pa.Table.from_pylist([row], schema=version_1))
    meta = db.open_table(schema.META)
    meta.delete("migration = 'm002_ticket_solved_by'")  # the database as version 1 left it

    store = IndexStore(uri)

    assert store.migrated == ["m002_ticket_solved_by"] and store.schema_version() == 2
    assert "solved_by" in lancedb.connect(uri).open_table(schema.TICKETS).schema.names
    (ticket,) = TicketTables(store).tickets("desk")
    assert (ticket.ticket_id, ticket.body, ticket.tags, ticket.solved_by) == (
        "7",
        "Where is my refund?",
        ("billing",),
        (),
    )
    assert IndexStore(uri).migrated == []
