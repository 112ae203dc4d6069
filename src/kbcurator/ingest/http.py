"""HTTP safety the remote readers share (the sitemap crawler, the Zendesk API reader).

Redirects are followed by hand, never by httpx: each ``Location`` is resolved against the URL that answered and
checked against the source's allowed hosts before anything is sent there (``redirect_target``, ``host_allowed``).
Credentials (the client's ``auth``, an ``Authorization`` or ``Cookie`` header) go only to the origin they were
given for: once a redirect leaves it, the next requests are sent without them (``keeps_credentials``, ``send``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from kbcurator.settings import CrawlSettings

__all__ = [
    "MAX_REDIRECTS",
    "REDIRECT_STATUSES",
    "allowed_hosts",
    "host_allowed",
    "keeps_credentials",
    "normalize_url",
    "open_stream",
    "redirect_target",
    "send",
]

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CREDENTIAL_HEADERS = ("Authorization", "Cookie")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_url(url: str) -> str | None:
    """The crawler's dedup key for ``url``, or None when it is not an absolute http(s) URL.

    Lowercases scheme and host, drops the default port, any user info and the fragment, keeps the query, and
    writes an empty path as ``/``.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", parts.query, ""))


def allowed_hosts(settings: CrawlSettings, *urls: str | None) -> frozenset[str]:
    """The hosts a source may visit: the configured ``allowed_hosts``, or else the hosts (with port) of ``urls``."""
    if settings.allowed_hosts:
        return frozenset(host.strip().lower() for host in settings.allowed_hosts)
    return frozenset(urlsplit(url).netloc for url in filter(None, (normalize_url(u) for u in urls if u)))


def host_allowed(url: str, hosts: frozenset[str]) -> bool:
    """Whether ``url`` (normalised) is on an allowed host.

    An entry with a port (``127.0.0.1:8000``) matches that host and port only; an entry without one
    matches the host on any port, which is how people write ``help.example.com``.
    """
    parts = urlsplit(url)
    return parts.netloc in hosts or (parts.hostname or "") in hosts


def redirect_target(current: str, location: str | None) -> str | None:
    """The normalised absolute URL a redirect's ``Location`` names, resolved against ``current``; None if unusable."""
    if not location or not location.strip():
        return None
    return normalize_url(urljoin(current, location.strip()))


def keeps_credentials(source: str, target: str) -> bool:
    """Whether credentials given for ``source`` may be sent to ``target``, a redirect from it.

    Only on the same origin (scheme, host, port), or on the same host upgraded from http to https on the
    default ports: the rules httpx applies to its own redirects.
    """
    old, new = urlsplit(source), urlsplit(target)
    if (old.hostname or "").lower() != (new.hostname or "").lower():
        return False
    old_port = old.port or _DEFAULT_PORTS.get(old.scheme.lower())
    new_port = new.port or _DEFAULT_PORTS.get(new.scheme.lower())
    if (old.scheme.lower(), old_port) == (new.scheme.lower(), new_port):
        return True
    return (old.scheme.lower(), old_port, new.scheme.lower(), new_port) == ("http", 80, "https", 443)


def _request(
    client: httpx.Client, url: str, headers: Mapping[str, str] | None, timeout: float | None, credentials: bool
) -> httpx.Request:
    request = client.build_request(
        "GET", url, headers=headers, timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout
    )
    if not credentials:
        for name in _CREDENTIAL_HEADERS:  # set on the client, or by its cookie jar
            request.headers.pop(name, None)
    return request


def send(
    client: httpx.Client,
    url: str,
    *,
    credentials: bool,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> httpx.Response:
    """One GET that never follows a redirect itself; without ``credentials``, no auth, Authorization or Cookie.

    ``timeout`` (seconds, per read) overrides the client's own; None keeps it.
    """
    request = _request(client, url, headers, timeout, credentials)
    return client.send(request, follow_redirects=False, auth=httpx.USE_CLIENT_DEFAULT if credentials else None)


@contextmanager
def open_stream(
    client: httpx.Client,
    url: str,
    *,
    credentials: bool,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Iterator[httpx.Response]:
    """``send``, with the body left to stream; the response is closed when the block ends."""
    request = _request(client, url, headers, timeout, credentials)
    response = client.send(
        request, stream=True, follow_redirects=False, auth=httpx.USE_CLIENT_DEFAULT if credentials else None
    )
    try:
        yield response
    finally:
        response.close()
