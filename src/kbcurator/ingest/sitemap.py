"""The ``sitemap`` source kind: crawl a help-center website from its sitemap.xml.

``crawl_sitemap`` reads the sitemap (following sitemap index files), then fetches every listed page
that passes the source's filters. When no sitemap answers, or it lists nothing, it falls back to
following same-site links breadth-first from ``crawl.start_url`` (or the site root).

The crawler is polite and bounded: it obeys robots.txt, waits between requests to the same host,
retries transient failures with exponential backoff, and caps pages, bytes, redirects and the time one
page may take (``page_deadline_s``, all attempts together; ``timeout_s`` bounds each read). It never
leaves the allowed hosts, and a client's credentials do not follow a redirect to another origin. Every
page it cannot deliver becomes a ``Rejected`` record and the crawl goes on; pages are delivered as raw
HTML, since extracting the article is the parser's job.
"""

from __future__ import annotations

import gzip
import io
import logging
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from fnmatch import fnmatchcase
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx
from bs4 import BeautifulSoup, Tag

from kbcurator.errors import SourceError
from kbcurator.ingest.http import (
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    allowed_hosts,
    host_allowed,
    keeps_credentials,
    normalize_url,
    open_stream,
    redirect_target,
)
from kbcurator.records import RawPage, Rejected, RejectionCode
from kbcurator.settings import CrawlSettings, SourceConfig

logger = logging.getLogger(__name__)

STAGE = "crawl"
MAX_RETRY_AFTER_S = 30.0  # a server asking for a longer pause gets this one; the crawl must finish
MAX_SITEMAP_BYTES = 50 * 1024 * 1024  # the sitemap protocol's own limit, uncompressed
MAX_SITEMAP_DEPTH = 3  # index -> index -> urlset is already unusual; deeper is likely a loop
MAX_ROBOTS_BYTES = 512 * 1024  # RFC 9309 asks crawlers to parse at least 500 KiB
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)

Sleep = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class _Fetched:
    """A 2xx response whose body was read in full (within the size cap)."""

    url: str  # final URL, after redirects
    headers: httpx.Headers
    body: bytes


@dataclass(frozen=True, slots=True)
class _Failed:
    url: str
    reason: str
    status: int | None = None  # the HTTP status, when the server answered at all
    code: RejectionCode = RejectionCode.FETCH_FAILED


def _status_code(status: int) -> RejectionCode:
    """404 Not Found and 410 Gone mean the page is no more (a dead link); any other status, a failed fetch."""
    return RejectionCode.GONE if status in (404, 410) else RejectionCode.FETCH_FAILED


@dataclass(frozen=True, slots=True)
class _Answer:
    """A non-2xx answer that is not worth retrying: a redirect or a client error."""

    status: int
    location: str | None


# --- URLs ---------------------------------------------------------------------------------------


def _netloc(url: str) -> str:
    return urlsplit(url).netloc


def path_included(url: str, include: Iterable[str], exclude: Iterable[str]) -> bool:
    """Whether the URL's path matches an include glob and no exclude glob (``fnmatch`` syntax).

    Globs may be written with or without the leading slash, and a leading ``**/`` also matches
    nothing, so the default ``**/*`` matches every path, ``/`` included.
    """
    path = urlsplit(url).path or "/"
    return any(_glob_matches(path, p) for p in include) and not any(_glob_matches(path, p) for p in exclude)


def _glob_matches(path: str, pattern: str) -> bool:
    bare = path.lstrip("/")
    return (
        fnmatchcase(path, pattern)
        or fnmatchcase(bare, pattern)
        or (pattern.startswith("**/") and fnmatchcase(bare, pattern[3:]))
    )


# --- dates --------------------------------------------------------------------------------------


def parse_lastmod(value: str) -> datetime | None:
    """A sitemap ``<lastmod>`` (W3C datetime: ``2024-05-01``, ``2024-05-01T10:00:00+02:00``, ...)
    as an aware UTC datetime, or None when it cannot be read. A value without an offset is UTC."""
    text = value.strip()
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        for fmt in ("%Y-%m", "%Y"):  # W3C allows year-month and year alone; fromisoformat does not
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    return _as_utc(parsed)


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _last_modified(headers: httpx.Headers) -> datetime | None:
    value = headers.get("last-modified")
    if not value:
        return None
    try:
        return _as_utc(parsedate_to_datetime(value))
    except (TypeError, ValueError):
        return None


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from a numeric Retry-After header, capped; None for absent or HTTP-date values."""
    try:
        seconds = float(headers.get("retry-after", ""))
    except ValueError:
        return None
    if seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER_S)


# --- fetching -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Deadline:
    """How long one ``_Fetcher.get`` may spend on the wire: every attempt and redirect hop together.

    The crawler's own pauses (pacing, backoff, Retry-After) do not count: they are bounded by the settings.
    """

    seconds: float | None  # None: no deadline, only the per-read timeout
    spent: float = 0.0

    def left(self) -> float:
        return float("inf") if self.seconds is None else max(self.seconds - self.spent, 0.0)

    def passed(self, running: float = 0.0) -> bool:
        """Whether the deadline is behind, counting ``running`` seconds of a request still going on."""
        return self.seconds is not None and self.spent + running >= self.seconds

    @property
    def reason(self) -> str:
        return f"took longer than the page deadline of {self.seconds:g} s"


class _Fetcher:
    """HTTP GETs with the crawl's politeness rules: per-host pacing, robots.txt, retries, caps.

    One instance lives for one crawl, so its robots.txt cache and pacing clock are per crawl.
    """

    def __init__(
        self,
        client: httpx.Client,
        settings: CrawlSettings,
        hosts: frozenset[str],
        sleep: Sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.settings = settings
        self.hosts = hosts
        self.sleep = sleep
        self.clock = clock
        self.interval = 1.0 / settings.requests_per_second if settings.requests_per_second > 0 else 0.0
        # 0 turns the deadline off.
        self.page_deadline_s: float | None = settings.page_deadline_s or None
        self.requests = 0
        self._last_request: dict[str, float] = {}
        self._robots: dict[str, RobotFileParser] = {}

    def get(
        self,
        url: str,
        *,
        max_bytes: int,
        check_robots: bool = True,
        credentials: bool = True,
        deadline_s: float | None = None,
    ) -> _Fetched | _Failed:
        """GET ``url``, following redirects only onto allowed hosts; any non-2xx end is a ``_Failed``.

        All attempts and redirect hops share ``deadline_s`` seconds on the wire (None: only the per-read
        timeout bounds them). The client's credentials are sent (when ``credentials``) only until a redirect
        leaves the origin of ``url``.
        """
        current = url
        deadline = _Deadline(deadline_s)
        for _ in range(MAX_REDIRECTS + 1):
            if check_robots and not self.robots_allow(current, credentials=credentials):
                return _Failed(url, "robots.txt disallows", code=RejectionCode.ROBOTS_DISALLOWED)
            result = self._get_with_retries(current, max_bytes, credentials, deadline)
            if isinstance(result, _Fetched):
                return result
            if isinstance(result, _Failed):
                return _Failed(url, result.reason, result.status, result.code)
            target = redirect_target(current, result.location)
            if result.status not in REDIRECT_STATUSES or target is None:
                return _Failed(url, f"HTTP {result.status}", result.status, _status_code(result.status))
            if not host_allowed(target, self.hosts):
                return _Failed(
                    url, f"redirects to another host: {target}", result.status, RejectionCode.HOST_NOT_ALLOWED
                )
            credentials = credentials and keeps_credentials(current, target)
            current = target
        return _Failed(url, f"more than {MAX_REDIRECTS} redirects")

    def robots_allow(self, url: str, *, credentials: bool = True) -> bool:
        if not self.settings.respect_robots:
            return True
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._robots:
            self._robots[origin] = self._read_robots(origin, credentials)
        return self._robots[origin].can_fetch(self.settings.user_agent, url)

    def _read_robots(self, origin: str, credentials: bool) -> RobotFileParser:
        parser = RobotFileParser(f"{origin}/robots.txt")
        result = self.get(
            f"{origin}/robots.txt",
            max_bytes=MAX_ROBOTS_BYTES,
            check_robots=False,
            credentials=credentials,
            deadline_s=self.page_deadline_s,
        )
        if isinstance(result, _Fetched):
            parser.parse(result.body.decode("utf-8", errors="replace").splitlines())
        elif result.status is not None and result.status < 500:
            parser.parse([])  # RFC 9309: a missing (4xx) robots.txt allows everything
        else:
            # RFC 9309: an unreachable robots.txt (5xx, network) means the site may not be crawled.
            logger.warning("robots.txt of %s unreachable (%s): not crawling that host", origin, result.reason)
            parser.parse(["User-agent: *", "Disallow: /"])
        return parser

    def _get_with_retries(
        self, url: str, max_bytes: int, credentials: bool, deadline: _Deadline
    ) -> _Fetched | _Failed | _Answer:
        """One URL, retried with exponential backoff on network errors, timeouts, 429 and 5xx."""
        attempts = max(self.settings.retries, 0) + 1
        problem = ""
        for attempt in range(attempts):
            if deadline.passed():
                return _Failed(url, f"{deadline.reason} (last try: {problem})" if problem else deadline.reason)
            self._wait_turn(url)
            retry_after: float | None = None
            # No single read may outlast the deadline; the body loop checks the total between reads.
            timeout = min(self.settings.timeout_s, deadline.left())
            try:
                result = self._request(url, max_bytes, credentials, deadline, timeout)
            except httpx.TimeoutException:
                if timeout < self.settings.timeout_s:
                    return _Failed(url, deadline.reason)
                problem = f"timed out after {self.settings.timeout_s:g} s"
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if not isinstance(result, tuple):
                    return result
                status, headers = result
                if status != 429 and status < 500:
                    return _Answer(status, headers.get("location"))
                problem = f"HTTP {status}"
                retry_after = _retry_after(headers)
            if attempt + 1 < attempts:
                delay = retry_after if retry_after is not None else self.settings.backoff_s * 2**attempt
                logger.debug("retrying %s in %.2f s (%s)", url, delay, problem)
                self.sleep(delay)
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        return _Failed(url, f"gave up after {tries}: {problem}")

    def _request(
        self, url: str, max_bytes: int, credentials: bool, deadline: _Deadline, timeout: float
    ) -> _Fetched | _Failed | tuple[int, httpx.Headers]:
        """One GET. The body is streamed and read only for a 2xx answer, and only up to the cap and the deadline."""
        self.requests += 1
        started = self.clock()
        try:
            with open_stream(
                self.client,
                url,
                credentials=credentials,
                headers={"User-Agent": self.settings.user_agent},
                timeout=timeout,
            ) as response:
                if not response.is_success:
                    return response.status_code, response.headers
                too_big = _Failed(url, f"larger than {max_bytes} bytes", response.status_code, RejectionCode.TOO_LARGE)
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    return too_big
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    # Leaving the block closes the connection: the rest is never downloaded.
                    if len(body) > max_bytes:
                        return too_big
                    if deadline.passed(self.clock() - started):  # a body trickling in never times out a read
                        return _Failed(url, deadline.reason)
                return _Fetched(str(response.url), response.headers, bytes(body))
        except httpx.DecodingError as exc:
            return _Failed(url, f"cannot decode response body: {exc}")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            return _Failed(url, f"invalid URL: {exc}")
        finally:
            deadline.spent += self.clock() - started

    def _wait_turn(self, url: str) -> None:
        """Keep at least ``1 / requests_per_second`` between two requests to the same host."""
        host = _netloc(url)
        last = self._last_request.get(host)
        if last is not None and self.interval > 0:
            wait = last + self.interval - self.clock()
            if wait > 0:
                self.sleep(wait)
        self._last_request[host] = self.clock()


# --- sitemaps -----------------------------------------------------------------------------------


def _read_sitemaps(
    fetcher: _Fetcher, sitemap_url: str, hosts: frozenset[str], source_id: str
) -> tuple[dict[str, datetime | None], list[Rejected], str]:
    """Every page URL the sitemap (and its nested sitemaps) lists, with its lastmod.

    Returns the URLs in sitemap order, rejections for nested sitemaps that failed, and why the
    top-level sitemap gave nothing (empty when it answered).
    """
    entries: dict[str, datetime | None] = {}
    rejected: list[Rejected] = []
    visited: set[str] = set()
    problem = ""
    todo: deque[tuple[str, int]] = deque([(sitemap_url, 0)])
    while todo:
        url, depth = todo.popleft()
        if url in visited:
            continue
        visited.add(url)
        # Sitemaps are read whatever robots.txt says: they exist for crawlers, and robots.txt
        # is where sites announce them.
        result = fetcher.get(url, max_bytes=MAX_SITEMAP_BYTES, check_robots=False)
        if isinstance(result, _Failed):
            if depth == 0:
                problem = result.reason
            else:
                rejected.append(Rejected(url, STAGE, f"{result.reason} (nested sitemap)", source_id, code=result.code))
            logger.warning("sitemap %s unavailable: %s", url, result.reason)
            continue
        children, pages = _parse_sitemap(_gunzip(result.body, MAX_SITEMAP_BYTES))
        for child in children:
            if depth + 1 > MAX_SITEMAP_DEPTH:
                logger.warning("sitemap %s nested deeper than %d levels: ignored", child, MAX_SITEMAP_DEPTH)
            elif not host_allowed(child, hosts):
                reason = "nested sitemap on a host not allowed"
                rejected.append(Rejected(child, STAGE, reason, source_id, code=RejectionCode.HOST_NOT_ALLOWED))
            else:
                todo.append((child, depth + 1))
        for page_url, lastmod in pages:
            entries.setdefault(page_url, lastmod)
    if not entries and not problem:
        problem = "sitemap lists no pages"
    return entries, rejected, problem


def _gunzip(body: bytes, limit: int) -> bytes:
    """Unpack a ``.xml.gz`` sitemap served as a file (not as Content-Encoding), within ``limit``."""
    if not body.startswith(b"\x1f\x8b"):
        return body
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as unpacked:
            return unpacked.read(limit)
    except (OSError, EOFError):
        return b""


def _parse_sitemap(xml: bytes) -> tuple[list[str], list[tuple[str, datetime | None]]]:
    """Nested sitemap URLs and (page URL, lastmod) pairs from one sitemap or sitemap index."""
    if not xml.strip():
        return [], []
    soup = BeautifulSoup(xml, "xml")
    children = [url for node in soup.find_all("sitemap") if (url := _loc(node))]
    pages: list[tuple[str, datetime | None]] = []
    for node in soup.find_all("url"):
        url = _loc(node)
        if url:
            lastmod = node.find("lastmod", recursive=False)
            pages.append((url, parse_lastmod(lastmod.get_text()) if lastmod else None))
    return children, pages


def _loc(node: Tag) -> str | None:
    # recursive=False: <image:loc> and friends sit deeper inside <url>.
    loc = node.find("loc", recursive=False)
    return normalize_url(loc.get_text()) if loc else None


# --- pages --------------------------------------------------------------------------------------


def _to_record(
    result: _Fetched | _Failed, requested: str, source_id: str, lastmod: datetime | None
) -> RawPage | Rejected:
    if isinstance(result, _Failed):
        return Rejected(requested, STAGE, result.reason, source_id, code=result.code)
    content_type = result.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type not in HTML_TYPES:
        return Rejected(requested, STAGE, f"not HTML ({content_type})", source_id, code=RejectionCode.UNSUPPORTED_TYPE)
    if not content_type and not _looks_like_html(result.body):
        return Rejected(requested, STAGE, "not HTML (no content type)", source_id, code=RejectionCode.UNSUPPORTED_TYPE)
    encoding = _charset(result.headers, result.body)
    try:
        text = result.body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return Rejected(requested, STAGE, f"cannot decode as {encoding}", source_id, code=RejectionCode.BAD_ENCODING)
    location = normalize_url(result.url) or requested
    updated_at = lastmod or _last_modified(result.headers)
    return RawPage(source_id, location, text, "html", updated_at)


def _looks_like_html(body: bytes) -> bool:
    head = body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _charset(headers: httpx.Headers, body: bytes) -> str:
    """The body's encoding: the Content-Type charset, else a <meta charset> near the top, else UTF-8."""
    content_type = headers.get("content-type", "")
    match = re.search(r"charset=[\"']?([\w.:-]+)", content_type, re.IGNORECASE)
    if match:
        return match.group(1)
    meta = _META_CHARSET.search(body[:2048])
    return meta.group(1).decode("ascii") if meta else "utf-8"


def extract_links(html: str, page_url: str) -> list[str]:
    """Absolute, normalised http(s) URLs of the page's ``<a href>`` links, in page order, deduped."""
    soup = BeautifulSoup(html, "lxml")
    base = page_url
    base_tag = soup.find("base", href=True)
    if base_tag is not None:
        base = urljoin(page_url, str(base_tag["href"]))
    links: dict[str, None] = {}
    for anchor in soup.find_all("a", href=True):
        url = normalize_url(urljoin(base, str(anchor["href"])))
        if url is not None:
            links.setdefault(url, None)
    return list(links)


# --- the crawl ----------------------------------------------------------------------------------


@dataclass
class _Crawl:
    """What the page loops share: the source, the fetcher, and the running tallies."""

    source: SourceConfig
    fetcher: _Fetcher
    hosts: frozenset[str]
    stats: Counter[str]
    delivered: set[str]
    capped: str = ""  # why the crawl stopped at max_pages, for the summary; empty when it did not

    @property
    def budget_left(self) -> bool:
        return self.stats["fetched"] < self.source.crawl.max_pages

    def cap_reached(self, record_id: str, left_out: str) -> Rejected:
        """The one record saying that ``max_pages`` cut the crawl, and what it left out."""
        self.capped = f"max_pages {self.source.crawl.max_pages} reached: {left_out}"
        self.stats["rejected"] += 1
        logger.info("source %s: %s", self.source.id, self.capped)
        return Rejected(record_id, STAGE, self.capped, self.source.id, code=RejectionCode.CRAWL_CAPPED)

    def fetch(self, url: str, lastmod: datetime | None) -> RawPage | Rejected | None:
        """Fetch one page; None when it redirected onto a page already delivered."""
        self.stats["fetched"] += 1
        result = self.fetcher.get(url, max_bytes=self.source.crawl.max_bytes, deadline_s=self.fetcher.page_deadline_s)
        record = _to_record(result, url, self.source.id, lastmod)
        if isinstance(record, RawPage):
            if record.location in self.delivered:
                logger.debug("skipped %s: same page as %s", url, record.location)
                return None
            self.delivered.add(record.location)
            self.stats["pages"] += 1
            logger.debug("fetched %s (%d chars)", record.location, len(record.content))
        else:
            self.stats["rejected"] += 1
            if record.code == RejectionCode.GONE:
                self.stats["broken"] += 1
            logger.debug("rejected %s: %s", url, record.reason)
        return record


def crawl_sitemap(
    source: SourceConfig, *, client: httpx.Client | None = None, sleep: Sleep = time.sleep
) -> Iterator[RawPage | Rejected]:
    """Crawl the help center whose sitemap is ``source.location``; yield its pages as raw HTML.

    Pages are the sitemap's URLs that pass ``source.include``/``source.exclude`` (globs on the URL
    path), up to ``crawl.max_pages`` fetches. With no usable sitemap, links are followed
    breadth-first from ``crawl.start_url`` (default: the site root); the start page is always read
    for its links, yielded only if it passes the filters, and other filtered-out pages are neither
    fetched nor followed.

    A page that cannot be delivered yields ``Rejected(url, "crawl", reason)``; URLs that answered
    404 or 410 have a reason starting ``"HTTP 404"``/``"HTTP 410"`` (broken links). When
    ``max_pages`` cuts the crawl short, one more ``Rejected`` (on the sitemap URL, or the start URL
    when following links) says so and how many URLs were left out: ``"max_pages 500 reached: 9,975
    sitemap URLs not fetched"``.

    Args:
        source: a ``sitemap`` source; its ``crawl`` settings bound the crawl.
        client: an httpx client to reuse (tests, connection pooling); one is made and closed if None.
            Redirects, timeout and User-Agent are set per request, so its own settings do not matter;
            its auth, Authorization and Cookie headers are not sent past a redirect to another origin.
        sleep: called for every pause (pacing, backoff), so tests can run without waiting.

    Raises:
        SourceError: the location is not an http(s) URL, or neither the sitemap nor the start URL
            could be read.
    """
    settings = source.crawl
    sitemap_url = normalize_url(source.location)
    if sitemap_url is None:
        raise SourceError(f"source {source.id!r}: sitemap location is not an http(s) URL: {source.location}")
    own_client = client is None
    http = client if client is not None else httpx.Client()
    hosts = allowed_hosts(settings, sitemap_url, settings.start_url)
    crawl = _Crawl(source, _Fetcher(http, settings, hosts, sleep), hosts, Counter(), set())
    mode = "sitemap"
    try:
        entries, rejected, problem = _read_sitemaps(crawl.fetcher, sitemap_url, crawl.hosts, source.id)
        crawl.stats["rejected"] += len(rejected)
        yield from rejected
        if entries:
            yield from _crawl_listed(crawl, entries, sitemap_url)
        else:
            mode = "links"
            yield from _crawl_links(crawl, sitemap_url, problem)
    finally:
        if own_client:
            http.close()
        stats = crawl.stats
        logger.info(
            "source %s (%s mode): %d pages, %d rejected (%d broken links), %d requests%s",
            source.id,
            mode,
            stats["pages"],
            stats["rejected"],
            stats["broken"],
            crawl.fetcher.requests,
            f"; {crawl.capped}" if crawl.capped else "",
        )


def _crawl_listed(crawl: _Crawl, entries: dict[str, datetime | None], sitemap_url: str) -> Iterator[RawPage | Rejected]:
    source = crawl.source
    urls = list(entries)
    for index, url in enumerate(urls):
        if not crawl.budget_left:
            # Only the URLs the crawl would have fetched: other hosts and filtered-out paths never count.
            left = sum(
                1
                for rest in urls[index:]
                if host_allowed(rest, crawl.hosts) and path_included(rest, source.include, source.exclude)
            )
            if left:
                yield crawl.cap_reached(sitemap_url, f"{left:,} sitemap URLs not fetched")
            return
        if not host_allowed(url, crawl.hosts):
            crawl.stats["rejected"] += 1
            yield Rejected(
                url, STAGE, "sitemap lists a host not allowed", source.id, code=RejectionCode.HOST_NOT_ALLOWED
            )
            continue
        if not path_included(url, source.include, source.exclude):
            logger.debug("filtered out %s", url)
            continue
        record = crawl.fetch(url, entries[url])
        if record is not None:
            yield record


def _crawl_links(crawl: _Crawl, sitemap_url: str, sitemap_problem: str) -> Iterator[RawPage | Rejected]:
    """Breadth-first over same-site links from the start URL; the fallback when no sitemap helps."""
    source = crawl.source
    start = normalize_url(source.crawl.start_url or urljoin(sitemap_url, "/"))
    if start is None or not host_allowed(start, crawl.hosts):
        raise SourceError(
            f"source {source.id!r}: start URL must be an http(s) URL on an allowed host, not {source.crawl.start_url!r}"
        )
    logger.warning(
        "source %s: no pages from sitemap %s (%s); following links from %s",
        source.id,
        sitemap_url,
        sitemap_problem,
        start,
    )
    first = crawl.fetch(start, None)
    if not isinstance(first, RawPage):
        why = first.reason if first is not None else "no page"
        raise SourceError(
            f"source {source.id!r}: nothing could be fetched: sitemap {sitemap_url} ({sitemap_problem}), "
            f"start URL {start} ({why})"
        )
    if path_included(start, source.include, source.exclude):
        yield first
    seen = {start, first.location}
    queue: deque[RawPage] = deque([first])
    while queue:
        page = queue.popleft()
        links = extract_links(page.content, page.location)
        for position, url in enumerate(links):
            if url in seen or not host_allowed(url, crawl.hosts):
                continue
            seen.add(url)
            if not path_included(url, source.include, source.exclude):
                continue
            if not crawl.budget_left:
                # Links of pages still queued were never read, so this count is only a floor.
                left = 1 + _unvisited(crawl, links[position + 1 :], seen)
                yield crawl.cap_reached(start, f"link crawl stopped, at least {left:,} linked URLs not fetched")
                return
            record = crawl.fetch(url, None)
            if record is None:
                continue
            yield record
            if isinstance(record, RawPage):
                queue.append(record)


def _unvisited(crawl: _Crawl, links: list[str], seen: set[str]) -> int:
    """Links the crawl would still fetch: unseen, on an allowed host, passing the filters."""
    source = crawl.source
    return sum(
        1
        for url in links
        if url not in seen and host_allowed(url, crawl.hosts) and path_included(url, source.include, source.exclude)
    )
