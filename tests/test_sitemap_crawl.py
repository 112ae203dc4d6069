"""The sitemap crawler against a real HTTP server on 127.0.0.1 (see ``site_server.py``)."""

from __future__ import annotations

import gzip
import logging
import os
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from site_server import Reply, Route, SiteServer, big, delayed, flaky, html, redirect, status, text

from kbcurator.errors import SourceError
from kbcurator.ingest.sitemap import crawl_sitemap, parse_lastmod, path_included
from kbcurator.records import RawPage, Rejected
from kbcurator.settings import CrawlSettings, SourceConfig

FILE_TIME = datetime(2023, 11, 14, 8, 0, tzinfo=UTC)
XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>'
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


def page(title: str, *links: str) -> str:
    nav = "".join(f'<a href="{href}">{href}</a> ' for href in links)
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body><nav>{nav}</nav>"
        f"<main><h1>{title}</h1><p>How to {title.lower()}.</p></main></body></html>"
    )


def urlset(*entries: tuple[str, str | None]) -> str:
    urls = "".join(
        f"<url><loc>{loc}</loc>{f'<lastmod>{lastmod}</lastmod>' if lastmod else ''}</url>" for loc, lastmod in entries
    )
    return f'{XML_HEAD}<urlset xmlns="{SITEMAP_NS}">{urls}</urlset>'


def sitemap_index(*locs: str) -> str:
    items = "".join(f"<sitemap><loc>{loc}</loc></sitemap>" for loc in locs)
    return f'{XML_HEAD}<sitemapindex xmlns="{SITEMAP_NS}">{items}</sitemapindex>'


def write(root: Path, relative: str, content: str) -> None:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content, encoding="utf-8")
    os.utime(target, (FILE_TIME.timestamp(), FILE_TIME.timestamp()))


@pytest.fixture
def other() -> Iterator[SiteServer]:
    """A second site, on another port: a host the crawler must not visit unless allowed."""
    with SiteServer() as server:
        server.route("/", html(page("Elsewhere")))
        yield server


@pytest.fixture
def site(tmp_path: Path, other: SiteServer) -> Iterator[SiteServer]:
    """A small help center without a sitemap; tests add one with ``write`` when they need it."""
    root = tmp_path / "site"
    write(
        root,
        "index.html",
        page(
            "Help center",
            "/articles/reset-password.html",
            "/articles/billing.html",
            "articles/billing.html#invoices",  # same page again, relative and with a fragment
            "/categories/account/",
            other.url("/"),
            "mailto:support@example.invalid",
            "#top",
        ),
    )
    write(root, "articles/reset-password.html", page("Reset your password", "/"))
    write(root, "articles/billing.html", page("Update billing details", "/", "/articles/draft-notes.html"))
    write(root, "articles/draft-notes.html", page("Draft notes"))
    write(root, "categories/account/index.html", page("Account", "../../articles/two-factor.html"))
    write(root, "articles/two-factor.html", page("Turn on two-factor authentication"))
    with SiteServer(root) as server:
        yield server


def site_root(site: SiteServer) -> Path:
    assert site.root is not None
    return site.root


def source(site: SiteServer, location: str = "/sitemap.xml", **crawl: object) -> SourceConfig:
    settings = {"retries": 2, "backoff_s": 0.5, "timeout_s": 2.0, **crawl}
    return SourceConfig(
        id="help",
        kind="sitemap",
        location=site.url(location),
        crawl=CrawlSettings.model_validate(settings),
    )


def run(src: SourceConfig, sleeps: list[float] | None = None) -> tuple[list[RawPage], list[Rejected]]:
    recorded = sleeps if sleeps is not None else []
    records = list(crawl_sitemap(src, sleep=recorded.append))
    pages = [r for r in records if isinstance(r, RawPage)]
    rejected = [r for r in records if isinstance(r, Rejected)]
    assert len(pages) + len(rejected) == len(records)
    return pages, rejected


def paths(records: list[RawPage] | list[Rejected]) -> list[str]:
    return [urlsplit(r.location if isinstance(r, RawPage) else r.record_id).path for r in records]


def reasons(rejected: list[Rejected]) -> dict[str, str]:
    return {urlsplit(r.record_id).path: r.reason for r in rejected}


# --- sitemap crawl ------------------------------------------------------------------------------


def test_sitemap_index_crawl_yields_every_listed_page_with_its_date(
    site: SiteServer, caplog: pytest.LogCaptureFixture
) -> None:
    root = site_root(site)
    write(root, "sitemap.xml", sitemap_index(site.url("/sitemaps/articles.xml"), site.url("/sitemaps/more.xml")))
    write(
        root,
        "sitemaps/articles.xml",
        urlset(
            (site.url("/articles/reset-password.html"), "2024-03-01"),
            (site.url("/articles/billing.html"), "2024-03-05T10:30:00+02:00"),
        ),
    )
    write(root, "sitemaps/more.xml", urlset((site.url("/categories/account/"), None)))

    with caplog.at_level(logging.INFO, logger="kbcurator.ingest.sitemap"):
        pages, rejected = run(source(site))

    assert rejected == []
    assert paths(pages) == ["/articles/reset-password.html", "/articles/billing.html", "/categories/account/"]
    dates = {urlsplit(p.location).path: p.updated_at for p in pages}
    assert dates == {
        "/articles/reset-password.html": datetime(2024, 3, 1, tzinfo=UTC),
        "/articles/billing.html": datetime(2024, 3, 5, 8, 30, tzinfo=UTC),
        "/categories/account/": FILE_TIME,  # no lastmod: the Last-Modified header
    }
    billing = pages[1]
    assert billing.source_id == "help"
    assert billing.content_kind == "html"
    assert billing.location == site.url("/articles/billing.html")
    assert "<main><h1>Update billing details</h1>" in billing.content
    # A sitemap crawl does not wander: pages only linked from listed pages are not fetched.
    assert site.hits["/articles/draft-notes.html"] == 0
    assert {r.headers["user-agent"] for r in site.requests} == {CrawlSettings().user_agent}
    assert "3 pages, 0 rejected" in caplog.text


def test_broken_nested_sitemaps_are_rejected_and_gzipped_ones_read(site: SiteServer) -> None:
    root = site_root(site)
    write(root, "sitemap.xml", sitemap_index(site.url("/sitemaps/gone.xml"), site.url("/sitemaps/pages.xml.gz")))
    (root / "sitemaps").mkdir()
    (root / "sitemaps/pages.xml.gz").write_bytes(
        gzip.compress(urlset((site.url("/articles/billing.html"), "2024-01-02")).encode())
    )

    pages, rejected = run(source(site))

    assert paths(pages) == ["/articles/billing.html"]
    assert pages[0].updated_at == datetime(2024, 1, 2, tzinfo=UTC)
    assert rejected == [Rejected(site.url("/sitemaps/gone.xml"), "crawl", "HTTP 404 (nested sitemap)", "help")]


def test_sitemap_duplicates_and_redirects_deliver_each_page_once(site: SiteServer) -> None:
    site.route("/old-billing", redirect("/articles/billing.html"))
    write(
        site_root(site),
        "sitemap.xml",
        urlset(
            (site.url("/articles/billing.html"), None),
            (site.url("/articles/billing.html#invoices"), None),
            (site.url("/old-billing"), None),
            (site.url("/moved"), None),
        ),
    )
    site.route("/moved", redirect(site.url("/articles/reset-password.html#step-2"), code=302))

    pages, rejected = run(source(site))

    assert rejected == []
    assert paths(pages) == ["/articles/billing.html", "/articles/reset-password.html"]
    assert pages[1].location == site.url("/articles/reset-password.html")  # final URL, no fragment
    assert site.hits["/articles/billing.html"] == 2  # the old URL was fetched, its page not repeated


def test_a_given_client_is_used_with_the_crawl_settings_and_left_open(site: SiteServer) -> None:
    write(site_root(site), "sitemap.xml", urlset((site.url("/articles/billing.html"), None)))

    with httpx.Client(headers={"User-Agent": "someone-else"}) as client:
        records = list(crawl_sitemap(source(site), client=client, sleep=lambda _s: None))
        assert not client.is_closed

    assert paths([r for r in records if isinstance(r, RawPage)]) == ["/articles/billing.html"]
    assert {r.headers["user-agent"] for r in site.requests} == {CrawlSettings().user_agent}


# --- fallback to link following -----------------------------------------------------------------


@pytest.mark.parametrize("sitemap", [None, urlset()], ids=["sitemap-404", "sitemap-empty"])
def test_without_a_usable_sitemap_links_are_followed_from_the_site_root(
    site: SiteServer, other: SiteServer, sitemap: str | None
) -> None:
    if sitemap is not None:
        write(site_root(site), "sitemap.xml", sitemap)

    pages, rejected = run(source(site))

    assert rejected == []
    assert paths(pages) == [  # breadth-first, each page once
        "/",
        "/articles/reset-password.html",
        "/articles/billing.html",
        "/categories/account/",
        "/articles/draft-notes.html",
        "/articles/two-factor.html",
    ]
    assert all(p.updated_at == FILE_TIME for p in pages)
    assert sum(other.hits.values()) == 0


def test_link_following_starts_at_the_configured_start_url(site: SiteServer) -> None:
    pages, _ = run(source(site, start_url=site.url("/categories/account/")))

    assert paths(pages) == ["/categories/account/", "/articles/two-factor.html"]


# --- politeness ---------------------------------------------------------------------------------


def test_robots_txt_disallow_is_respected(site: SiteServer) -> None:
    write(site_root(site), "robots.txt", "User-agent: *\nDisallow: /articles/billing\n")

    pages, rejected = run(source(site))

    assert "/articles/billing.html" not in paths(pages)
    assert "/articles/reset-password.html" in paths(pages)
    assert reasons(rejected) == {"/articles/billing.html": "robots.txt disallows"}
    assert site.hits["/articles/billing.html"] == 0
    assert site.hits["/robots.txt"] == 1  # read once per host


def test_robots_txt_can_be_ignored_when_configured(site: SiteServer) -> None:
    write(site_root(site), "robots.txt", "User-agent: *\nDisallow: /\n")

    pages, rejected = run(source(site, respect_robots=False))

    assert rejected == []
    assert len(pages) == 6
    assert site.hits["/robots.txt"] == 0


def test_unreachable_robots_txt_means_the_host_is_not_crawled(site: SiteServer) -> None:
    write(site_root(site), "sitemap.xml", urlset((site.url("/articles/billing.html"), None)))
    site.route("/robots.txt", status(503))

    pages, rejected = run(source(site, retries=0))

    assert pages == []
    assert reasons(rejected) == {"/articles/billing.html": "robots.txt disallows"}
    assert site.hits["/articles/billing.html"] == 0


def test_requests_to_one_host_are_paced_per_host(site: SiteServer, other: SiteServer) -> None:
    other.route("/b1", html(page("B1")))
    other.route("/b2", html(page("B2")))
    write(
        site_root(site),
        "sitemap.xml",
        urlset(
            (site.url("/articles/billing.html"), None),
            (other.url("/b1"), None),
            (site.url("/articles/reset-password.html"), None),
            (other.url("/b2"), None),
        ),
    )
    sleeps: list[float] = []

    pages, _ = run(source(site, requests_per_second=2.0, allowed_hosts=["127.0.0.1"]), sleeps)

    assert len(pages) == 4
    site_requests, other_requests = len(site.requests), len(other.requests)
    assert (site_requests, other_requests) == (4, 3)  # sitemap, robots.txt and pages
    # The first request to each host goes at once; every later one waits its turn.
    assert len(sleeps) == (site_requests - 1) + (other_requests - 1)
    assert all(0.3 < s <= 0.5 for s in sleeps), sleeps


# --- failures become Rejected -------------------------------------------------------------------


def test_missing_pages_are_rejected_and_the_crawl_goes_on(site: SiteServer) -> None:
    site.route("/articles/retired.html", status(410))
    write(
        site_root(site),
        "sitemap.xml",
        urlset(
            (site.url("/articles/missing.html"), None),
            (site.url("/articles/retired.html"), None),
            (site.url("/articles/billing.html"), None),
        ),
    )

    pages, rejected = run(source(site))

    assert paths(pages) == ["/articles/billing.html"]
    assert rejected == [
        Rejected(site.url("/articles/missing.html"), "crawl", "HTTP 404", "help"),
        Rejected(site.url("/articles/retired.html"), "crawl", "HTTP 410", "help"),
    ]


def test_retries_recover_from_two_503s(site: SiteServer) -> None:
    site.route("/articles/flaky.html", flaky(2, then=html(page("Flaky"))))
    write(site_root(site), "sitemap.xml", urlset((site.url("/articles/flaky.html"), None)))
    sleeps: list[float] = []

    pages, rejected = run(source(site, retries=3, backoff_s=0.5, requests_per_second=1000.0), sleeps)

    assert rejected == []
    assert paths(pages) == ["/articles/flaky.html"]
    assert site.hits["/articles/flaky.html"] == 3
    assert [s for s in sleeps if s > 0.01] == [0.5, 1.0]  # exponential backoff


def test_retries_give_up_after_the_configured_attempts(site: SiteServer) -> None:
    site.route("/articles/down.html", status(502))
    write(site_root(site), "sitemap.xml", urlset((site.url("/articles/down.html"), None)))

    pages, rejected = run(source(site, retries=2))

    assert pages == []
    assert reasons(rejected) == {"/articles/down.html": "gave up after 3 attempts: HTTP 502"}
    assert site.hits["/articles/down.html"] == 3


@pytest.mark.parametrize(("retry_after", "expected"), [("7", 7.0), ("86400", 30.0)])
def test_retry_after_is_honoured_and_capped(site: SiteServer, retry_after: str, expected: float) -> None:
    site.route(
        "/articles/busy.html",
        flaky(1, then=html(page("Busy")), code=429, headers={"Retry-After": retry_after}),
    )
    write(site_root(site), "sitemap.xml", urlset((site.url("/articles/busy.html"), None)))
    sleeps: list[float] = []

    pages, _ = run(source(site, requests_per_second=1000.0), sleeps)

    assert paths(pages) == ["/articles/busy.html"]
    assert [s for s in sleeps if s > 0.01] == [expected]


def test_a_page_slower_than_the_timeout_is_rejected(site: SiteServer) -> None:
    site.route("/articles/slow.html", delayed(1.0, html(page("Slow"))))
    write(
        site_root(site),
        "sitemap.xml",
        urlset((site.url("/articles/slow.html"), None), (site.url("/articles/billing.html"), None)),
    )

    pages, rejected = run(source(site, timeout_s=0.2, retries=0))

    assert paths(pages) == ["/articles/billing.html"]
    assert reasons(rejected) == {"/articles/slow.html": "gave up after 1 attempt: timed out after 0.2 s"}
    assert site.hits["/articles/slow.html"] == 1


def test_page_cap_stops_the_crawl(site: SiteServer) -> None:
    pages, rejected = run(source(site, max_pages=2))

    assert paths(pages) == ["/", "/articles/reset-password.html"]
    fetched = sum(n for path, n in site.hits.items() if path.endswith(("/", ".html")))
    assert fetched == 2
    # The root links to billing and the account category, neither fetched; what they link to is unknown.
    reason = "max_pages 2 reached: link crawl stopped, at least 2 linked URLs not fetched"
    assert rejected == [Rejected(site.url("/"), "crawl", reason, "help")]


def test_a_sitemap_cut_at_max_pages_records_how_many_urls_were_left_out(
    site: SiteServer, caplog: pytest.LogCaptureFixture
) -> None:
    listed = [
        "/articles/billing.html",
        "/articles/reset-password.html",
        "/articles/draft-notes.html",  # excluded: not counted
        *(f"/generated/{n}.html" for n in range(1000)),
    ]
    write(site_root(site), "sitemap.xml", urlset(*[(site.url(p), None) for p in listed]))
    src = source(site, max_pages=2).model_copy(update={"exclude": ["**/draft-*"]})

    with caplog.at_level(logging.INFO, logger="kbcurator.ingest.sitemap"):
        pages, rejected = run(src)

    assert paths(pages) == listed[:2]
    reason = "max_pages 2 reached: 1,000 sitemap URLs not fetched"
    assert rejected == [Rejected(site.url("/sitemap.xml"), "crawl", reason, "help")]
    assert not any(path.startswith("/generated/") for path in site.hits)
    assert f"2 pages, 1 rejected (0 broken links), 4 requests; {reason}" in caplog.text


def trickle(every_s: float, count: int) -> Route:
    """An HTML page that sends one byte every ``every_s`` seconds: no single read ever times out."""

    def chunks() -> Iterable[bytes]:
        yield b"<!doctype html><html><body><p>"
        for _ in range(count):
            time.sleep(every_s)
            yield b"x"

    return lambda _hit: Reply(200, chunks(), {"Content-Type": "text/html"})


@pytest.mark.parametrize(
    "route",
    [trickle(0.05, 120), delayed(3.0, html(page("Stalled")))],
    ids=["body-trickles-for-6s", "headers-after-3s"],
)
def test_a_page_is_rejected_at_its_deadline_however_slowly_it_comes(site: SiteServer, route: Route) -> None:
    site.route("/articles/slow.html", route)
    write(
        site_root(site),
        "sitemap.xml",
        urlset((site.url("/articles/slow.html"), None), (site.url("/articles/billing.html"), None)),
    )
    # Each read (a byte every 0.05 s; headers after 3 s with timeout_s 2) is within timeout_s or cut to the
    # deadline left, and retries would repeat it: only the page deadline bounds the page.
    settings = CrawlSettings(page_deadline_s=1.0, timeout_s=2.0, retries=2, backoff_s=0.5)
    src = SourceConfig(id="help", kind="sitemap", location=site.url("/sitemap.xml"), crawl=settings)

    started = time.monotonic()
    pages, rejected = run(src)
    elapsed = time.monotonic() - started

    assert paths(pages) == ["/articles/billing.html"]
    assert reasons(rejected) == {"/articles/slow.html": "took longer than the page deadline of 1 s"}
    assert site.hits["/articles/slow.html"] == 1  # no retry once the deadline has passed
    assert elapsed < 2.5, elapsed


def test_pages_over_the_size_cap_are_rejected_without_downloading_them(site: SiteServer) -> None:
    huge = 50 * 1024 * 1024
    # Declared too big: rejected from the headers, without waiting for a body that stalls.
    site.route("/declared.html", big(5_000_000, stall_s=2.0))
    site.route("/streamed.html", big(huge, content_length=False))
    write(
        site_root(site),
        "sitemap.xml",
        urlset(
            (site.url("/declared.html"), None),
            (site.url("/streamed.html"), None),
            (site.url("/articles/billing.html"), None),
        ),
    )

    pages, rejected = run(source(site, max_bytes=2000, timeout_s=0.5, retries=0))

    assert paths(pages) == ["/articles/billing.html"]
    assert reasons(rejected) == {
        "/declared.html": "larger than 2000 bytes",
        "/streamed.html": "larger than 2000 bytes",
    }
    assert site.bytes_sent["/streamed.html"] < huge


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        (text(b"%PDF-1.7 ...", "application/pdf"), "not HTML (application/pdf)"),
        (text(b"<html><body>caf\xe9</body></html>", "text/html; charset=utf-8"), "cannot decode as utf-8"),
        (redirect("/loop"), "more than 5 redirects"),
    ],
    ids=["pdf", "bad-encoding", "redirect-loop"],
)
def test_unusable_pages_are_rejected_with_a_reason(site: SiteServer, route: Route, reason: str) -> None:
    site.route("/loop", route)
    write(
        site_root(site),
        "sitemap.xml",
        urlset((site.url("/loop"), None), (site.url("/articles/billing.html"), None)),
    )

    pages, rejected = run(source(site))

    assert paths(pages) == ["/articles/billing.html"]
    assert rejected == [Rejected(site.url("/loop"), "crawl", reason, "help")]


def test_other_hosts_are_never_contacted(site: SiteServer, other: SiteServer) -> None:
    site.route("/leave", redirect(other.url("/")))
    write(
        site_root(site),
        "sitemap.xml",
        urlset(
            (other.url("/"), None),
            (site.url("/leave"), None),
            (site.url("/articles/billing.html"), None),
        ),
    )

    pages, rejected = run(source(site))

    assert paths(pages) == ["/articles/billing.html"]
    assert [r.reason for r in rejected] == [
        "sitemap lists a host not allowed",
        f"redirects to another host: {other.url('/')}",
    ]
    assert sum(other.hits.values()) == 0


@pytest.fixture
def other_host() -> Iterator[SiteServer]:
    """Another host: a second loopback address, so an allowed host written without a port does not match it."""
    with SiteServer(host="127.0.0.2") as server:
        server.route("/landing", html(page("Landing")))
        yield server


def test_a_redirect_to_another_host_is_refused_before_contacting_it(site: SiteServer, other_host: SiteServer) -> None:
    target = other_host.url("/landing")
    site.route("/moved", redirect(target, code=302))
    write(
        site_root(site),
        "sitemap.xml",
        urlset((site.url("/moved"), None), (site.url("/articles/billing.html"), None)),
    )

    pages, rejected = run(source(site, allowed_hosts=["127.0.0.1"]))

    assert paths(pages) == ["/articles/billing.html"]
    assert rejected == [Rejected(site.url("/moved"), "crawl", f"redirects to another host: {target}", "help")]
    assert other_host.requests == []


@pytest.mark.parametrize("credentials", ["auth", "header"])
def test_credentials_never_follow_a_redirect_to_another_host(
    site: SiteServer, other_host: SiteServer, credentials: str
) -> None:
    site.route("/moved", redirect(other_host.url("/landing"), code=302))
    write(
        site_root(site),
        "sitemap.xml",
        urlset((site.url("/articles/billing.html"), None), (site.url("/moved"), None)),
    )
    given: dict[str, Any] = (
        {"auth": ("crawler", "s3cret")}
        if credentials == "auth"
        else {"headers": {"Authorization": "Bearer s3cret"}, "cookies": {"session": "s3cret"}}
    )

    with httpx.Client(trust_env=False, **given) as client:
        src = source(site, allowed_hosts=["127.0.0.1", "127.0.0.2"])
        records = list(crawl_sitemap(src, client=client, sleep=lambda _s: None))

    pages = [r for r in records if isinstance(r, RawPage)]
    assert [p.location for p in pages] == [site.url("/articles/billing.html"), other_host.url("/landing")]
    assert all("authorization" in r.headers for r in site.requests)
    assert [r.path for r in other_host.requests] == ["/robots.txt", "/landing"]
    assert all(not {"authorization", "cookie"} & set(r.headers) for r in other_host.requests)


# --- include / exclude --------------------------------------------------------------------------


def test_include_and_exclude_filter_by_path(site: SiteServer) -> None:
    write(
        site_root(site),
        "sitemap.xml",
        urlset(*[(site.url(p), None) for p in ("/", "/articles/billing.html", "/articles/draft-notes.html")]),
    )
    src = source(site).model_copy(update={"include": ["/articles/*"], "exclude": ["**/draft-*"]})

    pages, rejected = run(src)

    assert paths(pages) == ["/articles/billing.html"]
    assert rejected == []
    assert site.hits["/articles/draft-notes.html"] == 0
    assert site.hits["/"] == 0


@pytest.mark.parametrize(
    ("path", "include", "exclude", "expected"),
    [
        ("/", ["**/*"], [], True),
        ("/index.html", ["**/*"], [], True),
        ("/a/b/c.html", ["**/*"], [], True),
        ("/articles/x.html", ["articles/*"], [], True),
        ("/articles/x.html", ["/categories/*"], [], False),
        ("/articles/draft-x.html", ["**/*"], ["**/draft-*"], False),
        ("/draft-x.html", ["**/*"], ["**/draft-*"], False),
    ],
)
def test_path_globs(path: str, include: list[str], exclude: list[str], expected: bool) -> None:
    assert path_included(f"http://help.example.invalid{path}?q=1", include, exclude) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-01", datetime(2024, 3, 1, tzinfo=UTC)),
        ("2024-03-01T10:30:00Z", datetime(2024, 3, 1, 10, 30, tzinfo=UTC)),
        ("2024-03-01T10:30+05:30", datetime(2024, 3, 1, 5, 0, tzinfo=UTC)),
        ("2024-03", datetime(2024, 3, 1, tzinfo=UTC)),
        ("last tuesday", None),
    ],
)
def test_lastmod_is_read_as_utc(value: str, expected: datetime | None) -> None:
    parsed = parse_lastmod(value)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC


# --- total failure ------------------------------------------------------------------------------


def test_nothing_reachable_raises_source_error() -> None:
    with SiteServer() as gone:
        url = gone.url("/sitemap.xml")
    src = SourceConfig(id="help", kind="sitemap", location=url, crawl=CrawlSettings(retries=1))

    with pytest.raises(SourceError, match=r"'help'.*" + url.replace(".", r"\.")):
        list(crawl_sitemap(src, sleep=lambda _s: None))


def test_no_sitemap_and_no_start_page_raises_source_error(tmp_path: Path) -> None:
    with SiteServer(tmp_path) as empty:
        src = source(empty)
        with pytest.raises(SourceError, match="HTTP 404"):
            list(crawl_sitemap(src, sleep=lambda _s: None))
        assert empty.hits["/sitemap.xml"] == 1
        assert empty.hits["/"] == 1
