"""Chunking a build's articles in several processes (issue 20): the same chunks as one process, in the same order.

The pools here are real spawned processes: each child imports lancedb and unstructured (a few seconds), so the
tests that start one keep to two processes and the bundled sample help center.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, cast

import pytest
from builders import make_article

from kbcurator.chunking import ChunkPolicy
from kbcurator.errors import EmbeddingError, KBError
from kbcurator.index.build import ChunkedBatch, chunk_batch
from kbcurator.index.store import IndexStore
from kbcurator.ingest import read_articles
from kbcurator.records import Article
from kbcurator.settings import Settings, SourceConfig
from kbcurator.usecases import execution
from kbcurator.usecases.execution import InProcess, chunk_batches, chunk_processes

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def articles() -> list[Article]:
    """The bundled sample help center (as kb_sources/sample.yaml declares it), with two articles that are rejected
    (no text; too long) placed inside, so that rejections cross the batches too."""
    source = SourceConfig(
        id="cdc-faq",
        kind="folder",
        location=str(REPO / "kb_sources" / "sample_help_center" / "site"),
        include=["articles/*.html"],
        base_url="https://help.example.com/",
    )
    read, _ = read_articles(source)
    assert len(read) > 30
    empty = dataclasses.replace(make_article("empty", "Empty", "x"), body_html="", text="")
    huge = dataclasses.replace(make_article("huge", "Huge", "x"), text="word " * 200_000)
    return [*read[:10], empty, *read[10:20], huge, *read[20:30]]  # few: the children's start-up is the cost


def _settings(*, processes: int | None, parallel_min_articles: int) -> Settings:
    return Settings.model_validate(
        {"chunking": {"processes": processes, "parallel_min_articles": parallel_min_articles}}
    )


def _chunk(settings: Settings, articles: list[Article]) -> tuple[list[ChunkedBatch], list[str]]:
    messages: list[str] = []
    store = cast(IndexStore, None)  # chunking never touches the store
    with InProcess(settings, store, on_progress=messages.append) as executor:
        batches = list(executor.chunk(articles, ChunkPolicy()))
    return batches, messages


def _merged(batches: list[ChunkedBatch]) -> dict[str, Any]:
    return {
        "rows": [row for batch in batches for row in batch.rows],
        "texts_by_hash": [item for batch in batches for item in batch.texts_by_hash.items()],
        "article_ids": [a for batch in batches for a in batch.article_ids],
        "rejected": [r for batch in batches for r in batch.rejected],
    }


class _NoPool:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("a process pool was started")


def test_processes_give_the_same_chunks_in_the_same_order(articles: list[Article]) -> None:
    single = chunk_batch(articles, ChunkPolicy())
    batches, messages = _chunk(_settings(processes=2, parallel_min_articles=10), articles)

    assert len(batches) == 8  # 4 batches a process: the order of the results is the batches' order
    assert any(f"chunking {len(articles)} articles in 2 processes" in m for m in messages), messages
    merged = _merged(batches)
    assert merged == _merged([single])
    assert [row["chunk_id"] for row in merged["rows"]] == [row["chunk_id"] for row in single.rows]
    assert dict(merged["texts_by_hash"]) == single.texts_by_hash
    assert [(r.record_id, r.code) for r in merged["rejected"]] == [(r.record_id, r.code) for r in single.rejected]
    assert [r.record_id for r in single.rejected] == [
        "https://help.example.com/articles/empty",
        "https://help.example.com/articles/huge",
    ]


def test_below_the_threshold_or_with_one_process_no_pool_starts(
    articles: list[Article], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(execution, "ProcessPoolExecutor", _NoPool)
    few = articles[:9]
    for settings in (
        _settings(processes=2, parallel_min_articles=10),  # 9 articles, fewer than 10
        _settings(processes=1, parallel_min_articles=0),  # parallel chunking off
    ):
        batches, messages = _chunk(settings, few)
        assert len(batches) == 1
        assert messages == ["chunking 9 articles in this process"]
        assert _merged(batches) == _merged([chunk_batch(few, ChunkPolicy())])
    for nothing_much in ([], few[:1]):  # nothing to share: no pool, whatever the threshold
        batches, _ = _chunk(_settings(processes=2, parallel_min_articles=0), nothing_much)
        assert _merged(batches) == _merged([chunk_batch(nothing_much, ChunkPolicy())])


def test_batches_are_contiguous_and_bounded() -> None:
    items = cast(list[Article], list(range(2_000)))
    batches = chunk_batches(items, 2, 250)  # the Dask executor's batches at this size
    assert [len(b) for b in batches] == [250] * 8
    assert [x for b in batches for x in b] == items
    assert [len(b) for b in chunk_batches(items[:600], 2, 250)] == [75] * 8  # 4 a process, not 250 + 250 + 100
    assert [len(b) for b in chunk_batches(cast(list[Article], list(range(10_000))), 2, 250)] == [250] * 40
    assert chunk_batches(items[:3], 8, 250) == [[0], [1], [2]]


def test_automatic_process_count() -> None:
    assert chunk_processes(3) == 3
    automatic = chunk_processes(None)
    assert 1 <= automatic <= execution.AUTO_MAX_PROCESSES
    assert automatic <= (os.cpu_count() or 1)


def test_chunking_settings_stay_out_of_the_policy() -> None:
    settings = _settings(processes=2, parallel_min_articles=7)
    assert ChunkPolicy.from_settings(settings) == ChunkPolicy()
    assert "processes" not in settings.chunking.model_dump()


class _DiesWhenUnpickled:
    """Unpickled in a chunking process, it ends that process at once (as the OOM killer would)."""

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return os._exit, (3,)


def test_a_chunking_process_that_dies_is_a_clear_error(articles: list[Article]) -> None:
    doomed = [cast(Article, _DiesWhenUnpickled())] * 2  # one a batch: both processes die at once
    with pytest.raises(KBError, match="a chunking process died") as raised:
        _chunk(_settings(processes=2, parallel_min_articles=0), doomed)
    assert type(raised.value) is KBError


def test_an_error_in_a_chunking_process_is_a_clear_error(articles: list[Article]) -> None:
    # len(None) fails before chunk_articles' per-article guard (one a batch: both processes fail at once).
    broken = dataclasses.replace(articles[0], text=cast(str, None))
    with pytest.raises(KBError, match="chunking failed in a chunking process: TypeError") as raised:
        _chunk(_settings(processes=2, parallel_min_articles=0), [broken, broken])
    assert type(raised.value) is KBError
    assert isinstance(raised.value.__cause__, TypeError)


def test_a_kbcurator_error_in_a_chunking_process_is_raised_as_it_is(articles: list[Article]) -> None:
    # As chunking in this process raises it: the policy's token limit cannot be resolved (no such model).
    executor = InProcess(_settings(processes=2, parallel_min_articles=0), cast(IndexStore, None))
    with pytest.raises(EmbeddingError, match="no-such-model"):
        list(executor.chunk(articles[:2], ChunkPolicy(model="no-such-model")))


class _CountingArticles(list[Article]):
    """Articles whose slices record when they are read (as a run's staged articles are read back)."""

    def __init__(self, items: list[Article], reads: list[int]) -> None:
        super().__init__(items)
        self.reads = reads

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return _ReadOnIteration(list.__getitem__(self, index), self.reads, index.start or 0)
        return list.__getitem__(self, index)


class _ReadOnIteration(list[Article]):
    def __init__(self, items: list[Article], reads: list[int], start: int) -> None:
        super().__init__(items)
        self._reads, self._start = reads, start

    def __iter__(self) -> Any:
        self._reads.append(self._start)
        return super().__iter__()


def test_processes_are_sent_a_few_batches_ahead_of_the_build_not_all_of_them(articles: list[Article]) -> None:
    """A build slower than its chunking (a real model) must not have every batch read and chunked into memory at
    once: batches are read when sent, at most two per process ahead of the one the build takes next."""
    reads: list[int] = []
    lazy = _CountingArticles(articles, reads)
    batches = chunk_batches(lazy, 2, 2)  # batches of 2 articles
    assert len(batches) == 16 and reads == []  # slicing reads nothing
    taken = []
    for number, batch in enumerate(execution._chunk_in_processes(batches, ChunkPolicy(), 2, lambda _m: None)):
        assert len(reads) <= number + 1 + 2 * 2, f"{len(reads)} batches read when the build took batch {number}"
        taken.append(batch)
    assert len(reads) == len(taken) == 16
    assert [row for b in taken for row in b.rows] == list(chunk_batch(articles, ChunkPolicy()).rows)
