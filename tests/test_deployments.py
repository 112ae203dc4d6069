"""prefect.yaml against a real stack: a Prefect server, the work pool, `prefect deploy --all` and a process worker,
started as the on-call engineer's `kbcurator up` does (kbcurator.prefect_stack), on a free port and a temporary
PREFECT_HOME. The flow runs write their index and runs into tmp_path (KB_INDEX_URI, KB_RUNS_DIR). Then
`kbcurator up` itself: its clear errors, and a run on a tiny project stopped with SIGTERM.

This is the test that catches a dependency that breaks Prefect's server (pyproject.toml: SQLAlchemy 2.1 left
deployments without scheduled runs; fastapi 0.154 stopped `deploy --all` after one deployment).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO
from typer.testing import CliRunner

from kbcurator.cli import app
from kbcurator.prefect_stack import PrefectStack, StackError

ZENDESK_TOKEN = "zdtok-deploy-9Fq2Lx7Wm4Rb"

runner = CliRunner()

DECLARED: dict[str, dict[str, Any]] = {
    d["name"]: d for d in yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))["deployments"]
}
RUNS_DEADLINE_S = 8 * 60  # the nightly and then the daily gaps, together
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _has_active_schedule(deployment: dict[str, Any]) -> bool:
    return any(s.get("active", True) for s in deployment.get("schedules") or [])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectStack]:
    root = tmp_path_factory.mktemp("stack")
    started = PrefectStack(
        root / "prefect",
        REPO,
        port=0,
        scheduler_loop_seconds=5,
        worker_query_seconds=2,
        worker_env={
            "KB_INDEX_URI": str(root / "kb" / "index"),
            "KB_RUNS_DIR": str(root / "kb" / "runs"),
            "KB_ZENDESK_TOKEN": ZENDESK_TOKEN,  # the helpdesk token lives in the worker's environment only
        },
    )
    started.start()
    yield started
    groups = started.process_groups
    started.stop()
    assert groups and not started.running(), f"processes left running in groups {groups}"
    _assert_nothing_left(started.home, started.port)


def _processes_using(home: Path) -> list[int]:
    """Live processes whose environment names ``home`` as PREFECT_HOME (Linux /proc; others' cannot be read)."""
    marker = f"PREFECT_HOME={home}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ and stat[stat.rfind(")") + 2] != "Z":  # a zombie has ended, only not been reaped
            found.append(int(entry.name))
    return found


def _assert_nothing_left(home: Path, port: int) -> None:
    assert _processes_using(home) == [], "processes of the stack are still running"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, f"something still answers on port {port}"


def _runs(stack: PrefectStack, deployment_id: str, state: str | None = None) -> list[dict[str, Any]]:
    flow_runs: dict[str, Any] = {"deployment_id": {"any_": [deployment_id]}}
    if state:
        flow_runs["state"] = {"type": {"any_": [state]}}
    return stack.api("POST", "/flow_runs/filter", {"flow_runs": flow_runs})


def _worker_log_tail(stack: PrefectStack, lines: int = 60) -> str:
    text = stack.worker_log.read_text(encoding="utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _run_to_completion(
    stack: PrefectStack, name: str, deadline: float, parameters: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Create a run of deployment ``name`` now, as `prefect deployment run` does, and wait for its final state."""
    deployment = next(d for d in stack.deployments if d.name == name)
    body = {"parameters": parameters} if parameters else {}
    run = stack.api("POST", f"/deployments/{deployment.deployment_id}/create_flow_run", body)
    while True:
        run = stack.api("GET", f"/flow_runs/{run['id']}")
        if run["state_type"] in TERMINAL:
            break
        assert time.monotonic() < deadline, (
            f"{name} still {run['state_type']} at the deadline; worker log ends:\n{_worker_log_tail(stack)}"
        )
        time.sleep(2)
    assert run["state_type"] == "COMPLETED", (
        f"{name} ended {run['state_type']}: {run['state']['message']}\nworker log ends:\n{_worker_log_tail(stack)}"
    )
    return run


def _artifacts_of(stack: PrefectStack, run_id: str) -> dict[str, str]:
    """Markdown of each keyed artifact made by the run or any of its subflow runs, by key."""
    run_ids, frontier = [run_id], [run_id]
    while frontier:
        children = stack.api("POST", "/flow_runs/filter", {"flow_runs": {"parent_flow_run_id": {"any_": frontier}}})
        frontier = [c["id"] for c in children if c["id"] not in run_ids]
        run_ids += frontier
    artifacts = stack.api("POST", "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": run_ids}}})
    return {a["key"]: str(a["data"]) for a in artifacts if a.get("key")}


# The `kbcurator up` tests come first: the module's stack starts with the first test that needs it, so the two
# stacks never run side by side.


def test_up_outside_a_checkout_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["up", "--port", "0", "--home", str(tmp_path / "prefect")])
    assert result.exit_code == 1
    assert f"error: no prefect.yaml in {tmp_path}: run `kbcurator up` from the repository root" in result.output


def test_up_on_a_port_in_use_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["up", "--port", str(port), "--home", str(tmp_path / "prefect")])
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.output
    assert not (tmp_path / "prefect" / "server.log").exists()  # nothing was started


TINY_PROJECT = """
name: tiny
prefect-version: 3.8.8
pull:
  - prefect.deployments.steps.set_working_directory:
      directory: "{{ $KBCURATOR_HOME }}"
deployments:
  - name: hello-on-demand
    entrypoint: hello.py:hello
    work_pool: {name: kbcurator, work_queue_name: default}
"""


@pytest.mark.server
@pytest.mark.timeout(300)
def test_up_serves_until_sigterm_then_leaves_nothing_running(tmp_path: Path) -> None:
    """`kbcurator up` as a service manager runs it: on a tiny project (deploys in seconds), stopped with SIGTERM."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "prefect.yaml").write_text(TINY_PROJECT)
    (project / "hello.py").write_text("from prefect import flow\n\n\n@flow\ndef hello() -> str:\n    return 'hi'\n")
    home = (tmp_path / "prefect").resolve()
    kbcurator = Path(sys.executable).parent / "kbcurator"
    up = subprocess.Popen(
        [str(kbcurator), "up", "--port", "0", "--home", str(home)],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert up.stdout is not None
        for line in up.stdout:
            lines.append(line.rstrip())
            if line.startswith("Ctrl-C stops"):
                break
        output = "\n".join(lines)
        assert "Ctrl-C stops" in output, output
        ui = next(line.split()[-1] for line in lines if line.startswith("UI:"))
        assert ui.startswith("http://127.0.0.1:")
        assert any("hello/hello-on-demand" in line and "no schedule (on demand)" in line for line in lines), output
        assert _processes_using(home), "up printed its address but no stack process is running"
        up.send_signal(signal.SIGTERM)
        rest, _ = up.communicate(timeout=120)
    finally:
        if up.poll() is None:  # a failed assertion above: stop it as a user would, so its stack stops too
            up.terminate()
            try:
                up.wait(timeout=60)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()
    assert up.returncode == 0, output + rest
    assert rest.splitlines()[-1] == "stopped", rest
    _assert_nothing_left(home, int(ui.rsplit(":", 1)[1]))


@pytest.mark.server
@pytest.mark.timeout(1200)  # the first of these also pays for the stack's start
def test_every_deployment_in_prefect_yaml_is_on_the_server(stack: PrefectStack) -> None:
    on_server = {d.name: d for d in stack.deployments}
    assert set(on_server) == set(DECLARED)
    for name, declared in DECLARED.items():
        deployed = on_server[name]
        assert deployed.active_schedule == _has_active_schedule(declared), (name, deployed.schedules)
        assert len(deployed.schedules) == len(declared.get("schedules") or []), name
        body = stack.api("GET", f"/deployments/{deployed.deployment_id}")
        assert body["work_pool_name"] == declared["work_pool"]["name"] == stack.pool
        assert body["entrypoint"] == declared["entrypoint"]
    assert stack.ui_url.startswith("http://127.0.0.1:")


@pytest.mark.server
@pytest.mark.timeout(1200)
def test_active_schedules_get_scheduled_runs_and_inactive_ones_none(stack: PrefectStack) -> None:
    ids = {d.name: d.deployment_id for d in stack.deployments}
    active = [name for name, declared in DECLARED.items() if _has_active_schedule(declared)]
    assert active, "prefect.yaml schedules nothing"
    deadline = time.monotonic() + 60
    waiting = set(active)
    while waiting and time.monotonic() < deadline:
        waiting = {name for name in waiting if not _runs(stack, ids[name], "SCHEDULED")}
        if waiting:
            time.sleep(1)
    assert not waiting, f"no scheduled runs within 60 s for {sorted(waiting)}; {stack.server_log}"
    for name in set(DECLARED) - set(active):
        assert _runs(stack, ids[name]) == [], f"{name} has no active schedule but got runs"


@pytest.mark.server
@pytest.mark.timeout(1200)
def test_nightly_then_daily_gaps_run_on_the_worker_and_publish_their_artifacts(stack: PrefectStack) -> None:
    deadline = time.monotonic() + RUNS_DEADLINE_S
    clock = time.monotonic()
    nightly = _run_to_completion(stack, "nightly-reindex", deadline)
    nightly_s = time.monotonic() - clock
    artifacts = _artifacts_of(stack, nightly["id"])
    assert {"kb-reindex", "kb-health", "kb-gaps", "kb-report"} <= set(artifacts), sorted(artifacts)
    for key in ("kb-reindex", "kb-gaps", "kb-report"):
        assert "release-0001" in artifacts[key], f"{key}:\n{artifacts[key]}"

    clock = time.monotonic()
    gaps = _run_to_completion(stack, "daily-gaps", deadline)
    gaps_s = time.monotonic() - clock
    artifacts = _artifacts_of(stack, gaps["id"])
    assert set(artifacts) == {"kb-gaps"}, sorted(artifacts)
    assert "release-0001" in artifacts["kb-gaps"], artifacts["kb-gaps"]
    print(f"nightly-reindex {nightly_s:.0f} s, daily-gaps {gaps_s:.0f} s on the worker")


# What customers ask in the sample's tickets first, then a topic the help center has never covered.
NEW_TOPIC = [
    "How do I change the email address on my patient portal account?",
    "I need to update the email on my patient portal login",
    "Change email address for my patient portal account please",
    "How can I change my patient portal email address?",
    "My patient portal account has my old email, how do I change it?",
    "Update the email address of my patient portal account",
]


def test_daily_gaps_follows_a_helpdesk_api_through_the_real_server(stack: PrefectStack, tmp_path: Path) -> None:
    """Two runs of `daily-gaps` against a local Zendesk incremental export, new tickets added in between: the second
    run fetches only those, reports their gap as new, and the token is in no artifact or run file."""
    import csv

    from site_server import SiteServer
    from test_zendesk_tickets_api import FakeZendesk

    from kbcurator.index.store import IndexStore

    deadline = time.monotonic() + RUNS_DEADLINE_S
    if IndexStore(stack.worker_env["KB_INDEX_URI"]).current() is None:
        _run_to_completion(stack, "nightly-reindex", deadline)  # this test alone: a release to score against
    with (REPO / "kb_sources" / "sample_tickets" / "tickets.csv").open(encoding="utf-8") as handle:
        sample = [row["text"] for row in csv.DictReader(handle)]  # all 171: coverage-first leaves few to cluster
    with SiteServer() as site:
        zendesk = FakeZendesk(site)
        for number, text in enumerate(sample, start=1):
            zendesk.put(number, subject="", description=text)
        config = yaml.safe_load((REPO / "kb_sources" / "sample.yaml").read_text())
        config["sources"][0]["location"] = str(REPO / "kb_sources" / "sample_help_center" / "site")
        config.pop("retrieval", None)
        config["tickets"] = [
            {
                "id": "helpdesk",
                "format": "zendesk_api",
                "location": site.base,
                "api": {"window_days": 3650, "start_days": 3650, "per_page": 50, "requests_per_minute": 6000},
            }
        ]
        path = tmp_path / "helpdesk.yaml"
        path.write_text(yaml.safe_dump(config))
        first = _run_to_completion(stack, "daily-gaps", deadline, {"config": str(path)})
        served = len(zendesk.served)
        for number, text in enumerate(NEW_TOPIC, start=1000):
            zendesk.put(number, subject="", description=text)
        second = _run_to_completion(stack, "daily-gaps", deadline, {"config": str(path)})
        assert sorted(zendesk.served[served:]) == list(range(1000, 1000 + len(NEW_TOPIC)))  # only what is new

    store = IndexStore(stack.worker_env["KB_INDEX_URI"])
    gap_rows = store.rows("gaps")
    latest_run = max(gap_rows, key=lambda r: r["run_at"])["run_id"]
    latest = [r for r in gap_rows if r["run_id"] == latest_run]
    new_gap = next((r for r in latest if r["central_query"] in NEW_TOPIC), None)
    assert new_gap is not None, [(r["label"], r["central_query"]) for r in latest]
    assert new_gap["trend"] == "new" and new_gap["action"] != "covered"
    assert {r["trend"] for r in latest} - {"new"}, "the topics of the first run are followed, not all new"
    for run in (first, second):
        artifacts = _artifacts_of(stack, run["id"])
        assert set(artifacts) == {"kb-gaps"} and ZENDESK_TOKEN not in artifacts["kb-gaps"]
    assert new_gap["central_query"] in _artifacts_of(stack, second["id"])["kb-gaps"]  # the morning's gap list
    for written in Path(stack.worker_env["KB_RUNS_DIR"]).rglob("*"):
        if written.is_file():
            assert ZENDESK_TOKEN not in written.read_text(encoding="utf-8", errors="replace")


def test_the_stack_retries_a_busy_server_and_reports_one_that_stays_busy(tmp_path: Path) -> None:
    """Prefect's server answers 503 while its database is busy: the stack's API calls wait it out, as Prefect's
    own client does, and give one clear error when it does not pass."""
    from site_server import Reply, SiteServer

    with SiteServer() as site:
        site.route("/api/flaky", lambda hit: Reply(503, b"{}") if hit < 2 else Reply(200, b'{"ok": true}'))
        site.route("/api/down", lambda hit: Reply(503, b'{"exception_message":"Service Unavailable"}'))
        stack = PrefectStack(tmp_path / "home", REPO, port=int(site.base.rsplit(":", 1)[1].strip("/")))
        assert stack.api("GET", "/flaky") == {"ok": True}
        with pytest.raises(StackError, match="answered 503"):
            stack.api("GET", "/down")
