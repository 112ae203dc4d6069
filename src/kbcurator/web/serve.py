"""Run the review app under uvicorn, refusing a setup that would open it to the network without sign-in."""

from __future__ import annotations

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


def serve(settings: Settings) -> None:
    """Serve until interrupted (Ctrl-C)."""
    import uvicorn  # here: the CLI's other commands do not pay for it

    from kbcurator.web.app import create_app

    check_bind(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.serve.host,
        port=settings.serve.port,
        log_level="warning",
        # The reverse proxy's X-Forwarded-* are honoured only from the proxies trusted with the user header.
        forwarded_allow_ips=settings.serve.trusted_proxies,
        server_header=False,
    )
