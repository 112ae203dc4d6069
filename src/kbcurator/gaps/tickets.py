"""Load support tickets from a declared export as redacted ``Ticket`` records; bad rows become ``Rejected``.

Formats (``TicketSourceConfig.format``):

``csv``
    A header row, then one ticket per record (quoted fields may span lines). Columns are found through
    ``config.columns``; a file with a single ``text`` column is enough. The delimiter is ``config.delimiter``
    or the most frequent of ``, ; tab |`` in the header line. A UTF-8 byte-order mark is ignored.
``jsonl``
    One JSON object per line, keys found through ``config.columns``.
``zendesk``
    Pages of ``GET /api/v2/tickets.json`` or of the incremental tickets export (``{"tickets": [...],
    "next_page": ..., "end_of_stream": ...}``): a file whose ``next_page`` (or ``after_url``) names the next
    file beside it, or a folder of page files read in sorted order. ``description`` (the first comment, i.e.
    the customer's first message) is the body, ``via.channel`` the channel, ``satisfaction_rating.score``
    good/bad the CSAT as 1.0/0.0; flags come from tags, status and custom fields as ``config.zendesk`` maps them
    (``ZendeskTicketOptions``). Deleted tickets are skipped.
``zendesk_api``
    The live incremental tickets export of the account at ``location`` (``gaps.zendesk_api``): each run fetches
    what changed since the cursor stored in the index database, stores the changed tickets there redacted (an
    update replaces the earlier version), and yields the stored tickets created in the last ``api.window_days``,
    with the fetch's quarantined records. A failed fetch writes nothing and is one ``Rejected`` with code
    ``fetch_failed`` saying so; the stored tickets are still yielded, so a gaps run goes on with them. Needs
    ``store`` and ``environ`` (where the token is read).

Values are read tolerantly: booleans from true/false/yes/no/y/n/t/f/1/0 (empty is false), dates as ISO 8601,
epoch seconds (or milliseconds), ``config.date_format`` or anything dateutil reads, always made aware UTC
(naive times are taken as UTC), tags from a JSON list, ``a,b``/``a;b`` or space-separated words, CSAT as a
number (a decimal comma is accepted) or good/bad.

A row that cannot become a ticket (no text, a date or flag that does not parse, bytes that are not valid in
``config.encoding`` in a column that is used, bad JSON, a wrong number of CSV fields, a ticket id already
seen in the source) is yielded as ``Rejected(record_id=f"{location}:{line}", stage="tickets", reason=...,
source_id=config.id)``, ``line`` being the physical line where the row starts; Zendesk records are named
``{file}#tickets[{index}]``. The first occurrence of a repeated ticket id is kept, every later one is
rejected as ``"duplicate ticket id ..."``. A CSV record that the reader cannot take (a field longer than the
``csv`` field limit, 131,072 characters) is one rejection spanning its lines, and reading resumes at the
next record: the rest of that field is never read as rows of its own.

Subject, body, tags, channel and status are redacted with the source's ``PiiRedactor`` before a ``Ticket`` is
built, and so is every rejection reason (a bad date may hold a phone number), so raw customer text never
reaches a record. Ticket ids are meant to be opaque: one in which the redactor finds anything (an email
address, a phone number, a card, an SSN; some exports key tickets by requester) is replaced by
``id-<sha256[:12]>`` of it, which keeps ids unique and stable; other ids, numeric ones included, are kept. A
file without ids gets ``row-<n>``, ``n`` counting non-blank data rows from 1.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx
from dateutil import parser as dateutil_parser

from kbcurator.config.tickets import ColumnMapping, TicketSelection, TicketSourceConfig, ZendeskTicketOptions
from kbcurator.errors import ParseError, SourceError
from kbcurator.gaps.pii import PiiRedactor
from kbcurator.gaps.zendesk_api import stored_tickets, sync_zendesk_api
from kbcurator.index.store import IndexStore
from kbcurator.records import Rejected, RejectionCode, Ticket
from kbcurator.zendesk_export import next_export_file

__all__ = ["load_tickets", "select_tickets"]

log = logging.getLogger(__name__)

STAGE = "tickets"
_DELIMITERS = (",", ";", "\t", "|")
_SURROGATE = re.compile("[\ud800-\udfff]")  # what errors="surrogateescape" makes of undecodable bytes
_EPOCH = re.compile(r"\d{9,10}(?:\.\d+)?|\d{12,13}")
_LINK_SEP = re.compile(r"[|,\s]+")
_TRUE = frozenset({"true", "yes", "y", "t", "1"})
_FALSE = frozenset({"false", "no", "n", "f", "0", ""})
_CSAT_WORDS: dict[str, float | None] = {"good": 1.0, "bad": 0.0, "offered": None, "unoffered": None, "": None}
_MAX_PAGES = 10_000


def load_tickets(
    config: TicketSourceConfig,
    *,
    redactor: PiiRedactor | None = None,
    store: IndexStore | None = None,
    environ: Mapping[str, str] | None = None,
    full: bool = False,
    client: httpx.Client | None = None,
    now: datetime | None = None,
) -> Iterator[Ticket | Rejected]:
    """Yield every ticket of the source, redacted, and a ``Rejected`` for every row that cannot be one.

    ``redactor`` defaults to one built from ``config.pii``; pass one to share its ``counts`` across sources.

    For ``zendesk_api`` only: ``store`` is the index database the tickets and the cursor are kept in, ``environ``
    where the token is looked up (the caller's ``os.environ``), ``full`` refetches from ``api.start_days`` ago
    instead of from the stored cursor, ``client`` sends the requests, ``now`` ends the window.

    Raises (while iterating):
        SourceError: the file is missing, empty, not decodable with ``config.encoding`` (its header is not),
            has none of the mapped text columns, or is not a Zendesk tickets export; a ``zendesk_api`` source
            without ``store`` or ``environ``. (A failed API fetch is a ``Rejected``, not an error.)
    """
    mapper = _Mapper(config, redactor or PiiRedactor(config.pii))
    if config.format == "csv":
        yield from _read_csv(config, mapper)
    elif config.format == "jsonl":
        yield from _read_jsonl(config, mapper)
    elif config.format == "zendesk_api":
        if store is None or environ is None:
            missing = " and ".join(name for name, value in (("store", store), ("environ", environ)) if value is None)
            raise SourceError(f"ticket source {config.id!r} reads the Zendesk API and needs {missing}")
        yield from _read_zendesk_api(config, mapper, store, environ, full=full, client=client, now=now)
    else:
        yield from _read_zendesk(config, mapper)


def select_tickets(tickets: Iterable[Ticket], selection: TicketSelection) -> Iterator[Ticket]:
    """The tickets that count for gap analysis under ``selection`` (see ``TicketSelection``)."""
    return (ticket for ticket in tickets if selection.counts(ticket))


# --- one row to one ticket -----------------------------------------------------------------------------


def _resolve(keys: Iterable[str], wanted: str) -> str | None:
    """The key naming ``wanted``: exactly, else ignoring case and surrounding spaces."""
    keys = list(keys)
    if wanted in keys:
        return wanted
    folded = wanted.strip().casefold()
    return next((key for key in keys if key.strip().casefold() == folded), None)


class _Mapper:
    """Turns one row (column -> value) into a redacted ``Ticket``, or a ``Rejected`` saying why not."""

    def __init__(self, config: TicketSourceConfig, redactor: PiiRedactor) -> None:
        self.config = config
        self.redactor = redactor
        # Every kind, the source's own patterns included: an id in which any is found is hashed. Its own
        # redactor, so hashed ids do not count as replacements in the texts.
        self.id_redactor = PiiRedactor(config.pii)
        self.first_seen: dict[str, str] = {}  # ticket id -> the record it came from

    def columns_for(self, keys: Iterable[str], mapping: ColumnMapping | None = None) -> dict[str, str]:
        """Ticket field -> the key holding it, for the keys present; ``body`` falls back to ``text``."""
        mapping = mapping or self.config.columns
        keys = list(keys)
        found: dict[str, str] = {}
        for name, wanted in mapping.model_dump().items():
            key = _resolve(keys, wanted)
            if key is not None:
                found[name] = key
        if "body" not in found and "text" in found:
            found["body"] = found["text"]
        found.pop("text", None)
        return found

    def to_ticket(
        self,
        values: Mapping[str, Any],
        columns: Mapping[str, str],
        *,
        number: int,
        record_id: str,
        unique: bool = True,
    ) -> Ticket | Rejected:
        """``unique``: reject a ticket id seen before (an export file); off for an API stream, where a ticket
        listed again is its newer version."""
        try:
            ticket = self._ticket(values, columns, number)
        except ParseError as exc:
            # Reasons quote the value that failed ("cannot parse date 'call 555-123-4567'"): redact them too.
            return Rejected(
                record_id, STAGE, self.redactor.redact(str(exc)), self.config.id, code=RejectionCode.MALFORMED
            )
        if not unique:
            return ticket
        first = self.first_seen.setdefault(ticket.ticket_id, record_id)
        if first != record_id:
            # The id is the redacted (or hashed) one, so the reason holds no raw value.
            reason = f"duplicate ticket id {ticket.ticket_id!r} (first at {first})"
            return Rejected(record_id, STAGE, reason, self.config.id, code=RejectionCode.DUPLICATE)
        return ticket

    def _ticket(self, values: Mapping[str, Any], columns: Mapping[str, str], number: int) -> Ticket:
        def raw(name: str) -> tuple[str, Any]:
            column = columns.get(name, "")
            value = values.get(column) if column else None
            if isinstance(value, str) and _SURROGATE.search(value):
                raise ParseError(f"column {column!r} holds bytes that are not valid {self.config.encoding}")
            return column, value

        subject = _text(*raw("subject"))
        body = _text(*raw("body"))
        if not subject and not body:
            looked = " or ".join(repr(columns[n]) for n in ("body", "subject") if n in columns)
            raise ParseError(f"no text: {looked} is missing or empty" if looked else "no text column")
        ticket_id = self.ticket_id(_text(*raw("ticket_id")), number)
        return Ticket(
            ticket_id=ticket_id,
            created_at=_datetime(*raw("created_at"), self.config.date_format),
            subject=self.redactor.redact(subject),
            body=self.redactor.redact(body),
            channel=self.redactor.redact(_text(*raw("channel"))),
            status=self.redactor.redact(_text(*raw("status"))),
            escalated=_bool(*raw("escalated")),
            resolved_by_bot=_bool(*raw("resolved_by_bot")),
            unanswered=_bool(*raw("unanswered")),
            tags=tuple(self.redactor.redact(tag) for tag in _tags(*raw("tags"))),
            csat=_csat(*raw("csat")),
            source_id=self.config.id,
            solved_by=tuple(self.redactor.redact(link) for link in _links(*raw("solved_by"))),
        )

    def ticket_id(self, value: str, number: int) -> str:
        if not value:
            return f"row-{number}"
        if self.id_redactor.redact(value) != value:
            return f"id-{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"
        return value


def _text(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        raise ParseError(f"column {column!r} holds a JSON {type(value).__name__}, not text")
    return str(value).replace("\x00", "").strip()


def _bool(column: str, value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    word = str(value).strip().casefold()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ParseError(f"column {column!r}: {_quoted(value)} is not a yes/no value")


def _datetime(column: str, value: Any, date_format: str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ParseError(f"column {column!r}: {_quoted(value)} is not a date")
    try:
        if isinstance(value, int | float):
            return _from_epoch(float(value))
        text = str(value).strip()
        if not text:
            return None
        if date_format:
            parsed = datetime.strptime(text, date_format)
        elif _EPOCH.fullmatch(text):
            return _from_epoch(float(text))
        else:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                parsed = dateutil_parser.parse(text)
    except (ValueError, OverflowError) as exc:
        expected = f" (expected {date_format!r})" if date_format else ""
        raise ParseError(f"column {column!r}: cannot parse date {_quoted(value)}{expected}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _quoted(value: Any) -> str:
    """A value quoted in a rejection reason as written, whitespace collapsed: not ``repr``, whose escapes
    (``\\xa0``) would hide a card number or an email from the redactor that runs over the reason."""
    return "'" + " ".join(str(value).split())[:200] + "'"


def _from_epoch(seconds: float) -> datetime:
    # 13-digit values are milliseconds (JavaScript and many exporters write those).
    return datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, tz=UTC)


def _tags(column: str, value: Any) -> list[str]:
    """Tags: a JSON list, or text separated by commas, else semicolons, else whitespace."""

    def split(text: str) -> list[str]:
        return text.split("," if "," in text else ";" if ";" in text else None)

    return _listed(column, value, "tags", split)


def _links(column: str, value: Any) -> list[str]:
    """Article URLs or ids: a JSON list, or text separated by ``|``, commas or whitespace."""
    return _listed(column, value, "article links", _LINK_SEP.split)


def _listed(column: str, value: Any, what: str, split: Callable[[str], list[str]]) -> list[str]:
    """The distinct non-empty items of a JSON list, or of a text ``split`` cuts, in their order."""
    if value is None:
        return []
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ParseError(f"column {column!r}: {_quoted(value)} is not a JSON list of {what}") from exc
    if isinstance(value, dict):
        raise ParseError(f"column {column!r} holds a JSON object, not {what}")
    parts = [str(item) for item in value if item is not None] if isinstance(value, list) else split(str(value))
    return list(dict.fromkeys(part.strip() for part in parts if part.strip()))


def _csat(column: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ParseError(f"column {column!r}: {_quoted(value)} is not a satisfaction score")
    if isinstance(value, int | float):
        score = float(value)
    else:
        text = str(value).strip().casefold()
        if text in _CSAT_WORDS:
            return _CSAT_WORDS[text]
        try:
            score = float(text.replace(",", "."))
        except ValueError as exc:
            raise ParseError(f"column {column!r}: {_quoted(value)} is not a satisfaction score") from exc
    if not math.isfinite(score):
        raise ParseError(f"column {column!r}: {_quoted(value)} is not a satisfaction score")
    return score


# --- CSV and JSONL -------------------------------------------------------------------------------------


def _open_text(config: TicketSourceConfig) -> TextIO:
    path = Path(config.location).expanduser()
    if not path.is_file():
        raise SourceError(f"ticket source {config.id!r}: file not found: {path}")
    encoding = config.encoding
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"  # spreadsheet exports start with a byte-order mark
    try:
        # surrogateescape: a bad byte fails only the row holding it, not the whole file.
        return path.open(encoding=encoding, errors="surrogateescape", newline="")
    except OSError as exc:
        raise SourceError(f"ticket source {config.id!r}: cannot read {path}: {exc}") from exc


def _read_csv(config: TicketSourceConfig, mapper: _Mapper) -> Iterator[Ticket | Rejected]:
    with _open_text(config) as stream:
        yield from _unless_nothing_decodes(config, _csv_rows(config, mapper, stream))


def _read_jsonl(config: TicketSourceConfig, mapper: _Mapper) -> Iterator[Ticket | Rejected]:
    with _open_text(config) as stream:
        yield from _unless_nothing_decodes(config, _jsonl_rows(config, mapper, stream))


def _unless_nothing_decodes(
    config: TicketSourceConfig, rows: Iterator[tuple[bool, Ticket | Rejected]]
) -> Iterator[Ticket | Rejected]:
    """Pass rows through, but raise one ``SourceError`` when not a single row decodes.

    Rows are ``(decodes, result)``. Results are held back only until the first row that decodes, so a
    file in the wrong encoding gives one clear error instead of a rejection per row.
    """
    pending: list[Ticket | Rejected] = []
    decoded = False
    for decodes, result in rows:
        if not decoded:
            if not decodes:
                pending.append(result)
                continue
            decoded = True
            yield from pending
            pending.clear()
        yield result
    if pending:
        raise _not_decodable(config, "no row decodes")


def _not_decodable(config: TicketSourceConfig, what: str) -> SourceError:
    return SourceError(
        f"ticket source {config.id!r}: {config.location} is not {config.encoding} text ({what}); "
        "set 'encoding:' in the source, e.g. cp1252 or utf-16"
    )


def _decodes(text: str) -> bool:
    # NUL: UTF-16 (or a binary file) read as UTF-8 decodes without error but is not text.
    return "\x00" not in text and _SURROGATE.search(text) is None


class _Lines:
    """The physical lines of a CSV stream as the ``csv`` reader takes them, counted, and those of the record
    being read kept, so a record the reader gives up on can be skipped to its real end."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.number = 0  # lines read so far
        self.record: list[str] = []  # the lines of the current record read so far

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self._stream)
        self.number += 1
        self.record.append(line)
        return line

    def skip_record(self, delimiter: str) -> bool:
        """Read on to the end of the current record; False when the file ends inside a quoted field.

        ``csv.reader`` stops at the line where it fails and starts the next record on the following line, which
        inside a quoted field that spans lines would read the rest of the field as rows (a pasted log becomes
        thousands of bad rows). Quoting is followed here as the reader does (excel dialect: ``""`` is a quote
        inside a quoted field, a quote inside an unquoted field is text).
        """
        state = "start"  # start of a field | unquoted | quoted | quote (a quote seen in a quoted field)
        taken = len(self.record)  # lines the reader took already: read them all, then on to the record's end
        index = 0
        while True:
            if index < taken:
                line = self.record[index]
            else:
                following = next(self._stream, None)
                if following is None:
                    return state != "quoted"
                line = following
                self.number += 1
            index += 1
            for char in line:
                if state == "quoted":
                    if char == '"':
                        state = "quote"
                elif char == '"' and state in ("start", "quote"):
                    state = "quoted"  # an opening quote, or "" inside a quoted field
                elif char == delimiter or char in "\r\n":
                    state = "start"
                else:
                    state = "unquoted"
            if state != "quoted" and index >= taken:
                return True


def _csv_rows(config: TicketSourceConfig, mapper: _Mapper, stream: TextIO) -> Iterator[tuple[bool, Ticket | Rejected]]:
    first_line = stream.readline()
    stream.seek(0)
    delimiter = config.delimiter or max(_DELIMITERS, key=first_line.count)
    lines = _Lines(stream)
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise SourceError(f"ticket source {config.id!r}: {config.location} is empty") from None
    except csv.Error as exc:
        raise SourceError(f"ticket source {config.id!r}: cannot read the header of {config.location}: {exc}") from exc
    if not _decodes("".join(header)):
        raise _not_decodable(config, "its header does not decode")
    columns = mapper.columns_for(header)
    if "body" not in columns and "subject" not in columns:
        mapped = config.columns
        raise SourceError(
            f"ticket source {config.id!r}: {config.location} has none of the text columns "
            f"{mapped.body!r}, {mapped.text!r}, {mapped.subject!r} (columns: {', '.join(map(repr, header))}); "
            "map yours under 'columns:'"
        )
    number = 0
    while True:
        start = lines.number + 1  # the physical line the record starts on
        record_id = f"{config.location}:{start}"
        lines.record.clear()
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            number += 1
            closed = lines.skip_record(delimiter)
            where = f"line {start}" if lines.number == start else f"lines {start}-{lines.number}"
            if closed:
                reason = f"malformed CSV record ({where}, skipped): {exc}"
            else:
                reason = f"malformed CSV record: a quoted field never closes ({where} skipped, to the end): {exc}"
            yield True, Rejected(record_id, STAGE, reason, config.id, code=RejectionCode.MALFORMED)
            continue
        if not any(field.strip() for field in row):
            continue  # blank line
        number += 1
        decodes = all(_decodes(field) for field in row)
        if len(header) == 1 and len(row) > 1:
            # A bare one-column export: an unquoted delimiter is part of the text.
            row = [delimiter.join(row)]
        if len(row) < len(header) or any(field.strip() for field in row[len(header) :]):
            reason = f"row has {len(row)} fields but the header has {len(header)} (a stray quote or delimiter?)"
            yield decodes, Rejected(record_id, STAGE, reason, config.id, code=RejectionCode.MALFORMED)
            continue
        values: dict[str, str] = {}
        for name, value in zip(header, row, strict=False):
            values.setdefault(name, value)  # a repeated header name: the first column wins
        yield decodes, mapper.to_ticket(values, columns, number=number, record_id=record_id)


def _jsonl_rows(
    config: TicketSourceConfig, mapper: _Mapper, stream: TextIO
) -> Iterator[tuple[bool, Ticket | Rejected]]:
    number = 0
    for line_number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        number += 1
        record_id = f"{config.location}:{line_number}"
        decodes = _decodes(line)
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            reason = f"invalid JSON: {exc.msg} (column {exc.colno})"
            code = RejectionCode.MALFORMED
            if not decodes:
                reason, code = f"line is not valid {config.encoding}", RejectionCode.BAD_ENCODING
            yield decodes, Rejected(record_id, STAGE, reason, config.id, code=code)
            continue
        if not isinstance(record, dict):
            yield (
                decodes,
                Rejected(
                    record_id,
                    STAGE,
                    f"line holds a JSON {type(record).__name__}, not an object",
                    config.id,
                    code=RejectionCode.MALFORMED,
                ),
            )
            continue
        yield decodes, mapper.to_ticket(record, mapper.columns_for(record), number=number, record_id=record_id)


# --- Zendesk tickets export ----------------------------------------------------------------------------


def _read_zendesk(config: TicketSourceConfig, mapper: _Mapper) -> Iterator[Ticket | Rejected]:
    root = Path(config.location).expanduser()
    if root.is_dir():
        files = sorted(root.glob("*.json"))
        pages = 0
        for page_file in files:
            data = _load_page(config, page_file)
            if data is None:
                log.warning("ticket source %r: %s is not a tickets page; skipped", config.id, page_file)
                continue
            pages += 1
            yield from _zendesk_tickets(config, mapper, data["tickets"], page_file)
        if not pages:
            raise SourceError(f"ticket source {config.id!r}: no Zendesk tickets page among the .json in {root}")
        return
    if not root.is_file():
        raise SourceError(f"ticket source {config.id!r}: export file not found: {root}")
    seen: set[Path] = set()
    path: Path | None = root
    while path is not None and len(seen) < _MAX_PAGES:
        seen.add(path.resolve())
        data = _load_page(config, path)
        if data is None:
            raise SourceError(f"ticket source {config.id!r}: {path} is not a Zendesk tickets page (no 'tickets' list)")
        yield from _zendesk_tickets(config, mapper, data["tickets"], path)
        if data.get("end_of_stream") is True:
            break
        path = next_export_file(
            f"ticket source {config.id!r}", path, data.get("next_page") or data.get("after_url"), seen
        )


def _load_page(config: TicketSourceConfig, path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"ticket source {config.id!r}: cannot read Zendesk export {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("tickets"), list):
        return None
    return data


def _zendesk_tickets(
    config: TicketSourceConfig, mapper: _Mapper, records: list[Any], page: Path
) -> Iterator[Ticket | Rejected]:
    columns = _zendesk_columns(mapper)
    for index, record in enumerate(records):
        record_id = f"{page}#tickets[{index}]"
        if not isinstance(record, dict):
            reason = f"ticket record is {type(record).__name__}, not an object"
            yield Rejected(record_id, STAGE, reason, config.id, code=RejectionCode.MALFORMED)
            continue
        if str(record.get("status") or "").casefold() == "deleted":
            continue
        if record.get("id") is None:
            yield Rejected(record_id, STAGE, "ticket has no 'id'", config.id, code=RejectionCode.MALFORMED)
            continue
        try:
            values = zendesk_values(record, config.zendesk)
        except ParseError as exc:
            yield Rejected(record_id, STAGE, mapper.redactor.redact(str(exc)), config.id, code=RejectionCode.MALFORMED)
            continue
        yield mapper.to_ticket(values, columns, number=index + 1, record_id=record_id)


def _zendesk_columns(mapper: _Mapper) -> dict[str, str]:
    return mapper.columns_for(ColumnMapping().model_dump().values(), ColumnMapping())


def zendesk_values(record: Mapping[str, Any], options: ZendeskTicketOptions) -> dict[str, Any]:
    """A Zendesk ticket record as the values ``_Mapper`` reads (keyed by ``ColumnMapping``'s defaults).

    Raises:
        ParseError: a mapped field holds something of the wrong kind (a list where a status should be).
    """
    status_value = _path(record, options.status)
    if isinstance(status_value, dict | list):
        raise ParseError(f"field {options.status!r} holds a JSON {type(status_value).__name__}, not a status")
    status = "" if status_value is None else str(status_value)
    raw_tags = _path(record, options.tags)
    if isinstance(raw_tags, dict):
        raise ParseError(f"field {options.tags!r} holds a JSON object, not a list of tags")
    tags = _tags(options.tags, raw_tags)
    tag_set = {str(tag).casefold() for tag in tags}
    escalated = any(tag.casefold() in tag_set for tag in options.escalation_tags)
    if options.escalation_field:
        escalated = escalated or _truthy(_path(record, options.escalation_field))
    by_bot = any(tag.casefold() in tag_set for tag in options.bot_tags)
    if options.bot_field:
        by_bot = by_bot or _truthy(_path(record, options.bot_field))
    return {
        "id": record.get("id"),
        "created_at": record.get("created_at"),
        "subject": record.get("subject") or record.get("raw_subject"),
        "body": record.get("description"),
        "channel": _path(record, options.channel),
        "status": status,
        "escalated": escalated,
        "resolved_by_bot": by_bot,
        "unanswered": status.casefold() in {s.casefold() for s in options.unanswered_statuses},
        "tags": tags,
        "csat": _path(record, options.csat),
        "solved_by": _path(record, options.solved_by_field) if options.solved_by_field else None,
    }


def _path(record: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path``; ``custom_fields.<id>`` / ``fields.<id>`` is the custom field's ``value``."""
    value: Any = record
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list):
            # Zendesk's custom fields: [{"id": 360001234567, "value": ...}, ...]
            value = next(
                (item.get("value") for item in value if isinstance(item, dict) and str(item.get("id")) == part), None
            )
        else:
            return None
    return value


def _truthy(value: Any) -> bool:
    if value is None or isinstance(value, dict):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, list):
        return bool(value)
    return str(value).strip().casefold() not in _FALSE


# --- Zendesk API ---------------------------------------------------------------------------------------


class _ApiConverter:
    """``gaps.zendesk_api.TicketConverter`` over this module's mapping and redaction."""

    def __init__(self, config: TicketSourceConfig, mapper: _Mapper) -> None:
        self._config = config
        self._mapper = mapper
        self._columns = _zendesk_columns(mapper)

    def ticket_id(self, raw_id: object) -> str:
        return self._mapper.ticket_id(_text("id", raw_id), 0)

    def ticket(self, record: Mapping[str, Any], record_id: str) -> Ticket | Rejected:
        try:
            values = zendesk_values(record, self._config.zendesk)
        except ParseError as exc:
            reason = self._mapper.redactor.redact(str(exc))
            return Rejected(record_id, STAGE, reason, self._config.id, code=RejectionCode.MALFORMED)
        return self._mapper.to_ticket(values, self._columns, number=0, record_id=record_id, unique=False)


def _read_zendesk_api(
    config: TicketSourceConfig,
    mapper: _Mapper,
    store: IndexStore,
    environ: Mapping[str, str],
    *,
    full: bool,
    client: httpx.Client | None,
    now: datetime | None,
) -> Iterator[Ticket | Rejected]:
    now = now or datetime.now(UTC)
    report = sync_zendesk_api(
        config, store, _ApiConverter(config, mapper), environ=environ, full=full, client=client, now=now
    )
    yield from report.rejected
    tickets = stored_tickets(config, store, now=now)
    if not report.ok:
        log.warning("ticket source %r: the fetch failed; going on with the %d tickets stored", config.id, len(tickets))
    yield from tickets
