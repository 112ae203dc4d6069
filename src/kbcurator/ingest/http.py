"""HTTP safety the remote readers share (the sitemap crawler, the Zendesk help-center reader); the URL rules
themselves are ``kbcurator.urls``, shared with the Zendesk ticket reader in ``gaps``.

Redirects are followed by hand, never by httpx: each ``Location`` is resolved against the URL that answered and
checked against the source's allowed hosts before anything is sent there (``redirect_target``, ``host_allowed``).
Credentials (the client's ``auth``, an ``Authorization`` or ``Cookie`` header) go only to the origin they were
given for: once a redirect leaves it, the next requests are sent without them (``keeps_credentials``, ``send``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx

from kbcurator.settings import CrawlSettings
from kbcurator.urls import (
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    host_allowed,
    keeps_credentials,
    normalize_url,
    redirect_target,
)

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

_CREDENTIAL_HEADERS = ("Authorization", "Cookie")


def allowed_hosts(settings: CrawlSettings, *urls: str | None) -> frozenset[str]:
    """The hosts a source may visit: the configured ``allowed_hosts``, or else the hosts (with port) of ``urls``."""
    if settings.allowed_hosts:
        return frozenset(host.strip().lower() for host in settings.allowed_hosts)
    return frozenset(urlsplit(url).netloc for url in filter(None, (normalize_url(u) for u in urls if u)))


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
