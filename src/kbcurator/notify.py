"""Tell the on-call engineer how a run ended, through a Slack-compatible incoming webhook.

``send_notice`` never raises: a notification that cannot be delivered comes back as
``NotifyResult(sent=False, error=...)`` and is logged, so it can neither hide nor replace the run's own outcome.
Webhook URLs are secrets (Slack's token is its path), so errors and logs name only the scheme and host.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from kbcurator import __version__
from kbcurator.settings import NoticeKind, NotifySettings

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]

MAX_DETAILS = 20  # detail lines listed; the rest are counted ("… and N more")
MAX_DETAIL_CHARS = 300  # each detail line is clipped to this many characters
_MAX_SUMMARY_CHARS = 1000
_MAX_SECTION_CHARS = 3000  # Slack rejects a section block whose text is longer
_ATTEMPTS = 2
_BACKOFF_S = 1.0
_USER_AGENT = f"kbcurator/{__version__} (notify)"
_SLACK_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


@dataclass(frozen=True, slots=True)
class RunNotice:
    """What happened to one run, as the on-call engineer should read it."""

    kind: NoticeKind
    flow: str
    summary: str
    details: tuple[str, ...] = ()  # e.g. the failed checks; the first MAX_DETAILS are listed
    run_url: str | None = None  # e.g. the Prefect UI's page for the flow run


@dataclass(frozen=True, slots=True)
class NotifyResult:
    """The outcome of ``send_notice``.

    ``sent=False`` with ``error=None``: nothing was to be sent (no webhook, or the kind is not in ``notify.on``).
    """

    sent: bool
    status: int | None = None  # the webhook's last HTTP status, if it answered
    error: str | None = None  # why it was not delivered; never holds the URL's path, query or credentials


def send_notice(
    settings: NotifySettings, notice: RunNotice, *, client: httpx.Client | None = None, sleep: Sleep = time.sleep
) -> NotifyResult:
    """POST ``notice`` to ``settings.webhook_url`` when one is set and ``notice.kind`` is in ``settings.on``.

    At most two attempts: the second only after a connection error or a 5xx, when the message cannot have been
    posted (a timeout while waiting for the answer is not retried, so a slow webhook does not post twice).
    Redirects are not followed: a 3xx is a failure.

    Args:
        settings: the ``notify`` section of the settings.
        notice: what to say.
        client: an httpx client to reuse (tests); one is made and closed if None. Timeout and redirects are set per
            request, so its own settings do not matter.
        sleep: called for the pause between attempts, so tests can run without waiting.

    Returns:
        A ``NotifyResult``; this function never raises.
    """
    url = settings.webhook_url
    if not url or notice.kind not in settings.on:
        return NotifyResult(sent=False)
    where = _origin(url)
    try:
        payload = notice_payload(notice)
        http = client if client is not None else httpx.Client()
        try:
            result = _post(http, url, payload, settings.timeout_s, where, sleep)
        finally:
            if client is None:
                http.close()
    except Exception as exc:  # a notification must never take the place of the run's own outcome
        result = NotifyResult(sent=False, error=f"cannot notify {where}: {_describe(exc, url)}")
    if result.error:
        log.warning("%s notice for %s not delivered: %s", notice.kind, notice.flow, result.error)
    return result


def notice_payload(notice: RunNotice) -> dict[str, Any]:
    """The Slack-compatible message for ``notice``: a one-line ``text`` and ``blocks`` of mrkdwn sections."""
    title = f"kbcurator {_clip(_one_line(notice.flow), 100)}: {notice.kind}"
    summary = _clip(notice.summary.strip(), _MAX_SUMMARY_CHARS)
    text = _escape(f"{title}: {_one_line(summary)}")
    heading = f"*{_escape(title)}*"
    if summary:
        heading += "\n" + _escape_clipped(summary, _MAX_SECTION_CHARS - len(heading) - 1)
    blocks = [_section(heading)]

    lines = [f"• {_escape(_clip(_one_line(detail), MAX_DETAIL_CHARS))}" for detail in notice.details[:MAX_DETAILS]]
    if len(notice.details) > MAX_DETAILS:
        lines.append(f"… and {len(notice.details) - MAX_DETAILS} more")
    # A detail line is at most 5 x 300 characters escaped, so lines are packed into sections under Slack's limit.
    chunk: list[str] = []
    for line in lines:
        if chunk and len("\n".join([*chunk, line])) > _MAX_SECTION_CHARS:
            blocks.append(_section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(_section("\n".join(chunk)))

    if notice.run_url:
        run_url = notice.run_url.strip()
        if urlsplit(run_url).scheme.lower() in ("http", "https"):
            # "|" ends a link's URL in Slack's <url|label> syntax.
            blocks.append(_section(f"<{_escape(run_url.replace('|', '%7C'))}|Open the run>"))
        else:
            blocks.append(_section(f"Run: {_escape(_clip(_one_line(run_url), MAX_DETAIL_CHARS))}"))
    return {"text": text, "blocks": blocks}


def _post(
    http: httpx.Client, url: str, payload: dict[str, Any], timeout_s: float, where: str, sleep: Sleep
) -> NotifyResult:
    result = NotifyResult(sent=False)
    for attempt in range(1, _ATTEMPTS + 1):
        if attempt > 1:
            sleep(_BACKOFF_S)
        try:
            response = http.post(
                url,
                json=payload,
                timeout=timeout_s,
                follow_redirects=False,
                headers={"User-Agent": _USER_AGENT},
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # Nothing reached the webhook: safe to try again.
            result = NotifyResult(sent=False, error=f"cannot reach {where}: {_describe(exc, url)}")
            continue
        except httpx.HTTPError as exc:
            # The message may have been posted (e.g. no answer in time): trying again could post it twice.
            return NotifyResult(sent=False, error=f"no answer from {where}: {_describe(exc, url)}")
        status = response.status_code
        if response.is_success:
            return NotifyResult(sent=True, status=status)
        error = f"{where} answered HTTP {status}"
        if response.is_redirect:
            error += " (redirects are not followed: set notify.webhook_url to the final URL)"
        else:
            body = _one_line(_scrub(response.text, url))
            if body:
                error += f": {_clip(body, 200)}"
        result = NotifyResult(sent=False, status=status, error=error)
        if status < 500:
            break
    return result


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what errors may say about a webhook without giving its secret away."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "the webhook"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def _scrub(text: str, url: str) -> str:
    """``text`` with the URL, its path, query and credentials replaced by "…"."""
    try:
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        secrets = [url, url.split("?", 1)[0], parts.query, userinfo, parts.path if len(parts.path) > 1 else ""]
    except ValueError:
        secrets = [url]
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "…")
    return text


def _describe(exc: BaseException, url: str) -> str:
    message = _one_line(_scrub(str(exc), url))
    return f"{type(exc).__name__}: {_clip(message, 300)}" if message else type(exc).__name__


def _escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return "".join(_SLACK_ESCAPES.get(char, char) for char in text)


def _escape_clipped(text: str, limit: int) -> str:
    """``_escape(text)``, clipped at a character boundary to at most ``limit`` characters once escaped."""
    escaped = _escape(text)
    if len(escaped) <= limit:
        return escaped
    pieces: list[str] = []
    used = 0
    for char in text:
        piece = _SLACK_ESCAPES.get(char, char)
        if used + len(piece) > limit - 1:
            break
        pieces.append(piece)
        used += len(piece)
    return "".join(pieces) + "…"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}
