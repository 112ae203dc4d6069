"""``kbcurator diff`` names the articles a release added, changed and removed by title and URL, not only by id."""

from __future__ import annotations

import json

from builders import make_article, sample_articles
from fakes import FakeHashingEmbedder
from typer.testing import CliRunner

from kbcurator.chunking import ChunkPolicy
from kbcurator.cli import app
from kbcurator.index.build import build_candidate
from kbcurator.index.publish import publish
from kbcurator.index.store import IndexStore


def test_diff_shows_titles_and_urls(tmp_path) -> None:
    store = IndexStore(str(tmp_path / "index"))
    embedder = FakeHashingEmbedder()
    articles = sample_articles()  # the last one, "Export your data", is dropped by the second release
    sso = make_article("sso", "Sign in with SSO", "Ask your admin.")
    for batch in (articles, [*articles[:4], sso]):
        publish(
            store,
            build_candidate(batch, store=store, embedder=embedder, policy=ChunkPolicy()),
            checks_passed=True,
            manifest={},
        )
    config = tmp_path / "kb.yaml"
    config.write_text(f"index_uri: {store.uri}\n")

    text = CliRunner().invoke(app, ["diff", "release-0001", "--config", str(config)])
    assert text.exit_code == 0, text.output
    assert f"added    Sign in with SSO  {sso.url}  [{sso.article_id}]" in text.output
    assert "removed  Export your data  https://help.example.com/articles/export" in text.output

    as_json = CliRunner().invoke(app, ["diff", "release-0001", "--config", str(config), "--json"])
    titles = json.loads(as_json.output)["article_titles"]
    assert titles[sso.article_id] == {"title": "Sign in with SSO", "url": sso.url}
    assert titles[articles[-1].article_id]["title"] == "Export your data"
