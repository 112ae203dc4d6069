"""Exact vector search in memory (``KBIndex`` under ``AnnSettings.exact_max_chunks``) against LanceDB's flat scan.

Both paths search the same real LanceDB release; ``exact_max_chunks=0`` sends every search to LanceDB. The
embedder is a fake whose vectors are dense (each word a fixed random direction), so no two distinct chunks tie
on similarity and both paths must agree on the order, not only on the set.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import lancedb
import numpy as np
import pyarrow as pa
import pytest
from builders import make_article, sample_articles, sectioned_article

from kbcurator.chunking import ChunkPolicy
from kbcurator.index import schema
from kbcurator.index.build import build_candidate
from kbcurator.index.publish import publish
from kbcurator.index.reader import ChunkFilter, KBIndex, SearchHit, _InMemory, _top
from kbcurator.index.store import IndexStore
from kbcurator.records import Article, make_article_id
from kbcurator.settings import AnnSettings

_WORD = re.compile(r"[a-z0-9]+")
QUERIES = [
    "refund within 30 days of purchase",
    "reset password link email",
    "billing invoice download credit note",
    "Passwort Einstellungen",
    "two-factor authentication code",
    "export archive privacy",
    "rules for long passwords",
    "support help menu",
]
FILTERS = {
    "source": ChunkFilter(source_ids=("billing",)),
    "sources": ChunkFilter(source_ids=("test", "billing")),
    "no source": ChunkFilter(source_ids=("nowhere",)),
    "articles": ChunkFilter(article_ids=(make_article_id("test", "https://help.example.com/articles/refunds"),)),
    "no article": ChunkFilter(article_ids=()),
    "locale": ChunkFilter(locales=("de-de",)),
    "locales": ChunkFilter(locales=("de-de", "en-us")),
    "updated after": ChunkFilter(updated_after=datetime(2026, 2, 1, tzinfo=UTC)),
    "updated after, naive": ChunkFilter(updated_after=datetime(2026, 1, 5)),  # strictly after: the 5th is out
    "all kinds": ChunkFilter(source_ids=("test",), locales=("en-us",), updated_after=datetime(2026, 1, 1, tzinfo=UTC)),
}


class DenseFake:
    """Each word a fixed random unit direction, a text the normalised sum: texts sharing words are similar,
    and distinct texts never tie."""

    def __init__(self, dimension: int = 48, name: str = "dense-fake") -> None:
        self.name = name
        self.dimension = dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                seed = int(hashlib.md5(word.encode()).hexdigest()[:8], 16)
                out[i] += np.random.default_rng(seed).normal(size=self.dimension).astype(np.float32)
            out[i] /= float(np.linalg.norm(out[i])) or 1.0
        return out


def _marked(slug: str, title: str) -> Article:
    return sectioned_article(slug, title, marked=True)


def _articles() -> list[Article]:
    billing = make_article(
        "invoices",
        "Download an invoice",
        "Open Billing, pick the order and choose Download invoice. Refunds show as credit notes.",
        source_id="billing",
        updated=datetime(2026, 3, 1, tzinfo=UTC),
    )
    german = make_article("passwort", "Passwort zurücksetzen", "Öffnen Sie Einstellungen und wählen Sie Passwort.")
    undated = make_article("undated", "An undated page", "Nobody knows when this help page about billing was written.")
    return [
        *sample_articles(),  # source "test", locale en-us, updated 2026-01-05
        replace(billing, section="Billing"),
        replace(german, locale="de-de"),
        replace(undated, updated_at=None),  # null updated_at: never "updated after" anything
        _marked("password-rules", "Password rules"),
    ]


def _publish(store: IndexStore, articles: list[Article], embedder: DenseFake):
    candidate = build_candidate(articles, store=store, embedder=embedder, policy=ChunkPolicy())
    return publish(store, candidate, checks_passed=True, manifest={})


@pytest.fixture
def release(tmp_path):
    store = IndexStore(str(tmp_path / "index"))
    embedder = DenseFake()
    _publish(store, _articles(), embedder)
    return store, embedder


def _views(store: IndexStore, embedder: DenseFake) -> tuple[KBIndex, KBIndex]:
    in_memory = KBIndex(store, None, embedder)
    in_lance = KBIndex(store, None, embedder, ann=AnnSettings(exact_max_chunks=0))
    assert in_memory.searches_in_memory and not in_lance.searches_in_memory
    return in_memory, in_lance


def _assert_same(got: list[SearchHit], want: list[SearchHit], context: str) -> None:
    assert [h.chunk_id for h in got] == [h.chunk_id for h in want], context
    for a, b in zip(got, want, strict=True):
        assert a.similarity is not None and b.similarity is not None, context
        assert abs(a.similarity - b.similarity) < 1e-5, context
        assert abs(a.score - b.score) < 1e-5, context
        assert (a.article_id, a.url, a.title, a.heading, a.text) == (b.article_id, b.url, b.title, b.heading, b.text)
        assert (a.heading_path, a.locale, a.updated_at, a.content_hash) == (
            b.heading_path,
            b.locale,
            b.updated_at,
            b.content_hash,
        ), context


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_in_memory_search_returns_what_lancedb_returns(release, mode, monkeypatch) -> None:
    store, embedder = release
    in_memory, in_lance = _views(store, embedder)
    chunks = store.open_at(schema.CHUNKS, in_memory.release.chunks_version).count_rows()
    assert chunks > 10
    monkeypatch.setattr(in_memory, "_vector_rows", _no_lancedb)  # the in-memory view never asks LanceDB
    for text in QUERIES:
        for limit in (1, 3, 10, chunks + 5):
            got = in_memory.query(text, mode=mode, limit=limit)
            want = in_lance.query(text, mode=mode, limit=limit)
            assert len(want) == min(limit, chunks)
            _assert_same(got, want, f"{mode} {text!r} limit {limit}")


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filters_keep_the_chunks_lancedb_keeps(release, mode, name, monkeypatch) -> None:
    store, embedder = release
    in_memory, in_lance = _views(store, embedder)
    monkeypatch.setattr(in_memory, "_vector_rows", _no_lancedb)
    chunk_filter = FILTERS[name]
    for text in QUERIES:
        got = in_memory.query(text, mode=mode, limit=50, chunk_filter=chunk_filter)
        want = in_lance.query(text, mode=mode, limit=50, where=chunk_filter.where())
        _assert_same(got, want, f"{name} {mode} {text!r}")
        _assert_same(got, in_lance.query(text, mode=mode, limit=50, chunk_filter=chunk_filter), f"{name} {mode}")
        assert got == in_memory.query(text, mode=mode, limit=50, chunk_filter=chunk_filter)  # the cached mask


def test_each_filter_kind_narrows_as_it_says(release) -> None:
    store, embedder = release
    in_memory, _ = _views(store, embedder)

    def articles(**fields) -> set[str]:
        hits = in_memory.query("password", mode="vector", limit=100, chunk_filter=ChunkFilter(**fields))
        return {hit.url.rsplit("/", 1)[-1] for hit in hits}

    everything = articles()
    assert len(everything) == len(_articles())
    assert articles(source_ids=("billing",)) == {"invoices"}
    assert articles(source_ids=("bill",)) == set()  # a source id, not any prefix of the article id
    assert articles(locales=("de-de",)) == {"passwort"}
    assert articles(locales=("de-de", "en-us")) == everything
    assert articles(updated_after=datetime(2026, 2, 1, tzinfo=UTC)) == {"invoices"}
    assert "undated" not in articles(updated_after=datetime(2000, 1, 1, tzinfo=UTC))  # null: never after
    assert articles(updated_after=datetime(2026, 3, 1)) == set()  # strictly after; naive is UTC
    refunds = make_article_id("test", "https://help.example.com/articles/refunds")
    assert articles(article_ids=(refunds,)) == {"refunds"} and articles(article_ids=()) == set()
    assert articles(source_ids=("test",), article_ids=(refunds,), locales=("de-de",)) == set()  # AND


def test_a_where_string_still_searches_through_lancedb(release) -> None:
    store, embedder = release
    in_memory, in_lance = _views(store, embedder)
    where = "locale = 'de-de' OR title = 'Request a refund'"  # any SQL: not something the memory path evaluates
    got = in_memory.query("password refund", mode="vector", limit=20, where=where)
    assert {hit.locale for hit in got} == {"de-de", "en-us"}
    _assert_same(got, in_lance.query("password refund", mode="vector", limit=20, where=where), where)
    with pytest.raises(ValueError, match="not both"):
        in_memory.query("x", mode="vector", limit=3, where=where, chunk_filter=ChunkFilter(locales=("de-de",)))


def test_equal_similarities_rank_by_chunk_id(tmp_path) -> None:
    """The same page under two URLs: identical chunks, identical vectors. LanceDB returns them in no set order;
    in memory they come by chunk id, whichever the limit cuts."""
    store = IndexStore(str(tmp_path / "index"))
    embedder = DenseFake()
    articles = sample_articles()
    twins = [
        replace(articles[1], url=url, article_id=make_article_id("test", url))
        for url in (f"https://help.example.com/articles/refunds-copy-{i}" for i in range(3))
    ]
    _publish(store, [*articles, *twins], embedder)
    in_memory, in_lance = _views(store, embedder)
    ranking = [hit.chunk_id for hit in in_memory.query("refund within 30 days", mode="vector", limit=30)]
    for limit in (1, 2, 3, 4, 30):
        got = in_memory.query("refund within 30 days", mode="vector", limit=limit)
        assert [hit.chunk_id for hit in got] == ranking[:limit]
        want = in_lance.query("refund within 30 days", mode="vector", limit=limit)
        assert len(got) == len(want)
        keys = [(-round(hit.similarity or 0, 5), hit.chunk_id) for hit in got]
        assert keys == sorted(keys), limit  # most similar first, equal ones by chunk id
        by_score: dict[float, set[str]] = {}
        for hit in want:
            by_score.setdefault(round(hit.similarity or 0, 5), set()).add(hit.chunk_id)
        cut = round(want[-1].similarity or 0, 5)  # the group the limit may cut differently
        for score, ids in by_score.items():
            kept = {hit.chunk_id for hit in got if round(hit.similarity or 0, 5) == score}
            assert kept == ids if score != cut else len(kept) == len(ids), (limit, score)
        if limit >= 4:
            top = [hit.chunk_id for hit in got[:4]]
            assert top == sorted(top)  # the four identical chunks, by chunk id


def test_the_limit_cuts_equal_scores_by_rank() -> None:
    scores = np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.9, 0.1], dtype=np.float32)
    ranks = np.array([5, 4, 3, 2, 1, 0, 6, 7])
    assert _top(scores, ranks, 3).tolist() == [6, 5, 4]
    assert _top(scores, ranks, 1).tolist() == [6]
    assert _top(scores, ranks, 20).tolist() == [6, 5, 4, 3, 2, 1, 0, 7]
    assert _top(scores[:0], ranks[:0], 3).tolist() == [] and _top(scores, ranks, 0).tolist() == []


def test_refresh_to_a_new_release_drops_the_old_vectors(release) -> None:
    store, embedder = release
    following = KBIndex(store, None, embedder)
    pinned = KBIndex(store, "release-0001", embedder)
    before = following.query("single sign-on SSO admin", mode="vector", limit=50)
    assert following.searches_in_memory and "Sign in with SSO" not in {hit.title for hit in before}
    articles = _articles()
    articles.append(make_article("sso", "Sign in with SSO", "Ask your admin to enable single sign-on SSO."))
    _publish(store, articles, embedder)
    assert not pinned.refresh() and following.refresh() and following.release.tag == "release-0002"
    after = following.query("single sign-on SSO admin", mode="vector", limit=50)
    assert after[0].title == "Sign in with SSO" and len(after) == len(before) + 1
    _assert_same(
        after,
        KBIndex(store, None, embedder, ann=AnnSettings(exact_max_chunks=0)).query(
            "single sign-on SSO admin", mode="vector", limit=50
        ),
        "after refresh",
    )
    assert {hit.title for hit in pinned.query("single sign-on SSO admin", mode="vector", limit=50)} == {
        hit.title for hit in before
    }


def test_the_memory_path_stays_off_past_its_size_or_with_a_vector_index(release, monkeypatch) -> None:
    store, embedder = release
    chunks = store.open_at(schema.CHUNKS, store.current().chunks_version).count_rows()
    assert KBIndex(store, None, embedder, ann=AnnSettings(exact_max_chunks=chunks)).searches_in_memory
    assert not KBIndex(store, None, embedder, ann=AnnSettings(exact_max_chunks=chunks - 1)).searches_in_memory
    monkeypatch.setattr("kbcurator.index.reader.has_vector_index", lambda table: True)
    assert not KBIndex(store, None, embedder).searches_in_memory


def test_filters_treat_nulls_as_sql_does(tmp_path) -> None:
    """Nulls in every filtered column (a build writes none but updated_at's), against LanceDB's own evaluation of
    the same filter's SQL."""
    dimension = 8
    rng = np.random.default_rng(3)
    rows = []
    for i in range(40):
        vector = rng.normal(size=dimension).astype(np.float32)
        rows.append(
            {
                "chunk_id": f"c{i:03d}",
                "article_id": None if i % 7 == 0 else f"{'ab'[i % 2]}:{i % 5}",
                "position": 0,
                "text": f"text {i}",
                "heading_path": [],
                "heading": None,
                "char_start": 0,
                "char_end": 1,
                "content_hash": f"h{i}",
                "url": f"u{i}",
                "title": f"t{i}",
                "locale": None if i % 3 == 0 else ["en", "de"][i % 2],
                "updated_at": None if i % 4 == 0 else datetime(2026, 1, 1 + i % 20, tzinfo=UTC),
                "row_hash": "",
                "vector": (vector / np.linalg.norm(vector)).tolist(),
            }
        )
    data = pa.Table.from_pylist(rows, schema=schema.chunks_schema(dimension))
    table = lancedb.connect(str(tmp_path / "db")).create_table("chunks", data)
    memory = _InMemory(data)
    query = rng.normal(size=dimension).astype(np.float32)
    filters = [
        ChunkFilter(source_ids=("a",)),
        ChunkFilter(source_ids=("a", "b")),
        ChunkFilter(article_ids=("a:1", "b:2")),
        ChunkFilter(locales=("de",)),
        ChunkFilter(updated_after=datetime(2026, 1, 10, tzinfo=UTC)),
        ChunkFilter(source_ids=("b",), locales=("en", "de"), updated_after=datetime(2026, 1, 3)),
    ]
    for chunk_filter in filters:
        where = chunk_filter.where()
        want = (
            table.search(query).distance_type("cosine").where(where, prefilter=True).select(["chunk_id", "_distance"])
        )
        wanted = want.limit(100).to_arrow().to_pylist()
        got = memory.search(query, 100, chunk_filter)
        assert [row["chunk_id"] for row in got] == [row["chunk_id"] for row in wanted], where
        assert np.allclose([row["_distance"] for row in got], [row["_distance"] for row in wanted], atol=1e-5)
        assert 0 < len(got) < 40, where


def _no_lancedb(*args, **kwargs):
    raise AssertionError("a vector search of a small release without a vector index went to LanceDB")
