"""Each skipped file or page carries a rejection code; runs count by code and never read the reason text back."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from site_server import SiteServer, html, status, text

from kbcurator.analysis.corpus import dead_links_from
from kbcurator.ingest import read_articles
from kbcurator.ingest.folder import MAX_TEXT_FILE_BYTES
from kbcurator.ingest.sitemap import crawl_sitemap
from kbcurator.records import Rejected, RejectionCode
from kbcurator.reindex import RunContext, rejection_summary, run_summary_markdown
from kbcurator.settings import CrawlSettings, SourceConfig


def test_a_folder_source_rejects_each_bad_file_with_its_code(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "good.md").write_text("---\ntitle: Good\n---\n\nA real answer.\n")
    (site / "broken.md").write_text("---\ntitle: [unclosed\n---\nbody\n")
    (site / "blank.html").write_text("   ")
    (site / "huge.md").write_text("x" * (MAX_TEXT_FILE_BYTES + 1))
    (site / "latin1.md").write_bytes(b"---\ntitle: Caf\xe9\n---\n\nbody\n")
    (site / "manual.pdf").write_bytes(b"%PDF-1.4")
    (site / "outside.md").symlink_to(tmp_path / "elsewhere.md")
    (tmp_path / "elsewhere.md").write_text("---\ntitle: Elsewhere\n---\n\nnot in the folder\n")
    source = SourceConfig(id="docs", kind="folder", location=str(site), include=["**/*.md", "**/*.html", "*.pdf"])

    articles, rejected = read_articles(source)

    assert [a.title for a in articles] == ["Good"]
    assert {Path(r.record_id).name: r.code for r in rejected} == {
        "broken.md": RejectionCode.PARSE_FAILED,
        "blank.html": RejectionCode.EMPTY,
        "huge.md": RejectionCode.TOO_LARGE,
        "latin1.md": RejectionCode.BAD_ENCODING,
        "manual.pdf": RejectionCode.UNSUPPORTED_TYPE,
        "outside.md": RejectionCode.SYMLINK,
    }
    assert all(r.detail == r.reason and r.reason for r in rejected)  # the words stay, for a person
    assert json.loads(json.dumps(asdict(rejected[0])))["code"] == str(rejected[0].code)  # rejected.jsonl


def test_the_run_summary_counts_rejections_per_stage_and_code(tmp_path: Path) -> None:
    rejected = [
        Rejected("a.md", "read", "file too large: 3 MB", "docs", code=RejectionCode.TOO_LARGE),
        Rejected("b.md", "read", "file too large: 4 MB", "docs", code=RejectionCode.TOO_LARGE),
        Rejected("c.md", "parse", "invalid front matter: ScannerError: mapping values", "docs"),
        Rejected("d.md", "parse", "empty page", "docs", code=RejectionCode.EMPTY),
    ]

    assert rejection_summary(rejected) == {"read: too_large": 2, "parse: other": 1, "parse: empty": 1}
    run = RunContext("run-1", tmp_path, datetime(2026, 11, 2, tzinfo=UTC))
    summary = run_summary_markdown(
        run=run,
        outcome="published release-0001",
        release_tag="release-0001",
        current_tag="release-0001",
        candidate=None,
        changes=None,
        rejected=rejected,
        checks_markdown="",
        index_uri="index",
    )
    assert "- skipped pages/files: 4" in summary
    assert "  - read: too_large: 2" in summary and "  - parse: empty: 1" in summary


def test_only_pages_the_crawl_found_gone_are_dead_links() -> None:
    gone = Rejected("https://help.example.com/old", "crawl", "HTTP 404", "help", code=RejectionCode.GONE)
    # A reason that reads like a 404 is not one: the code decides.
    lookalike = Rejected("https://help.example.com/api", "read", "HTTP 404 from the export", "help")
    failed = Rejected("https://help.example.com/slow", "crawl", "HTTP 503", "help", code=RejectionCode.FETCH_FAILED)

    assert dead_links_from([gone, lookalike, failed]) == {"https://help.example.com/old": "HTTP 404 while crawling"}


def test_a_crawl_codes_gone_pages_apart_from_failed_ones(tmp_path: Path) -> None:
    with SiteServer(tmp_path) as site:
        pages = ["/ok.html", "/missing.html", "/retired.html", "/down.html", "/notes.txt"]
        urls = "".join(f"<url><loc>{site.url(p)}</loc></url>" for p in pages)
        site.route("/sitemap.xml", text(f'<?xml version="1.0"?><urlset>{urls}</urlset>', "application/xml"))
        site.route("/ok.html", html("<html><head><title>Ok</title></head><body><p>Fine.</p></body></html>"))
        site.route("/missing.html", status(404))
        site.route("/retired.html", status(410))
        site.route("/down.html", status(500))
        site.route("/notes.txt", text("plain notes"))
        crawl = CrawlSettings.model_validate({"retries": 0, "timeout_s": 2.0})
        source = SourceConfig(id="help", kind="sitemap", location=site.url("/sitemap.xml"), crawl=crawl)
        rejected = [r for r in crawl_sitemap(source, sleep=lambda _s: None) if isinstance(r, Rejected)]

        assert {urlsplit(r.record_id).path: r.code for r in rejected} == {
            "/missing.html": RejectionCode.GONE,
            "/retired.html": RejectionCode.GONE,
            "/down.html": RejectionCode.FETCH_FAILED,
            "/notes.txt": RejectionCode.UNSUPPORTED_TYPE,
        }
        assert sorted(dead_links_from(rejected)) == [site.url("/missing.html"), site.url("/retired.html")]
