"""The on-call engineer's Prefect stack on one machine: a server, the work pool, every deployment, a worker.

Each step is the venv's own ``prefect`` command in a subprocess (the same commands prefect.yaml's header names),
so this module imports no Prefect code and the processes it starts run exactly as an engineer's would. The server
and the worker each lead a process group of their own; ``stop()`` ends those groups (and any flow run the worker
still has going), so nothing is left running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import httpx
import yaml

from kbcurator.errors import KBError
from kbcurator.runtime import RUNTIME_DEFAULTS

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4200
DEFAULT_POOL = "kbcurator"


class StackError(KBError):
    """A step of the local Prefect stack (server, work pool, deploy, worker) failed or did not come up in time."""


@dataclass(frozen=True, slots=True)
class DeployedDeployment:
    """A deployment as the server holds it after ``prefect deploy --all``."""

    deployment_id: str
    name: str
    flow_name: str
    schedules: tuple[str, ...]  # e.g. "cron 0 2 * * * UTC (active)"

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{self.name}"

    @property
    def active_schedule(self) -> bool:
        return any(s.endswith("(active)") for s in self.schedules)


class PrefectStack:
    """A Prefect server on ``host:port``, the ``kbcurator`` process work pool, every deployment of the repository's
    prefect.yaml, and a worker polling that pool. Use it as a context manager, or call ``start()`` and ``stop()``.

    Args:
        home: PREFECT_HOME for every step: the server's SQLite database, profiles, and the logs
            ``server.log`` and ``worker.log``.
        repo_root: the checkout holding prefect.yaml; deploy runs there and the worker's flow runs start there
            (``KBCURATOR_HOME``, which prefect.yaml's pull step reads).
        port: the server's port; 0 picks a free one.
        worker_env: extra environment for the worker and so for its flow runs (e.g. ``KB_INDEX_URI``).
        scheduler_loop_seconds: how often the server's scheduler adds runs (Prefect's default: 60 s).
        worker_query_seconds: how often the worker polls for runs (Prefect's default: 10 s).
        startup_timeout_s: how long the server, and then the worker, may take to come up.
        step_timeout_s: how long ``work-pool create`` and ``deploy --all`` may take, each.
        grace_s: how long ``stop()`` waits after SIGTERM before SIGKILL.
    """

    def __init__(
        self,
        home: str | Path,
        repo_root: str | Path,
        *,
        port: int = DEFAULT_PORT,
        host: str = DEFAULT_HOST,
        pool: str = DEFAULT_POOL,
        worker_env: dict[str, str] | None = None,
        scheduler_loop_seconds: float | None = None,
        worker_query_seconds: float | None = None,
        startup_timeout_s: float = 120.0,
        step_timeout_s: float = 300.0,
        grace_s: float = 10.0,
    ) -> None:
        self.home = Path(home).resolve()
        self.repo_root = Path(repo_root).resolve()
        self.host = host
        self.port = port
        self.pool = pool
        self.worker_env = dict(worker_env or {})
        self.scheduler_loop_seconds = scheduler_loop_seconds
        self.worker_query_seconds = worker_query_seconds
        self.startup_timeout_s = startup_timeout_s
        self.step_timeout_s = step_timeout_s
        self.grace_s = grace_s
        self.prefect = Path(sys.executable).parent / "prefect"
        self.deployments: list[DeployedDeployment] = []
        self._server: subprocess.Popen[bytes] | None = None
        self._worker: subprocess.Popen[bytes] | None = None
        self._logs: list[IO[bytes]] = []
        self._groups: list[int] = []  # every process group started or seen under the worker, for stop()

    # -- addresses and files ------------------------------------------------------------------------------------

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.ui_url}/api"

    @property
    def server_log(self) -> Path:
        return self.home / "server.log"

    @property
    def worker_log(self) -> Path:
        return self.home / "worker.log"

    @property
    def process_groups(self) -> list[int]:
        """The process groups this stack started (server, worker) and flow-run groups seen under the worker."""
        return list(self._groups)

    # -- life cycle ---------------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the server, create the work pool, deploy everything, start a worker; raise ``StackError`` on the
        first step that fails, after stopping whatever had started."""
        expected = self._declared_deployments()
        if not self.prefect.exists():
            raise StackError(f"no `prefect` executable beside this Python ({self.prefect}): is the project installed?")
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = self._choose_port()
        try:
            self._start_server()
            self._run_step(["work-pool", "create", self.pool, "--type", "process", "--overwrite"], "work-pool create")
            deploy_output = self._run_step(["deploy", "--all"], "deploy --all")
            self.deployments = self._read_deployments()
            missing = sorted(set(expected) - {d.name for d in self.deployments})
            if missing:
                raise StackError(
                    f"`prefect deploy --all` left out {', '.join(missing)} of prefect.yaml; it said: "
                    f"{_one_line(deploy_output)}"
                )
            self._start_worker()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the worker (and any flow run it started), then the server: SIGTERM to each process group, SIGKILL
        after ``grace_s``. Safe to call twice."""
        if self._worker is not None:
            # Flow runs are started in sessions of their own: note their groups while the worker still has them.
            for pgid in _descendant_groups(self._worker.pid):
                if pgid not in self._groups:
                    self._groups.append(pgid)
            _end_group(self._worker, self.grace_s)
            self._worker = None
        for pgid in self._groups:
            if self._server is None or pgid != self._server.pid:
                _end_group_id(pgid, self.grace_s)
        if self._server is not None:
            _end_group(self._server, self.grace_s)
            self._server = None
        for log in self._logs:
            log.close()
        self._logs.clear()

    def running(self) -> bool:
        """Whether any process of the stack's process groups is still alive."""
        return any(_group_alive(pgid) for pgid in self._groups)

    def check(self) -> None:
        """Raise ``StackError`` if the server or the worker has exited since ``start()``."""
        parts = (("server", self._server, self.server_log), ("worker", self._worker, self.worker_log))
        for name, process, log in parts:
            if process is not None and process.poll() is not None:
                raise StackError(f"the Prefect {name} exited with code {process.returncode}; {_log_tail(log)}")

    def __enter__(self) -> Self:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- API ----------------------------------------------------------------------------------------------------

    def api(self, method: str, path: str, json: Any = None, timeout_s: float = 30.0) -> Any:
        """Call the server's REST API (``path`` below /api) and return the decoded JSON body.

        A 502/503/504 is retried with backoff (1, 2, 4, 8 s), as Prefect's own client does: its server answers 503
        while its SQLite database is busy, e.g. when the scheduler writes a schedule's runs on a loaded machine.
        """
        try:
            for wait_s in (1.0, 2.0, 4.0, 8.0, None):
                response = httpx.request(method, f"{self.api_url}{path}", json=json, timeout=timeout_s)
                if response.status_code not in (502, 503, 504) or wait_s is None:
                    break
                time.sleep(wait_s)
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            raise StackError(
                f"{method} {path} answered {exc.response.status_code}: {_one_line(exc.response.text)}"
            ) from exc
        except httpx.HTTPError as exc:
            raise StackError(f"{method} {self.api_url}{path} failed: {exc}") from exc
        return response.json() if response.content else None

    # -- steps --------------------------------------------------------------------------------------------------

    def _declared_deployments(self) -> list[str]:
        path = self.repo_root / "prefect.yaml"
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise StackError(f"no prefect.yaml in {self.repo_root}: start the stack from the repository root") from None
        except (OSError, yaml.YAMLError) as exc:
            raise StackError(f"cannot read {path}: {exc}") from exc
        deployments = config.get("deployments") if isinstance(config, dict) else None
        if not deployments:
            raise StackError(f"{path} declares no deployments")
        return [str(d["name"]) for d in deployments if isinstance(d, dict) and "name" in d]

    def _choose_port(self) -> int:
        if self.port == 0:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((self.host, 0))
                return int(probe.getsockname()[1])
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            if probe.connect_ex((self.host, self.port)) == 0:
                raise StackError(
                    f"port {self.port} on {self.host} is already in use (another Prefect server?): "
                    "stop it or choose another port"
                )
        return self.port

    def _env(self, **extra: str) -> dict[str, str]:
        env = {**RUNTIME_DEFAULTS, **os.environ}
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_URL=self.api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            DO_NOT_TRACK="1",
        )
        env.update(extra)
        return env

    def _spawn(self, args: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = log_path.open("ab")
        self._logs.append(log)
        process = subprocess.Popen(
            [str(self.prefect), *args],
            cwd=self.repo_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() ends its children too
        )
        self._groups.append(process.pid)
        return process

    def _start_server(self) -> None:
        extra = {}
        if self.scheduler_loop_seconds is not None:
            extra["PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS"] = str(self.scheduler_loop_seconds)
        self._server = self._spawn(
            ["server", "start", "--host", self.host, "--port", str(self.port)], self.server_log, self._env(**extra)
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            if self._server.poll() is not None:
                raise StackError(
                    f"the Prefect server exited with code {self._server.returncode} before answering on "
                    f"{self.api_url}/health; {_log_tail(self.server_log)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.api_url}/health", timeout=2.0).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise StackError(
                    f"the Prefect server did not answer on {self.api_url}/health within {self.startup_timeout_s:.0f} s;"
                    f" {_log_tail(self.server_log)}"
                )
            time.sleep(0.5)

    def _run_step(self, args: list[str], label: str) -> str:
        """Run one ``prefect --no-prompt ...`` command to the end; its output goes to ``<home>/<label>.log``."""
        log_path = self.home / f"{label.split()[0]}.log"
        try:
            done = subprocess.run(
                [str(self.prefect), "--no-prompt", *args],
                cwd=self.repo_root,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=self.step_timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"`prefect {label}` did not finish within {self.step_timeout_s:.0f} s") from exc
        output = (done.stdout or "") + (done.stderr or "")
        log_path.write_text(output, encoding="utf-8")
        if done.returncode != 0:
            raise StackError(f"`prefect {label}` failed (exit {done.returncode}); {_log_tail(log_path)}")
        return output

    def _read_deployments(self) -> list[DeployedDeployment]:
        flows = {f["id"]: f["name"] for f in self.api("POST", "/flows/filter", {})}
        found = []
        for deployment in self.api("POST", "/deployments/filter", {}):
            schedules = []
            for entry in deployment.get("schedules") or []:
                schedule = entry.get("schedule") or {}
                if "cron" in schedule:
                    what = f"cron {schedule['cron']} {schedule.get('timezone') or 'UTC'}"
                elif "interval" in schedule:
                    what = f"every {schedule['interval']} s"
                else:
                    what = f"rrule {schedule.get('rrule')}"
                schedules.append(f"{what} ({'active' if entry.get('active') else 'inactive'})")
            found.append(
                DeployedDeployment(
                    deployment_id=deployment["id"],
                    name=deployment["name"],
                    flow_name=flows.get(deployment["flow_id"], "?"),
                    schedules=tuple(schedules),
                )
            )
        return sorted(found, key=lambda d: d.name)

    def _start_worker(self) -> None:
        extra = {"KBCURATOR_HOME": str(self.repo_root), **self.worker_env}
        if self.worker_query_seconds is not None:
            extra["PREFECT_WORKER_QUERY_SECONDS"] = str(self.worker_query_seconds)
        self._worker = self._spawn(["worker", "start", "--pool", self.pool], self.worker_log, self._env(**extra))
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            if self._worker.poll() is not None:
                raise StackError(
                    f"the Prefect worker exited with code {self._worker.returncode} before it polled pool "
                    f"{self.pool!r}; {_log_tail(self.worker_log)}"
                )
            # The worker registers itself with its first heartbeat, as it starts polling.
            with contextlib.suppress(StackError):
                if self.api("POST", f"/work_pools/{self.pool}/workers/filter", {}, timeout_s=5.0):
                    return
            if time.monotonic() > deadline:
                raise StackError(
                    f"the Prefect worker did not register with pool {self.pool!r} within "
                    f"{self.startup_timeout_s:.0f} s; {_log_tail(self.worker_log)}"
                )
            time.sleep(0.5)


def _one_line(text: str, limit: int = 400) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    joined = " | ".join(lines[-3:])
    return joined[-limit:] if joined else "(no output)"


def _log_tail(path: Path, lines: int = 3) -> str:
    """The last few lines of a log, on one line, and where the whole log is."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"no log at {path}"
    tail = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return f"log ends: {' | '.join(tail) or '(empty)'} (full log: {path})"


def _end_group(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the process group ``process`` leads, SIGKILL whatever is left after ``grace_s``, reap the leader."""
    _end_group_id(process.pid, grace_s, leader=process)


def _end_group_id(pgid: int, grace_s: float, leader: subprocess.Popen[bytes] | None = None) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if leader is not None:
            leader.poll()  # reaps the leader, so it stops counting as alive
        if not _group_alive(pgid):
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    if leader is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            leader.wait(timeout=grace_s)
    deadline = time.monotonic() + grace_s
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)


def _proc_stats() -> list[tuple[int, str, int, int]]:
    """(pid, state, ppid, pgrp) of every process, from /proc (Linux); empty where there is no /proc."""
    stats = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
        if len(fields) >= 3:
            stats.append((int(entry.name), fields[0], int(fields[1]), int(fields[2])))
    return stats


def _group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is in group ``pgid``."""
    if Path("/proc/self/stat").exists():
        return any(pgrp == pgid and state not in ("Z", "X") for _, state, _, pgrp in _proc_stats())
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _descendant_groups(pid: int) -> list[int]:
    """The process groups of ``pid``'s descendants other than its own (flow runs start in sessions of their own)."""
    stats = _proc_stats()
    children: dict[int, list[int]] = {}
    groups = {p: pgrp for p, _, _, pgrp in stats}
    for p, _, ppid, _ in stats:
        children.setdefault(ppid, []).append(p)
    found: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        group = groups.get(child)
        if group is not None and group != groups.get(pid) and group not in found:
            found.append(group)
        todo.extend(children.get(child, []))
    return found
