"""read_folder on the bundled sample and on small folders built in tmp_path."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kbcurator.errors import SourceError
from kbcurator.ingest import read_articles
from kbcurator.ingest.folder import MAX_TEXT_FILE_BYTES, read_folder
from kbcurator.ingest.parse import parse_page
from kbcurator.records import Article, RawPage, Rejected
from kbcurator.settings import SourceConfig

SAMPLE = Path(__file__).resolve().parents[1] / "kb_sources" / "sample_help_center"
ARTICLES = len(list((SAMPLE / "site" / "articles").glob("*.html")))


def _folder(location: Path, **kwargs: Any) -> SourceConfig:
    return SourceConfig(id="docs", kind="folder", location=str(location), **kwargs)


def _pages(results: list[RawPage | Rejected]) -> list[RawPage]:
    return [r for r in results if isinstance(r, RawPage)]


def test_bundled_site_folder_reads_every_page_in_sorted_order() -> None:
    results = list(read_folder(_folder(SAMPLE / "site", exclude=["private/**"])))

    assert not [r for r in results if isinstance(r, Rejected)]
    pages = _pages(results)
    # Every article plus the home page; CSS, sitemap.xml and robots.txt are skipped silently.
    assert ARTICLES > 100
    assert len(pages) == ARTICLES + 1
    assert [p.location for p in pages] == sorted(p.location for p in pages)
    assert pages[-1].location == "index.html"
    assert {p.content_kind for p in pages} == {"html"}
    assert all(p.location.startswith("articles/") for p in pages[:-1])
    assert all(p.updated_at is None and p.field("file_mtime") for p in pages)

    articles = [parse_page(p) for p in pages[:-1]]
    assert all(isinstance(a, Article) for a in articles)
    # The date written in each page beats the checkout's file times (the controlled edit is dated earlier).
    assert {a.updated_at for a in articles if isinstance(a, Article)} == {
        datetime(2020, 3, 17, tzinfo=UTC),
        datetime(2020, 2, 20, tzinfo=UTC),
    }
    assert len({a.section for a in articles if isinstance(a, Article)}) > 20


def test_base_url_makes_locations_urls_that_match_the_canonical_links() -> None:
    source = _folder(SAMPLE / "site", include=["articles/*.html"], base_url="http://127.0.0.1:8765")
    page = next(
        p for p in _pages(list(read_folder(source))) if p.location.endswith("/what-is-a-novel-coronavirus.html")
    )

    assert page.location == "http://127.0.0.1:8765/articles/what-is-a-novel-coronavirus.html"
    article = parse_page(page)
    assert isinstance(article, Article)
    assert article.url == page.location


def test_bundled_markdown_folder_leaves_dates_to_the_front_matter() -> None:
    pages = _pages(list(read_folder(_folder(SAMPLE / "markdown"))))

    assert len(pages) == 6
    assert {p.content_kind for p in pages} == {"markdown"}
    assert all(p.updated_at is None for p in pages)
    articles = [parse_page(p) for p in pages]
    assert all(isinstance(a, Article) and a.updated_at == datetime(2020, 3, 17, tzinfo=UTC) for a in articles)


def test_include_and_exclude_globs_are_relative_to_the_folder(tmp_path: Path) -> None:
    for relative in ("index.html", "guide.md", "a/one.html", "a/b/two.md", "drafts/wip.md", "a/notes.txt"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("<h1>T</h1><p>x</p>", encoding="utf-8")

    def locations(**kwargs: Any) -> list[str]:
        return [p.location for p in _pages(list(read_folder(_folder(tmp_path, **kwargs))))]

    assert locations() == ["a/b/two.md", "a/one.html", "drafts/wip.md", "guide.md", "index.html"]
    assert locations(include=["*.html"]) == ["index.html"]  # * stays within one folder
    assert locations(include=["**/*.md"]) == ["a/b/two.md", "drafts/wip.md", "guide.md"]
    assert locations(exclude=["drafts/**", "a/b/"]) == ["a/one.html", "guide.md", "index.html"]


def test_an_explicitly_included_unsupported_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text("# Guide\n\nText.\n", encoding="utf-8")
    (tmp_path / "manual.pdf").write_bytes(b"%PDF-1.7")

    assert [p.location for p in _pages(list(read_folder(_folder(tmp_path))))] == ["guide.md"]  # **/* names no type
    results = list(read_folder(_folder(tmp_path, include=["**/*.md", "**/*.pdf"])))
    rejected = [r for r in results if isinstance(r, Rejected)]
    assert [(r.record_id, r.stage) for r in rejected] == [("manual.pdf", "read")]
    assert "unsupported file type" in rejected[0].reason


def test_a_file_that_is_not_utf8_is_rejected_and_the_walk_goes_on(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text("<h1>A</h1><p>Fine.</p>", encoding="utf-8")
    (tmp_path / "b.html").write_bytes("<h1>B</h1><p>Caf\u00e9 ".encode("cp1252") + b"</p>")
    (tmp_path / "c.md").write_text("# C\n\nAlso fine, with a BOM and \u00e9.\n", encoding="utf-8-sig")

    results = list(read_folder(_folder(tmp_path)))

    assert [type(r).__name__ for r in results] == ["RawPage", "Rejected", "RawPage"]
    bad = results[1]
    assert isinstance(bad, Rejected)
    assert (bad.record_id, bad.stage, bad.source_id) == ("b.html", "read", "docs")
    assert "not valid UTF-8" in bad.reason
    good = results[2]
    assert isinstance(good, RawPage) and good.content.startswith("# C")  # the BOM is not content


def test_docx_pages_carry_the_file_path(tmp_path: Path) -> None:
    (tmp_path / "guide.docx").write_bytes(b"PK\x03\x04")

    (page,) = _pages(list(read_folder(_folder(tmp_path))))

    assert (page.content_kind, page.location) == ("docx", "guide.docx")
    assert page.content == str((tmp_path / "guide.docx").resolve())


def test_file_time_is_the_last_resort_for_updated_at(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text("<h1>A</h1><p>No date in the page.</p>", encoding="utf-8")
    stamp = datetime(2022, 2, 2, 12, 0, tzinfo=UTC).timestamp()
    os.utime(tmp_path / "a.html", (stamp, stamp))

    (page,) = _pages(list(read_folder(_folder(tmp_path))))
    article = parse_page(page)

    assert isinstance(article, Article)
    assert article.updated_at == datetime(2022, 2, 2, 12, 0, tzinfo=UTC)


def test_hidden_files_and_folders_are_never_read(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.md").write_text("# Git\n\nx\n", encoding="utf-8")
    (tmp_path / ".draft.md").write_text("# Draft\n\nx\n", encoding="utf-8")
    (tmp_path / "page.md").write_text("# Page\n\nx\n", encoding="utf-8")

    assert [p.location for p in _pages(list(read_folder(_folder(tmp_path))))] == ["page.md"]


def test_missing_or_empty_folder_raises_a_source_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(SourceError, match=r"'docs'.*folder not found.*nope"):
        read_folder(_folder(missing))

    with pytest.raises(SourceError, match=r"'docs'.*no .* file in"):
        read_folder(_folder(tmp_path))

    (tmp_path / "notes.txt").write_text("not an article", encoding="utf-8")
    (tmp_path / "page.md").write_text("# Page\n", encoding="utf-8")
    with pytest.raises(SourceError, match=re.escape("exclude=['**/*.md']")):
        read_folder(_folder(tmp_path, exclude=["**/*.md"]))


def test_a_jekyll_permalink_pattern_gives_markdown_pages_the_url_their_links_use(tmp_path: Path) -> None:
    docs = tmp_path / "_docs" / "privacy"
    docs.mkdir(parents=True)
    (docs / "vpn.md").write_text("---\ntitle: VPN\n---\nSee [trackers](/privacy/trackers/).\n")
    (docs / "trackers.md").write_text("---\ntitle: Trackers\n---\nAbout trackers.\n")
    (docs / "own.md").write_text("---\ntitle: Own\npermalink: /special/\n---\nText.\n")
    source = SourceConfig(
        id="ddg", kind="folder", location=str(tmp_path), base_url="https://help.example.com/", permalink="/:path/"
    )
    pages = {p.location: p for p in read_folder(source) if isinstance(p, RawPage)}
    assert set(pages) == {
        "https://help.example.com/privacy/vpn/",
        "https://help.example.com/privacy/trackers/",
        "https://help.example.com/privacy/own/",
    }
    articles = {a.title: a for p in pages.values() if isinstance(a := parse_page(p, base_url=source.base_url), Article)}
    assert articles["VPN"].links == (articles["Trackers"].url,)  # the link now lands on an article
    assert articles["Own"].url == "https://help.example.com/special/"  # the page's own permalink wins


def test_permalink_patterns_take_the_collection_the_name_and_the_output_extension(tmp_path: Path) -> None:
    (tmp_path / "_docs" / "billing").mkdir(parents=True)
    (tmp_path / "_docs" / "billing" / "refunds.md").write_text("---\ntitle: Refunds\n---\nText.\n")
    for pattern, url in [
        ("/:collection/:path:output_ext", "https://help.example.com/docs/billing/refunds.html"),
        ("/article/:title/", "https://help.example.com/article/refunds/"),
        ("/:slug/", "https://help.example.com/refunds/"),
    ]:
        source = _folder(tmp_path, base_url="https://help.example.com/", permalink=pattern)
        assert [p.location for p in _pages(list(read_folder(source)))] == [url]


def test_nothing_outside_the_folder_is_read_and_odd_entries_are_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("# Secret\n\nOUTSIDE-SECRET\n", encoding="utf-8")
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "good.md").write_text("# Good\n\nInside text.\n", encoding="utf-8")
    (kb / "inside.md").symlink_to("good.md")  # a link to a file inside the folder may be read
    (kb / "leak.md").symlink_to(outside / "secret.md")
    (kb / "relative-leak.md").symlink_to("../outside/secret.md")
    (kb / "shared").symlink_to(outside, target_is_directory=True)  # its secret.md must not be reached
    (kb / "again").symlink_to(".", target_is_directory=True)  # a folder loop
    (kb / "ping.md").symlink_to("pong.md")
    (kb / "pong.md").symlink_to("ping.md")
    (kb / "gone.md").symlink_to("missing.md")
    os.mkfifo(kb / "pipe.md")

    results = list(read_folder(_folder(kb)))

    pages = {p.location: p for p in _pages(results)}
    assert set(pages) == {"good.md", "inside.md"}
    assert pages["inside.md"].content == pages["good.md"].content
    assert not any("OUTSIDE-SECRET" in p.content for p in pages.values())
    rejected = {r.record_id: r for r in results if isinstance(r, Rejected)}
    assert set(rejected) == {
        "leak.md",
        "relative-leak.md",
        "shared",
        "again",
        "ping.md",
        "pong.md",
        "gone.md",
        "pipe.md",
    }
    assert {r.stage for r in rejected.values()} == {"read"}
    assert "outside the source folder" in rejected["leak.md"].reason
    assert "outside the source folder" in rejected["relative-leak.md"].reason
    assert "outside the source folder" in rejected["shared"].reason
    assert "folder: not followed" in rejected["again"].reason
    assert "loop" in rejected["ping.md"].reason and "loop" in rejected["pong.md"].reason
    assert "dangling" in rejected["gone.md"].reason
    assert "FIFO" in rejected["pipe.md"].reason


def test_rejected_folder_entries_land_in_the_rejections_of_read_articles(tmp_path: Path) -> None:
    (tmp_path / "page.md").write_text("# Page\n\nText.\n", encoding="utf-8")
    (tmp_path / "hostname.md").symlink_to("/etc/hostname")

    articles, rejected = read_articles(_folder(tmp_path))

    assert [a.title for a in articles] == ["Page"]
    assert [(r.record_id, r.stage) for r in rejected] == [("hostname.md", "read")]


def test_a_file_over_the_size_limit_is_rejected_on_its_own_and_the_rest_pass_the_checks(tmp_path: Path) -> None:
    from fakes import FakeHashingEmbedder

    from checks import ReleaseCheckParams, build_release_suites
    from kbcurator.chunking import ChunkPolicy
    from kbcurator.index.build import build_candidate
    from kbcurator.index.store import IndexStore
    from kbcurator.quality import prepare_for_checks, run_suites
    from kbcurator.settings import CheckSettings

    kb = tmp_path / "kb"
    kb.mkdir()
    for name in ("billing", "refunds", "invoices"):
        (kb / f"{name}.md").write_text(f"# {name.title()}\n\nHow {name} work, in a few words.\n", encoding="utf-8")
    paragraph = "A runaway export that repeats the same sentence again and again.\n\n"
    huge = "# Huge\n\n" + paragraph * (MAX_TEXT_FILE_BYTES // len(paragraph) + 1)
    (kb / "huge.md").write_text(huge, encoding="utf-8")
    assert (kb / "huge.md").stat().st_size > MAX_TEXT_FILE_BYTES

    articles, rejected = read_articles(_folder(kb))

    assert sorted(a.title for a in articles) == ["Billing", "Invoices", "Refunds"]
    (big,) = rejected
    assert (big.record_id, big.stage) == ("huge.md", "read")
    assert "file too large" in big.reason and f"{MAX_TEXT_FILE_BYTES:,}-byte limit" in big.reason

    embedder = FakeHashingEmbedder(dimension=16)
    store = IndexStore(str(tmp_path / "index"))
    candidate = build_candidate(articles, store=store, embedder=embedder, policy=ChunkPolicy())
    params = ReleaseCheckParams.from_settings(CheckSettings(), dimension=16)
    frames = prepare_for_checks(candidate.articles.to_pandas(), candidate.chunks.to_pandas())
    report = run_suites(frames, build_release_suites(params))
    assert report.success, report.summary_markdown()
    assert candidate.stats.articles == 3
