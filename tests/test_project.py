"""The project's wiring: prefect.yaml's entrypoints import, and the README's commands are what CI runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml
from conftest import REPO


def test_every_prefect_deployment_entrypoint_imports_a_flow() -> None:
    from prefect import Flow

    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    deployments = config["deployments"]
    assert {d["name"] for d in deployments} >= {"nightly-reindex"}
    for deployment in deployments:
        path, _, name = deployment["entrypoint"].partition(":")
        spec = importlib.util.spec_from_file_location(f"entry_{name}", REPO / path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        flow = getattr(module, name)
        assert isinstance(flow, Flow)
        # Every parameter the deployment sets is one the flow accepts.
        assert set(deployment.get("parameters", {})) <= set(flow.parameters.properties)
        for schedule in deployment.get("schedules", []):  # on-demand deployments have none
            assert schedule["cron"]
    assert all(d.get("schedules") for d in deployments if d["name"] in {"nightly-reindex", "daily-gaps"})
    nightly = next(d for d in deployments if d["name"] == "nightly-reindex")
    assert nightly["entrypoint"] == "flows/nightly.py:nightly_flow" and nightly["schedules"][0]["active"]


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    commands = [line for line in ci_lines if line and not line.startswith(("#", "set ", "cd "))]
    assert commands == ["make test"]
    assert "make test" in readme and "make demo" in readme


def test_the_package_imports_neither_flows_nor_checks() -> None:
    for path in Path(REPO / "src" / "kbcurator").rglob("*.py"):
        source = path.read_text()
        assert "from flows" not in source and "import flows" not in source, path
        assert "from checks" not in source and "import checks" not in source, path


def test_the_dask_deployment_sets_settings_the_reindex_reads(monkeypatch) -> None:
    from kbcurator.settings import load_settings

    deployments = {d["name"]: d for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]}
    env = deployments["nightly-reindex-dask"]["work_pool"]["job_variables"]["env"]
    # Only one nightly reindex may be on at a time.
    assert not all(
        s["active"] for name in ("nightly-reindex", "nightly-reindex-dask") for s in deployments[name]["schedules"]
    )
    for key, value in env.items():
        monkeypatch.setenv(key, value.replace("{{ $DASK_SCHEDULER_ADDRESS }}", "tcp://10.0.0.5:8786"))
    execution = load_settings(REPO / "kb_sources" / "sample.yaml").execution
    assert execution.dask_address == "tcp://10.0.0.5:8786" and execution.distributed
    assert execution.embed_batch_chunks == int(env["KB_EXECUTION__EMBED_BATCH_CHUNKS"])


def test_the_installed_environment_is_the_locked_one() -> None:
    """`make install` installs within requirements.lock: what runs here is what CI tested (Prefect's server breaks
    with newer SQLAlchemy and fastapi than a fresh resolve picks)."""
    from importlib.metadata import distributions

    from packaging.utils import canonicalize_name

    lines = (REPO / "requirements.lock").read_text().splitlines()
    locked = dict(line.split("==", 1) for line in lines if line and not line.startswith("#"))
    locked = {canonicalize_name(name): version for name, version in locked.items()}
    assert {"prefect", "sqlalchemy", "fastapi", "lancedb", "great-expectations"} <= set(locked)
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}
    skipped = {"torch", "pip", "uv", "setuptools", "kbcurator"}  # torch: the CPU wheel, installed first and alone
    differing = {
        name: (version, locked.get(name))
        for name, version in installed.items()
        if name not in skipped and name in locked and locked[name] != version
    }
    missing = sorted(set(locked) - set(installed))
    assert not differing, f"installed (version, locked): {differing}; run `make install` or `make lock`"
    assert not missing, f"locked but not installed: {missing}"
