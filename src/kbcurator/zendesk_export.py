"""Zendesk export pages saved to disk, as the article source (kbcurator.ingest.zendesk) and the ticket source
(kbcurator.gaps.tickets) both read them: one page names the next in ``next_page``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from kbcurator.errors import SourceError

__all__ = ["next_export_file", "parse_zendesk_time"]

log = logging.getLogger(__name__)


def next_export_file(what: str, current: Path, next_page: object, seen: set[Path]) -> Path | None:
    """The saved page a Zendesk export's ``next_page`` names, beside ``current``; None at the end.

    ``what`` names the source in errors ("source 'help'", "ticket source 'support'"). Used by the article
    and the ticket exports alike.
    """
    if not next_page:
        return None
    if not isinstance(next_page, str):
        raise SourceError(f"{what}: next_page in {current} is not a string: {next_page!r}")
    name = urlsplit(next_page).path.rsplit("/", 1)[-1] if "://" in next_page else next_page
    if "/" in name or "\\" in name or name in ("", ".", ".."):
        raise SourceError(f"{what}: next_page {next_page!r} in {current} is not a file name")
    candidate = current.parent / name
    if candidate.resolve() in seen:
        # A live-API URL saved verbatim names the endpoint ("articles.json"), not the next saved page.
        log.warning("%s: next_page %r in %s points back at a page already read; stopping", what, next_page, current)
        return None
    if not candidate.is_file():
        raise SourceError(f"{what}: next_page file not found: {candidate} (named in {current})")
    return candidate


def parse_zendesk_time(value: object) -> datetime | None:
    """A Zendesk timestamp as a UTC datetime: ISO 8601 ("2020-03-17T00:00:00Z") or epoch seconds; None otherwise.

    One reader for the article export, the ticket export and the incremental tickets API.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
