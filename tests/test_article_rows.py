"""A reindex stages the articles it reads in the index database and reads them back as it chunks (issue 20).

No article is held whole between reading and chunking: a source's articles go to the run's read table as they are
parsed, the build plans from their ids and hashes, and each chunking batch reads its articles back. These tests use
a real LanceDB directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import sample_articles
from test_staging import _settings, _staging_tables, fake_model  # noqa: F401  (a fixture, used by name)

import checks
from kbcurator.chunking import ChunkPolicy
from kbcurator.errors import SourceError
from kbcurator.index.article_rows import ArticleRows, RunReads
from kbcurator.index.build import chunk_batch, plan_build
from kbcurator.index.store import IndexStore
from kbcurator.records import Article, RejectionCode
from kbcurator.usecases import execution
from kbcurator.usecases import reindex as usecase


def _staged(tmp_path: Path, articles: list[Article]) -> tuple[RunReads, ArticleRows]:
    reads = RunReads(IndexStore(str(tmp_path / "index")), "20261204T000000Z-test")
    assert reads.write(iter(articles)) == len(articles)
    staged = reads.articles()
    assert staged is not None
    return reads, staged


def test_staged_articles_read_back_as_written_by_position_slice_and_selection(tmp_path: Path) -> None:
    articles = sample_articles()
    reads, staged = _staged(tmp_path, articles)

    assert len(staged) == len(articles)
    assert list(staged) == articles  # every field, links and dates included
    assert staged[3] == articles[3] and staged[-1] == articles[-1]
    assert list(staged[2:5]) == articles[2:5]
    chosen = staged.select(i % 2 == 1 for i in range(len(articles)))
    assert list(chosen) == articles[1::2] and chosen.ids() == [a.article_id for a in articles[1::2]]
    backwards = staged.subset(np.arange(len(articles))[::-1])
    assert list(backwards) == articles[::-1]  # taken in any order, given back in the order asked
    reads.drop()
    assert _staging_tables(IndexStore(str(tmp_path / "index"))) == []


def test_a_build_plans_staged_articles_as_it_plans_them_in_memory(tmp_path: Path) -> None:
    articles = sample_articles()
    again = replace(articles[1], url=articles[1].url + "?copy", source_id="second")
    read = [*articles, again]  # the same article id read twice: the first is kept
    _, staged = _staged(tmp_path, read)
    store = IndexStore(str(tmp_path / "index"))

    lazy = plan_build(staged, store=store, model="m", policy=ChunkPolicy())
    eager = plan_build(read, store=store, model="m", policy=ChunkPolicy())

    assert isinstance(lazy.to_chunk, ArticleRows)
    assert list(lazy.ordered) == list(eager.ordered) == articles
    assert list(lazy.to_chunk) == list(eager.to_chunk)
    assert lazy.rejected == eager.rejected
    assert [r.code for r in lazy.rejected] == [RejectionCode.DUPLICATE] and lazy.rejected[0].record_id == again.url
    assert chunk_batch(lazy.to_chunk, ChunkPolicy()).rows == chunk_batch(eager.to_chunk, ChunkPolicy()).rows


@pytest.mark.usefixtures("fake_model")
def test_a_source_read_that_fails_part_way_stages_nothing_and_its_retry_stages_each_article_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path)
    job = usecase.start_reindex(settings, None)
    real = usecase.iter_articles
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Iterator[Any]:
        calls["n"] += 1
        for number, item in enumerate(real(*args, **kwargs)):
            if calls["n"] == 1 and number == 5:
                raise SourceError("the site went away")
            yield item

    monkeypatch.setattr(usecase, "iter_articles", flaky)
    with pytest.raises(SourceError):
        usecase.read_source(job, settings.sources[0])
    read = usecase.read_source(job, settings.sources[0])

    staged = usecase.staged_articles_of(job)
    assert read.article_count == len(staged) == 8
    assert len(set(staged.ids())) == 8  # none staged twice  # type: ignore[attr-defined]
    usecase.release_staging(job)
    assert _staging_tables(job.store) == []


@pytest.mark.usefixtures("fake_model")
def test_a_reindex_chunks_staged_articles_in_batches_and_leaves_no_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Articles read back a batch at a time, in this process and in chunking processes alike; the release is the
    same, and the run's read table is gone when it ends."""
    monkeypatch.setattr(execution, "chunk_processes", lambda setting: 2)
    releases = []
    for parallel_min in (10_000, 2):  # in this process, then in two chunking processes
        (tmp_path / str(parallel_min)).mkdir()
        settings = _settings(
            tmp_path / str(parallel_min),
            chunking={"parallel_min_articles": parallel_min},
            execution={"chunk_batch_articles": 3},
        )
        result = usecase.run_reindex(settings, None, checks.release_suites_for, audit=False)
        store = IndexStore(settings.index_uri)
        assert result["release"] == "release-0001" and result["articles"] == 8
        assert _staging_tables(store) == []
        release = store.current()
        assert release is not None
        chunks = store.read_table("chunks", release.chunks_version).sort_by("chunk_id")
        releases.append(chunks.select(["chunk_id", "content_hash", "row_hash"]).to_pylist())
    assert releases[0] == releases[1]
