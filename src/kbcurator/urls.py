"""URL rules every remote reader applies: the normalised form of a URL, whether it is on an allowed host, where a
redirect goes, and whether credentials may follow it (the sitemap crawler and the Zendesk help-center reader in
``ingest``, the Zendesk ticket reader in ``gaps``: one implementation, so the rules cannot drift apart)."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit, urlunsplit

__all__ = [
    "DEFAULT_PORTS",
    "MAX_REDIRECTS",
    "REDIRECT_STATUSES",
    "host_allowed",
    "keeps_credentials",
    "normalize_url",
    "redirect_target",
]

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

DEFAULT_PORTS = {"http": 80, "https": 443}


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
    if port is not None and port != DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", parts.query, ""))


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
    old_port = old.port or DEFAULT_PORTS.get(old.scheme.lower())
    new_port = new.port or DEFAULT_PORTS.get(new.scheme.lower())
    if (old.scheme.lower(), old_port) == (new.scheme.lower(), new_port):
        return True
    return (old.scheme.lower(), old_port, new.scheme.lower(), new_port) == ("http", 80, "https", 443)
