"""A rebuild does not parse again a file whose article the current release holds, and reads the same articles as
a full parse would; anything that could make the memo's answer differ from the parser's is a miss."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fakes import FakeHashingEmbedder

import kbcurator.ingest.parse as parse_module
from kbcurator.chunking import ChunkPolicy
from kbcurator.index.build import build_candidate
from kbcurator.index.parse_memo import ParseMemo
from kbcurator.index.publish import publish
from kbcurator.index.store import IndexStore
from kbcurator.index.versions import rollback
from kbcurator.ingest import read_articles
from kbcurator.settings import SourceConfig

PAGES = {
    "reset-password.md": "---\ntitle: Reset your password\nlast_modified_at: 2026-01-04\n---\n\n"
    "Open **Settings > Security** and choose *Reset password*. The link is valid for 24 hours.\n",
    "export-data.md": "---\ntitle: Export your data\n---\n\n## Steps\n\nGo to Account and choose Export. "
    "The archive arrives by email within 2 days.\n",
    "billing/refunds.html": "<html lang='en'><head><title>Refunds</title></head><body><main><h1>Refunds</h1>"
    "<p>Refunds are available within 30 days of purchase.</p><p>See <a href='/export-data'>exports</a>.</p>"
    "</main></body></html>",
    "broken.md": "---\ntitle: [unclosed\n---\nbody\n",  # bad front matter: rejected at parse, every time
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    for relative, text in PAGES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.utime(path, (1_767_225_600, 1_767_225_600))  # a fixed file time: it is part of what a page parses to
    return root


def source_for(root: Path, **overrides: object) -> SourceConfig:
    settings = {
        "id": "help",
        "kind": "folder",
        "location": str(root),
        "include": ["**/*.md", "**/*.html"],
        "base_url": "https://help.example.com/",
    }
    return SourceConfig(**{**settings, **overrides})


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The locations parse_page is called for."""
    calls: list[str] = []
    real = parse_module.parse_page

    def counting(page, **kwargs):
        calls.append(page.location)
        return real(page, **kwargs)

    monkeypatch.setattr(parse_module, "parse_page", counting)
    return calls


def publish_from(store: IndexStore, source: SourceConfig) -> None:
    articles, _ = read_articles(source, memo=ParseMemo(store))
    candidate = build_candidate(articles, store=store, embedder=FakeHashingEmbedder(), policy=ChunkPolicy())
    publish(store, candidate, checks_passed=True, manifest={})


def test_an_unchanged_rebuild_parses_nothing_and_reads_what_a_full_parse_reads(tmp_path, site, parses) -> None:
    store = IndexStore(str(tmp_path / "index"))
    source = source_for(site)
    publish_from(store, source)
    assert len(parses) == len(PAGES)

    parses.clear()
    memo = ParseMemo(store)
    articles, rejected = read_articles(source, memo=memo)
    assert parses == ["https://help.example.com/broken.md"]  # only the page that never became an article
    assert memo.reused == 3
    assert (articles, rejected) == read_articles(source)  # without the memo: everything parsed


def test_an_edited_or_touched_file_is_parsed_again(tmp_path, site, parses) -> None:
    store = IndexStore(str(tmp_path / "index"))
    source = source_for(site)
    publish_from(store, source)
    (site / "export-data.md").write_text(PAGES["export-data.md"].replace("2 days", "3 days"))
    os.utime(site / "reset-password.md", (1_767_312_000, 1_767_312_000))  # same text, new file time

    parses.clear()
    articles, _ = read_articles(source, memo=ParseMemo(store))
    assert sorted(parses) == [
        "https://help.example.com/broken.md",
        "https://help.example.com/export-data.md",
        "https://help.example.com/reset-password.md",
    ]
    assert any("3 days" in article.text for article in articles)
    assert articles == read_articles(source)[0]


def test_other_source_settings_parse_again(tmp_path, site, parses) -> None:
    store = IndexStore(str(tmp_path / "index"))
    publish_from(store, source_for(site))
    parses.clear()
    moved = source_for(site, base_url="https://support.example.com/")
    articles, _ = read_articles(moved, memo=ParseMemo(store))
    assert len(parses) == len(PAGES)
    assert all(article.url.startswith("https://support.example.com/") for article in articles)


def test_a_page_whose_article_the_current_release_lacks_is_parsed(tmp_path, site, parses) -> None:
    store = IndexStore(str(tmp_path / "index"))
    source = source_for(site)
    publish_from(store, source)
    first = store.current()
    assert first is not None
    # The refund window changes and is published; then the owner rolls back to the first release.
    (site / "billing/refunds.html").write_text(PAGES["billing/refunds.html"].replace("30 days", "14 days"))
    publish_from(store, source)
    rollback(store, first.tag)
    # The file now holds the 14-day text again, whose article the current (rolled-back) release does not hold.
    parses.clear()
    articles, _ = read_articles(source, memo=ParseMemo(store))
    assert "https://help.example.com/billing/refunds.html" in parses
    assert any("14 days" in article.text for article in articles)
    assert articles == read_articles(source)[0]


def test_a_failed_build_leaves_no_memo_a_later_run_could_misuse(tmp_path, site, parses) -> None:
    store = IndexStore(str(tmp_path / "index"))
    source = source_for(site)
    publish_from(store, source)
    (site / "reset-password.md").write_text(PAGES["reset-password.md"].replace("24 hours", "48 hours"))
    read_articles(source, memo=ParseMemo(store))  # read, then the run's checks fail: nothing is published

    parses.clear()
    articles, _ = read_articles(source, memo=ParseMemo(store))
    assert "https://help.example.com/reset-password.md" in parses  # its article is not in the current release
    assert any("48 hours" in article.text for article in articles)


def test_a_source_read_in_batches_gives_the_same_articles(tmp_path, site, parses, monkeypatch) -> None:
    import kbcurator.ingest as ingest

    store = IndexStore(str(tmp_path / "index"))
    source = source_for(site)
    publish_from(store, source)
    monkeypatch.setattr(ingest, "_MEMO_BATCH", 1)  # every page its own memo lookup
    (site / "export-data.md").write_text(PAGES["export-data.md"].replace("2 days", "3 days"))
    parses.clear()
    memo = ParseMemo(store)
    articles, rejected = read_articles(source, memo=memo)
    assert sorted(parses) == ["https://help.example.com/broken.md", "https://help.example.com/export-data.md"]
    assert memo.reused == 2
    assert (articles, rejected) == read_articles(source)
