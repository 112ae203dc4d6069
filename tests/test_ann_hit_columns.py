"""Searches through the vector index with the hits' columns held in memory (``AnnSettings.hit_columns_max_chunks``):
on a real LanceDB release with an IVF_HNSW_SQ index, the same hits as LanceDB's own columns, filters honoured, a
newer release's columns after a refresh, and the setting's 0 and its threshold turning it off."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
from test_ann_index import ROWS, LookupEmbedder, candidate_of, corpus_vectors

from kbcurator.index import open_index
from kbcurator.index.publish import publish
from kbcurator.index.reader import ChunkFilter
from kbcurator.index.store import IndexStore
from kbcurator.records import sha256_hex
from kbcurator.settings import AnnSettings

ANN = AnnSettings(min_rows=ROWS // 2, index_type="IVF_HNSW_SQ", refine_factor=2)
LATER = datetime(2026, 2, 10, tzinfo=UTC)
# Query texts: "row N" picks the query vector (chunk N's, nudged); the words give the full-text side hits.
QUERIES = [f"row {row} billing invoice" for row in range(5, ROWS, 211)]


def varied(candidate):
    """Every third chunk in German and every fifth one updated later, for the filters to tell apart."""
    chunks = candidate.chunks
    rows = np.arange(chunks.num_rows)
    locales = pa.array(np.where(rows % 3 == 0, "de-de", "en-us").tolist(), pa.string())
    updated = chunks["updated_at"].to_pylist()
    updated = [LATER if row % 5 == 0 else moment for row, moment in zip(rows, updated, strict=True)]
    chunks = chunks.set_column(chunks.schema.get_field_index("locale"), chunks.schema.field("locale"), locales)
    field = chunks.schema.field("updated_at")
    chunks = chunks.set_column(chunks.schema.get_field_index("updated_at"), field, pa.array(updated, field.type))
    return replace(candidate, chunks=chunks)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    uri = str(tmp_path_factory.mktemp("hit-columns") / "index")
    vectors = corpus_vectors()
    publish(IndexStore(uri), varied(candidate_of(vectors)), checks_passed=True, manifest={}, ann=ANN)
    return uri, vectors


def views(uri: str, vectors: np.ndarray):
    """The same release read with the hit columns in memory and without (every column from LanceDB)."""
    embedder = LookupEmbedder(vectors)
    memory = open_index(uri, embedder=embedder, ann=ANN)
    lancedb = open_index(uri, embedder=embedder, ann=replace_ann(hit_columns_max_chunks=0))
    return memory, lancedb


def replace_ann(**changes) -> AnnSettings:
    return ANN.model_copy(update=changes)


@pytest.mark.parametrize("mode", ["vector", "hybrid", "fts"])
def test_hits_with_columns_in_memory_are_lancedbs_hits(release, mode) -> None:
    memory, lancedb = views(*release)
    assert memory.has_vector_index and memory.hit_columns_in_memory
    assert not lancedb.hit_columns_in_memory
    fts_only = 0
    for text in QUERIES:
        found = memory.query(text, mode=mode, limit=40)
        assert found == lancedb.query(text, mode=mode, limit=40)  # every field: ids, order, text, scores, dates
        assert len(found) == 40 and all(hit.text and hit.url and hit.updated_at for hit in found)
        if mode == "hybrid":
            vector_ids = {hit.chunk_id for hit in memory.query(text, mode="vector", limit=40)}
            fts_only += sum(hit.chunk_id not in vector_ids for hit in found)
    if mode == "hybrid":  # the fused hits include full-text-only ones, whose similarity needs their vectors
        assert fts_only > 0


def test_filters_are_applied_by_lancedb_with_columns_from_memory(release) -> None:
    memory, lancedb = views(*release)
    some_articles = tuple(f"a{n:05d}" for n in range(0, ROWS // 4, 3))
    filters = [
        ChunkFilter(locales=("de-de",)),
        ChunkFilter(updated_after=datetime(2026, 2, 1, tzinfo=UTC)),
        ChunkFilter(article_ids=some_articles, locales=("en-us",)),
        ChunkFilter(article_ids=()),
    ]
    for mode in ("vector", "hybrid"):
        for chunk_filter in filters:
            for text in QUERIES[:6]:
                found = memory.query(text, mode=mode, limit=20, chunk_filter=chunk_filter)
                assert found == lancedb.query(text, mode=mode, limit=20, chunk_filter=chunk_filter)
                if chunk_filter.article_ids == ():
                    assert found == []
                    continue
                assert found
                for hit in found:
                    assert not chunk_filter.locales or hit.locale in chunk_filter.locales
                    assert chunk_filter.article_ids is None or hit.article_id in chunk_filter.article_ids
                    assert chunk_filter.updated_after is None or hit.updated_at == LATER
        where = "locale = 'de-de'"
        found = memory.query(QUERIES[0], mode=mode, limit=20, where=where)
        assert found and all(hit.locale == "de-de" for hit in found)
        assert found == lancedb.query(QUERIES[0], mode=mode, limit=20, where=where)


def test_the_setting_turns_the_columns_in_memory_off_at_zero_and_past_its_size(release) -> None:
    uri, vectors = release
    embedder = LookupEmbedder(vectors)
    assert open_index(uri, embedder=embedder, ann=replace_ann(hit_columns_max_chunks=ROWS)).hit_columns_in_memory
    for off in (0, ROWS - 1):
        view = open_index(uri, embedder=embedder, ann=replace_ann(hit_columns_max_chunks=off))
        assert not view.hit_columns_in_memory
        hits = view.query(QUERIES[0], mode="vector", limit=10)
        assert len(hits) == 10 and all(hit.text for hit in hits)


def test_a_refreshed_view_reads_the_newer_releases_columns(tmp_path) -> None:
    uri = str(tmp_path / "index")
    store = IndexStore(uri)
    vectors = corpus_vectors()
    candidate = candidate_of(vectors)
    publish(store, candidate, checks_passed=True, manifest={}, ann=ANN)
    view = open_index(uri, embedder=LookupEmbedder(vectors), ann=ANN)
    assert view.hit_columns_in_memory
    before = view.query("row 17", mode="vector", limit=5)
    assert before[0].chunk_id == "a00004#1"
    # The next release rewrites a few chunks' text: the index is kept, the rewritten rows get new row ids.
    chunks = candidate.chunks
    texts = chunks["text"].to_pylist()
    for row in range(16, 20):
        texts[row] = f"Rewritten chunk {row}."
    for name, values in (("text", texts), ("row_hash", [sha256_hex(text) for text in texts])):
        field = chunks.schema.field(name)
        chunks = chunks.set_column(chunks.schema.get_field_index(name), field, pa.array(values, field.type))
    publish(store, replace(candidate, chunks=chunks), checks_passed=True, manifest={}, ann=ANN)
    assert view.refresh()
    after = view.query("row 17", mode="vector", limit=5)
    assert after[0].chunk_id == "a00004#1" and after[0].text == "Rewritten chunk 17."
    pinned = open_index(uri, "release-0001", embedder=LookupEmbedder(vectors), ann=ANN)
    assert pinned.hit_columns_in_memory and pinned.query("row 17", mode="vector", limit=5) == before
    assert "Rewritten chunk 17." in [hit.text for hit in view.query("rewritten", mode="fts", limit=5)]
    assert pinned.query("rewritten", mode="fts", limit=5) == []
    assert after == open_index(uri, embedder=LookupEmbedder(vectors), ann=replace_ann(hit_columns_max_chunks=0)).query(
        "row 17", mode="vector", limit=5
    )
