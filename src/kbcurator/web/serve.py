"""Run the review app under uvicorn, refusing a setup that would open it to the network without sign-in."""

from __future__ import annotations

import socket
from ipaddress import ip_address

from kbcurator.errors import ConfigError
from kbcurator.settings import Settings


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings) -> None:
    """Raises ConfigError when the app would listen beyond this machine with nobody required to sign in."""
    serve = settings.serve
    if not _loopback(serve.host) and not serve.auth_configured:
        raise ConfigError(
            f"refusing to serve on {serve.host} without sign-in: declare serve.users (kbcurator hash-password) "
            "or serve.trusted_user_header, or listen on 127.0.0.1"
        )


def listen(settings: Settings) -> socket.socket:
    """The app's listening socket, bound now: a port in use or a bad address is one clear error, before anything
    is printed as running (uvicorn alone would log a traceback and exit)."""
    check_bind(settings)
    host, port = settings.serve.host.strip("[]"), settings.serve.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {settings.serve.host}:{port}: {exc.strerror or exc}") from None
    return sock


def serve(settings: Settings, sock: socket.socket | None = None) -> None:
    """Serve until interrupted (Ctrl-C), on ``sock`` from :func:`listen` (bound here when not given)."""
    import uvicorn  # here: the CLI's other commands do not pay for it

    from kbcurator.web.app import create_app

    sock = sock or listen(settings)
    config = uvicorn.Config(
        create_app(settings),
        log_level="warning",
        # The reverse proxy's X-Forwarded-* are honoured only from the proxies trusted with the user header.
        forwarded_allow_ips=settings.serve.trusted_proxies,
        server_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])
