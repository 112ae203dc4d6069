"""Read Zendesk Help Center articles, from an export on disk or from the live API, as ``RawPage`` records.

``source.location`` is one of:

- an export file in the shape of ``GET /api/v2/help_center/articles.json`` (``{"articles": [...],
  "next_page": ...}``). ``next_page`` is followed when it names a file beside the current one (a bare
  file name, or a URL whose last path segment is such a file); ``null`` ends the export.
- a folder of such page files, read in sorted order (``next_page`` is then ignored).
- an ``http(s)`` base URL of a Help Center: ``{base}/api/v2/help_center/articles.json?per_page=100`` is
  fetched and ``next_page`` followed, on the same host only. Pass an ``httpx.Client`` with ``auth`` set for
  a help center that is not public. Redirects are followed by hand, up to ``MAX_REDIRECTS`` hops, and only
  onto ``crawl.allowed_hosts`` (by default the API's own host and port); the client's credentials are dropped
  once a redirect leaves the API's origin. A redirect elsewhere is refused: the page's articles are not read,
  and a ``Rejected(stage="read")`` says where it pointed.

Section names come from ``sections.json`` beside the export (or ``/api/v2/help_center/sections.json``);
without them the section is the numeric ``section_id``. Drafts are skipped.

Each article becomes ``RawPage(content=body, content_kind="html", location=html_url, updated_at=updated_at,
fields=(title, section, locale, zendesk_id))``. Other help-center APIs with per-article JSON records
(e.g. Intercom's ``/articles``: ``id``, ``title``, ``body``, ``url``, ``updated_at`` in epoch seconds,
``parent_id``) fit the same shape: a reader for them would rename keys and reuse ``article_to_page``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from kbcurator.errors import SourceError
from kbcurator.ingest.http import (
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    allowed_hosts,
    host_allowed,
    keeps_credentials,
    redirect_target,
    send,
)
from kbcurator.records import RawPage, Rejected, RejectionCode
from kbcurator.settings import SourceConfig
from kbcurator.zendesk_export import next_export_file, parse_zendesk_time

__all__ = ["article_to_page", "read_zendesk"]

log = logging.getLogger(__name__)

ARTICLES_PATH = "/api/v2/help_center/articles.json"
SECTIONS_PATH = "/api/v2/help_center/sections.json"
SECTIONS_FILE = "sections.json"
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_S = 60.0
_MAX_PAGES = 10_000  # a guard against a server whose next_page never ends


def read_zendesk(source: SourceConfig, *, client: httpx.Client | None = None) -> Iterator[RawPage | Rejected]:
    """Yield one ``RawPage`` per published article, or a ``Rejected(stage="read")`` per malformed record.

    A ``.json`` in an export folder that is not an articles page (``categories.json``, a manifest) is a
    ``Rejected(stage="read")`` naming the file, and so is an API page whose redirect leaves the allowed hosts.

    Raises (while iterating):
        SourceError: the export cannot be read or is not an articles export, a ``next_page`` file is
            missing, or the API cannot be reached / answers with an error after retries.
    """
    if urlsplit(source.location).scheme in ("http", "https"):
        yield from _read_api(source, client)
    else:
        yield from _read_export(source)


def article_to_page(
    source_id: str, record: object, *, where: str, sections: Mapping[int | str, str] | None = None
) -> RawPage | Rejected | None:
    """Map one API article record to a ``RawPage``; None for a draft; ``Rejected`` when it is malformed.

    ``where`` names the record for a rejection when it has no URL (``export.json#articles[3]``).
    """
    if not isinstance(record, dict):
        reason = f"article record is {type(record).__name__}, not an object"
        return Rejected(where, "read", reason, source_id, code=RejectionCode.MALFORMED)
    article_id = record.get("id")
    location = record.get("html_url") or record.get("url")
    record_id = location if isinstance(location, str) and location else where
    missing = [key for key in ("id", "body") if record.get(key) is None]
    if missing:
        label = f"article {article_id}" if article_id is not None else "article"
        reason = f"malformed {label}: missing {', '.join(missing)}"
        return Rejected(record_id, "read", reason, source_id, code=RejectionCode.MALFORMED)
    if record.get("draft") is True:
        return None
    body = record["body"]
    if not isinstance(body, str):
        reason = f"malformed article {article_id}: body is not a string"
        return Rejected(record_id, "read", reason, source_id, code=RejectionCode.MALFORMED)
    if not isinstance(location, str) or not location:
        reason = f"malformed article {article_id}: missing html_url and url"
        return Rejected(where, "read", reason, source_id, code=RejectionCode.MALFORMED)
    fields: list[tuple[str, str]] = []
    title = record.get("title") or record.get("name")
    if isinstance(title, str) and title.strip():
        fields.append(("title", title.strip()))
    section_id = record.get("section_id")
    if section_id is not None:
        name = (sections or {}).get(section_id) or (sections or {}).get(str(section_id))
        fields.append(("section", name or str(section_id)))
    locale = record.get("locale")
    if isinstance(locale, str) and locale.strip():
        fields.append(("locale", locale.strip().replace("_", "-").lower()))
    fields.append(("zendesk_id", str(article_id)))
    return RawPage(
        source_id=source_id,
        location=location,
        content=body,
        content_kind="html",
        updated_at=parse_zendesk_time(record.get("updated_at")),
        fields=tuple(fields),
    )


def _emit(
    source: SourceConfig, articles: list[Any], page_ref: str, sections: Mapping[int | str, str]
) -> Iterator[RawPage | Rejected]:
    for index, record in enumerate(articles):
        page = article_to_page(source.id, record, where=f"{page_ref}#articles[{index}]", sections=sections)
        if page is not None:
            yield page


# --- export on disk ----------------------------------------------------------------------------------


def _read_export(source: SourceConfig) -> Iterator[RawPage | Rejected]:
    root = Path(source.location).expanduser()
    if root.is_dir():
        files = sorted(p for p in root.glob("*.json") if p.name != SECTIONS_FILE)
        if not files:
            raise SourceError(f"source {source.id!r}: no .json export pages in {root}")
        sections = _sections_from_file(source, root / SECTIONS_FILE)
        pages = 0
        for page_file in files:
            data = _read_json(source, page_file)
            problem = _not_an_articles_page(data)
            if problem:
                # Other JSON beside the pages (categories.json, a manifest) does not stop the read, but is
                # recorded: a page file saved wrong would otherwise lose its articles without a trace.
                log.warning("source %r: %s skipped: %s", source.id, page_file, problem)
                reason = f"{page_file.name} is not a Zendesk articles page, skipped: {problem}"
                yield Rejected(str(page_file), "read", reason, source.id, code=RejectionCode.MALFORMED)
                continue
            pages += 1
            yield from _emit(source, data["articles"], str(page_file), sections)
        if not pages:
            raise SourceError(f"source {source.id!r}: no Zendesk articles page among the .json in {root}")
        return

    if not root.is_file():
        raise SourceError(f"source {source.id!r}: export file not found: {root}")
    sections = _sections_from_file(source, root.parent / SECTIONS_FILE)
    seen: set[Path] = set()
    path: Path | None = root
    while path is not None:
        seen.add(path.resolve())
        data = _load_page(source, path)
        yield from _emit(source, data["articles"], str(path), sections)
        path = next_export_file(f"source {source.id!r}", path, data.get("next_page"), seen)


def _load_page(source: SourceConfig, path: Path) -> dict[str, Any]:
    data = _read_json(source, path)
    problem = _not_an_articles_page(data)
    if problem:
        raise SourceError(f"source {source.id!r}: {path} is not a Zendesk articles page: {problem}")
    result: dict[str, Any] = data
    return result


def _read_json(source: SourceConfig, path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"source {source.id!r}: cannot read Zendesk export {path}: {exc}") from exc


def _not_an_articles_page(data: object) -> str:
    """What keeps ``data`` from being an articles page; empty when it is one."""
    if not isinstance(data, dict):
        return f"the JSON is {_json_kind(data)}, not an object"
    if "articles" not in data:
        keys = ", ".join(repr(key) for key in list(data)[:5]) or "none"
        return f"no 'articles' list (top-level keys: {keys})"
    if not isinstance(data["articles"], list):
        return f"'articles' is {_json_kind(data['articles'])}, not a list"
    return ""


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _sections_from_file(source: SourceConfig, path: Path) -> dict[int | str, str]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"source {source.id!r}: cannot read {path}: {exc}") from exc
    return _section_names(data)


def _section_names(data: object) -> dict[int | str, str]:
    names: dict[int | str, str] = {}
    records = data.get("sections") if isinstance(data, dict) else None
    for record in records if isinstance(records, list) else []:
        if isinstance(record, dict) and record.get("id") is not None and isinstance(record.get("name"), str):
            names[record["id"]] = record["name"]
    return names


# --- live API ----------------------------------------------------------------------------------------


class _RedirectRefused(SourceError):
    """An API answer redirected off the allowed hosts; nothing was sent there."""

    def __init__(self, source: SourceConfig, url: str, target: str) -> None:
        self.url = url
        self.reason = f"GET {url} redirects to a host not allowed: {target}"
        super().__init__(f"source {source.id!r}: {self.reason}")


def _read_api(source: SourceConfig, client: httpx.Client | None) -> Iterator[RawPage | Rejected]:
    settings = source.crawl
    owned = client is None
    # follow_redirects stays off: fetch() follows them by hand, onto allowed hosts only.
    http = client or httpx.Client(
        timeout=settings.timeout_s,
        headers={"User-Agent": settings.user_agent, "Accept": "application/json"},
    )
    try:
        base = source.location.rstrip("/")
        # A location that already names the endpoint (a locale-specific one, say) is used as given.
        start = base if "/api/v2/help_center/" in base else f"{base}{ARTICLES_PATH}?per_page=100"
        origin = _origin(start)
        fetch = _fetcher(source, http, allowed_hosts(settings, start))
        sections = _api_sections(source, fetch, start, origin)
        url: str | None = start
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(seen) >= _MAX_PAGES:
                log.warning("source %r: stopping at repeated or excessive next_page %s", source.id, url)
                break
            seen.add(url)
            try:
                data = fetch(url)
            except _RedirectRefused as exc:
                # This page and the ones after it cannot be read; the ones before stand, and the record
                # says why the rest is missing.
                log.warning("%s; later pages not read", exc)
                reason = f"{exc.reason}; this and later article pages not read"
                yield Rejected(url, "read", reason, source.id, code=RejectionCode.HOST_NOT_ALLOWED)
                return
            articles = data.get("articles") if isinstance(data, dict) else None
            if not isinstance(articles, list):
                raise SourceError(f"source {source.id!r}: {url} did not return an 'articles' list")
            yield from _emit(source, articles, url, sections)
            url = _next_url(source, data.get("next_page"), url, origin)
    finally:
        if owned:
            http.close()


def _api_sections(source: SourceConfig, fetch: Callable[[str], Any], start: str, origin: str) -> dict[int | str, str]:
    """Section names, best effort: a help center may hide the sections endpoint, and ids still work."""
    if "/articles.json" not in start:
        return {}
    url: str | None = start.split("/articles.json", 1)[0] + "/sections.json?per_page=100"
    names: dict[int | str, str] = {}
    pages = 0
    while url is not None and pages < _MAX_PAGES:
        pages += 1
        try:
            data = fetch(url)
        except SourceError as exc:
            log.warning("source %r: section names unavailable, using section ids: %s", source.id, exc)
            return names
        names.update(_section_names(data))
        url = _next_url(source, data.get("next_page") if isinstance(data, dict) else None, url, origin)
    return names


def _fetcher(source: SourceConfig, http: httpx.Client, hosts: frozenset[str]) -> Callable[[str], Any]:
    """GET JSON, following redirects onto ``hosts`` only; failures -> SourceError, a refused redirect ->
    ``_RedirectRefused``. Credentials go no further than the first redirect that leaves the URL's origin."""

    def fetch(url: str) -> Any:
        current, credentials = url, True
        for _ in range(MAX_REDIRECTS + 1):
            response = get(current, credentials)
            if response.status_code in REDIRECT_STATUSES:
                target = redirect_target(current, response.headers.get("location"))
                if target is None:
                    raise SourceError(
                        f"source {source.id!r}: GET {current} answered HTTP {response.status_code} "
                        "without a usable Location"
                    )
                if not host_allowed(target, hosts):
                    raise _RedirectRefused(source, url, target)
                credentials = credentials and keeps_credentials(current, target)
                current = target
                continue
            if not response.is_success:
                hint = (
                    " (authentication required: pass a client with auth)" if response.status_code in (401, 403) else ""
                )
                raise SourceError(f"source {source.id!r}: GET {current} answered HTTP {response.status_code}{hint}")
            try:
                return response.json()
            except ValueError as exc:
                raise SourceError(f"source {source.id!r}: {current} did not return JSON: {exc}") from exc
        raise SourceError(f"source {source.id!r}: GET {url}: more than {MAX_REDIRECTS} redirects")

    def get(url: str, credentials: bool) -> httpx.Response:
        """One URL, retrying 429/5xx and transport errors with exponential backoff."""
        settings = source.crawl
        attempts = max(1, settings.retries + 1)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = send(http, url, credentials=credentials)
            except httpx.TransportError as exc:  # timeouts, refused connections, DNS
                if last:
                    raise SourceError(f"source {source.id!r}: cannot reach {url}: {exc!r}") from exc
                time.sleep(settings.backoff_s * 2**attempt)
                continue
            if response.status_code in _RETRY_STATUS and not last:
                time.sleep(_retry_delay(response, settings.backoff_s * 2**attempt))
                continue
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    return fetch


def _retry_delay(response: httpx.Response, default: float) -> float:
    header = response.headers.get("Retry-After", "")
    try:
        return min(max(float(header), 0.0), _MAX_RETRY_AFTER_S)
    except ValueError:
        return default


def _next_url(source: SourceConfig, next_page: object, current: str, origin: str) -> str | None:
    if not next_page:
        return None
    if not isinstance(next_page, str):
        raise SourceError(f"source {source.id!r}: next_page is not a string: {next_page!r}")
    next_page = urljoin(current, next_page)
    if _origin(next_page) != origin:
        # Credentials on the client must not travel to another host that a response names.
        raise SourceError(f"source {source.id!r}: next_page {next_page!r} leaves {origin}")
    return next_page


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"
