from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import pytest

from kbcurator.errors import ConfigError
from kbcurator.notify import MAX_DETAIL_CHARS, RunNotice, notice_payload, send_notice
from kbcurator.settings import NotifySettings, load_settings


class Receiver:
    """A webhook on 127.0.0.1 (free port) that records every POST and answers ``replies`` in turn (the last repeats).

    A reply is ``(status, headers)``; ``delay_s`` holds every answer back, to provoke client timeouts.
    """

    def __init__(self, replies: list[tuple[int, dict[str, str]]] | None = None, *, delay_s: float = 0.0) -> None:
        self.replies = replies or [(200, {})]
        self.delay_s = delay_s
        self.posts: list[dict[str, Any]] = []  # {"path", "headers", "json"}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.posts.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "json": json.loads(body) if body else None,
                        }
                    )
                    status, headers = receiver.replies[min(len(receiver.posts), len(receiver.replies)) - 1]
                time.sleep(receiver.delay_s)
                answer = b"ok" if status < 300 else b"server_error" if status >= 500 else b""
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    def url(self, path: str = "/services/T000/B000/XXXX") -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _blocked(**changes: Any) -> RunNotice:
    values: dict[str, Any] = {
        "kind": "blocked",
        "flow": "reindex",
        "summary": "publish blocked: 2 checks failed",
        "details": ("chunks: text_not_empty failed", "articles: <script>alert(1)</script> & co"),
        "run_url": "https://prefect.example/runs/flow-run/abc",
    }
    return RunNotice(**{**values, **changes})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_blocked_notice_is_posted_once_as_slack_json() -> None:
    with Receiver() as hook:
        result = send_notice(NotifySettings(webhook_url=hook.url()), _blocked())

    assert result.sent is True
    assert result.status == 200
    assert result.error is None
    assert len(hook.posts) == 1
    post = hook.posts[0]
    assert post["path"] == "/services/T000/B000/XXXX"
    assert post["headers"]["content-type"] == "application/json"
    message = post["json"]
    assert message["text"] == "kbcurator reindex: blocked: publish blocked: 2 checks failed"
    assert "\n" not in message["text"]
    body = "\n".join(block["text"]["text"] for block in message["blocks"])
    assert all(block["type"] == "section" and block["text"]["type"] == "mrkdwn" for block in message["blocks"])
    assert "• chunks: text_not_empty failed" in body
    assert "• articles: &lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in body
    assert "<script>" not in body
    assert "<https://prefect.example/runs/flow-run/abc|Open the run>" in body


def test_kinds_not_in_on_and_a_missing_webhook_send_nothing() -> None:
    with Receiver() as hook:
        quiet = send_notice(NotifySettings(webhook_url=hook.url()), _blocked(kind="published"))
        only_failures = send_notice(NotifySettings(webhook_url=hook.url(), on=["failed"]), _blocked())
        no_webhook = send_notice(NotifySettings(), _blocked(kind="failed"))
        loud = send_notice(NotifySettings(webhook_url=hook.url(), on=["published"]), _blocked(kind="published"))

    for result in (quiet, only_failures, no_webhook):
        assert (result.sent, result.status, result.error) == (False, None, None)
    assert loud.sent is True
    assert [post["json"]["text"].split(":")[1].strip() for post in hook.posts] == ["published"]


def test_a_server_error_is_tried_once_more_after_a_pause() -> None:
    pauses: list[float] = []
    with Receiver([(500, {}), (200, {})]) as hook:
        result = send_notice(NotifySettings(webhook_url=hook.url()), _blocked(kind="failed"), sleep=pauses.append)

    assert result.sent is True
    assert result.status == 200
    assert len(hook.posts) == 2
    assert hook.posts[0]["json"] == hook.posts[1]["json"]
    assert len(pauses) == 1 and 0 < pauses[0] <= 5


def test_a_webhook_that_keeps_failing_gets_two_attempts_and_no_exception() -> None:
    with Receiver([(503, {})]) as hook:
        result = send_notice(NotifySettings(webhook_url=hook.url()), _blocked(), sleep=lambda _s: None)

    assert len(hook.posts) == 2
    assert (result.sent, result.status) == (False, 503)
    assert result.error is not None and "503" in result.error


def test_a_client_error_is_not_retried_and_names_the_answer() -> None:
    with Receiver([(404, {})]) as hook:
        result = send_notice(NotifySettings(webhook_url=hook.url()), _blocked(), sleep=lambda _s: None)

    assert len(hook.posts) == 1
    assert (result.sent, result.status) == (False, 404)
    assert result.error is not None and "404" in result.error


def test_a_redirect_is_not_followed() -> None:
    with Receiver() as other, Receiver([(302, {"Location": other.url("/elsewhere")})]) as hook:
        result = send_notice(NotifySettings(webhook_url=hook.url()), _blocked(), sleep=lambda _s: None)

    assert (result.sent, result.status) == (False, 302)
    assert result.error is not None and "redirect" in result.error
    assert len(hook.posts) == 1
    assert other.posts == []


def test_a_slow_webhook_is_not_posted_twice() -> None:
    with Receiver(delay_s=1.0) as hook:
        started = time.monotonic()
        result = send_notice(NotifySettings(webhook_url=hook.url(), timeout_s=0.2), _blocked(), sleep=lambda _s: None)
        elapsed = time.monotonic() - started

    assert result.sent is False
    assert result.error is not None and "Timeout" in result.error
    assert elapsed < 1.0
    assert len(hook.posts) == 1


def test_an_unreachable_webhook_fails_quietly_without_its_secrets() -> None:
    url = f"http://bot:PASSWORD@127.0.0.1:{_free_port()}/services/T000/B000/PATHSECRET?token=SECRET"
    pauses: list[float] = []
    result = send_notice(NotifySettings(webhook_url=url, timeout_s=2), _blocked(), sleep=pauses.append)

    assert (result.sent, result.status) == (False, None)
    assert result.error is not None
    assert "127.0.0.1" in result.error  # says which webhook, by host
    for secret in ("SECRET", "PASSWORD", "bot:", "/services"):
        assert secret not in result.error
    assert len(pauses) == 1  # a connection error is tried twice


def test_long_detail_lists_are_clipped_and_counted() -> None:
    details = tuple(f"check {n} failed " + "x" * 400 for n in range(25))
    message = notice_payload(_blocked(details=details, summary="multi\nline & <b>"))

    assert message["text"] == "kbcurator reindex: blocked: multi line &amp; &lt;b&gt;"
    texts = [block["text"]["text"] for block in message["blocks"]]
    assert all(len(text) <= 3000 for text in texts)  # Slack's limit for a section's text
    lines = "\n".join(texts).splitlines()
    listed = [line for line in lines if line.startswith("• check ")]
    assert len(listed) == 20
    assert all(len(line) <= len("• ") + MAX_DETAIL_CHARS for line in listed)
    assert "… and 5 more" in lines


@pytest.mark.parametrize("url", ["ftp://x", "hooks.slack.com/services/T/B/SECRET", "https:///no-host", "file:///x"])
def test_settings_reject_a_webhook_that_is_not_an_http_url(url: str) -> None:
    with pytest.raises(ConfigError, match=r"notify\.webhook_url must be an http:// or https:// URL with a host"):
        load_settings(notify={"webhook_url": url})
    with pytest.raises(ValueError) as caught:
        NotifySettings(webhook_url=url)
    assert "SECRET" not in str(caught.value)


def test_settings_read_the_webhook_and_kinds_from_the_environment(monkeypatch) -> None:
    for name in ("KB_NOTIFY__WEBHOOK_URL", "KB_NOTIFY__ON", "KB_NOTIFY__TIMEOUT_S"):
        monkeypatch.delenv(name, raising=False)
    assert load_settings().notify == NotifySettings(webhook_url=None, timeout_s=10, on=["failed", "blocked"])

    monkeypatch.setenv("KB_NOTIFY__WEBHOOK_URL", "https://hooks.example.com/services/T/B/X")
    monkeypatch.setenv("KB_NOTIFY__ON", '["failed", "published"]')
    notify = load_settings().notify
    assert notify.webhook_url == "https://hooks.example.com/services/T/B/X"
    assert notify.on == ["failed", "published"]

    monkeypatch.setenv("KB_NOTIFY__TIMEOUT_S", "0")
    with pytest.raises(ConfigError, match="timeout_s"):
        load_settings()
