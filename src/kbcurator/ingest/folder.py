"""Read a folder of help-center files (HTML, Markdown, .docx) as ``RawPage`` records.

Files are matched by ``source.include``/``source.exclude`` globs relative to the folder, with ``**``
spanning directories (``**/*.md`` matches at any depth, ``*.md`` only at the top). Hidden files and
folders (a name starting with ``.``) are never read: they hold VCS and editor state, not articles.

Each ``RawPage`` carries:

- ``location``: ``source.base_url`` + the relative path (URL-quoted) when a base URL is set, else the
  relative POSIX path.
- ``content``: the decoded text for HTML and Markdown; for .docx, the file's absolute path, which
  ``parse_page`` reads (a binary document does not fit in a text field, and it is read once, at parse time).
- ``updated_at``: None. The file time only goes in ``fields`` as ``file_mtime`` (ISO 8601, UTC) so that
  dates written in the page (front matter, ``article:modified_time``) win over it at parse time: a checkout
  or a copy resets mtimes, so they are the last resort.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from kbcurator.errors import SourceError
from kbcurator.records import ContentKind, RawPage, Rejected
from kbcurator.settings import SourceConfig

__all__ = ["SUFFIX_KINDS", "read_folder"]

SUFFIX_KINDS: dict[str, ContentKind] = {
    ".html": "html",
    ".htm": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".docx": "docx",
}


def read_folder(source: SourceConfig) -> Iterator[RawPage | Rejected]:
    """List the folder's matching files now and return an iterator that reads them one by one, sorted.

    Raises:
        SourceError: at call time, when the folder does not exist or no supported file matches.

    A file that cannot be read or is not valid UTF-8 is yielded as ``Rejected(stage="read")`` and the walk
    goes on. A file of another type is skipped silently, unless an include pattern names it specifically
    (``**/*.pdf``, not ``**/*``): then it is ``Rejected`` as an unsupported file type.
    """
    root = Path(source.location).expanduser()
    if not root.is_dir():
        raise SourceError(f"source {source.id!r}: folder not found: {root}")
    supported: list[tuple[str, Path]] = []
    unsupported: list[str] = []
    for relative, path in _walk(root):
        if not _matches_any(relative, source.include) or _matches_any(relative, source.exclude):
            continue
        if path.suffix.lower() in SUFFIX_KINDS:
            supported.append((relative, path))
        elif _explicitly_included(relative, source.include):
            unsupported.append(relative)
    if not supported:
        raise SourceError(
            f"source {source.id!r}: no {', '.join(sorted(SUFFIX_KINDS))} file in {root} matches "
            f"include={source.include} exclude={source.exclude}"
        )
    return _read_all(source, supported, unsupported)


def _read_all(
    source: SourceConfig, supported: list[tuple[str, Path]], unsupported: list[str]
) -> Iterator[RawPage | Rejected]:
    rejected = set(unsupported)
    entries = sorted([*(rel for rel, _ in supported), *unsupported])
    paths = dict(supported)
    for relative in entries:
        location = _location(source, relative)
        if relative in rejected:
            yield Rejected(location, "read", f"unsupported file type {Path(relative).suffix or '(none)'!r}", source.id)
            continue
        yield _read_one(source, relative, paths[relative], location)


def _read_one(source: SourceConfig, relative: str, path: Path, location: str) -> RawPage | Rejected:
    kind = SUFFIX_KINDS[path.suffix.lower()]
    try:
        mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        content = str(path.resolve()) if kind == "docx" else path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Rejected(
            location,
            "read",
            f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})",
            source.id,
        )
    except OSError as exc:
        return Rejected(location, "read", f"cannot read file: {exc.strerror or exc}", source.id)
    return RawPage(
        source_id=source.id,
        location=location,
        content=content,
        content_kind=kind,
        updated_at=None,
        fields=(("file_mtime", mtime.isoformat()),),
    )


def _location(source: SourceConfig, relative: str) -> str:
    if not source.base_url:
        return relative
    base = source.base_url if source.base_url.endswith("/") else source.base_url + "/"
    if source.permalink and Path(relative).suffix.lower() in _MARKDOWN_SUFFIXES:
        return base + quote(jekyll_permalink(source.permalink, relative).lstrip("/"), safe="/")
    return base + quote(relative, safe="/")


_MARKDOWN_SUFFIXES = {".md", ".markdown"}


def jekyll_permalink(pattern: str, relative: str) -> str:
    """The path Jekyll serves ``relative`` at under a permalink ``pattern`` (``:path``, ``:name``).

    A first folder named ``_something`` is a Jekyll collection: ``:path`` is relative to it.
    """
    parts = Path(relative).with_suffix("").parts
    if len(parts) > 1 and parts[0].startswith("_"):
        parts = parts[1:]
    path = "/".join(parts)
    return pattern.replace(":path", path).replace(":name", parts[-1] if parts else "")


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in relative.split("/")):
            continue
        if path.is_file():
            yield relative, path


def _matches_any(relative: str, patterns: list[str]) -> bool:
    return any(_glob_regex(pattern).fullmatch(relative) for pattern in patterns)


def _explicitly_included(relative: str, patterns: list[str]) -> bool:
    """True when a matching include pattern names something in its last segment beyond wildcards."""
    for pattern in patterns:
        last = pattern.rstrip("/").rsplit("/", 1)[-1]
        if re.sub(r"[*?.]", "", last) and _glob_regex(pattern).fullmatch(relative):
            return True
    return False


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Translate a glob with ``**`` (any number of directories) into a regex over POSIX paths.

    ``fnmatch`` cannot be used: its ``*`` crosses ``/`` and it has no ``**``, so ``**/*`` would miss
    top-level files and ``*.md`` would match at any depth.
    """
    pattern = pattern.strip().lstrip("/")
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
                i += 1
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    # A pattern naming a folder ("drafts/") covers everything below it.
    if pattern.endswith("/"):
        out.append(".*")
    return re.compile("".join(out))
