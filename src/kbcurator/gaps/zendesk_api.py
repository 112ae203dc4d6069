"""Tickets from Zendesk's live API, fetched incrementally and kept redacted in the index database.

A fetch (:func:`sync_zendesk_api`) reads the cursor-based incremental tickets export,
``GET {location}/api/v2/incremental/tickets/cursor.json``: the first request with ``start_time`` (``api.start_days``
ago, by default the window), every next one with ``cursor=<after_cursor>`` of the page before, until
``end_of_stream``. The next URL is built here from ``location``, never taken from a response (``after_url``), so a
response cannot send the token anywhere. Each page is one request for up to ``api.per_page`` (1,000) tickets.

Body: a ticket's ``description`` is its first comment, and that is the customer's first message whenever the
requester submitted the ticket (``submitter_id == requester_id``): no extra call. Side-loading cannot give it (the
incremental export side-loads users, groups, organisations, metrics, not comments), so only for a ticket someone
else opened (an agent on the customer's behalf) is ``/api/v2/tickets/{id}/comments.json`` called once, for the
requester's first comment, at most ``api.max_comment_calls`` times a run (``api.customer_comment: description``
turns it off). A page therefore costs one request plus one per agent-opened ticket on it.

Manners (as ``kbcurator.ingest.http`` for the article readers; features do not import each other, so the few
lines are repeated here): every request to a host is spaced to ``api.requests_per_minute``; a 429 waits out its
``Retry-After`` (a longer wait than ``api.max_retry_after_s`` fails the fetch), 5xx and transport errors are retried
with exponential backoff; ``api.timeout_s`` bounds a read and ``api.deadline_s`` the whole fetch. Redirects are
followed by hand onto ``api.allowed_hosts`` only (by default the location's own host), the credentials only within
the origin they were given for. ``api.max_pages`` caps a run; the rest is reported and fetched by the next run,
from the cursor.

Nothing raw is stored: each record becomes a redacted ``Ticket`` (through the ``TicketConverter`` the caller
passes, ``gaps.tickets``' mapping and PII redactor) before anything is written; a record that cannot be one is a
``Rejected`` with its ticket id and why. The cursor row holds no ticket text.

A fetch writes nothing until it is done: then the tickets (an updated ticket replaces its earlier row, a deleted
one is removed), and the cursor last. A failed fetch writes nothing, so the stored tickets and cursor stay as the
last good fetch left them, and a process killed at any point re-reads from the old cursor on its next run:
upserts by id make that re-read lose and duplicate nothing.

The token comes from ``environ[api.token_env]``; it is put on requests to the API's origin only, and never in a
log line, a reason, a row or a URL.
"""

from __future__ import annotations

import base64
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import pyarrow as pa

from kbcurator.config.tickets import TicketSourceConfig
from kbcurator.errors import SourceError
from kbcurator.index import schema
from kbcurator.index.store import IndexStore, lance_errors, sql_text
from kbcurator.records import Rejected, RejectionCode, Ticket
from kbcurator.urls import (
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    host_allowed,
    keeps_credentials,
    normalize_url,
    redirect_target,
)
from kbcurator.zendesk_export import parse_zendesk_time

__all__ = [
    "INCREMENTAL_PATH",
    "CursorState",
    "SyncReport",
    "TicketConverter",
    "TicketTables",
    "endpoint_for",
    "stored_tickets",
    "sync_zendesk_api",
]

log = logging.getLogger(__name__)

STAGE = "tickets"
INCREMENTAL_PATH = "/api/v2/incremental/tickets/cursor.json"
COMMENTS_PATH = "/api/v2/tickets/{ticket_id}/comments.json"
_RETRY = frozenset({429, 500, 502, 503, 504})

Sleep = Callable[[float], None]
Clock = Callable[[], float]


class TicketConverter(Protocol):
    """Turns one API ticket record into a redacted ``Ticket`` (``gaps.tickets`` implements it)."""

    def ticket(self, record: Mapping[str, Any], record_id: str) -> Ticket | Rejected: ...

    def ticket_id(self, raw_id: object) -> str:
        """The id the ticket is stored under (an id holding personal data is hashed)."""
        ...


@dataclass(frozen=True, slots=True)
class CursorState:
    """Where a source's next fetch starts (a row of ``ticket_cursors``)."""

    source_id: str
    endpoint: str
    cursor: str
    start_time: datetime
    end_of_stream: bool
    pages: int
    tickets: int
    fetch_id: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one fetch did. ``error`` set: it failed, and wrote nothing."""

    source_id: str
    full: bool
    pages: int = 0
    fetched: int = 0  # ticket records read
    stored: int = 0  # tickets written, new or replacing their earlier version
    deleted: int = 0  # stored tickets removed (deleted in Zendesk, or not seen again by a complete full refetch)
    comment_calls: int = 0
    rejected: tuple[Rejected, ...] = ()  # quarantined tickets, and one record for a failure or a cap
    complete: bool = False  # end_of_stream reached
    remainder: str = ""  # why the fetch stopped before the end of the stream (the next run goes on)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


# --- the two tables ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Stored:
    ticket: Ticket
    updated_at: datetime | None


class TicketTables:
    """The ``tickets`` and ``ticket_cursors`` tables of one index database."""

    def __init__(self, store: IndexStore) -> None:
        self._store = store

    def cursor(self, source_id: str) -> CursorState | None:
        for row in self._store.rows(schema.TICKET_CURSORS):
            if row["source_id"] == source_id:
                return CursorState(
                    source_id=row["source_id"],
                    endpoint=row["endpoint"] or "",
                    cursor=row["cursor"] or "",
                    start_time=_aware(row["start_time"]) or datetime.fromtimestamp(0, UTC),
                    end_of_stream=bool(row["end_of_stream"]),
                    pages=int(row["pages"] or 0),
                    tickets=int(row["tickets"] or 0),
                    fetch_id=row["fetch_id"] or "",
                    updated_at=_aware(row["updated_at"]) or datetime.fromtimestamp(0, UTC),
                )
        return None

    def tickets(self, source_id: str, *, since: datetime | None = None) -> list[Ticket]:
        """The source's stored tickets created at or after ``since`` (the update time for one without a creation
        time), oldest first."""
        if not self._store.has_table(schema.TICKETS):
            return []
        table = self._store.open_or_create(schema.TICKETS, schema.tickets_schema())
        with lance_errors(f"cannot read the {schema.TICKETS} table"):
            rows = table.search().where(f"source_id = {sql_text(source_id)}").limit(None).to_arrow().to_pylist()
        result: list[tuple[datetime, str, Ticket]] = []
        for row in rows:
            created, updated = _aware(row["created_at"]), _aware(row["updated_at"])
            when = created or updated
            if since is not None and (when is None or when < since):
                continue
            ticket = Ticket(
                ticket_id=row["ticket_id"],
                created_at=created,
                subject=row["subject"] or "",
                body=row["body"] or "",
                channel=row["channel"] or "",
                status=row["status"] or "",
                escalated=bool(row["escalated"]),
                resolved_by_bot=bool(row["resolved_by_bot"]),
                unanswered=bool(row["unanswered"]),
                tags=tuple(row["tags"] or ()),
                csat=row["csat"],
                source_id=row["source_id"],
                solved_by=tuple(row.get("solved_by") or ()),
            )
            result.append((when or datetime.fromtimestamp(0, UTC), ticket.ticket_id, ticket))
        result.sort(key=lambda item: (item[0], item[1]))
        return [ticket for _, _, ticket in result]

    def commit(
        self,
        state: CursorState,
        tickets: Sequence[_Stored],
        deleted: Iterable[str],
        *,
        drop_others: bool,
        fetched_at: datetime,
    ) -> int:
        """Write one fetch: its tickets (replacing earlier versions), its deletions, then the cursor.

        Each step is idempotent, so a process killed between them leaves a database that the next fetch (from the
        old cursor) brings to the same end. Returns how many stored tickets were removed.
        """
        source = sql_text(state.source_id)
        table = self._store.open_or_create(schema.TICKETS, schema.tickets_schema())
        with lance_errors(f"cannot write the {schema.TICKETS} table"):
            if tickets:
                rows = [_row(item, state, fetched_at) for item in tickets]
                data = pa.Table.from_pylist(rows, schema=schema.tickets_schema())
                merge = table.merge_insert("key").when_matched_update_all().when_not_matched_insert_all()
                merge.execute(data)
            before = int(table.count_rows(f"source_id = {source}"))
            gone = sorted(set(deleted))
            for start in range(0, len(gone), 500):
                ids = ", ".join(sql_text(ticket_id) for ticket_id in gone[start : start + 500])
                table.delete(f"source_id = {source} AND ticket_id IN ({ids})")
            if drop_others:
                table.delete(f"source_id = {source} AND fetch_id <> {sql_text(state.fetch_id)}")
            removed = before - int(table.count_rows(f"source_id = {source}"))
        cursors = self._store.open_or_create(schema.TICKET_CURSORS, schema.ticket_cursors_schema())
        row = {
            "source_id": state.source_id,
            "endpoint": state.endpoint,
            "cursor": state.cursor,
            "start_time": state.start_time,
            "end_of_stream": state.end_of_stream,
            "pages": state.pages,
            "tickets": state.tickets,
            "fetch_id": state.fetch_id,
            "updated_at": state.updated_at,
        }
        with lance_errors(f"cannot write the {schema.TICKET_CURSORS} table"):
            merge = cursors.merge_insert("source_id").when_matched_update_all().when_not_matched_insert_all()
            merge.execute(pa.Table.from_pylist([row], schema=schema.ticket_cursors_schema()))
        return removed


def _row(item: _Stored, state: CursorState, fetched_at: datetime) -> dict[str, Any]:
    ticket = item.ticket
    return {
        "key": f"{state.source_id}:{ticket.ticket_id}",
        "source_id": state.source_id,
        "ticket_id": ticket.ticket_id,
        "created_at": ticket.created_at,
        "updated_at": item.updated_at,
        "subject": ticket.subject,
        "body": ticket.body,
        "channel": ticket.channel,
        "status": ticket.status,
        "escalated": ticket.escalated,
        "resolved_by_bot": ticket.resolved_by_bot,
        "unanswered": ticket.unanswered,
        "tags": list(ticket.tags),
        "csat": ticket.csat,
        "solved_by": list(ticket.solved_by),
        "fetched_at": fetched_at,
        "fetch_id": state.fetch_id,
    }


def _aware(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def stored_tickets(config: TicketSourceConfig, store: IndexStore, *, now: datetime | None = None) -> list[Ticket]:
    """The source's stored tickets that a gaps run clusters: those created in the last ``api.window_days``."""
    since = (now or datetime.now(UTC)) - timedelta(days=config.api.window_days)
    return TicketTables(store).tickets(config.id, since=since)


# --- HTTP ----------------------------------------------------------------------------------------------------


class _Refused(SourceError):
    """A redirect off the allowed hosts: nothing was sent there."""


class _Http:
    """GET JSON from the API with the source's manners; every failure is a ``SourceError`` naming no secret."""

    def __init__(
        self,
        config: TicketSourceConfig,
        authorization: str,
        client: httpx.Client,
        *,
        sleep: Sleep,
        clock: Clock,
    ) -> None:
        api = config.api
        self._config = config
        self._authorization = authorization
        self._client = client
        self._sleep = sleep
        self._clock = clock
        self._origin = _origin(config.location)
        configured = [host.strip().lower() for host in api.allowed_hosts if host.strip()]
        self._hosts = frozenset(configured or [urlsplit(normalize_url(config.location) or "").netloc])
        self._interval = 60.0 / api.requests_per_minute
        self._next_at: dict[str, float] = {}  # host -> the earliest time of its next request
        self._deadline = clock() + api.deadline_s
        self.requests = 0

    def remaining(self) -> float:
        return self._deadline - self._clock()

    def _fail(self, message: str) -> SourceError:
        return SourceError(f"ticket source {self._config.id!r}: {message}")

    def _wait(self, seconds: float, why: str) -> None:
        if seconds <= 0:
            return
        if seconds > self.remaining():
            raise self._fail(f"{why}: waiting {seconds:.1f}s would pass the {self._config.api.deadline_s:g}s deadline")
        self._sleep(seconds)

    def get_json(self, url: str) -> Any:
        current, credentials = url, True
        for _ in range(MAX_REDIRECTS + 1):
            response = self._get(current, credentials)
            if response.status_code in REDIRECT_STATUSES:
                location = response.headers.get("location", "").strip()
                target = redirect_target(current, location)
                if target is None:
                    raise self._fail(f"GET {_safe(current)} answered HTTP {response.status_code} without a Location")
                if not host_allowed(target, self._hosts):
                    raise _Refused(
                        f"ticket source {self._config.id!r}: GET {_safe(url)} redirects to a host not allowed: "
                        f"{_safe(target)} (nothing was sent there)"
                    )
                credentials = credentials and keeps_credentials(current, target)
                current = target
                continue
            if response.status_code in (401, 403):
                raise self._fail(
                    f"GET {_safe(current)} answered HTTP {response.status_code}: check the token in "
                    f"${self._config.api.token_env}" + (" and api.email" if self._config.api.email else "")
                )
            if not response.is_success:
                raise self._fail(f"GET {_safe(current)} answered HTTP {response.status_code}")
            try:
                return response.json()
            except ValueError as exc:
                raise self._fail(f"GET {_safe(current)} did not return JSON: {exc}") from exc
        raise self._fail(f"GET {_safe(url)}: more than {MAX_REDIRECTS} redirects")

    def _get(self, url: str, credentials: bool) -> httpx.Response:
        api = self._config.api
        attempts = api.retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            self._throttle(url)
            timeout = min(api.timeout_s, self.remaining())
            if timeout <= 0:
                raise self._fail(f"the {api.deadline_s:g}s deadline passed before GET {_safe(url)}")
            headers = {"Accept": "application/json", "User-Agent": api.user_agent}
            # Credentials only on the API's origin: never set on the client, so nothing else can send them.
            if credentials and _origin(url) == self._origin:
                headers["Authorization"] = self._authorization
            request = self._client.build_request("GET", url, headers=headers, timeout=timeout)
            self.requests += 1
            try:
                response = self._client.send(request, follow_redirects=False)
            except httpx.TransportError as exc:  # timeouts, refused connections, DNS
                if last:
                    raise self._fail(f"cannot reach {_safe(url)}: {type(exc).__name__}: {exc}") from exc
                self._wait(api.backoff_s * 2**attempt, f"retrying {_safe(url)}")
                continue
            if response.status_code in _RETRY and not last:
                delay = api.backoff_s * 2**attempt
                if response.status_code == 429 or "retry-after" in response.headers:
                    asked = _retry_after(response.headers.get("retry-after"))
                    if asked is not None:
                        if asked > api.max_retry_after_s:
                            raise self._fail(
                                f"GET {_safe(url)} answered HTTP {response.status_code} with Retry-After "
                                f"{asked:g}s, over api.max_retry_after_s ({api.max_retry_after_s:g}s)"
                            )
                        delay = asked
                log.info(
                    "ticket source %r: HTTP %d from %s, retrying in %.1fs",
                    self._config.id,
                    response.status_code,
                    _safe(url),
                    delay,
                )
                response.close()
                self._wait(delay, f"HTTP {response.status_code} from {_safe(url)}")
                continue
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _throttle(self, url: str) -> None:
        host = urlsplit(url).netloc.lower()
        now = self._clock()
        at = self._next_at.get(host, now)
        self._wait(at - now, f"the request rate to {host}")
        self._next_at[host] = max(at, now) + self._interval


def _retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` asks for: a number, or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError):
            return None
        seconds = (when.astimezone(UTC) - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _origin(url: str) -> str:
    normalized = normalize_url(url) or ""
    parts = urlsplit(normalized)
    return f"{parts.scheme}://{parts.netloc}"


def _safe(url: str) -> str:
    """A URL as logged: without its query (a cursor is harmless, but a URL from elsewhere may carry anything)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _authorization(config: TicketSourceConfig, token: str) -> str:
    if config.api.email:
        pair = f"{config.api.email}/token:{token}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")
    return f"Bearer {token}"


# --- the fetch -----------------------------------------------------------------------------------------------


def endpoint_for(config: TicketSourceConfig) -> str:
    """The incremental export URL of the source (a location naming the endpoint is taken as it is)."""
    base = (normalize_url(config.location) or config.location).split("?", 1)[0].rstrip("/")
    return base if base.endswith(INCREMENTAL_PATH) else base + INCREMENTAL_PATH


@dataclass
class _Progress:
    pages: int = 0
    fetched: int = 0
    comment_calls: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    tickets: dict[str, _Stored] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    cursor: str = ""
    complete: bool = False
    remainder: str = ""


def sync_zendesk_api(
    config: TicketSourceConfig,
    store: IndexStore,
    converter: TicketConverter,
    *,
    environ: Mapping[str, str],
    full: bool = False,
    client: httpx.Client | None = None,
    now: datetime | None = None,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
) -> SyncReport:
    """Fetch what changed since the source's stored cursor and store it; never raises for a failed fetch.

    Args:
        environ: where the token is looked up (``environ[config.api.token_env]``): the caller's ``os.environ``.
        full: ignore the stored cursor and read again from ``api.start_days`` ago; when that read reaches the end
            of the stream, stored tickets it did not see are dropped.
        client: an ``httpx.Client`` to send with (tests, proxies); its own auth and redirect settings are not used.

    Returns:
        What the fetch did. On failure (``error`` set, one ``Rejected(code=FETCH_FAILED)`` in ``rejected``) nothing
        was written: the stored tickets and cursor are those of the last good fetch.
    """
    api = config.api
    now = now or datetime.now(UTC)
    endpoint = endpoint_for(config)
    tables = TicketTables(store)
    previous = None if full else tables.cursor(config.id)
    if previous is not None and previous.endpoint != endpoint:
        log.warning(
            "ticket source %r: the stored cursor belongs to %s, not %s: starting over",
            config.id,
            _safe(previous.endpoint),
            _safe(endpoint),
        )
        previous = None
    token = environ.get(api.token_env, "").strip()
    if not token:
        return _failed(config, full, _Progress(), f"no API token: set the environment variable {api.token_env}")
    if previous is not None and previous.cursor:
        start_time = previous.start_time
        url = _page_url(endpoint, {"cursor": previous.cursor, "per_page": api.per_page})
    else:
        start_time = (now - timedelta(days=api.start_days or api.window_days)).replace(microsecond=0)
        url = _page_url(endpoint, {"start_time": int(start_time.timestamp()), "per_page": api.per_page})
    progress = _Progress(cursor=previous.cursor if previous else "")
    owned = client is None
    http_client = client or httpx.Client()
    try:
        http = _Http(config, _authorization(config, token), http_client, sleep=sleep, clock=clock)
        _read_pages(config, converter, http, endpoint, url, progress)
    except SourceError as exc:
        return _failed(config, full, progress, str(exc), refused=isinstance(exc, _Refused))
    finally:
        if owned:
            http_client.close()

    fetch_id = uuid.uuid4().hex
    state = CursorState(
        source_id=config.id,
        endpoint=endpoint,
        cursor=progress.cursor,
        start_time=start_time,
        end_of_stream=progress.complete,
        pages=progress.pages,
        tickets=progress.fetched,
        fetch_id=fetch_id,
        updated_at=now,
    )
    stored = list(progress.tickets.values())
    deleted = tables.commit(state, stored, progress.deleted, drop_others=full and progress.complete, fetched_at=now)
    rejected = list(progress.rejected)
    if progress.remainder:
        log.warning("ticket source %r: %s", config.id, progress.remainder)
        rejected.append(Rejected(endpoint, STAGE, progress.remainder, config.id, code=RejectionCode.CRAWL_CAPPED))
    log.info(
        "ticket source %r: %d pages, %d ticket records, %d stored, %d removed, %d quarantined, %d comment calls%s",
        config.id,
        progress.pages,
        progress.fetched,
        len(stored),
        deleted,
        len(progress.rejected),
        progress.comment_calls,
        "" if progress.complete else " (more to fetch)",
    )
    return SyncReport(
        source_id=config.id,
        full=full,
        pages=progress.pages,
        fetched=progress.fetched,
        stored=len(stored),
        deleted=deleted,
        comment_calls=progress.comment_calls,
        rejected=tuple(rejected),
        complete=progress.complete,
        remainder=progress.remainder,
    )


def _failed(
    config: TicketSourceConfig, full: bool, progress: _Progress, error: str, *, refused: bool = False
) -> SyncReport:
    message = (
        f"ticket fetch failed after {progress.pages} pages, nothing written (the stored tickets and cursor are "
        f"the last good fetch's): {error}"
    )
    log.error("%s", message)
    code = RejectionCode.HOST_NOT_ALLOWED if refused else RejectionCode.FETCH_FAILED
    record = Rejected(endpoint_for(config), STAGE, message, config.id, code=code)
    return SyncReport(
        source_id=config.id,
        full=full,
        pages=progress.pages,
        fetched=progress.fetched,
        comment_calls=progress.comment_calls,
        rejected=(*progress.rejected, record),
        error=error,
    )


def _page_url(endpoint: str, params: Mapping[str, object]) -> str:
    return f"{endpoint}?{urlencode({key: str(value) for key, value in params.items()})}"


def _read_pages(
    config: TicketSourceConfig,
    converter: TicketConverter,
    http: _Http,
    endpoint: str,
    url: str,
    progress: _Progress,
) -> None:
    api = config.api
    while True:
        if progress.pages >= api.max_pages:
            progress.remainder = (
                f"stopped at the page cap (api.max_pages = {api.max_pages}) before the end of the stream: "
                "the rest is fetched by the next run, from the stored cursor"
            )
            return
        if http.remaining() <= 0:
            progress.remainder = (
                f"stopped at the {api.deadline_s:g}s deadline after {progress.pages} pages, before the end of the "
                "stream: the rest is fetched by the next run, from the stored cursor"
            )
            return
        data = http.get_json(url)
        if not isinstance(data, dict) or not isinstance(data.get("tickets"), list):
            raise SourceError(
                f"ticket source {config.id!r}: {_safe(url)} is not an incremental tickets page (no 'tickets' list)"
            )
        page = progress.pages + 1
        for index, record in enumerate(data["tickets"]):
            _take(config, converter, http, endpoint, record, f"{_safe(endpoint)}#page{page}.tickets[{index}]", progress)
        progress.pages = page
        after = data.get("after_cursor")
        if after is not None and not isinstance(after, str):
            raise SourceError(f"ticket source {config.id!r}: {_safe(url)} has an after_cursor that is not a string")
        if after:
            progress.cursor = after
        if data.get("end_of_stream") is True:
            progress.complete = True
            return
        if not after:
            raise SourceError(
                f"ticket source {config.id!r}: {_safe(url)} is neither the end of the stream nor names an after_cursor"
            )
        url = _page_url(endpoint, {"cursor": after, "per_page": api.per_page})


def _take(
    config: TicketSourceConfig,
    converter: TicketConverter,
    http: _Http,
    endpoint: str,
    record: object,
    where: str,
    progress: _Progress,
) -> None:
    progress.fetched += 1
    if not isinstance(record, dict):
        reason = f"ticket record is {type(record).__name__}, not an object"
        progress.rejected.append(Rejected(where, STAGE, reason, config.id, code=RejectionCode.MALFORMED))
        return
    raw_id = record.get("id")
    if raw_id is None or isinstance(raw_id, bool | dict | list) or not str(raw_id).strip():
        progress.rejected.append(Rejected(where, STAGE, "ticket has no 'id'", config.id, code=RejectionCode.MALFORMED))
        return
    ticket_id = converter.ticket_id(raw_id)
    record_id = f"{_safe(endpoint)}#ticket-{ticket_id}"
    if str(record.get("status") or "").strip().casefold() == "deleted":
        progress.tickets.pop(ticket_id, None)
        progress.deleted.add(ticket_id)
        return
    record = _with_customer_comment(config, http, endpoint, record, progress)
    result = converter.ticket(record, record_id)
    if isinstance(result, Rejected):
        # The ticket's earlier stored version, if any, stays: better an older text than none.
        progress.rejected.append(result)
        return
    # The stream lists a ticket again when it changed again while being read: the last one is the newest.
    progress.tickets[result.ticket_id] = _Stored(result, parse_zendesk_time(record.get("updated_at")))
    progress.deleted.discard(result.ticket_id)


def _with_customer_comment(
    config: TicketSourceConfig, http: _Http, endpoint: str, record: dict[str, Any], progress: _Progress
) -> dict[str, Any]:
    """The record with ``description`` set to the requester's first comment when someone else opened the ticket."""
    api = config.api
    requester, submitter, raw_id = record.get("requester_id"), record.get("submitter_id"), record.get("id")
    if (
        api.customer_comment != "auto"
        or requester is None
        or submitter is None
        or requester == submitter
        or not str(raw_id).isdigit()
    ):
        return record
    if progress.comment_calls >= api.max_comment_calls:
        return record
    progress.comment_calls += 1
    base = endpoint.removesuffix(INCREMENTAL_PATH)
    url = _page_url(base + COMMENTS_PATH.format(ticket_id=raw_id), {"sort_order": "asc", "per_page": 100})
    try:
        data = http.get_json(url)
    except _Refused:
        raise
    except SourceError as exc:
        # Not worth failing the fetch: the description is still the ticket's first message.
        log.warning("ticket source %r: first customer comment not read, description kept: %s", config.id, exc)
        return record
    comments = data.get("comments") if isinstance(data, dict) else None
    for comment in comments if isinstance(comments, list) else []:
        if isinstance(comment, dict) and comment.get("author_id") == requester:
            text = comment.get("plain_body") or comment.get("body")
            if isinstance(text, str) and text.strip():
                return {**record, "description": text}
    return record
