"""Declared ticket sources: where a ticket export lives, how its columns map to ``Ticket``, which tickets count.

A source as it is written in YAML::

    id: support-2024
    format: csv                 # csv | jsonl | zendesk
    location: exports/tickets.csv
    columns: {ticket_id: "Ticket ID", created_at: "Opened", body: "First message"}
    which: {escalated: true, unanswered: true, bot_failed: false, max_csat: 2}
    pii: {patterns: {order: '\\bORD-\\d{6,}\\b'}}
    date_format: "%d/%m/%Y %H:%M"   # optional; tolerant parsing when absent

Defined here, below both ``kbcurator.settings`` (which composes ``TicketSourceConfig`` into ``Settings``) and
``kbcurator.gaps`` (which reads tickets with it), so that settings imports no feature package. ``PiiSettings`` is
what ``kbcurator.gaps.pii.PiiRedactor`` masks.
"""

from __future__ import annotations

import codecs
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kbcurator.records import Ticket, check_source_id

__all__ = [
    "SOLVED_STATUSES",
    "ColumnMapping",
    "PiiSettings",
    "TicketSelection",
    "TicketSourceConfig",
    "ZendeskTicketOptions",
]

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # a custom PII pattern's name: it names the placeholder


class PiiSettings(BaseModel):
    """What ``PiiRedactor`` masks. Every built-in kind is on by default; custom patterns add kinds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    emails: bool = True
    obfuscated_emails: bool = True
    cards: bool = True
    ibans: bool = True
    national_ids: bool = True
    order_numbers: bool = True
    phones: bool = True
    addresses: bool = True
    # name -> regex, e.g. {"order": r"\bORD-\d{6,}\b"}; matches (ignoring case) become "[ORDER]".
    patterns: dict[str, str] = Field(default_factory=dict)

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in value.items():
            if not _NAME.fullmatch(name):
                raise ValueError(f"pattern name {name!r} must be letters, digits and _ (it names the placeholder)")
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {name!r} is not a valid regex: {exc}") from exc
            if compiled.match("") is not None:
                # It would put a placeholder between every two characters.
                raise ValueError(f"pattern {name!r} matches the empty string")
        return value


# Statuses (compared case-insensitively) meaning someone closed the question, in Zendesk's and common words.
SOLVED_STATUSES = frozenset({"solved", "closed", "resolved", "done", "completed"})


class ColumnMapping(BaseModel):
    """The column (CSV header) or key (JSONL) that holds each ``Ticket`` field.

    Headers match exactly, else ignoring case and surrounding spaces. ``text`` is the fallback for ``body``
    when the file has no ``body`` column, for bare exports with one free-text column. Unused by the
    ``zendesk`` format, whose keys are fixed by the API.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ticket_id: str = "id"
    created_at: str = "created_at"
    subject: str = "subject"
    body: str = "body"
    text: str = "text"
    channel: str = "channel"
    status: str = "status"
    escalated: str = "escalated"
    resolved_by_bot: str = "resolved_by_bot"
    unanswered: str = "unanswered"
    tags: str = "tags"
    csat: str = "csat"


class TicketSelection(BaseModel):
    """Which tickets count as evidence of a knowledge gap.

    A ticket counts when ``all`` is true, or when any enabled criterion holds:

    - ``escalated``: the ticket was escalated to a human or a higher tier;
    - ``unanswered``: the ticket was never answered;
    - ``bot_failed``: the bot did not resolve it and it is not solved either (``resolved_by_bot`` is false
      and ``status`` is known and not one of ``SOLVED_STATUSES``): the question outlived any bot attempt;
    - ``max_csat``: its satisfaction score is at or below this (on the file's own scale; Zendesk's
      good/bad ratings load as 1.0/0.0).

    ``all=None`` (the default) also counts a ticket that carries no signal at all (no flag set, no status,
    no score): a bare text export, where every ticket is a question someone had to ask.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    escalated: bool = True
    unanswered: bool = True
    bot_failed: bool = True
    max_csat: float | None = None
    all: bool | None = None

    def counts(self, ticket: Ticket) -> bool:
        if self.all is not None:
            if self.all:
                return True
        elif _has_no_signal(ticket):
            return True
        if self.escalated and ticket.escalated:
            return True
        if self.unanswered and ticket.unanswered:
            return True
        if self.bot_failed and bot_failed(ticket):
            return True
        return self.max_csat is not None and ticket.csat is not None and ticket.csat <= self.max_csat


def bot_failed(ticket: Ticket) -> bool:
    status = ticket.status.strip().casefold()
    return not ticket.resolved_by_bot and bool(status) and status not in SOLVED_STATUSES


def _has_no_signal(ticket: Ticket) -> bool:
    return not (
        ticket.escalated
        or ticket.unanswered
        or ticket.resolved_by_bot
        or ticket.status.strip()
        or ticket.csat is not None
    )


class ZendeskTicketOptions(BaseModel):
    """How Zendesk ticket fields become flags (the tickets API has no escalated or bot-resolved field).

    ``escalated``: the ticket has one of ``escalation_tags`` (group or assignee changes live in the audits
    API, which an export does not hold). ``resolved_by_bot``: one of ``bot_tags``. ``unanswered``: status
    ``new``, i.e. no agent has opened it yet.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    escalation_tags: list[str] = Field(default_factory=lambda: ["escalated", "escalation", "tier_2"])
    bot_tags: list[str] = Field(default_factory=lambda: ["bot_resolved", "resolved_by_bot"])


class TicketSourceConfig(BaseModel):
    """One declared ticket export.

    ``location`` is a file for ``csv`` and ``jsonl``; for ``zendesk`` a tickets export file whose
    ``next_page`` names the next file beside it, or a folder of such page files read in sorted order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    format: Literal["csv", "jsonl", "zendesk"]
    location: str
    columns: ColumnMapping = Field(default_factory=ColumnMapping)
    which: TicketSelection = Field(default_factory=TicketSelection)
    pii: PiiSettings = Field(default_factory=PiiSettings)
    date_format: str | None = None  # strptime format; None: ISO 8601, epoch seconds, or what dateutil reads
    encoding: str = "utf-8"
    delimiter: str | None = None  # csv only; None: the most frequent of , ; tab | in the header line
    zendesk: ZendeskTicketOptions = Field(default_factory=ZendeskTicketOptions)

    @field_validator("id")
    @classmethod
    def _id_is_simple(cls, value: str) -> str:
        return check_source_id(value)

    @field_validator("encoding")
    @classmethod
    def _encoding_exists(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {value!r}") from exc
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError("delimiter must be one character")
        return value
