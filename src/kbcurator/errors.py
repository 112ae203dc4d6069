"""One small tree of errors; third-party exceptions are mapped onto it at the boundaries.

The CLI turns any ``KBError`` into one clear line and a non-zero exit.
"""

from __future__ import annotations


class KBError(Exception):
    """Base of every error kbcurator raises on purpose."""


class ConfigError(KBError):
    """A settings or source file is missing, unreadable or invalid."""


class SourceError(KBError):
    """A whole source cannot be read (empty, unreachable, unreadable): the run cannot go on for it."""


class ParseError(KBError):
    """One page or file cannot be parsed. Stages turn this into a ``Rejected`` record, never abort."""


class EmbeddingError(KBError):
    """The embedding model cannot be loaded (kbcurator never downloads weights)."""


class ValidationFailed(KBError):
    """A data-quality suite failed: publishing is blocked and the current release stays current."""

    def __init__(self, message: str, failed: list[str] | None = None) -> None:
        super().__init__(message)
        self.failed = failed or []


class PublishError(KBError):
    """The index could not be written, or a release/tag asked for does not exist."""


class StaleBase(PublishError):
    """The candidate was built on another release than the current one: retrying the publish cannot help."""
