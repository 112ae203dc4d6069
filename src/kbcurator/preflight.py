"""Cheap checks of a loaded configuration, run before any Prefect start or model load.

A missing folder or ticket file used to surface from inside a flow run, after Prefect's temporary server had
started (about a minute) and with two tracebacks. These checks find the same problems in milliseconds and raise
the same errors the readers would, so the CLI and the flows print one clear line.
"""

from __future__ import annotations

from pathlib import Path

from kbcurator.errors import ConfigError, SourceError
from kbcurator.settings import Settings


def _is_remote(location: str) -> bool:
    return "://" in location


def check_sources(settings: Settings, config_path: str | Path | None = None) -> None:
    """Raise ``SourceError`` when no source is declared or a local source's folder or export file is missing."""
    if not settings.sources:
        raise SourceError(f"no sources declared in {config_path or 'the settings'}: nothing to index")
    for source in settings.sources:
        if _is_remote(source.location):
            continue  # a site or API: reachability is the reader's to judge, with its retries
        path = Path(source.location).expanduser()
        if source.kind == "folder" and not path.is_dir():
            raise SourceError(f"source {source.id!r}: folder not found: {path}")
        if source.kind == "zendesk" and not path.exists():
            raise SourceError(f"source {source.id!r}: export file not found: {path}")
    golden = settings.retrieval.golden_file
    if golden and not _is_remote(golden) and not Path(golden).expanduser().is_file():
        # The retrieval gate fails closed on a missing file: say so now, not from inside the flow run.
        raise ConfigError(f"retrieval.golden_file not found: {golden}")


def check_tickets(settings: Settings, config_path: str | Path | None = None) -> None:
    """Raise ``ConfigError`` when no ticket source is declared, ``SourceError`` when a ticket file is missing."""
    if not settings.tickets:
        raise ConfigError(f"no ticket sources declared under 'tickets:' in {config_path or 'the settings'}")
    for source in settings.tickets:
        if _is_remote(source.location):
            continue
        path = Path(source.location).expanduser()
        if not path.exists():
            raise SourceError(f"ticket source {source.id!r}: file not found: {path}")


def check_runs_dir(settings: Settings) -> None:
    if _is_remote(settings.runs_dir):
        raise ConfigError(f"runs_dir must be a local folder, not a URI: {settings.runs_dir}")
