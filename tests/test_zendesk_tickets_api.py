"""The ``zendesk_api`` ticket source against a local server that speaks Zendesk's incremental tickets export:
incremental runs, updates replacing old versions, API manners, quarantine, and a token that stays secret."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError
from site_server import Reply, SiteServer

from kbcurator.config.tickets import TicketSourceConfig
from kbcurator.gaps.tickets import load_tickets
from kbcurator.gaps.zendesk_api import INCREMENTAL_PATH, TicketTables
from kbcurator.index import schema
from kbcurator.index.store import IndexStore
from kbcurator.records import Rejected, RejectionCode, Ticket

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TOKEN = "zdtok-7Qx9Lm2Vb8Rt4Kc1"
ENV = {"KB_ZENDESK_TOKEN": TOKEN}


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeZendesk:
    """The incremental export over a change log: every update appends the ticket's new version, and a cursor is
    a position in the log, as Zendesk's opaque cursors are positions in its own."""

    def __init__(self, site: SiteServer) -> None:
        self.site = site
        self.log: list[dict[str, Any]] = []
        self.clock = NOW - timedelta(days=5)
        self.pages_served = 0
        self.fail_after_pages: int | None = None  # every page after this many answers 500
        self.before: Callable[[int], Reply | None] = lambda _hit: None  # a reply to send instead, by hit number
        self.served: list[Any] = []  # the ids of the tickets on every page answered, in order
        site.route(INCREMENTAL_PATH, self._page)

    def put(self, ticket_id: int, **fields: Any) -> dict[str, Any]:
        self.clock += timedelta(minutes=10)
        record = {
            "id": ticket_id,
            "created_at": iso(self.clock),
            "subject": f"Question {ticket_id}",
            "description": f"How do I do thing {ticket_id}?",
            "status": "open",
            "via": {"channel": "email"},
            "tags": [],
            "satisfaction_rating": None,
            "requester_id": 5000 + ticket_id,
            "submitter_id": 5000 + ticket_id,
            **fields,
            "updated_at": iso(self.clock),
        }
        self.log.append(record)
        return record

    def _page(self, hit: int) -> Reply:
        instead = self.before(hit)
        if instead is not None:
            return instead
        query = parse_qs(urlsplit(self.site.requests[-1].path).query)
        if self.fail_after_pages is not None and self.pages_served >= self.fail_after_pages:
            return Reply(500, b"{}", {"Content-Type": "application/json"})
        size = int(query.get("per_page", ["1000"])[0])
        if "cursor" in query:
            position = int(base64.b64decode(query["cursor"][0]).decode().removeprefix("pos:"))
        else:
            start = datetime.fromtimestamp(int(query["start_time"][0]), UTC)
            position = next((i for i, r in enumerate(self.log) if r["updated_at"] >= iso(start)), len(self.log))
        page = self.log[position : position + size]
        after = position + len(page)
        cursor = base64.b64encode(f"pos:{after}".encode()).decode()
        body = {
            "tickets": page,
            "after_cursor": cursor,
            "after_url": self.site.url(f"{INCREMENTAL_PATH}?cursor={cursor}"),
            "before_cursor": None,
            "end_of_stream": after >= len(self.log),
        }
        self.pages_served += 1
        self.served.extend(record.get("id") for record in page)
        return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def page_requests(self) -> list[dict[str, list[str]]]:
        return [parse_qs(urlsplit(r.path).query) for r in self.site.requests if r.path.startswith(INCREMENTAL_PATH)]


@pytest.fixture
def zendesk() -> Any:
    with SiteServer() as site:
        yield FakeZendesk(site)


@pytest.fixture
def store(tmp_path: Path) -> IndexStore:
    return IndexStore(str(tmp_path / "index"))


def source(zendesk: FakeZendesk, **api: Any) -> TicketSourceConfig:
    options = {"per_page": 2, "requests_per_minute": 60_000, "retries": 2, "backoff_s": 0.0, **api}
    return TicketSourceConfig.model_validate(
        {"id": "helpdesk", "format": "zendesk_api", "location": zendesk.site.base, "api": options}
    )


def run(
    config: TicketSourceConfig, store: IndexStore, *, full: bool = False, now: datetime = NOW
) -> tuple[list[Ticket], list[Rejected]]:
    results = list(load_tickets(config, store=store, environ=ENV, full=full, now=now))
    return [r for r in results if isinstance(r, Ticket)], [r for r in results if isinstance(r, Rejected)]


def stored(store: IndexStore) -> list[dict[str, Any]]:
    return store.rows(schema.TICKETS)


def test_first_run_reads_every_page_then_a_rerun_only_the_changes_and_an_update_replaces_the_ticket(
    zendesk: FakeZendesk, store: IndexStore
) -> None:
    for ticket_id in range(101, 106):
        zendesk.put(ticket_id)
    config = source(zendesk)

    tickets, rejected = run(config, store)

    assert rejected == []
    assert [t.ticket_id for t in tickets] == ["101", "102", "103", "104", "105"]
    first_run = zendesk.page_requests()
    assert len(first_run) == 3  # 5 tickets, 2 a page
    assert "start_time" in first_run[0] and all("cursor" in q for q in first_run[1:])
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in zendesk.site.requests)

    assert zendesk.served == [101, 102, 103, 104, 105]
    zendesk.put(102, subject="Card frozen", description="My card is frozen, what now?")
    zendesk.put(106)
    zendesk.put(107)
    tickets, rejected = run(config, store)

    second_run = zendesk.page_requests()[len(first_run) :]
    assert all("cursor" in q and "start_time" not in q for q in second_run)
    assert zendesk.served[5:] == [102, 106, 107]  # only the changes
    assert rejected == []
    assert sorted(t.ticket_id for t in tickets) == ["101", "102", "103", "104", "105", "106", "107"]
    updated = next(t for t in tickets if t.ticket_id == "102")
    assert (updated.subject, updated.body) == ("Card frozen", "My card is frozen, what now?")
    rows = stored(store)
    assert sorted(row["ticket_id"] for row in rows) == ["101", "102", "103", "104", "105", "106", "107"]


def test_the_window_decides_which_stored_tickets_a_run_clusters_and_full_refetches(
    zendesk: FakeZendesk, store: IndexStore
) -> None:
    zendesk.put(201, created_at=iso(NOW - timedelta(days=40)))  # an old ticket updated lately: stored, not clustered
    zendesk.put(202)
    zendesk.put(203)
    config = source(zendesk, window_days=28)

    tickets, _ = run(config, store)

    assert [t.ticket_id for t in tickets] == ["202", "203"]
    assert len(stored(store)) == 3
    later, _ = run(config, store, now=NOW + timedelta(days=30))
    assert later == []  # nothing new, and everything stored has left the window

    zendesk.log = [r for r in zendesk.log if r["id"] != 203]  # gone from the account without a trace
    zendesk.put(202, status="deleted")
    before = len(zendesk.page_requests())
    tickets, _ = run(config, store, full=True)

    assert "start_time" in zendesk.page_requests()[before]  # the stored cursor was ignored
    assert tickets == []
    assert [row["ticket_id"] for row in stored(store)] == ["201"]


def test_a_429_with_retry_after_is_waited_out(zendesk: FakeZendesk, store: IndexStore) -> None:
    zendesk.put(301)
    zendesk.put(302)
    zendesk.before = lambda hit: Reply(429, b"{}", {"Retry-After": "1"}) if hit == 1 else None
    config = source(zendesk)

    started = time.monotonic()
    tickets, rejected = run(config, store)

    assert time.monotonic() - started >= 1.0
    assert rejected == []
    assert [t.ticket_id for t in tickets] == ["301", "302"]
    assert zendesk.site.hits[INCREMENTAL_PATH] == 2


def test_requests_to_the_host_are_spaced_to_the_configured_rate(zendesk: FakeZendesk, store: IndexStore) -> None:
    for ticket_id in range(311, 316):
        zendesk.put(ticket_id)
    config = source(zendesk, requests_per_minute=400)  # 0.15 s apart

    started = time.monotonic()
    run(config, store)

    assert zendesk.site.hits[INCREMENTAL_PATH] == 3
    assert time.monotonic() - started >= 0.3


def test_a_redirect_to_another_host_is_refused_and_the_stored_state_is_kept(
    zendesk: FakeZendesk, store: IndexStore
) -> None:
    zendesk.put(401)
    zendesk.put(402)
    config = source(zendesk)
    run(config, store)
    cursor_before = TicketTables(store).cursor("helpdesk")
    zendesk.put(403)
    with SiteServer(host="127.0.0.2") as elsewhere:
        target = elsewhere.url(INCREMENTAL_PATH)
        zendesk.before = lambda _hit: Reply(302, b"", {"Location": target})

        tickets, rejected = run(config, store)

        assert elsewhere.requests == []
    assert [r.code for r in rejected] == [RejectionCode.HOST_NOT_ALLOWED]
    assert "redirects to a host not allowed" in rejected[0].reason and "127.0.0.2" in rejected[0].reason
    assert [t.ticket_id for t in tickets] == ["401", "402"]  # the run goes on with what was stored
    assert TicketTables(store).cursor("helpdesk") == cursor_before


def test_the_token_never_appears_in_logs_quarantine_outputs_or_stored_rows(
    zendesk: FakeZendesk, store: IndexStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    zendesk.put(501, created_at="not a date")
    zendesk.put(502)
    config = source(zendesk, email="kb-bot@example.com")
    basic = base64.b64encode(f"kb-bot@example.com/token:{TOKEN}".encode()).decode()

    _, rejected = run(config, store)  # one ticket quarantined
    zendesk.put(503)
    zendesk.before = lambda _hit: Reply(401, b'{"error": "Couldn\'t authenticate you"}')
    _, failed = run(config, store)  # a failed fetch
    no_token = list(load_tickets(config, store=store, environ={}, now=NOW))

    assert zendesk.site.requests[0].headers["authorization"] == f"Basic {basic}"  # it was sent, to the API
    outputs = tmp_path / "rejected.jsonl"
    everything = [*rejected, *failed, *(r for r in no_token if isinstance(r, Rejected))]
    outputs.write_text("\n".join(json.dumps(dataclasses.asdict(r), default=str) for r in everything), encoding="utf-8")
    rows = json.dumps([*stored(store), *store.rows(schema.TICKET_CURSORS)], default=str)
    assert {r.code for r in everything} == {RejectionCode.MALFORMED, RejectionCode.FETCH_FAILED}
    assert "$KB_ZENDESK_TOKEN" in failed[0].reason  # says where the token comes from, not what it is
    for text in (caplog.text, outputs.read_text(encoding="utf-8"), rows):
        assert TOKEN not in text
        assert basic not in text


def test_a_malformed_ticket_is_quarantined_with_its_id_and_the_rest_are_kept(
    zendesk: FakeZendesk, store: IndexStore
) -> None:
    zendesk.put(601)
    zendesk.put(602, created_at="call me on +44 20 7946 0958")
    zendesk.put(603, tags={"not": "a list"})
    zendesk.log.append({"subject": "no id at all", "updated_at": iso(zendesk.clock)})
    zendesk.put(604)
    config = source(zendesk)

    tickets, rejected = run(config, store)

    assert [t.ticket_id for t in tickets] == ["601", "604"]
    assert sorted(r.record_id.rsplit("#", 1)[1] for r in rejected) == ["page2.tickets[1]", "ticket-602", "ticket-603"]
    assert all(r.code is RejectionCode.MALFORMED for r in rejected)
    bad_date = next(r for r in rejected if r.record_id.endswith("ticket-602"))
    assert "7946" not in bad_date.reason and "[PHONE]" in bad_date.reason
    assert sorted(row["ticket_id"] for row in stored(store)) == ["601", "604"]


def test_a_fetch_that_dies_after_page_two_writes_nothing_and_the_rerun_loses_and_duplicates_nothing(
    zendesk: FakeZendesk, store: IndexStore
) -> None:
    for ticket_id in range(701, 705):
        zendesk.put(ticket_id)
    config = source(zendesk)
    run(config, store)
    state = TicketTables(store).cursor("helpdesk")
    zendesk.put(702, subject="Updated while we were away")
    for ticket_id in range(705, 711):
        zendesk.put(ticket_id)
    zendesk.fail_after_pages = zendesk.pages_served + 2

    tickets, rejected = run(config, store)

    assert [r.code for r in rejected] == [RejectionCode.FETCH_FAILED]
    assert "after 2 pages" in rejected[0].reason and "HTTP 500" in rejected[0].reason
    assert TicketTables(store).cursor("helpdesk") == state
    assert sorted(t.ticket_id for t in tickets) == ["701", "702", "703", "704"]

    zendesk.fail_after_pages = None
    tickets, rejected = run(config, store)

    assert rejected == []
    ids = [row["ticket_id"] for row in stored(store)]
    assert sorted(ids) == [str(n) for n in range(701, 711)]  # every one, once
    assert next(t for t in tickets if t.ticket_id == "702").subject == "Updated while we were away"


def test_a_kill_between_writing_the_tickets_and_the_cursor_rereads_without_duplicates(
    zendesk: FakeZendesk, store: IndexStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for ticket_id in range(801, 806):
        zendesk.put(ticket_id)
    config = source(zendesk)
    real = IndexStore.open_or_create

    def killed(self: IndexStore, name: str, table_schema: Any) -> Any:
        if name == schema.TICKET_CURSORS:
            raise KeyboardInterrupt  # the process dies after the tickets were written
        return real(self, name, table_schema)

    monkeypatch.setattr(IndexStore, "open_or_create", killed)
    with pytest.raises(KeyboardInterrupt):
        run(config, store)
    monkeypatch.setattr(IndexStore, "open_or_create", real)
    assert TicketTables(store).cursor("helpdesk") is None

    tickets, rejected = run(config, store)

    assert rejected == []
    assert sorted(row["ticket_id"] for row in stored(store)) == [str(n) for n in range(801, 806)]
    assert len(tickets) == 5


def test_the_page_cap_reports_the_remainder_and_the_next_run_goes_on_from_the_cursor(
    zendesk: FakeZendesk, store: IndexStore
) -> None:
    for ticket_id in range(901, 908):
        zendesk.put(ticket_id)  # 4 pages of 2
    config = source(zendesk, max_pages=2)

    tickets, rejected = run(config, store)

    assert [t.ticket_id for t in tickets] == ["901", "902", "903", "904"]
    assert [r.code for r in rejected] == [RejectionCode.CRAWL_CAPPED]
    assert "page cap" in rejected[0].reason and "next run" in rejected[0].reason
    state = TicketTables(store).cursor("helpdesk")
    assert state is not None and not state.end_of_stream

    tickets, rejected = run(config, store)

    assert rejected == []
    assert [t.ticket_id for t in tickets] == [str(n) for n in range(901, 908)]
    assert zendesk.site.hits[INCREMENTAL_PATH] == 4


def test_the_first_customer_comment_is_fetched_only_for_a_ticket_an_agent_opened(
    zendesk: FakeZendesk, store: IndexStore
) -> None:
    zendesk.put(1001)
    zendesk.put(1002, requester_id=42, submitter_id=7, description="Customer called about a locked account.")
    comments = {
        "comments": [
            {"id": 1, "author_id": 7, "plain_body": "Customer called about a locked account."},
            {"id": 2, "author_id": 42, "plain_body": "I am locked out after resetting my password, help"},
        ]
    }
    zendesk.site.route(
        "/api/v2/tickets/1002/comments.json",
        lambda _hit: Reply(200, json.dumps(comments).encode(), {"Content-Type": "application/json"}),
    )
    config = source(zendesk)

    tickets, _ = run(config, store)

    assert [t.body for t in tickets] == [
        "How do I do thing 1001?",
        "I am locked out after resetting my password, help",
    ]
    assert [r.path.split("?")[0] for r in zendesk.site.requests].count("/api/v2/tickets/1002/comments.json") == 1
    assert not any("/api/v2/tickets/1001/" in r.path for r in zendesk.site.requests)


def test_fields_are_mapped_by_configuration(zendesk: FakeZendesk, store: IndexStore) -> None:
    zendesk.put(
        1101,
        status="pending",
        via={"channel": "chat"},
        tags=["billing"],
        satisfaction_rating={"score": "bad"},
        custom_fields=[{"id": 360001, "value": "tier_2"}, {"id": 360002, "value": False}],
    )
    zendesk.put(
        1102,
        status="new",
        custom_fields=[{"id": 360002, "value": True}, {"id": 360003, "value": "https://help.example.com/a/1 a-2"}],
    )
    fields = {"escalation_field": "custom_fields.360001", "bot_field": "custom_fields.360002"}
    fields["solved_by_field"] = "custom_fields.360003"
    config = TicketSourceConfig.model_validate({**source(zendesk).model_dump(), "zendesk": fields})

    first, second = run(config, store)[0]

    assert (first.status, first.channel, first.tags, first.csat) == ("pending", "chat", ("billing",), 0.0)
    assert (first.escalated, first.resolved_by_bot, first.unanswered) == (True, False, False)
    assert (second.escalated, second.resolved_by_bot, second.unanswered) == (False, True, True)
    # The article an agent linked as the solution is stored with the ticket and read back with it.
    assert (first.solved_by, second.solved_by) == ((), ("https://help.example.com/a/1", "a-2"))
    assert [t.solved_by for t in TicketTables(store).tickets(config.id)] == [
        (),
        ("https://help.example.com/a/1", "a-2"),
    ]


def test_the_token_has_no_place_in_the_yaml() -> None:
    base = {"id": "helpdesk", "format": "zendesk_api", "location": "https://acme.zendesk.com"}
    with pytest.raises(ValidationError, match="Extra inputs"):
        TicketSourceConfig.model_validate({**base, "api": {"token": TOKEN}})
    with pytest.raises(ValidationError) as raised:
        TicketSourceConfig.model_validate({**base, "api": {"token_env": TOKEN + "-x"}})
    assert TOKEN not in str(raised.value)
    with pytest.raises(ValidationError, match="base URL"):
        TicketSourceConfig.model_validate({**base, "location": "exports/tickets"})
