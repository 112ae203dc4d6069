"""The CLI on a real LanceDB index (built with the fake embedder: these commands never embed)."""

from __future__ import annotations

import json

import pytest
from builders import make_article, sample_articles
from fakes import FakeHashingEmbedder
from typer.testing import CliRunner

from kbcurator.chunking import ChunkPolicy
from kbcurator.cli import EXIT_ERROR, app
from kbcurator.index.build import build_candidate
from kbcurator.index.publish import publish
from kbcurator.index.store import IndexStore

runner = CliRunner()


@pytest.fixture()
def two_releases(tmp_path):
    store = IndexStore(str(tmp_path / "index"))
    embedder = FakeHashingEmbedder()
    articles = sample_articles()
    for batch in (articles, [*articles[:4], make_article("sso", "Sign in with SSO", "Ask your admin.")]):
        candidate = build_candidate(batch, store=store, embedder=embedder, policy=ChunkPolicy())
        publish(store, candidate, checks_passed=True, manifest={})
    config = tmp_path / "kb.yaml"
    config.write_text(f"index_uri: {store.uri}\n")
    return str(config), store


def test_versions_lists_releases_and_marks_current(two_releases) -> None:
    config, _ = two_releases
    result = runner.invoke(app, ["versions", "--config", config])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "release-0001" in lines[1] and "release-0002" in lines[2]
    assert lines[2].endswith("<- current") and "fake-hashing" in lines[2]


def test_diff_reports_added_and_removed_articles(two_releases) -> None:
    config, _ = two_releases
    result = runner.invoke(app, ["diff", "release-0001", "release-0002", "--config", config, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["articles"]["added"]) == 1 and len(data["articles"]["removed"]) == 1
    assert data["articles"]["changed"] == []


def test_rollback_then_versions_shows_the_old_tag_current(two_releases) -> None:
    config, store = two_releases
    result = runner.invoke(app, ["rollback", "release-0001", "--config", config])
    assert result.exit_code == 0, result.output
    assert "current is now release-0001 (was release-0002)" in result.output
    assert store.current().tag == "release-0001" and store.current().kind == "rollback"


def test_errors_are_one_clear_line_and_a_nonzero_exit(two_releases, tmp_path) -> None:
    config, _ = two_releases
    unknown = runner.invoke(app, ["rollback", "release-0042", "--config", config])
    assert unknown.exit_code == EXIT_ERROR
    assert "no release tagged 'release-0042'" in unknown.output
    assert "Traceback" not in unknown.output
    # The index was built with a model that is not installed: searching says so instead of downloading.
    search = runner.invoke(app, ["search", "refund", "--config", config])
    assert search.exit_code == EXIT_ERROR
    assert "never downloads weights" in search.output
    missing = runner.invoke(app, ["versions", "--config", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == EXIT_ERROR and "settings file not found" in missing.output


@pytest.mark.parametrize(
    "command", [["versions"], ["audit"], ["report", "--out", "r.html"], ["open-items"], ["search", "refund"]]
)
def test_reading_a_mistyped_index_path_is_an_error_and_creates_nothing(tmp_path, command) -> None:
    missing = tmp_path / "no-such-index"
    outcome = CliRunner().invoke(app, [*command, "--index-uri", str(missing)])
    assert outcome.exit_code == 1
    assert f"no index at {missing}" in outcome.output
    assert not missing.exists()
