"""Declared ticket sources: where a ticket export lives, how its columns map to ``Ticket``, which tickets count.

A source as it is written in YAML::

    id: support-2024
    format: csv                 # csv | jsonl | zendesk | zendesk_api
    location: exports/tickets.csv
    columns: {ticket_id: "Ticket ID", created_at: "Opened", body: "First message"}
    which: {escalated: true, unanswered: true, bot_failed: false, max_csat: 2}
    pii: {patterns: {order: '\\bORD-\\d{6,}\\b'}}
    date_format: "%d/%m/%Y %H:%M"   # optional; tolerant parsing when absent

The live Zendesk API (``format: zendesk_api``, incremental: each run fetches what changed since the last)::

    id: helpdesk
    format: zendesk_api
    location: https://acme.zendesk.com
    api: {email: kb-bot@acme.com, token_env: KB_ZENDESK_TOKEN, window_days: 28}
    zendesk: {escalation_field: custom_fields.360001234567, bot_tags: [answer_bot_solved]}

The token is read from the environment variable ``api.token_env`` names; the YAML has no place for it.

Defined here, below both ``kbcurator.settings`` (which composes ``TicketSourceConfig`` into ``Settings``) and
``kbcurator.gaps`` (which reads tickets with it), so that settings imports no feature package. ``PiiSettings`` is
what ``kbcurator.gaps.pii.PiiRedactor`` masks.
"""

from __future__ import annotations

import codecs
import re
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kbcurator.records import Ticket, check_source_id

__all__ = [
    "SOLVED_STATUSES",
    "ColumnMapping",
    "PiiSettings",
    "TicketSelection",
    "TicketSourceConfig",
    "ZendeskApiOptions",
    "ZendeskTicketOptions",
]

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # a custom PII pattern's name: it names the placeholder
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY_PATH = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")


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
    solved_by: str = "solved_by"  # the article(s) that solved the ticket: URLs or ids, ``|``/``,``/space-separated


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
    """How Zendesk ticket fields become ``Ticket`` fields, for export files and the live API alike.

    The keys are dotted paths into a ticket record (``via.channel``); ``custom_fields.<id>`` (or
    ``fields.<id>``) is the ``value`` of the custom field with that id. The tickets API has no escalated or
    bot-resolved field, so:

    - ``escalated``: the ticket has one of ``escalation_tags``, or ``escalation_field`` holds a true value
      (``true``, a non-zero number, a non-empty text other than no/false/0);
    - ``resolved_by_bot``: one of ``bot_tags``, or ``bot_field`` holds a true value;
    - ``unanswered``: its status is one of ``unanswered_statuses`` (``new``: no agent has opened it yet).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    escalation_tags: list[str] = Field(default_factory=lambda: ["escalated", "escalation", "tier_2"])
    bot_tags: list[str] = Field(default_factory=lambda: ["bot_resolved", "resolved_by_bot"])
    status: str = "status"
    channel: str = "via.channel"
    tags: str = "tags"
    csat: str = "satisfaction_rating.score"  # good/bad load as 1.0/0.0
    escalation_field: str | None = None  # e.g. custom_fields.360001234567
    bot_field: str | None = None
    # The field where agents link the article that solved the ticket (a URL, several separated by spaces or
    # commas, or a list), e.g. custom_fields.360009876543. Zendesk has no built-in one.
    solved_by_field: str | None = None
    unanswered_statuses: list[str] = Field(default_factory=lambda: ["new"])

    @field_validator("status", "channel", "tags", "csat", "escalation_field", "bot_field", "solved_by_field")
    @classmethod
    def _key_path(cls, value: str | None) -> str | None:
        if value is not None and not _KEY_PATH.fullmatch(value):
            raise ValueError(f"{value!r} is not a dotted key path such as 'via.channel' or 'custom_fields.123'")
        return value


class ZendeskApiOptions(BaseModel):
    """How the ``zendesk_api`` format reads the incremental tickets export, and which stored tickets count.

    Credentials: the token is read from the environment variable ``token_env`` names, never from the YAML.
    With ``email`` set it is an API token (HTTP Basic ``{email}/token:{token}``); without, an OAuth access
    token sent as ``Bearer``.

    A run fetches the tickets changed since the cursor the last complete run stored (the first run, and a
    ``full`` refetch, start ``start_days`` ago), stores them redacted in the index database, and clusters
    the stored tickets created in the last ``window_days``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    token_env: str = "KB_ZENDESK_TOKEN"
    email: str | None = None
    window_days: int = Field(default=28, ge=1)
    start_days: int | None = Field(default=None, ge=1)  # None: window_days
    per_page: int = Field(default=1000, ge=1, le=1000)
    max_pages: int = Field(default=100, ge=1)  # a page cap: the rest is fetched by the next run
    # The incremental export allows 10 requests a minute (30 with the High Volume add-on); every request to
    # the host, comments included, is spaced to this.
    requests_per_minute: float = Field(default=10.0, gt=0)
    timeout_s: float = Field(default=30.0, gt=0)  # one read
    deadline_s: float = Field(default=900.0, gt=0)  # the whole fetch, waits included
    retries: int = Field(default=4, ge=0)
    backoff_s: float = Field(default=2.0, ge=0)
    max_retry_after_s: float = Field(default=120.0, ge=0)  # a longer Retry-After fails the fetch instead
    allowed_hosts: list[str] = Field(default_factory=list)  # empty: the host of ``location``
    # auto: a ticket's ``description`` (its first comment) when the requester submitted it, else one call to
    # the comments endpoint for the requester's first comment; description: never call it.
    customer_comment: Literal["auto", "description"] = "auto"
    max_comment_calls: int = Field(default=50, ge=0)  # per run; past it the description is used
    user_agent: str = "kbcurator/0.1 (+https://example.invalid/kbcurator)"

    @model_validator(mode="before")
    @classmethod
    def _mask_secrets(cls, data: Any) -> Any:
        """Keep a token written into the YAML out of the validation error, which echoes the input: under an
        unknown key (``token:``) or as ``token_env``'s value, it is replaced before the error is raised."""
        if not isinstance(data, dict):
            return data
        masked: dict[str, Any] = {}
        for key, value in data.items():
            if key not in cls.model_fields:
                value = "<hidden>"
            elif key == "token_env" and isinstance(value, str) and not _ENV_NAME.fullmatch(value):
                value = f"<hidden: {len(value)} characters>"
            masked[key] = value
        return masked

    @field_validator("token_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.fullmatch(value):
            raise ValueError(
                "token_env must name the environment variable that holds the token (letters, digits, _), "
                "not hold the token itself"
            )
        return value


class TicketSourceConfig(BaseModel):
    """One declared ticket export.

    ``location`` is a file for ``csv`` and ``jsonl``; for ``zendesk`` a tickets export file whose
    ``next_page`` names the next file beside it, or a folder of such page files read in sorted order; for
    ``zendesk_api`` the http(s) base URL of the Zendesk account (``https://acme.zendesk.com``), read as ``api``
    says.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    format: Literal["csv", "jsonl", "zendesk", "zendesk_api"]
    location: str
    columns: ColumnMapping = Field(default_factory=ColumnMapping)
    which: TicketSelection = Field(default_factory=TicketSelection)
    pii: PiiSettings = Field(default_factory=PiiSettings)
    date_format: str | None = None  # strptime format; None: ISO 8601, epoch seconds, or what dateutil reads
    encoding: str = "utf-8"
    delimiter: str | None = None  # csv only; None: the most frequent of , ; tab | in the header line
    zendesk: ZendeskTicketOptions = Field(default_factory=ZendeskTicketOptions)
    api: ZendeskApiOptions = Field(default_factory=ZendeskApiOptions)

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

    @model_validator(mode="before")
    @classmethod
    def _mask_url_credentials(cls, data: Any) -> Any:
        # A URL with user:token@ in it is refused below; the error must not echo the token.
        if isinstance(data, dict) and isinstance(data.get("location"), str):
            parts = urlsplit(data["location"])
            if parts.scheme in ("http", "https") and "@" in parts.netloc:
                netloc = "***@" + parts.netloc.rpartition("@")[2]
                data = {**data, "location": parts._replace(netloc=netloc).geturl()}
        return data

    @field_validator("location")
    @classmethod
    def _no_credentials(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and "@" in parts.netloc:
            raise ValueError("a location URL may not hold credentials: name the token's variable in api.token_env")
        return value

    @model_validator(mode="after")
    def _api_location_is_a_url(self) -> Self:
        if self.format == "zendesk_api":
            parts = urlsplit(self.location)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    f"a zendesk_api source's location is the account's base URL (https://acme.zendesk.com), "
                    f"not {self.location!r}"
                )
        return self
