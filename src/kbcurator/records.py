"""Frozen records carried between stages.

Ids are deterministic so that re-crawls are idempotent: ``article_id`` is derived from the source and
the canonical URL, ``chunk_id`` from the article id and the chunk's content, and ``*_hash`` fields
are sha256 hex digests that drive incremental work.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

ContentKind = Literal["html", "markdown", "docx", "pdf", "text"]


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_source_id(value: str) -> str:
    """Source ids are part of every record id, so they may not hold the separators those ids use."""
    if not value or any(ch in value for ch in ":#/ "):
        raise ValueError("source id must be non-empty and contain none of ': # / space'")
    return value


def make_article_id(source_id: str, canonical_url: str) -> str:
    return f"{source_id}:{hashlib.sha1(canonical_url.encode('utf-8')).hexdigest()[:12]}"


@dataclass(frozen=True, slots=True)
class RawPage:
    """One fetched page or file, before parsing.

    ``fields`` carries what a structured source already knows (title, section, locale from an API or
    front matter); HTML extraction fills in only what is missing.
    """

    source_id: str
    location: str
    content: str
    content_kind: ContentKind
    updated_at: datetime | None = None
    fields: tuple[tuple[str, str], ...] = ()

    def field(self, name: str) -> str | None:
        for key, value in self.fields:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Article:
    article_id: str
    source_id: str
    url: str
    title: str
    section: str
    locale: str
    body_html: str
    text: str
    updated_at: datetime | None
    content_hash: str
    links: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Chunk:
    chunk_id: str
    article_id: str
    position: int
    text: str
    heading_path: tuple[str, ...]
    char_start: int
    char_end: int
    content_hash: str


class RejectionCode(StrEnum):
    """Why a record was skipped, as a code a run counts rejections by; ``Rejected.reason`` says it in words."""

    FETCH_FAILED = "fetch_failed"  # no answer, a timeout, a server error, too many redirects, the page deadline
    GONE = "gone"  # HTTP 404 or 410: a dead link
    ROBOTS_DISALLOWED = "robots_disallowed"
    HOST_NOT_ALLOWED = "host_not_allowed"  # listed on, or redirected to, a host the source does not allow
    CRAWL_CAPPED = "crawl_capped"  # the crawl reached max_pages
    UNSUPPORTED_TYPE = "unsupported_type"  # not HTML, a file or content kind kbcurator does not read
    BAD_ENCODING = "bad_encoding"  # bytes that do not decode in the expected encoding
    TOO_LARGE = "too_large"  # a file, page, front matter, title or article over its limit
    UNREADABLE = "unreadable"  # a file or folder that cannot be read, or is not a regular file
    SYMLINK = "symlink"  # a symbolic link that is not followed (outside the folder, dangling, a loop, a folder)
    MALFORMED = "malformed"  # a record of the wrong shape or without a required field (exports, ticket rows)
    BAD_URL = "bad_url"  # an article URL that is not well formed
    PARSE_FAILED = "parse_failed"  # the page or file could not be parsed
    EMPTY = "empty"  # no text to keep
    DUPLICATE = "duplicate"  # the same article or ticket id read again
    CHUNK_FAILED = "chunk_failed"
    DETECTOR_FAILED = "detector_failed"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Rejected:
    """A page, file or row that was skipped, with where and why. Rejections are data, not exceptions.

    ``code`` is what runs count and code compares on; ``reason`` is the detail a person reads, never parsed back.
    ``code`` is left out of equality: a rejection compares by where, what and why, as it did before codes.
    """

    record_id: str
    stage: str
    reason: str
    source_id: str = ""
    code: RejectionCode = field(default=RejectionCode.OTHER, compare=False)

    @property
    def detail(self) -> str:
        return self.reason


@dataclass(frozen=True, slots=True)
class IndexRelease:
    """One published (or rolled-back-to) state of the index: a row of the ``releases`` table.

    ``articles_version`` and ``chunks_version`` are LanceDB table versions, both tagged ``tag``. The last
    release by ``seq`` is the current one; a rollback appends a release that points at older versions.
    """

    seq: int
    tag: str
    kind: Literal["publish", "rollback"]
    created_at: datetime
    articles_version: int
    chunks_version: int
    previous_tag: str
    manifest_json: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Ticket:
    """One support ticket, already redacted: raw customer text never reaches a record.

    ``text`` is what is embedded and clustered (redacted subject and first customer message).
    """

    ticket_id: str
    created_at: datetime | None
    subject: str
    body: str
    channel: str = ""
    status: str = ""
    escalated: bool = False
    resolved_by_bot: bool = False
    unanswered: bool = False
    tags: tuple[str, ...] = ()
    csat: float | None = None
    source_id: str = ""
    # The help-center article(s) an agent linked as the ticket's solution (URLs or article ids): the ticket's
    # question then becomes a golden question for that article (``index.golden``).
    solved_by: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        if self.subject and self.body and not self.body.startswith(self.subject):
            return f"{self.subject}. {self.body}"
        return self.body or self.subject


@dataclass(frozen=True, slots=True)
class GapCluster:
    """A cluster of (redacted) ticket queries: what customers ask, scored against the KB when one is given."""

    cluster_id: int
    label: str
    keywords: tuple[str, ...]
    central_query: str
    representatives: tuple[str, ...]
    size: int
    escalation_share: float
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    ticket_ids: tuple[str, ...] = field(repr=False, default=())


FindingKind = Literal["stale", "duplicate", "contradiction"]
Severity = Literal["low", "medium", "high"]
Action = Literal["update", "merge", "retire", "fix_link", "review"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high")


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of what a finding rests on, quoted so a KB owner can check it without opening the article.

    ``highlights`` are substrings of ``text`` to mark (the values in conflict, the dated phrase, the retired
    term); ``link`` is the URL concerned (a broken link's target, the newer article).
    """

    article_id: str
    text: str = ""
    chunk_id: str = ""
    highlights: tuple[str, ...] = ()
    link: str = ""
    detail: str = ""


def make_finding_id(kind: str, check: str, article_ids: tuple[str, ...], key: str = "") -> str:
    """Stable across runs for the same problem: kind, check, the articles involved and what the problem is about.

    ``key`` names the thing itself (a link target, a retired term, the conflicting values) so two problems in the
    same article get two ids, and a finding keeps its id when only its score or wording changes.
    """
    material = "|".join((kind, check, *sorted(article_ids), key))
    return f"{kind}:{check}:{hashlib.sha1(material.encode('utf-8')).hexdigest()[:16]}"


@dataclass(frozen=True, slots=True)
class Finding:
    """A health problem found in the KB, with its evidence and what to do about it.

    ``check`` is the detector's sub-kind (``age``, ``dated_content``, ``broken_link``, ``deprecated_term``,
    ``superseded``, ``failing_article``; ``exact``, ``near``, ``section``, ``semantic``; ``quantity``,
    ``polarity``, ``yes_no``). ``score`` is in 0..1, higher is worse or surer.
    """

    finding_id: str
    kind: FindingKind
    check: str
    article_ids: tuple[str, ...]
    score: float
    severity: Severity
    summary: str
    action: Action
    evidence: tuple[Evidence, ...]
    detector: str
    detector_version: str
    found_at: datetime
