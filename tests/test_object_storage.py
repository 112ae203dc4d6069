"""The index on object storage: a real S3-compatible server (moto) on 127.0.0.1, reached over HTTP.

Build, publish, tag, read a pinned release back, roll back and reuse the embedding cache, all against
``s3://`` with an endpoint override, the way a deployment on S3 or MinIO runs them. The override
reaches LanceDB three ways, each tested: ``storage_options``, the standard AWS environment (what the
flows and the CLI rely on today), and ``Settings.index_storage_options``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from builders import make_article, sample_articles
from fakes import FakeHashingEmbedder
from typer.testing import CliRunner

from kbcurator.chunking import ChunkPolicy
from kbcurator.index import open_index
from kbcurator.index.build import build_candidate
from kbcurator.index.publish import publish
from kbcurator.index.store import IndexStore
from kbcurator.index.versions import diff_releases, rollback
from kbcurator.records import Article, sha256_hex
from kbcurator.settings import load_settings

pytest.importorskip("moto.server", reason="moto[server] is not installed (pip install -e '.[dev]')")
from s3_server import S3Server  # after the skip: it imports moto

POLICY = ChunkPolicy()
SSO = make_article("sso", "Sign in with SSO", "Ask your admin to enable single sign-on for your workspace.")
SSO_QUERY = "single sign-on SSO admin workspace"


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    with S3Server("kbcurator") as server:
        yield server


@pytest.fixture()
def prefix(request: pytest.FixtureRequest) -> str:
    """A folder of the bucket of its own for each test."""
    return request.node.name.replace("[", "-").replace("]", "")


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory: a code path that writes "s3://..." as a local path would land here."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def _edited(article: Article, new_body: str) -> Article:
    old_body = article.text.split("\n\n")[1]
    text = article.text.replace(old_body, new_body)
    html = article.body_html.replace(old_body, new_body)
    return replace(article, body_html=html, text=text, content_hash=sha256_hex(article.title + "\n" + text))


def _publish_two_releases(store: IndexStore, embedder: FakeHashingEmbedder) -> None:
    articles = sample_articles()
    publish(
        store, build_candidate(articles, store=store, embedder=embedder, policy=POLICY), checks_passed=True, manifest={}
    )
    second = [*articles[:4], SSO]
    publish(
        store, build_candidate(second, store=store, embedder=embedder, policy=POLICY), checks_passed=True, manifest={}
    )


def _titles(index, query: str, mode: str = "vector") -> set[str]:
    return {hit.title for hit in index.search(query, k=10, mode=mode)}


def test_release_lifecycle_on_s3(s3: S3Server, prefix: str, workdir: Path) -> None:
    uri, options = s3.uri(prefix), s3.storage_options()
    embedder = FakeHashingEmbedder()
    store = IndexStore(uri, storage_options=options)
    articles = sample_articles()

    first = publish(
        store, build_candidate(articles, store=store, embedder=embedder, policy=POLICY), checks_passed=True, manifest={}
    )
    assert first.tag == "release-0001"
    for table in ("articles", "chunks"):
        assert "release-0001" in store.db.open_table(table).tags.list()
        assert f"{prefix}/{table}.lance/_refs/tags/release-0001.json" in s3.keys(prefix)

    # The second build reads the first release back from the bucket to reuse what did not change.
    articles[0] = _edited(articles[0], "Open Account and choose Forgot password; the link lasts 24 hours.")
    second_batch = [*articles[:4], SSO]
    candidate = build_candidate(second_batch, store=store, embedder=embedder, policy=POLICY)
    assert candidate.stats.articles_reused == 3 and candidate.stats.articles_chunked == 2
    second = publish(store, candidate, checks_passed=True, manifest={})
    assert second.tag == "release-0002" and second.previous_tag == "release-0001"

    resolved = store.resolve("release-0001")
    assert (resolved.seq, resolved.chunks_version) == (1, first.chunks_version)
    assert resolved.chunks_version < second.chunks_version
    diff = diff_releases(store, "release-0001", "release-0002")
    assert diff.articles.counts() == {"added": 1, "changed": 1, "removed": 1}

    # Readers open their own connection, as a RAG service in another process would.
    pinned = open_index(uri, "release-0001", embedder=embedder, storage_options=options)
    following = open_index(uri, embedder=embedder, storage_options=options)
    assert pinned.release.tag == "release-0001" and following.release.tag == "release-0002"
    assert "Sign in with SSO" not in _titles(pinned, SSO_QUERY)
    assert "Request a refund" in _titles(pinned, "refund purchase billing order")
    for mode in ("vector", "hybrid", "fts"):  # hybrid and fts use the full-text index written to the bucket
        assert "Sign in with SSO" in _titles(following, SSO_QUERY, mode), mode

    rolled = rollback(store, "release-0001")
    assert rolled.kind == "rollback" and rolled.previous_tag == "release-0002"
    assert following.refresh() and following.release.tag == "release-0001"
    assert "Sign in with SSO" not in _titles(following, SSO_QUERY)
    reopened = IndexStore(uri, storage_options=options)
    assert reopened.current() == rolled
    assert reopened.read_table("articles", reopened.current().articles_version).num_rows == 5

    assert list(workdir.iterdir()) == []  # nothing was written to a local folder


def test_embedding_cache_on_s3_survives_a_run_that_never_published(s3: S3Server, prefix: str, workdir: Path) -> None:
    uri, options = s3.uri(prefix), s3.storage_options()
    embedder = FakeHashingEmbedder()
    killed = build_candidate(
        sample_articles(), store=IndexStore(uri, storage_options=options), embedder=embedder, policy=POLICY
    )
    cost = len(embedder.embedded_texts)
    assert cost == killed.stats.chunks_embedded > 0
    assert any(key.startswith(f"{prefix}/embedding_cache.lance/") for key in s3.keys(prefix))

    # A rerun (a new process: a new connection) finds every vector in the bucket and embeds nothing.
    rerun = build_candidate(
        sample_articles(), store=IndexStore(uri, storage_options=options), embedder=embedder, policy=POLICY
    )
    assert len(embedder.embedded_texts) == cost
    assert rerun.stats.chunks_from_cache == rerun.stats.chunks == killed.stats.chunks
    assert list(workdir.iterdir()) == []


def test_the_aws_environment_alone_reaches_the_server_through_the_cli(
    s3: S3Server, prefix: str, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flows and the CLI open ``IndexStore(settings.index_uri)``: the environment is their override."""
    from kbcurator.cli import app

    for name, value in s3.environment().items():
        monkeypatch.setenv(name, value)
    uri = s3.uri(prefix)
    _publish_two_releases(IndexStore(uri), FakeHashingEmbedder())
    config = tmp_path / "kb.yaml"
    config.write_text(f"index_uri: {uri}\n")
    runner = CliRunner()

    listed = runner.invoke(app, ["versions", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    assert "release-0002" in listed.output.splitlines()[-1] and "<- current" in listed.output

    rolled = runner.invoke(app, ["rollback", "release-0001", "--config", str(config)])
    assert rolled.exit_code == 0, rolled.output
    assert "current is now release-0001 (was release-0002)" in rolled.output
    shown = runner.invoke(app, ["manifest", "--index-uri", uri, "--config", str(config)])
    assert shown.exit_code == 0 and '"kind": "rollback"' in shown.output

    assert IndexStore(uri).current().tag == "release-0001"
    assert list(workdir.iterdir()) == []


def test_settings_storage_options_reach_the_store(
    s3: S3Server, prefix: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3.storage_options().items():
        monkeypatch.setenv(f"KB_INDEX_STORAGE_OPTIONS__{name.upper()}", value)
    settings = load_settings(index_uri=s3.uri(prefix))
    assert settings.index_storage_options == s3.storage_options()

    embedder = FakeHashingEmbedder()
    _publish_two_releases(IndexStore(settings.index_uri, storage_options=settings.index_storage_options), embedder)
    index = open_index(
        settings.index_uri, "release-0001", embedder=embedder, storage_options=settings.index_storage_options
    )
    assert index.release.seq == 1 and "Sign in with SSO" not in _titles(index, SSO_QUERY)
    assert f"{prefix}/releases.lance/" in "".join(s3.keys(prefix))
    assert list(workdir.iterdir()) == []
