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
from site_server import SiteServer, text

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


def test_folder_json_that_is_not_an_articles_page_is_rejected_by_name(tmp_path: Path) -> None:
    shutil.copy(EXPORT / "articles.json", tmp_path / "articles.json")
    (tmp_path / "categories.json").write_text('{"categories": [], "count": 0}', encoding="utf-8")
    (tmp_path / "manifest.json").write_text("[1, 2]", encoding="utf-8")
    (tmp_path / "page3.json").write_text('{"articles": {"id": 1}}', encoding="utf-8")

    results = list(read_zendesk(_source(tmp_path)))

    assert len(_pages(results)) == len([a for a in _load("articles.json")["articles"] if not a["draft"]])
    rejected = {Path(r.record_id).name: r for r in results if isinstance(r, Rejected)}
    assert set(rejected) == {"categories.json", "manifest.json", "page3.json"}
    assert all(r.stage == "read" and r.source_id == "zd" for r in rejected.values())
    assert rejected["categories.json"].record_id == str(tmp_path / "categories.json")
    assert rejected["categories.json"].reason == (
        "categories.json is not a Zendesk articles page, skipped: no 'articles' list (top-level keys: 'categories', "
        "'count')"
    )
    assert rejected["manifest.json"].reason.endswith("the JSON is an array, not an object")
    assert rejected["page3.json"].reason.endswith("'articles' is an object, not a list")


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
    redirects: dict[str, str] = field(default_factory=dict)  # path and query -> Location of a 302
    headers: list[dict[str, str]] = field(default_factory=list)  # of each request, names lowercased

    def answer(self, path_and_query: str) -> tuple[int, dict[str, str], bytes]:
        self.paths.append(path_and_query)
        if path_and_query in self.redirects:
            return 302, {"Location": self.redirects[path_and_query]}, b""
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
            state.headers.append({name.lower(): value for name, value in self.headers.items()})
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


# --- redirects: only onto allowed hosts, and never with credentials to another host --------------------


ARTICLES = "/api/v2/help_center/articles.json"
PAGE_2 = f"{ARTICLES}?page=2&per_page=60"


@pytest.fixture
def other_host() -> Iterator[SiteServer]:
    """Another host (a second loopback address, not just another port) that answers like a help center."""
    with SiteServer(host="127.0.0.2") as server:
        page2 = _load(PAGE_FILES[1])
        page2["next_page"] = None
        server.route(ARTICLES, text(json.dumps(page2), "application/json"))
        yield server


def test_api_redirect_to_a_host_not_allowed_is_refused_and_recorded(
    help_center: FakeHelpCenter, other_host: SiteServer
) -> None:
    target = other_host.url(PAGE_2)
    help_center.redirects[PAGE_2] = target
    # allowed_hosts names the API host only (the default would be the same: the location's host and port).
    src = _source(help_center.base, allowed_hosts=[urlsplit(help_center.base).netloc])

    results = list(read_zendesk(src))

    assert other_host.requests == []  # nothing at all was sent to the other host
    assert [p.field("zendesk_id") for p in _pages(results)] == [
        str(a["id"]) for a in _load(PAGE_FILES[0])["articles"] if not a["draft"]
    ]
    rejected = [r for r in results if isinstance(r, Rejected)]
    page_2 = help_center.base + PAGE_2
    assert rejected == [
        Rejected(
            page_2,
            "read",
            f"GET {page_2} redirects to a host not allowed: {target}; this and later article pages not read",
            "zd",
        )
    ]


@pytest.mark.parametrize("credentials", ["auth", "header"])
def test_api_credentials_never_follow_a_redirect_to_another_host(
    help_center: FakeHelpCenter, other_host: SiteServer, credentials: str
) -> None:
    help_center.redirects[PAGE_2] = other_host.url(PAGE_2)
    src = _source(help_center.base, allowed_hosts=["127.0.0.1", "127.0.0.2"])
    given: dict[str, Any] = (
        {"auth": ("agent@example.com/token", "s3cret")}
        if credentials == "auth"
        else {"headers": {"Authorization": "Bearer s3cret"}, "cookies": {"session": "s3cret"}}
    )

    with httpx.Client(trust_env=False, **given) as client:
        pages = _pages(list(read_zendesk(src, client=client)))

    assert [p.field("zendesk_id") for p in pages] == [str(a["id"]) for a in PUBLISHED]  # page 2 via the redirect
    assert all("authorization" in headers for headers in help_center.headers)
    assert [r.path for r in other_host.requests] == [PAGE_2]
    assert not {"authorization", "cookie"} & set(other_host.requests[0].headers)
