"""read_zendesk on the bundled export and against a real HTTP server on 127.0.0.1 serving the same pages."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from kbcurator.errors import SourceError
from kbcurator.ingest.parse import parse_page
from kbcurator.ingest.zendesk import read_zendesk
from kbcurator.records import Article, RawPage, Rejected
from kbcurator.settings import CrawlSettings, SourceConfig

EXPORT = Path(__file__).resolve().parents[1] / "kb_sources" / "sample_help_center" / "zendesk"
PAGE_FILES = ("articles.json", "articles_page2.json")


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXPORT / name).read_text(encoding="utf-8"))
    return data


PUBLISHED = [a for name in PAGE_FILES for a in _load(name)["articles"] if not a["draft"]]
DRAFTS = [a for name in PAGE_FILES for a in _load(name)["articles"] if a["draft"]]
SECTION_NAMES = {s["id"]: s["name"] for s in _load("sections.json")["sections"]}


def _source(location: str | Path, **crawl: Any) -> SourceConfig:
    settings = CrawlSettings(timeout_s=5.0, retries=2, backoff_s=0.01, **crawl)
    return SourceConfig(id="zd", kind="zendesk", location=str(location), crawl=settings)


def _pages(results: list[RawPage | Rejected]) -> list[RawPage]:
    return [r for r in results if isinstance(r, RawPage)]


def test_bundled_export_follows_next_page_and_skips_the_draft() -> None:
    assert len(DRAFTS) == 1 and len(PUBLISHED) > 100

    results = list(read_zendesk(_source(EXPORT / "articles.json")))

    assert all(isinstance(r, RawPage) for r in results)
    pages = _pages(results)
    assert [p.field("zendesk_id") for p in pages] == [str(a["id"]) for a in PUBLISHED]  # both files, in order
    assert str(DRAFTS[0]["id"]) not in {p.field("zendesk_id") for p in pages}
    first, source = pages[0], PUBLISHED[0]
    assert first.location == source["html_url"]
    assert first.content == source["body"]
    assert first.content_kind == "html"
    assert first.updated_at == datetime(2020, 3, 17, tzinfo=UTC)
    assert first.field("title") == source["title"]
    assert first.field("section") == SECTION_NAMES[source["section_id"]]
    assert first.field("locale") == "en-us"

    articles = [parse_page(p) for p in pages]
    assert all(isinstance(a, Article) for a in articles)
    assert len({a.article_id for a in articles if isinstance(a, Article)}) == len(pages)


def test_a_folder_of_page_files_reads_them_all(tmp_path: Path) -> None:
    for name in PAGE_FILES:
        data = _load(name)
        data["next_page"] = None  # a folder is read whole; next_page plays no part
        (tmp_path / name).write_text(json.dumps(data), encoding="utf-8")
    (tmp_path / "categories.json").write_text('{"categories": []}', encoding="utf-8")

    pages = _pages(list(read_zendesk(_source(tmp_path))))

    assert len(pages) == len(PUBLISHED)
    # Without sections.json the section is the id, which still groups articles.
    assert pages[0].field("section") == str(PUBLISHED[0]["section_id"])


def test_malformed_records_are_rejected_and_the_rest_still_load(tmp_path: Path) -> None:
    data = _load("articles.json")
    articles = data["articles"][:5]
    del articles[1]["body"]
    del articles[3]["id"]
    data.update(articles=articles, next_page=None)
    (tmp_path / "export.json").write_text(json.dumps(data), encoding="utf-8")

    results = list(read_zendesk(_source(tmp_path / "export.json")))

    assert [type(r).__name__ for r in results] == ["RawPage", "Rejected", "RawPage", "Rejected", "RawPage"]
    no_body, no_id = results[1], results[3]
    assert isinstance(no_body, Rejected) and isinstance(no_id, Rejected)
    assert (no_body.stage, no_body.source_id, no_body.record_id) == ("read", "zd", articles[1]["html_url"])
    assert f"article {articles[1]['id']}: missing body" in no_body.reason
    assert "missing id" in no_id.reason


def test_unreadable_exports_raise_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="export file not found"):
        list(read_zendesk(_source(tmp_path / "missing.json")))

    (tmp_path / "broken.json").write_text('{"articles": [', encoding="utf-8")
    with pytest.raises(SourceError, match="cannot read Zendesk export"):
        list(read_zendesk(_source(tmp_path / "broken.json")))

    shutil.copy(EXPORT / "articles.json", tmp_path / "articles.json")  # its next_page file is not copied
    with pytest.raises(SourceError, match="next_page file not found"):
        list(read_zendesk(_source(tmp_path / "articles.json")))


# --- the live API path, against a real server --------------------------------------------------------


@dataclass
class FakeHelpCenter:
    """Serves the bundled pages the way Zendesk does, with absolute next_page URLs pointing at itself."""

    base: str = ""
    paths: list[str] = field(default_factory=list)
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # answered to article requests
    next_page_base: str | None = None

    def answer(self, path_and_query: str) -> tuple[int, dict[str, str], bytes]:
        self.paths.append(path_and_query)
        parts = urlsplit(path_and_query)
        if self.failures and parts.path.endswith("/articles.json"):
            status, headers = self.failures.pop(0)
            return status, headers, b'{"error": "busy"}'
        if parts.path == "/api/v2/help_center/sections.json":
            return 200, {}, (EXPORT / "sections.json").read_bytes()
        if parts.path != "/api/v2/help_center/articles.json":
            return 404, {}, b'{"error": "RecordNotFound"}'
        number = int(parse_qs(parts.query).get("page", ["1"])[0])
        data = _load(PAGE_FILES[number - 1])
        if number < len(PAGE_FILES):
            base = self.next_page_base or self.base
            data["next_page"] = f"{base}/api/v2/help_center/articles.json?page={number + 1}&per_page=60"
        return 200, {}, json.dumps(data).encode("utf-8")


@pytest.fixture
def help_center() -> Iterator[FakeHelpCenter]:
    state = FakeHelpCenter()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, headers, body = state.answer(self.path)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_api_pages_are_followed_with_section_names(help_center: FakeHelpCenter) -> None:
    pages = _pages(list(read_zendesk(_source(help_center.base))))

    assert [p.field("zendesk_id") for p in pages] == [str(a["id"]) for a in PUBLISHED]
    assert pages[-1].field("section") == SECTION_NAMES[PUBLISHED[-1]["section_id"]]
    assert help_center.paths == [
        "/api/v2/help_center/sections.json?per_page=100",
        "/api/v2/help_center/articles.json?per_page=100",
        "/api/v2/help_center/articles.json?page=2&per_page=60",
    ]


def test_api_retries_busy_answers_with_backoff(help_center: FakeHelpCenter) -> None:
    help_center.failures = [(503, {}), (429, {"Retry-After": "0"})]  # retries=2 allows two

    with httpx.Client(trust_env=False) as client:
        pages = _pages(list(read_zendesk(_source(help_center.base), client=client)))

    assert len(pages) == len(PUBLISHED)
    assert pages[0].field("section") == SECTION_NAMES[PUBLISHED[0]["section_id"]]
    article_requests = [p for p in help_center.paths if "/articles.json" in p]
    assert len(article_requests) == 2 + 2  # two refused tries of page 1, then both pages


def test_api_errors_raise_a_source_error(help_center: FakeHelpCenter) -> None:
    help_center.failures = [(503, {})] * 10
    with pytest.raises(SourceError, match="HTTP 503"):
        list(read_zendesk(_source(help_center.base + "/api/v2/help_center/articles.json")))
    # retries=2: three tries in all, then give up.
    assert [p for p in help_center.paths if "/articles.json" in p] == ["/api/v2/help_center/articles.json"] * 3

    help_center.failures = []
    with pytest.raises(SourceError, match="HTTP 404"):
        list(read_zendesk(_source(help_center.base + "/api/v2/help_center/en-us/missing.json")))


def test_api_never_follows_next_page_to_another_origin(help_center: FakeHelpCenter) -> None:
    help_center.next_page_base = "http://127.0.0.1:1"

    results = read_zendesk(_source(help_center.base))
    with pytest.raises(SourceError, match="leaves"):
        list(results)
    assert not any("page=2" in path for path in help_center.paths)
