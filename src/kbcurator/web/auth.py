"""Who may act in the review app: password hashes (scrypt, from the standard library), sign-in throttling, CSRF.

A password is never stored or logged: ``kbcurator hash-password`` prints the hash that goes into
``serve.users``. Sessions are Starlette's signed cookies; every form carries the session's CSRF token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import defaultdict, deque

_N, _R, _P, _DKLEN = 2**14, 8, 1, 32
_MAX_FAILURES = 5
_FAILURE_WINDOW_S = 15 * 60


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$digest`` for ``serve.users``."""
    if not password:
        raise ValueError("an empty password cannot be hashed")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


# Checked against when the user name is unknown, so a wrong name costs the same time as a wrong password.
_DUMMY = hash_password("not a password", salt=b"kbcurator-dummy!")


def verify_password(password: str, hashed: str | None) -> bool:
    try:
        scheme, n, r, p, salt, digest = (hashed or _DUMMY).split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected) and hashed is not None


class SignInThrottle:
    """At most five failed sign-ins per user name in fifteen minutes; then that name waits (per process)."""

    def __init__(self, max_failures: int = _MAX_FAILURES, window_s: float = _FAILURE_WINDOW_S) -> None:
        self._max = max_failures
        self._window = window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, name: str) -> deque[float]:
        failures = self._failures[name.lower()]
        while failures and failures[0] < time.monotonic() - self._window:
            failures.popleft()
        return failures

    def blocked(self, name: str) -> bool:
        return len(self._recent(name)) >= self._max

    def failed(self, name: str) -> None:
        self._recent(name).append(time.monotonic())

    def succeeded(self, name: str) -> None:
        self._failures.pop(name.lower(), None)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: object, given: str | None) -> bool:
    return isinstance(expected, str) and bool(expected) and bool(given) and hmac.compare_digest(expected, given or "")
