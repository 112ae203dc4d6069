"""The index on a real LanceDB directory, with the fake hashing embedder (fast, deterministic)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from builders import make_article, sample_articles
from fakes import FakeHashingEmbedder

from kbcurator.chunking import ChunkPolicy, embedding_input
from kbcurator.errors import PublishError, ValidationFailed
from kbcurator.index import open_index
from kbcurator.index.build import build_candidate
from kbcurator.index.publish import publish
from kbcurator.index.store import IndexStore, manifest_of
from kbcurator.index.versions import diff_releases, rollback
from kbcurator.records import sha256_hex

POLICY = ChunkPolicy()


@pytest.fixture()
def store(tmp_path) -> IndexStore:
    return IndexStore(str(tmp_path / "index"))


def _publish(store, articles, embedder, **manifest):
    candidate = build_candidate(articles, store=store, embedder=embedder, policy=POLICY)
    return candidate, publish(store, candidate, checks_passed=True, manifest=manifest)


def _edited(article, new_body):
    text = article.text.replace(article.text.split("\n\n")[1], new_body)
    html = article.body_html.replace(article.text.split("\n\n")[1], new_body)
    return replace(article, body_html=html, text=text, content_hash=sha256_hex(article.title + "\n" + text))


def test_publish_tags_both_tables_and_records_the_manifest(store) -> None:
    embedder = FakeHashingEmbedder()
    candidate, release = _publish(store, sample_articles(), embedder, run_id="r1")
    assert release.tag == "release-0001" and store.current() == release
    manifest = manifest_of(release)
    assert manifest["model"] == "fake-hashing" and manifest["dimension"] == 32
    assert manifest["counts"] == {"articles": 5, "chunks": candidate.chunks.num_rows}
    assert manifest["previous"] is None and manifest["run_id"] == "r1"
    for name in ("articles", "chunks"):
        table = store.db.open_table(name)
        assert "release-0001" in table.tags.list()
    chunks = store.read_table("chunks", release.chunks_version)
    assert chunks.num_rows == candidate.chunks.num_rows
    assert len(set(chunks["chunk_id"].to_pylist())) == chunks.num_rows


def test_unchanged_articles_are_not_chunked_or_embedded_again(store) -> None:
    embedder = FakeHashingEmbedder()
    articles = sample_articles()
    _publish(store, articles, embedder)
    first_cost = len(embedder.embedded_texts)
    assert first_cost > 0

    again = build_candidate(articles, store=store, embedder=embedder, policy=POLICY)
    assert len(embedder.embedded_texts) == first_cost
    assert again.stats.articles_reused == 5 and again.stats.chunks_embedded == 0

    articles[1] = _edited(articles[1], "Refunds are available within 14 days of purchase.")
    changed = build_candidate(articles, store=store, embedder=embedder, policy=POLICY)
    assert changed.stats.articles_reused == 4 and changed.stats.articles_chunked == 1
    assert 0 < len(embedder.embedded_texts) - first_cost <= 2


def test_every_row_of_a_partly_reused_candidate_carries_its_own_chunks_vector(store) -> None:
    embedder = FakeHashingEmbedder()
    articles = sample_articles()
    _publish(store, articles, embedder)
    articles[2] = _edited(articles[2], "Exports arrive by email within 3 days as a ZIP archive.")
    candidate = build_candidate(articles, store=store, embedder=embedder, policy=POLICY)
    assert candidate.stats.articles_reused == 4 and candidate.stats.articles_chunked == 1
    chunks = candidate.chunks.to_pylist()
    expected = FakeHashingEmbedder().embed([embedding_input(row["title"], row["text"]) for row in chunks])
    assert np.allclose(np.array([row["vector"] for row in chunks]), expected)


def test_embedding_cache_survives_a_run_that_never_published(store) -> None:
    embedder = FakeHashingEmbedder()
    build_candidate(sample_articles(), store=store, embedder=embedder, policy=POLICY)  # killed before publish
    cost = len(embedder.embedded_texts)
    rerun = build_candidate(sample_articles(), store=store, embedder=embedder, policy=POLICY)
    assert len(embedder.embedded_texts) == cost
    assert rerun.stats.chunks_from_cache == rerun.stats.chunks


def test_diff_and_rollback(store) -> None:
    embedder = FakeHashingEmbedder()
    articles = sample_articles()
    _publish(store, articles, embedder)
    articles[0] = _edited(articles[0], "Open Account and choose Forgot password.")
    del articles[4]
    articles.append(make_article("sso", "Sign in with SSO", "Ask your admin to enable single sign-on."))
    _, second = _publish(store, articles, embedder)
    assert second.tag == "release-0002" and second.previous_tag == "release-0001"

    diff = diff_releases(store, "release-0001", "current")
    assert diff.articles.counts() == {"added": 1, "changed": 1, "removed": 1}
    assert diff.chunks.counts()["added"] >= 1 and diff.chunks.counts()["removed"] >= 1

    pinned = open_index(store.uri, "release-0002", embedder=embedder)
    following = open_index(store.uri, embedder=embedder)
    rolled = rollback(store, "release-0001")
    assert rolled.kind == "rollback" and store.current().tag == "release-0001"
    assert following.refresh() and following.release.tag == "release-0001"
    assert not pinned.refresh() and pinned.release.tag == "release-0002"
    titles_now = {h.title for h in following.search("single sign-on SSO admin", k=10, mode="vector")}
    assert "Sign in with SSO" not in titles_now
    assert "Sign in with SSO" in {h.title for h in pinned.search("single sign-on SSO admin", k=3, mode="vector")}
    with pytest.raises(PublishError, match="already current"):
        rollback(store, "release-0001")
    with pytest.raises(PublishError, match="no release tagged"):
        rollback(store, "release-0099")


def test_failed_checks_publish_nothing(store) -> None:
    embedder = FakeHashingEmbedder()
    _, first = _publish(store, sample_articles(), embedder)
    candidate = build_candidate(sample_articles()[:1], store=store, embedder=embedder, policy=POLICY)
    with pytest.raises(ValidationFailed):
        publish(store, candidate, checks_passed=False, manifest={})
    assert store.current() == first
    assert store.read_table("articles", store.current().articles_version).num_rows == 5


def test_rerun_after_a_kill_between_write_and_commit_has_no_duplicates(store, monkeypatch) -> None:
    embedder = FakeHashingEmbedder()
    _, first = _publish(store, sample_articles(), embedder)
    articles = sample_articles()
    articles[2] = _edited(articles[2], "You can cancel from Billing; the plan ends immediately.")
    candidate = build_candidate(articles, store=store, embedder=embedder, policy=POLICY)

    def killed(*_args, **_kwargs):
        raise KeyboardInterrupt("killed after the tables were written")

    monkeypatch.setattr(IndexStore, "append_release", killed)
    with pytest.raises(KeyboardInterrupt):
        publish(store, candidate, checks_passed=True, manifest={})
    monkeypatch.undo()
    assert store.current() == first  # readers never saw the half-done publish

    rerun = build_candidate(articles, store=store, embedder=embedder, policy=POLICY)
    release = publish(store, rerun, checks_passed=True, manifest={})
    assert release.tag == "release-0002"
    chunks = store.read_table("chunks", release.chunks_version)
    ids = chunks["chunk_id"].to_pylist()
    assert len(ids) == len(set(ids)) == rerun.chunks.num_rows
    assert store.read_table("articles", release.articles_version).num_rows == 5


def test_search_hybrid_and_vector_return_the_matching_article(store) -> None:
    embedder = FakeHashingEmbedder(dimension=64)
    _publish(store, sample_articles(), embedder)
    index = open_index(store.uri, embedder=embedder)
    for mode in ("vector", "hybrid", "fts"):
        hits = index.search("authenticator app one-time code", k=3, mode=mode)
        assert hits and hits[0].title == "Turn on two-factor authentication", mode
    vector_hit = index.search("authenticator app one-time code", k=1, mode="vector")[0]
    assert 0.0 < vector_hit.score <= 1.0


def test_query_embedder_must_match_the_release_model(store) -> None:
    _publish(store, sample_articles(), FakeHashingEmbedder())
    other = FakeHashingEmbedder(dimension=16, name="another-model")
    with pytest.raises(PublishError, match="built with fake-hashing"):
        open_index(store.uri, embedder=other).search("refund", mode="vector")


def test_open_index_on_an_empty_database_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(PublishError, match="no release has been published"):
        open_index(str(tmp_path / "nothing"))
