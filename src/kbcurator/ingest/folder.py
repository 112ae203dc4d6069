"""Read a folder of help-center files (HTML, Markdown, .docx) as ``RawPage`` records.

Files are matched by ``source.include``/``source.exclude`` globs relative to the folder, with ``**``
spanning directories (``**/*.md`` matches at any depth, ``*.md`` only at the top). Hidden files and
folders (a name starting with ``.``) are never read: they hold VCS and editor state, not articles.

Nothing outside the folder is ever read. A symbolic link is read only when it leads to a regular file inside
the folder; links to folders are not followed (a folder's files are read at their real place). A link that
leads outside, a dangling link, a link loop, a FIFO, a socket or a device is a ``Rejected(stage="read")``,
and so is a file over the size limit (``MAX_TEXT_FILE_BYTES`` for HTML and Markdown, ``MAX_DOCX_BYTES``).

Each ``RawPage`` carries:

- ``location``: ``source.base_url`` + the relative path (URL-quoted) when a base URL is set, else the
  relative POSIX path. With ``source.permalink`` (and a base URL), a Markdown file's location is the URL Jekyll
  serves it at instead (``jekyll_permalink``; a page's own front-matter ``permalink`` wins at parse time).
  Without one, links written in the forms a site serves the file at (``/section/slug/``, ``slug.html``,
  ``slug/``) still reach the article: the link check resolves them (``analysis.staleness.article_url_forms``).
- ``content``: the decoded text for HTML and Markdown; for .docx, the file's absolute path, which
  ``parse_page`` reads (a binary document does not fit in a text field, and it is read once, at parse time).
- ``updated_at``: None. The file time only goes in ``fields`` as ``file_mtime`` (ISO 8601, UTC) so that
  dates written in the page (front matter, ``article:modified_time``) win over it at parse time: a checkout
  or a copy resets mtimes, so they are the last resort.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from kbcurator.errors import SourceError
from kbcurator.records import ContentKind, RawPage, Rejected, RejectionCode
from kbcurator.settings import SourceConfig

__all__ = ["MAX_DOCX_BYTES", "MAX_TEXT_FILE_BYTES", "SUFFIX_KINDS", "read_folder"]

# One HTML or Markdown file larger than this is rejected at read time, on its own: its article could not pass
# the release checks (``checks.max_article_chars``) and one such file (20 MB) once held back a whole release.
MAX_TEXT_FILE_BYTES = 5_000_000
# .docx files carry images, so they may be bigger; unstructured still reads the whole file.
MAX_DOCX_BYTES = 50_000_000

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

    A file that cannot be read, is not valid UTF-8 or is over the size limit is yielded as
    ``Rejected(stage="read")`` and the walk goes on; so is any matching entry that is not a regular file inside
    the folder (a symbolic link leading outside it, to a folder or nowhere, a link loop, a FIFO, a socket). A
    file of another type is skipped silently, unless an include pattern names it specifically (``**/*.pdf``,
    not ``**/*``): then it is ``Rejected`` as an unsupported file type.
    """
    root = Path(source.location).expanduser()
    if not root.is_dir():
        raise SourceError(f"source {source.id!r}: folder not found: {root}")
    real_root = root.resolve()
    supported: list[tuple[str, Path]] = []
    refused: list[tuple[str, str, RejectionCode]] = []
    for entry in _walk(root):
        if not _matches_any(entry.relative, source.include) or _matches_any(entry.relative, source.exclude):
            continue
        if entry.problem is not None:
            refused.append((entry.relative, entry.problem, RejectionCode.UNREADABLE))
        elif entry.path.suffix.lower() in SUFFIX_KINDS:
            supported.append((entry.relative, entry.path))
        elif _explicitly_included(entry.relative, source.include):
            reason = f"unsupported file type {entry.path.suffix or '(none)'!r}"
            refused.append((entry.relative, reason, RejectionCode.UNSUPPORTED_TYPE))
        elif entry.is_link:
            # A link to a file of another type is skipped like that file; one that leads nowhere readable is not.
            try:
                _real_file_inside(real_root, entry.path)
            except _Refused as exc:
                refused.append((entry.relative, str(exc), exc.code))
    if not supported:
        raise SourceError(
            f"source {source.id!r}: no {', '.join(sorted(SUFFIX_KINDS))} file in {root} matches "
            f"include={source.include} exclude={source.exclude}"
        )
    return _read_all(source, real_root, supported, refused)


def _read_all(
    source: SourceConfig,
    real_root: Path,
    supported: list[tuple[str, Path]],
    refused: list[tuple[str, str, RejectionCode]],
) -> Iterator[RawPage | Rejected]:
    reasons = {relative: (reason, code) for relative, reason, code in refused}
    entries = sorted([*(rel for rel, _ in supported), *reasons])
    paths = dict(supported)
    for relative in entries:
        location = _location(source, relative)
        if relative in reasons:
            reason, code = reasons[relative]
            yield Rejected(location, "read", reason, source.id, code=code)
            continue
        yield _read_one(source, real_root, paths[relative], location)


class _Refused(Exception):
    """Why an entry of the folder is not read (becomes a ``Rejected`` reason, with ``code``)."""

    def __init__(self, reason: str, code: RejectionCode = RejectionCode.UNREADABLE) -> None:
        super().__init__(reason)
        self.code = code


def _read_one(source: SourceConfig, real_root: Path, path: Path, location: str) -> RawPage | Rejected:
    kind = SUFFIX_KINDS[path.suffix.lower()]
    limit = MAX_DOCX_BYTES if kind == "docx" else MAX_TEXT_FILE_BYTES
    try:
        real = _real_file_inside(real_root, path)
        # The checks above and this open are not atomic: O_NOFOLLOW and the fstat below make sure that what is
        # opened is still a regular file and not a link swapped in meanwhile; O_NONBLOCK keeps a FIFO that
        # replaced the file from blocking the open.
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise _Refused(f"not a regular file ({_file_type(info.st_mode)})")
            if info.st_size > limit:
                raise _Refused(_too_large(info.st_size, limit), RejectionCode.TOO_LARGE)
            mtime = datetime.fromtimestamp(info.st_mtime, tz=UTC)
            if kind == "docx":
                content = str(real)
            else:
                data = handle.read(limit + 1)  # the file may have grown since fstat
                if len(data) > limit:
                    raise _Refused(_too_large(len(data), limit), RejectionCode.TOO_LARGE)
                content = data.decode("utf-8-sig")
    except _Refused as exc:
        return Rejected(location, "read", str(exc), source.id, code=exc.code)
    except UnicodeDecodeError as exc:
        return Rejected(
            location,
            "read",
            f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})",
            source.id,
            code=RejectionCode.BAD_ENCODING,
        )
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the file became a symbolic link after the walk
            return Rejected(location, "read", "symbolic link: not read", source.id, code=RejectionCode.SYMLINK)
        reason = f"cannot read file: {exc.strerror or exc}"
        return Rejected(location, "read", reason, source.id, code=RejectionCode.UNREADABLE)
    return RawPage(
        source_id=source.id,
        location=location,
        content=content,
        content_kind=kind,
        updated_at=None,
        fields=(("file_mtime", mtime.isoformat()),),
    )


def _real_file_inside(real_root: Path, path: Path) -> Path:
    """The real path of ``path`` when it is (or links to) a regular file inside ``real_root``.

    Raises:
        _Refused: a dangling link, a link loop, a link leading outside the folder, or not a regular file.
    """
    try:
        real = Path(os.path.realpath(path, strict=True))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _Refused("symbolic link loop: not read", RejectionCode.SYMLINK) from None
        if exc.errno == errno.ENOENT and path.is_symlink():
            reason = f"dangling symbolic link to {_link_text(path)!r}: its target does not exist"
            raise _Refused(reason, RejectionCode.SYMLINK) from None
        raise _Refused(f"cannot read file: {exc.strerror or exc}") from None
    if not real.is_relative_to(real_root):
        reason = f"symbolic link to {_link_text(path)!r}, outside the source folder: not read"
        raise _Refused(reason, RejectionCode.SYMLINK)
    try:
        info = real.stat()
    except OSError as exc:
        raise _Refused(f"cannot read file: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise _Refused(
            "symbolic link to a folder: not followed (its files are read where they are)", RejectionCode.SYMLINK
        )
    if not stat.S_ISREG(info.st_mode):
        raise _Refused(f"not a regular file ({_file_type(info.st_mode)})")
    return real


def _link_text(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def _file_type(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "an unknown kind of file"


def _too_large(size: int, limit: int) -> str:
    return f"file too large: {size:,} bytes, over the {limit:,}-byte limit"


def _location(source: SourceConfig, relative: str) -> str:
    if not source.base_url:
        return relative
    base = source.base_url if source.base_url.endswith("/") else source.base_url + "/"
    if source.permalink and Path(relative).suffix.lower() in _MARKDOWN_SUFFIXES:
        return base + quote(jekyll_permalink(source.permalink, relative).lstrip("/"), safe="/")
    return base + quote(relative, safe="/")


_MARKDOWN_SUFFIXES = {".md", ".markdown"}


def jekyll_permalink(pattern: str, relative: str) -> str:
    """The path Jekyll serves ``relative`` at under a permalink ``pattern``.

    Placeholders: ``:path`` (the path without extension), ``:name``, ``:title`` and ``:slug`` (the file name
    without extension), ``:collection`` and ``:output_ext`` (``.html``). A first folder named ``_something`` is
    a Jekyll collection: ``:path`` is relative to it and ``:collection`` is its name without the underscore.
    """
    parts = Path(relative).with_suffix("").parts
    collection = ""
    if len(parts) > 1 and parts[0].startswith("_"):
        collection, parts = parts[0][1:], parts[1:]
    name = parts[-1] if parts else ""
    values = {"path": "/".join(parts), "name": name, "title": name, "slug": name, "collection": collection}
    values["output_ext"] = ".html"
    # One pass, longest name first at each place: ":path" inside a value is never replaced again.
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], pattern)


_PLACEHOLDER = re.compile(r":(output_ext|collection|path|name|title|slug)")


@dataclass(frozen=True, slots=True)
class _Entry:
    relative: str
    path: Path
    is_link: bool = False
    problem: str | None = None  # set when the entry is known not to be readable


def _walk(root: Path) -> Iterator[_Entry]:
    """Every non-hidden entry below ``root`` other than a folder, without following symbolic links.

    A symbolic link (to a file, a folder or nothing) is listed, not followed; so are FIFOs, sockets and devices,
    with the reason they are not read. A subfolder that cannot be listed is listed with its reason.
    """
    pending = [(root, "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            with os.scandir(folder) as listing:
                children = sorted(listing, key=lambda child: child.name)
        except OSError as exc:
            if not prefix:
                raise SourceError(f"cannot list folder {root}: {exc.strerror or exc}") from exc
            yield _Entry(prefix.rstrip("/"), folder, problem=f"cannot list folder: {exc.strerror or exc}")
            continue
        for child in children:
            if child.name.startswith("."):
                continue
            relative = prefix + child.name
            path = Path(child.path)
            try:
                if child.is_symlink():
                    yield _Entry(relative, path, is_link=True)
                elif child.is_dir(follow_symlinks=False):
                    pending.append((path, relative + "/"))
                elif child.is_file(follow_symlinks=False):
                    yield _Entry(relative, path)
                else:
                    mode = child.stat(follow_symlinks=False).st_mode
                    yield _Entry(relative, path, problem=f"not a regular file ({_file_type(mode)})")
            except OSError as exc:
                yield _Entry(relative, path, problem=f"cannot read file: {exc.strerror or exc}")


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
