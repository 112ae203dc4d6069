"""A Prefect API server for one CLI process that ends with that process, even when it is killed.

Without a ``PREFECT_API_URL``, Prefect starts a temporary server as a child process and stops it at exit; a
``kill -9`` of the CLI (or a scheduler's timeout) skips that, and the server served on for hours. This starts the
same server (Prefect's own ASGI app under uvicorn, without the UI and background services, as Prefect's temporary
server runs) with the kernel told to end it when its parent dies (Linux ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable

import httpx

from kbcurator.errors import KBError

_PR_SET_PDEATHSIG = 1


class ServerStartError(KBError):
    """The temporary Prefect server did not come up."""


def supported() -> bool:
    """Only Linux can tie a child's life to its parent's."""
    return sys.platform.startswith("linux") and ctypes.util.find_library("c") is not None


def _end_with(parent_pid: int) -> Callable[[], None]:
    def in_child() -> None:  # runs between fork and exec: no Python objects shared with threads
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(0)

    return in_child


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class TemporaryServer:
    """Start with :meth:`start` (returns the API URL); :meth:`stop` or the parent's death ends it."""

    def __init__(self, *, host: str = "127.0.0.1", startup_timeout_s: float = 90.0) -> None:
        self.host = host
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.api_url = ""
        # A file, not a pipe: a chatty server must never block on a full one. Closed with the process.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115

    def start(self) -> str:
        port = _free_port(self.host)
        self.api_url = f"http://{self.host}:{port}/api"
        env = {
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            # What Prefect sets for its own temporary server: no scheduler or other background services.
            "PREFECT__SERVER_EPHEMERAL": "1",
        }
        command = [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app"]
        command += ["--host", self.host, "--port", str(port), "--log-level", "error", "--lifespan", "on"]
        with warnings.catch_warnings():
            # LanceDB, when already imported, warns about forking; the child execs uvicorn at once and shares
            # nothing with LanceDB's runtime.
            warnings.filterwarnings("ignore", message="lancedb fork support", category=RuntimeWarning)
            self.process = subprocess.Popen(
                command, env=env, stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=_end_with(os.getpid())
            )
        deadline = time.monotonic() + self.startup_timeout_s
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    self._log.seek(0)
                    error = self._log.read().decode(errors="replace")
                    last = error.strip().splitlines()[-1:] or ["no output"]
                    raise ServerStartError(f"the temporary Prefect server exited at start: {last[0]}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return self.api_url
                time.sleep(0.2)
        self.stop()
        raise ServerStartError(f"the temporary Prefect server did not answer within {self.startup_timeout_s:.0f} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
