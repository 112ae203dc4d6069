"""load_tickets on real-shaped exports (CSV, JSONL, Zendesk pages): mapping, rejections with lines, redaction."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from kbcurator.config.tickets import TicketSelection, TicketSourceConfig
from kbcurator.errors import SourceError
from kbcurator.gaps.pii import PiiRedactor, PiiSettings
from kbcurator.gaps.tickets import load_tickets, select_tickets
from kbcurator.records import Rejected, Ticket

DATA = Path(__file__).resolve().parent / "data" / "tickets"

# Every piece of personal data written into the fixtures, as written.
RAW_PII = [
    "Jane.Doe+bank@mail.example.co.uk",
    "+44 20 7946 0958",
    "7946 0958",
    "4111 1111 1111 1111",
    "GB82 WEST 1234 5698 7654 32",
    "221B Baker Street",
    "07700 900123",
    "bob@example.org",
    "sam@example.net",
    "12 rue de la Paix",
    "DE89 3704 0044 0532 0130 00",
]


def source(location: str | Path, format: str = "csv", **fields: Any) -> TicketSourceConfig:
    return TicketSourceConfig.model_validate({"id": "support", "format": format, "location": str(location), **fields})


def split(results: list[Ticket | Rejected]) -> tuple[list[Ticket], list[Rejected]]:
    tickets = [r for r in results if isinstance(r, Ticket)]
    rejected = [r for r in results if isinstance(r, Rejected)]
    assert len(tickets) + len(rejected) == len(results)
    return tickets, rejected


def test_csv_with_every_column_maps_types_and_redacts() -> None:
    tickets, rejected = split(list(load_tickets(source(DATA / "full.csv"))))

    assert rejected == []
    assert [t.ticket_id for t in tickets] == ["T-1001", "T-1002", "T-1003", "T-1004"]
    first, second, third, fourth = tickets
    assert first.created_at == datetime(2024, 3, 1, 9, 15, tzinfo=UTC)
    assert second.created_at == datetime(2024, 3, 2, 9, 0, tzinfo=UTC)  # +01:00 made UTC
    assert third.created_at is None
    assert fourth.created_at == datetime(2024, 3, 4, tzinfo=UTC)  # epoch seconds
    assert [(t.escalated, t.resolved_by_bot, t.unanswered) for t in tickets] == [
        (True, False, False),
        (False, False, False),
        (False, False, True),
        (False, True, False),
    ]
    assert first.tags == ("card_arrival", "delivery")
    assert second.tags == ("pending_top_up", "card")  # a JSON list in a cell
    assert third.tags == ()
    assert [t.csat for t in tickets] == [2.0, 5.0, None, 4.5]  # "4,5": a decimal comma
    assert (first.channel, first.status, first.source_id) == ("email", "open", "support")
    assert first.body == "I ordered a card but it has not arrived. Help please! Reach me at [EMAIL] or [PHONE]."
    assert second.body == "I think my top up is still pending?\nIt has been 2 days and card [CARD] was charged."
    assert fourth.body == "Please refund to [IBAN]; post to [ADDRESS]."
    assert third.text == "How do I locate my card?"  # no subject: the body alone
    assert first.text.startswith("Card not arrived. I ordered a card")


def test_csv_with_only_a_text_column_loads_with_row_ids() -> None:
    tickets, rejected = split(list(load_tickets(source(DATA / "text_only.csv"))))

    assert rejected == []
    assert [(t.ticket_id, t.body) for t in tickets] == [
        ("row-1", "How do I locate my card?"),
        ("row-2", "I still have not received my new card, I ordered over a week ago."),
        ("row-3", "I did not get my card yet, is it lost?"),  # after a blank line; unquoted comma kept
    ]
    assert all(t.created_at is None and t.subject == "" and not t.escalated for t in tickets)


def test_a_spreadsheet_export_with_its_own_column_names_is_mapped_by_config() -> None:
    config = source(
        DATA / "custom_columns.csv",
        columns={
            "ticket_id": "Ticket ID",
            "created_at": "Opened",
            "subject": "Topic",
            "body": "First message",
            "escalated": "escalated?",  # headers match ignoring case
            "csat": "Satisfaction",
        },
        date_format="%d/%m/%Y %H:%M",
    )

    tickets, rejected = split(list(load_tickets(config)))

    assert rejected == []
    a17, a18 = tickets
    assert a17.ticket_id == "A-17"  # the byte-order mark is not part of the first header
    assert a17.created_at == datetime(2024, 3, 31, 17, 45, tzinfo=UTC)  # day first, from date_format
    assert (a17.subject, a17.escalated, a17.csat) == ("Card", True, 1.0)
    assert a17.body == "Why hasn't my card been delivered? Call me on [PHONE]."
    assert (a18.ticket_id, a18.escalated, a18.csat) == ("A-18", False, None)


def test_a_file_without_any_mapped_text_column_is_a_source_error_naming_the_columns() -> None:
    with pytest.raises(SourceError, match=r"none of the text columns 'body', 'text', 'subject'.*'First message'"):
        list(load_tickets(source(DATA / "custom_columns.csv")))


def test_jsonl_rejects_bad_lines_with_their_line_numbers_and_loads_the_rest() -> None:
    location = str(DATA / "tickets.jsonl")

    tickets, rejected = split(list(load_tickets(source(location, "jsonl"))))

    assert [(t.ticket_id, t.body) for t in tickets] == [
        ("J-1", "Is there a way to know when my card will arrive?"),
        ("J-4", "Why hasn't my card been delivered? Email me: [EMAIL]"),  # from the "text" key
    ]
    assert tickets[0].tags == ("card_arrival",) and tickets[0].escalated and tickets[0].csat == 1.0
    assert tickets[1].unanswered
    reasons = {r.record_id: r.reason for r in rejected}
    assert list(reasons) == [f"{location}:2", f"{location}:4", f"{location}:6", f"{location}:7"]
    assert reasons[f"{location}:2"].startswith("invalid JSON: Expecting ',' delimiter")
    assert reasons[f"{location}:4"] == "no text: 'body' or 'subject' is missing or empty"
    assert reasons[f"{location}:6"] == "line holds a JSON list, not an object"
    assert reasons[f"{location}:7"] == "column 'escalated': 'maybe' is not a yes/no value"
    assert all(r.stage == "tickets" and r.source_id == "support" for r in rejected)


def test_csv_bad_rows_are_rejected_at_the_line_they_start_on(tmp_path: Path) -> None:
    # Built from bytes here, not a fixture file: the invalid UTF-8 (\xff, a lone \xe9) must survive untouched.
    path = tmp_path / "tickets.csv"
    path.write_bytes(
        b"id,created_at,body\r\n"
        b'1,2024-03-01,"first line\r\nsecond line"\r\n'  # lines 2-3
        b"2,not a date,My card was declined.\r\n"  # line 4
        b"3,2024-03-02,caf\xe9 card \xff declined\r\n"  # line 5
        b"\r\n"  # line 6, blank
        b'4,2024-03-03,"also\r\nmulti-line"\r\n'  # lines 7-8
        b"5,2024-03-04,\r\n"  # line 9: no text
        b"6,2024-03-05,one,extra\r\n"  # line 10
        b"7,31/12/2024,Last one \xe2\x82\xac.\r\n"  # line 11, valid UTF-8 (euro sign)
    )
    location = str(path)

    tickets, rejected = split(list(load_tickets(source(location))))

    assert [(t.ticket_id, t.body) for t in tickets] == [
        ("1", "first line\r\nsecond line"),
        ("4", "also\r\nmulti-line"),
        ("7", "Last one €."),
    ]
    assert tickets[2].created_at == datetime(2024, 12, 31, tzinfo=UTC)
    assert [(r.record_id, r.reason) for r in rejected] == [
        (f"{location}:4", "column 'created_at': cannot parse date 'not a date'"),
        (f"{location}:5", "column 'body' holds bytes that are not valid utf-8"),
        (f"{location}:9", "no text: 'body' is missing or empty"),
        (f"{location}:10", "row has 4 fields but the header has 3 (a stray quote or delimiter?)"),
    ]


def test_a_file_that_does_not_decode_is_one_source_error(tmp_path: Path) -> None:
    utf16 = tmp_path / "utf16.csv"
    utf16.write_text("id,body\n1,How do I locate my card?\n", encoding="utf-16")
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("numéro,body\n1,carte bloquée\n".encode("latin-1"))
    latin1_rows = tmp_path / "latin1_rows.csv"  # an ASCII header: only the rows show the wrong encoding
    latin1_rows.write_bytes("id,body\n1,carte bloquée\n2,reçu égaré\n".encode("latin-1"))
    utf16_jsonl = tmp_path / "utf16.jsonl"
    utf16_jsonl.write_text('{"id": 1, "body": "How do I locate my card?"}\n', encoding="utf-16")

    for config in (source(utf16), source(latin1), source(latin1_rows), source(utf16_jsonl, "jsonl")):
        with pytest.raises(SourceError, match=r"is not utf-8 text .*set 'encoding:'"):
            list(load_tickets(config))
    # Told the right encoding, they load.
    assert [t.body for t in load_tickets(source(utf16, encoding="utf-16")) if isinstance(t, Ticket)] == [
        "How do I locate my card?"
    ]
    assert [t.body for t in load_tickets(source(latin1, encoding="latin-1")) if isinstance(t, Ticket)] == [
        "carte bloquée"
    ]


def test_an_undecodable_first_row_is_still_reported_once_a_later_row_decodes(tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    path.write_bytes(b"id,body\n1,carte bloqu\xe9e\n2,card blocked\n")

    results = list(load_tickets(source(path)))

    assert results[0] == Rejected(
        f"{path}:2", "tickets", "column 'body' holds bytes that are not valid utf-8", "support"
    )
    assert isinstance(results[1], Ticket) and results[1].body == "card blocked"
    assert len(results) == 2


def test_missing_and_empty_files_are_source_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SourceError, match="file not found"):
        list(load_tickets(source(tmp_path / "nope.csv")))
    with pytest.raises(SourceError, match="is empty"):
        list(load_tickets(source(tmp_path / "empty.csv")))


def test_zendesk_export_follows_next_page_and_maps_api_fields() -> None:
    tickets, rejected = split(list(load_tickets(source(DATA / "zendesk" / "tickets.json", "zendesk"))))

    assert rejected == []
    assert [t.ticket_id for t in tickets] == ["101", "103", "104", "105"]  # both pages; 102 is deleted
    by_id = {t.ticket_id: t for t in tickets}
    assert by_id["101"].escalated and by_id["101"].csat == 0.0 and by_id["101"].channel == "email"
    assert by_id["101"].body.endswith("I am at [ADDRESS].")
    assert by_id["103"].resolved_by_bot and by_id["103"].csat == 1.0
    assert by_id["103"].body == "Is there a reason my top up hasn't gone through? Account holder: [EMAIL]"
    assert by_id["104"].unanswered and by_id["104"].subject == ""  # status "new"
    assert by_id["104"].created_at == datetime(2024, 3, 11, 7, 30, tzinfo=UTC)
    assert by_id["105"].csat is None and by_id["105"].tags == ("transfer",)  # "offered" is no rating


def test_zendesk_folder_of_pages_reads_them_in_order() -> None:
    tickets = list(load_tickets(source(DATA / "zendesk", "zendesk")))
    assert [t.ticket_id for t in tickets if isinstance(t, Ticket)] == ["101", "103", "104", "105"]


def test_raw_personal_data_never_reaches_a_ticket() -> None:
    configs = [
        source(DATA / "full.csv"),
        source(DATA / "custom_columns.csv", columns={"body": "First message"}, date_format="%d/%m/%Y %H:%M"),
        source(DATA / "tickets.jsonl", "jsonl"),
        source(DATA / "zendesk" / "tickets.json", "zendesk"),
    ]
    redactor = PiiRedactor()
    tickets = [t for config in configs for t in load_tickets(config, redactor=redactor) if isinstance(t, Ticket)]

    assert len(tickets) == 12
    text = "\n".join(repr(t) for t in tickets)
    assert [raw for raw in RAW_PII if raw in text] == []
    assert redactor.counts == {"email": 3, "phone": 2, "card": 1, "iban": 2, "address": 2}


def test_ids_that_are_email_addresses_are_replaced_by_a_stable_hash(tmp_path: Path) -> None:
    path = tmp_path / "by_requester.jsonl"
    path.write_text('{"id": "jane@example.com", "body": "Card declined"}\n{"id": 42, "body": "Top up"}\n')

    first = [t.ticket_id for t in load_tickets(source(path, "jsonl")) if isinstance(t, Ticket)]
    again = [t.ticket_id for t in load_tickets(source(path, "jsonl")) if isinstance(t, Ticket)]

    assert first == again
    assert first[0].startswith("id-") and len(first[0]) == 15 and "jane" not in first[0]
    assert first[1] == "42"


def test_custom_patterns_from_the_source_config_are_applied(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("text\nWhere is order ORD-0012345?\n")
    config = source(path, pii={"patterns": {"order": r"\bORD-\d{6,}\b"}})

    assert [t.body for t in load_tickets(config) if isinstance(t, Ticket)] == ["Where is order [ORDER]?"]


def _ticket(ticket_id: str, **fields: Any) -> Ticket:
    return Ticket(ticket_id=ticket_id, created_at=None, subject="", body="question", **fields)


SAMPLE = [
    _ticket("escalated", escalated=True, status="open", csat=4.0),
    _ticket("unanswered", unanswered=True, status="new"),
    _ticket("bot-failed", status="pending"),
    _ticket("bot-solved", resolved_by_bot=True, status="pending"),
    _ticket("unhappy", status="solved", csat=1.0),
    _ticket("happy", status="closed", csat=5.0),
    _ticket("bare"),  # no flag, status or score: a bare text export
]


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (TicketSelection(), ["escalated", "unanswered", "bot-failed", "bare"]),
        (TicketSelection(unanswered=False, bot_failed=False, all=False), ["escalated"]),
        (TicketSelection(escalated=False, unanswered=False, bot_failed=False, max_csat=2), ["unhappy", "bare"]),
        (TicketSelection(escalated=False, unanswered=False, bot_failed=False, max_csat=2, all=False), ["unhappy"]),
        (TicketSelection(all=True), [t.ticket_id for t in SAMPLE]),
    ],
)
def test_selection_keeps_the_tickets_that_count(selection: TicketSelection, expected: list[str]) -> None:
    assert [t.ticket_id for t in select_tickets(SAMPLE, selection)] == expected


def test_every_ticket_of_a_bare_text_export_counts_by_default() -> None:
    tickets = [t for t in load_tickets(source(DATA / "text_only.csv")) if isinstance(t, Ticket)]
    assert len(list(select_tickets(tickets, TicketSelection()))) == len(tickets) == 3


def test_a_source_declared_in_yaml_validates() -> None:
    declared = yaml.safe_load(
        r"""
        id: support-2024
        format: csv
        location: exports/tickets.csv
        columns: {ticket_id: "Ticket ID", body: "First message"}
        which: {escalated: true, unanswered: false, bot_failed: false, max_csat: 2}
        pii: {patterns: {order: '\bORD-\d{6,}\b'}, addresses: false}
        date_format: "%d/%m/%Y"
        encoding: cp1252
        """
    )

    config = TicketSourceConfig.model_validate(declared)

    assert config.columns.ticket_id == "Ticket ID" and config.columns.subject == "subject"
    assert config.which.max_csat == 2 and not config.which.unanswered
    assert config.pii == PiiSettings(patterns={"order": r"\bORD-\d{6,}\b"}, addresses=False)
    bad_fields: list[tuple[dict[str, Any], str]] = [
        ({"encoding": "utf-99"}, "unknown encoding"),
        ({"columns": {"boddy": "x"}}, "boddy"),
        ({"id": "a:b"}, "source id"),
        ({"format": "xlsx"}, "format"),
    ]
    for bad, message in bad_fields:
        with pytest.raises(ValidationError, match=message):
            TicketSourceConfig.model_validate({**declared, **bad})


# --- hardening: field limit, duplicates, personal data in ids and rejections ------------------------------


def test_a_quoted_field_over_the_csv_limit_is_one_rejection_and_the_rows_after_it_load(tmp_path: Path) -> None:
    # A pasted log: 8,000 lines with commas and quotes inside one quoted field, far over csv's 131,072 limit.
    log = "".join(f'12:00:{i % 60:02d} ERROR worker {i}, "retry", then 2024-03-01\n' for i in range(8000))
    path = tmp_path / "tickets.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "created_at", "body"])
        writer.writerow(["1", "2024-03-01", "before the log"])
        writer.writerow(["2", "2024-03-01", "the app crashed, log:\n" + log])  # lines 3-8003
        writer.writerows([str(n), "2024-03-02", f"card question {n}"] for n in range(3, 13))

    tickets, rejected = split(list(load_tickets(source(path))))

    assert [t.ticket_id for t in tickets] == ["1", *map(str, range(3, 13))]
    assert [t.body for t in tickets][1:] == [f"card question {n}" for n in range(3, 13)]
    assert len(rejected) == 1
    assert rejected[0].record_id == f"{path}:3"
    assert rejected[0].reason.startswith("malformed CSV record (lines 3-8004, skipped): field larger than field limit")


def test_a_quoted_field_that_never_closes_is_one_rejection_saying_so(tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    rows = "".join(f"{n},question {n} about my card\n" for n in range(3, 5000))
    path.write_text(f'id,body\n1,fine\n2,"a stray quote\n{rows}', encoding="utf-8")

    tickets, rejected = split(list(load_tickets(source(path))))

    assert [t.ticket_id for t in tickets] == ["1"]
    assert [(r.record_id, r.reason.split(":")[1].strip()) for r in rejected] == [
        (f"{path}:3", "a quoted field never closes (lines 3-5000 skipped, to the end)")
    ]


def test_a_repeated_ticket_id_is_quarantined_and_the_first_one_kept(tmp_path: Path) -> None:
    csv_path = tmp_path / "tickets.csv"
    csv_path.write_text("id,body\nT-1,first\nT-2,second\nT-1,again\nT-1,and again\n", encoding="utf-8")
    jsonl_path = tmp_path / "tickets.jsonl"
    jsonl_path.write_text('{"id": 7, "body": "first"}\n{"id": "7", "body": "same id as text"}\n', encoding="utf-8")

    tickets, rejected = split(list(load_tickets(source(csv_path))))
    json_tickets, json_rejected = split(list(load_tickets(source(jsonl_path, "jsonl"))))

    assert [(t.ticket_id, t.body) for t in tickets] == [("T-1", "first"), ("T-2", "second")]
    assert [(r.record_id, r.stage, r.reason) for r in rejected] == [
        (f"{csv_path}:4", "tickets", f"duplicate ticket id 'T-1' (first at {csv_path}:2)"),
        (f"{csv_path}:5", "tickets", f"duplicate ticket id 'T-1' (first at {csv_path}:2)"),
    ]
    assert [t.body for t in json_tickets] == ["first"]
    assert [r.reason for r in json_rejected] == [f"duplicate ticket id '7' (first at {jsonl_path}:1)"]


def test_ids_holding_a_card_ssn_iban_or_email_are_hashed_stably_and_uniquely(tmp_path: Path) -> None:
    ids = ["4111111111111111", "4111 1111 1111 1111", "078-05-1120", "GB82WEST12345698765432", "jo@x.io", "42", "T-9"]
    path = tmp_path / "tickets.csv"
    path.write_text("id,body\n" + "".join(f"{i},question {n}\n" for n, i in enumerate(ids)), encoding="utf-8")

    first = [t.ticket_id for t in load_tickets(source(path)) if isinstance(t, Ticket)]
    again = [t.ticket_id for t in load_tickets(source(path)) if isinstance(t, Ticket)]

    assert first == again and len(set(first)) == len(ids)
    assert all(i.startswith("id-") and len(i) == 15 for i in first[:5])
    assert first[5:] == ["42", "T-9"]


def test_personal_data_in_any_field_never_reaches_a_ticket_or_a_rejection(tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "created_at", "subject", "body", "channel", "status", "escalated", "tags", "csat"])
        writer.writerow(["1", "call 555-123-4567 or mary@example.com", "s", "b", "", "", "", "", ""])
        writer.writerow(["2", "", "s", "b", "", "", "ssn 078-05-1120", "", ""])
        writer.writerow(["3", "", "s", "b", "", "", "", "[4111.1111.1111.1111", ""])
        writer.writerow(["4", "", "s", "b", "", "", "", "", "bob＠example.com"])
        writer.writerow(
            [
                "5",
                "",
                "PO Box 1234",
                "m a r y @ e x a m p l e . c o m",
                "+44 20 7946 0958",
                "rita at gmail.com",
                "",
                "",
                "",
            ]
        )
    raw = ["555-123-4567", "mary@example.com", "078-05-1120", "4111.1111.1111.1111", "bob＠example.com",
           "PO Box 1234", "m a r y", "7946", "rita at gmail.com"]  # fmt: skip

    tickets, rejected = split(list(load_tickets(source(path))))

    assert [r.record_id.rsplit(":", 1)[1] for r in rejected] == ["2", "3", "4", "5"]
    assert rejected[0].reason == "column 'created_at': cannot parse date 'call [PHONE] or [EMAIL]'"
    text = repr(tickets) + repr(rejected)
    assert [value for value in raw if value in text] == []
    assert (tickets[0].subject, tickets[0].body, tickets[0].channel, tickets[0].status) == (
        "[ADDRESS]",
        "[EMAIL]",
        "[PHONE]",
        "[EMAIL]",
    )


def test_a_card_with_unusual_spaces_in_a_bad_date_is_redacted_in_the_reason(tmp_path: Path) -> None:
    # Quoting the value with repr() wrote '5555\xa03122...' and the redactor, which runs over the whole reason,
    # no longer saw a card (found by bench/pii_bench.py end to end).
    path = tmp_path / "tickets.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "created_at", "subject", "body", "channel", "status", "escalated", "tags", "csat"])
        writer.writerow(["1", "5555\xa03122\xa09260\xa09614", "s", "b", "", "", "", "", ""])
    tickets, rejected = split(list(load_tickets(source(path))))
    assert tickets == [] and len(rejected) == 1
    assert "[CARD]" in rejected[0].reason and "9614" not in rejected[0].reason
