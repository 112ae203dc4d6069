"""A small real website on 127.0.0.1 for crawler tests.

``SiteServer`` serves a directory (``index.html`` for paths ending in ``/``) on a free port in a
background thread, and lets a test put special routes in front of the files::

    with SiteServer(tmp_path) as site:
        site.route("/gone", status(410))
        site.route("/flaky", flaky(2, then=html("<p>ok</p>")))
        ...crawl site.url("/sitemap.xml")...
        assert site.hits["/flaky"] == 3

A route is a callable ``(hit_number) -> Reply``; the helpers below build the common ones. Every request
is recorded: ``hits`` and ``bytes_sent`` per path (query ignored), ``requests`` in order with headers.
"""

from __future__ import annotations

import mimetypes
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit


@dataclass
class Reply:
    """One response. ``body`` may be an iterable of chunks, streamed as it is produced.

    A bytes body gets a Content-Length; a streamed one has none unless ``headers`` sets it, and then
    ends when the server closes the connection.
    """

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # pause before answering, to provoke timeouts


Route = Callable[[int], Reply]


@dataclass(frozen=True)
class RecordedRequest:
    path: str  # path and query, as requested
    headers: dict[str, str]  # names lowercased


def html(body: str, *, status: int = 200, headers: dict[str, str] | None = None) -> Route:
    data = body.encode("utf-8")
    return lambda _hit: Reply(status, data, {"Content-Type": "text/html; charset=utf-8", **(headers or {})})


def text(body: str | bytes, content_type: str = "text/plain", *, status: int = 200) -> Route:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return lambda _hit: Reply(status, data, {"Content-Type": content_type})


def status(code: int, headers: dict[str, str] | None = None) -> Route:
    body = f"<html><body><h1>{code}</h1></body></html>".encode()
    return lambda _hit: Reply(code, body, {"Content-Type": "text/html", **(headers or {})})


def redirect(location: str, code: int = 301) -> Route:
    return lambda _hit: Reply(code, b"", {"Location": location})


def delayed(seconds: float, then: Route) -> Route:
    def route(hit: int) -> Reply:
        reply = then(hit)
        reply.delay_s = seconds
        return reply

    return route


def flaky(failures: int, then: Route, *, code: int = 503, headers: dict[str, str] | None = None) -> Route:
    """Answer ``code`` for the first ``failures`` hits, then behave like ``then``."""
    failing = status(code, headers)
    return lambda hit: failing(hit) if hit <= failures else then(hit)


def big(size: int, *, content_length: bool = True, stall_s: float = 0.0, chunk: int = 64 * 1024) -> Route:
    """An HTML body of ``size`` bytes, generated in chunks so no test holds it in memory.

    ``stall_s`` pauses between the headers and the body: a client that judges the size from
    Content-Length answers without waiting for it.
    """

    def chunks() -> Iterable[bytes]:
        time.sleep(stall_s)
        block = b"x" * chunk
        left = size
        while left > 0:
            yield block[:left]
            left -= chunk

    headers = {"Content-Type": "text/html"}
    if content_length:
        headers["Content-Length"] = str(size)
    return lambda _hit: Reply(200, chunks(), headers)


class SiteServer:
    """A ThreadingHTTPServer on 127.0.0.1, port 0, serving ``root`` plus routes; a context manager.

    ``host`` may name another loopback address (``127.0.0.2``: Linux routes all of 127/8 to lo), for a test
    that needs a second host rather than a second port.
    """

    def __init__(self, root: Path | None = None, *, host: str = "127.0.0.1") -> None:
        self.root = root
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.bytes_sent: Counter[str] = Counter()
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._httpd = _Server((host, 0), _Handler)
        self._httpd.site = self
        # A short poll interval keeps shutdown, and so each test's teardown, quick.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str = "/") -> str:
        return self.base + path

    def route(self, path: str, route: Route) -> None:
        """Answer requests for ``path`` (query ignored) with ``route`` instead of the directory."""
        self.routes[path] = route

    def __enter__(self) -> SiteServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _reply(self, path: str, raw_path: str, headers: dict[str, str]) -> Reply:
        with self._lock:
            self.hits[path] += 1
            hit = self.hits[path]
            self.requests.append(RecordedRequest(raw_path, headers))
        if path in self.routes:
            return self.routes[path](hit)
        return self._file(path)

    def _file(self, path: str) -> Reply:
        if self.root is None:
            return status(404)(0)
        relative = path.lstrip("/")
        if not relative or relative.endswith("/"):
            relative += "index.html"
        target = (self.root / relative).resolve()
        if not target.is_relative_to(self.root.resolve()) or not target.is_file():
            return status(404)(0)
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if content_type.startswith("text/"):
            content_type += "; charset=utf-8"
        return Reply(
            200,
            target.read_bytes(),
            {"Content-Type": content_type, "Last-Modified": formatdate(target.stat().st_mtime, usegmt=True)},
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler sleeping to provoke a timeout must not hold up the test
    site: SiteServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.site._reply(path, self.path, headers)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        body = [reply.body] if isinstance(reply.body, bytes) else reply.body
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if isinstance(reply.body, bytes) and "Content-Length" not in reply.headers:
                self.send_header("Content-Length", str(len(reply.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            for chunk in body:
                self.wfile.write(chunk)
                with self.server.site._lock:
                    self.server.site.bytes_sent[path] += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up on purpose (size cap, timeout)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest output clean
