"""Publish writes the tables without holding them whole (issue 20): these pin what it writes, not its memory.

A first release is written streamed; a small change upserts only the new or changed chunk rows and deletes the
gone ones; a change of most rows (a new model) rewrites the table. Each must leave the chunks table holding exactly
the candidate's rows, earlier releases readable, and a rerun after a kill converging on the same rows.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from kbcurator.errors import PublishError
from kbcurator.index import publish as publishing
from kbcurator.index import schema
from kbcurator.index.build import BuildStats, ReleaseCandidate, chunks_table
from kbcurator.index.publish import publish
from kbcurator.index.staging import Rows, staged_chunks
from kbcurator.index.store import IndexStore
from kbcurator.index.versions import rollback

DIMENSION = 4


def _chunk(chunk_id: str, text: str, *, title: str = "A") -> dict[str, Any]:
    return {
        "chunk_id": chunk_id,
        "article_id": "a",
        "position": 0,
        "text": text,
        "heading_path": [],
        "heading": "",
        "char_start": 0,
        "char_end": len(text),
        "content_hash": f"content {text}",
        "url": "https://help.example.com/a",
        "title": title,
        "locale": "en",
        "updated_at": None,
        # What the build hashes: every field but the vector (a title-only change changes it too).
        "row_hash": f"{chunk_id}|{text}|{title}",
    }


def _chunks(rows: list[dict[str, Any]], *, model: float = 1.0) -> pa.Table:
    # A row's vector follows its content (as an embedding does), never its place in the candidate.
    vectors = np.array([[model, float(zlib.crc32(row["row_hash"].encode())), 0.0, 1.0] for row in rows], np.float32)
    return chunks_table(rows, vectors, DIMENSION)


def _articles(count: int = 1) -> pa.Table:
    rows = [
        {
            "article_id": f"a{i}",
            "source_id": "test",
            "url": f"https://help.example.com/a{i}",
            "title": f"A{i}",
            "section": "General",
            "locale": "en",
            "body_html": "<p>x</p>",
            "text": "x",
            "updated_at": None,
            "content_hash": f"h{i}",
            "links": [],
            "chunk_policy": "p",
        }
        for i in range(count)
    ]
    return pa.Table.from_pylist(rows, schema=schema.articles_schema())


def _candidate(chunks: Rows, articles: pa.Table | None = None, model: str = "fake") -> ReleaseCandidate:
    stats = BuildStats(0, chunks.num_rows, 0, 0, 0, 0, 0.0, 0.0)
    return ReleaseCandidate(
        articles=articles if articles is not None else _articles(),
        chunks=chunks,
        model=model,
        dimension=DIMENSION,
        chunk_policy="p",
        stats=stats,
    )


def _publish(
    store: IndexStore, chunks: pa.Table, *, staged: bool, articles: pa.Table | None = None, model: str = "fake"
) -> Any:
    rows: Rows = chunks
    if staged:
        staging = staged_chunks(store, "20261204T120000Z-bounded", DIMENSION)
        staging.append(chunks)
        rows = staging
    return publish(store, _candidate(rows, articles, model), checks_passed=True, manifest={}, fts=False)


def _rows_at(store: IndexStore, name: str, version: int, key: str) -> list[dict[str, Any]]:
    return sorted(store.read_table(name, version).to_pylist(), key=lambda row: row[key])


def _as_rows(table: pa.Table, key: str = "chunk_id") -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=lambda row: row[key])


FIRST = [_chunk("a#0", "keep me"), _chunk("a#1", "change me"), _chunk("a#2", "drop me"), _chunk("a#3", "retitle me")]


@pytest.fixture(params=[False, True], ids=["in-memory", "staged"])
def staged(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_a_first_release_holds_the_candidates_rows(tmp_path: Path, staged: bool) -> None:
    store = IndexStore(str(tmp_path / "index"))
    chunks = _chunks(FIRST)
    release = _publish(store, chunks, staged=staged, articles=_articles(3))
    assert _rows_at(store, schema.CHUNKS, release.chunks_version, "chunk_id") == _as_rows(chunks)
    assert _rows_at(store, schema.ARTICLES, release.articles_version, "article_id") == _as_rows(
        _articles(3), "article_id"
    )


def test_a_small_change_upserts_the_changed_rows_and_deletes_the_gone_ones(
    tmp_path: Path, staged: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = IndexStore(str(tmp_path / "index"))
    unchanged = [_chunk(f"k#{i}", f"kept {i}") for i in range(10)]
    first_rows = [*FIRST, *unchanged]
    first = _publish(store, _chunks(first_rows), staged=staged, articles=_articles(3))
    rows = [
        FIRST[0],
        _chunk("a#1", "changed"),
        _chunk("a#3", "retitle me", title="A, retitled"),  # metadata only: same text, another row_hash
        *[_chunk(f"b#{i}", f"new {i}") for i in range(2)],
        *unchanged,
    ]
    chunks = _chunks(rows)
    whole_writes: list[bool] = []
    write_whole = publishing._write_whole

    def spy(table: Any, rows: Rows, *, overwrite: bool) -> None:
        whole_writes.append(overwrite)
        write_whole(table, rows, overwrite=overwrite)

    monkeypatch.setattr(publishing, "_write_whole", spy)
    second = _publish(store, chunks, staged=staged, articles=_articles(2))

    assert whole_writes == [True]  # the articles only: the chunks were merged
    assert _rows_at(store, schema.CHUNKS, second.chunks_version, "chunk_id") == _as_rows(chunks)
    assert _rows_at(store, schema.ARTICLES, second.articles_version, "article_id") == _as_rows(
        _articles(2), "article_id"
    )
    # The unchanged row keeps its data, vector included, from the first release.
    kept = [
        row for row in _rows_at(store, schema.CHUNKS, second.chunks_version, "chunk_id") if row["chunk_id"] == "a#0"
    ]
    assert kept == [
        row for row in _rows_at(store, schema.CHUNKS, first.chunks_version, "chunk_id") if row["chunk_id"] == "a#0"
    ]
    # The first release still reads as it was, and rolling back to it makes its rows current again.
    assert _rows_at(store, schema.CHUNKS, first.chunks_version, "chunk_id") == _as_rows(_chunks(first_rows))
    back = rollback(store, first.tag)
    assert _rows_at(store, schema.CHUNKS, back.chunks_version, "chunk_id") == _as_rows(_chunks(first_rows))


def test_a_model_change_rewrites_every_row_and_rollback_gives_the_old_ones_back(tmp_path: Path, staged: bool) -> None:
    store = IndexStore(str(tmp_path / "index"))
    first = _publish(store, _chunks(FIRST), staged=staged)
    renamed = [_chunk(row["chunk_id"], row["text"] + " (new model)") for row in FIRST]
    chunks = _chunks(renamed, model=2.0)
    second = _publish(store, chunks, staged=staged)

    assert _rows_at(store, schema.CHUNKS, second.chunks_version, "chunk_id") == _as_rows(chunks)
    back = rollback(store, first.tag)
    assert _rows_at(store, schema.CHUNKS, back.chunks_version, "chunk_id") == _as_rows(_chunks(FIRST))
    table = store.db.open_table(schema.CHUNKS)
    table.checkout(first.tag)
    assert _as_rows(table.to_arrow()) == _as_rows(_chunks(FIRST))


def test_a_new_model_of_the_same_dimension_replaces_the_vectors_of_unchanged_text(tmp_path: Path, staged: bool) -> None:
    """``row_hash`` covers a row's text and metadata, not its vector: a new model (or backend) with the same text
    must still publish its own vectors, not keep the old model's."""
    store = IndexStore(str(tmp_path / "index"))
    _publish(store, _chunks(FIRST), staged=staged, model="model-a")
    again = _chunks(FIRST, model=7.0)  # the same rows and hashes, other vectors
    second = _publish(store, again, staged=staged, model="model-b")
    published = _rows_at(store, schema.CHUNKS, second.chunks_version, "chunk_id")
    assert [row["vector"][0] for row in published] == [7.0] * len(FIRST)
    assert published == _as_rows(again)


def test_ids_with_a_quote_are_updated_and_deleted(tmp_path: Path) -> None:
    store = IndexStore(str(tmp_path / "index"))
    quoted = [_chunk("it's#0", "one"), _chunk("it's#1", "two"), _chunk("o''k#2", "three")]
    _publish(store, _chunks([*quoted, *FIRST]), staged=True)
    chunks = _chunks([_chunk("it's#0", "one, changed"), *FIRST])
    release = _publish(store, chunks, staged=True)
    assert _rows_at(store, schema.CHUNKS, release.chunks_version, "chunk_id") == _as_rows(chunks)


def test_an_unchanged_candidate_published_again_leaves_the_same_rows(tmp_path: Path, staged: bool) -> None:
    store = IndexStore(str(tmp_path / "index"))
    chunks = _chunks(FIRST)
    _publish(store, chunks, staged=staged)
    release = _publish(store, chunks, staged=staged)
    assert _rows_at(store, schema.CHUNKS, release.chunks_version, "chunk_id") == _as_rows(chunks)


class _KilledAfter:
    """A table that fails on its ``adds``-th add (a publish killed between two slices of a whole write)."""

    def __init__(self, table: Any, adds: int) -> None:
        self._table, self._adds = table, adds

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def add(self, data: Any, **kwargs: Any) -> Any:
        self._adds -= 1
        if self._adds == 0:
            raise OSError("killed")
        return self._table.add(data, **kwargs)


@pytest.mark.parametrize("first_rows", [[], FIRST], ids=["new-table", "model-change"])
def test_a_rerun_after_a_kill_between_slices_converges_without_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first_rows: list[dict[str, Any]]
) -> None:
    store = IndexStore(str(tmp_path / "index"))
    if first_rows:
        _publish(store, _chunks(first_rows), staged=False)
    monkeypatch.setattr(publishing, "PAGE_ROWS", 2)
    monkeypatch.setattr(publishing, "_SLICE_PAGES", 1)
    rows = [_chunk(f"c#{i}", f"rewritten {i}") for i in range(7)]
    chunks = _chunks(rows, model=3.0)
    table = (
        store.db.open_table(schema.CHUNKS)
        if first_rows
        else store.open_or_create(schema.CHUNKS, schema.chunks_schema(DIMENSION))
    )
    with pytest.raises(OSError, match="killed"):
        publishing._write_chunks(_KilledAfter(table, 3), chunks, new_model=False)
    assert 0 < table.count_rows() < len(rows) + len(first_rows)
    release = _publish(store, chunks, staged=True)
    assert _rows_at(store, schema.CHUNKS, release.chunks_version, "chunk_id") == _as_rows(chunks)


def test_a_failed_write_is_a_publish_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = IndexStore(str(tmp_path / "index"))
    _publish(store, _chunks(FIRST), staged=False)

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(publishing, "_write_chunks", fail)
    with pytest.raises(PublishError, match="disk full"):
        _publish(store, _chunks(FIRST[:2]), staged=False)
