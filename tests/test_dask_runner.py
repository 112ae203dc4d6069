"""The reindex on a Dask cluster (settings.execution): a real local cluster of worker processes, a real Prefect
flow, GX checks and LanceDB. The release it publishes must equal the in-process one, row for row.

The embedder is the deterministic fake (named as such): the worker processes import it by ``module:Class``,
as they would a user's own embedder; the real model on workers costs a model load per worker.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml
from conftest import SAMPLE

from kbcurator.index.store import IndexStore, manifest_of

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_harness")]

FAKE_EMBEDDER = "fakes:FakeHashingEmbedder"  # tests/ is on sys.path, which spawned workers inherit


def _site(tmp_path: Path, count: int = 24) -> Path:
    site = tmp_path / "site"
    (site / "articles").mkdir(parents=True)
    for page in sorted((SAMPLE / "site" / "articles").glob("*.html"))[:count]:
        shutil.copy(page, site / "articles" / page.name)
    return site


def _config(tmp_path: Path, name: str, site: Path, execution: dict | None = None) -> str:
    config = tmp_path / f"{name}.yaml"
    settings = {
        "index_uri": str(tmp_path / name / "index"),
        "runs_dir": str(tmp_path / name / "runs"),
        "sources": [
            {
                "id": "cdc",
                "kind": "folder",
                "location": str(site),
                "include": ["articles/*.html"],
                "base_url": "https://help.example.com/",
            }
        ],
        "embedding": {"model": FAKE_EMBEDDER},
        # Small batches, so a couple dozen articles still make several tasks per worker.
        "execution": {"chunk_batch_articles": 5, "embed_batch_chunks": 7, **(execution or {})},
    }
    config.write_text(yaml.safe_dump(settings))
    return str(config)


def _published_chunks(config: str) -> pa.Table:
    settings = yaml.safe_load(Path(config).read_text())
    store = IndexStore(settings["index_uri"])
    release = store.current()
    assert release is not None
    return store.read_table("chunks", release.chunks_version).sort_by("chunk_id")


def test_a_local_cluster_publishes_the_same_release_as_in_process(tmp_path) -> None:
    from flows.reindex import reindex_flow

    site = _site(tmp_path)
    # A page that unstructured cannot chunk into anything is recorded on the Dask path too.
    (site / "articles" / "empty.html").write_text("<html><head><title>Empty</title></head><body></body></html>")
    in_process = reindex_flow(config=_config(tmp_path, "local", site), audit=False)
    on_dask = reindex_flow(config=_config(tmp_path, "dask", site, {"local_workers": 2}), audit=False)

    assert on_dask["outcome"] == "published release-0001"
    assert on_dask["articles"] == in_process["articles"] == 24
    assert on_dask["rejected"] == in_process["rejected"] >= 1
    expected, actual = (
        _published_chunks(_config(tmp_path, "local", site)),
        _published_chunks(_config(tmp_path, "dask", site, {"local_workers": 2})),
    )
    assert actual["chunk_id"].to_pylist() == expected["chunk_id"].to_pylist()
    assert actual["row_hash"].to_pylist() == expected["row_hash"].to_pylist()
    np.testing.assert_allclose(
        np.asarray(actual["vector"].to_pylist()), np.asarray(expected["vector"].to_pylist()), atol=1e-6
    )
    assert on_dask["build"]["chunks_embedded"] == in_process["build"]["chunks_embedded"] > 0


def _finding_ids(run_dir: Path) -> set[str]:
    payload = json.loads((run_dir / "findings.json").read_text())
    return {finding["finding_id"] for finding in payload["findings"]}


def test_an_existing_scheduler_address_builds_incrementally_and_audits_like_in_process(tmp_path) -> None:
    from distributed import LocalCluster

    from flows.audit import audit_flow
    from flows.reindex import reindex_flow

    site = _site(tmp_path, count=12)
    # Threads in this process stand in for a remote scheduler's workers (no spawn cost); the flow only sees an address.
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        config = _config(tmp_path, "remote", site, {"dask_address": cluster.scheduler_address})
        first = reindex_flow(config=config, audit=False)
        assert first["outcome"] == "published release-0001"
        page = sorted((site / "articles").glob("*.html"))[0]
        page.write_text(page.read_text().replace("</article>", "<p>A new sentence about ventilation.</p></article>", 1))
        second = reindex_flow(config=config, audit=False)
        on_dask = audit_flow(config=config, run_dir=str(tmp_path / "audit-dask"))

    settings = yaml.safe_load(Path(config).read_text())
    del settings["execution"]
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(settings))
    in_process = audit_flow(config=str(plain), run_dir=str(tmp_path / "audit-plain"))
    # Every detector ran on the cluster and found what it finds here.
    assert on_dask["failed_detectors"] == [] and on_dask["findings"] > 0
    assert on_dask["counts"] == in_process["counts"]
    assert _finding_ids(tmp_path / "audit-dask") == _finding_ids(tmp_path / "audit-plain")

    assert second["outcome"] == "published release-0002"
    assert second["build"]["articles_reused"] == 11 and second["build"]["articles_chunked"] == 1
    assert 1 <= second["build"]["chunks_embedded"] <= 2
    store = IndexStore(yaml.safe_load(Path(config).read_text())["index_uri"])
    assert manifest_of(store.resolve("current"))["changes"]["articles"]["changed"] == 1


def test_an_unreachable_scheduler_is_a_clear_error_and_publishes_nothing(tmp_path) -> None:
    from flows.reindex import reindex_flow
    from kbcurator.errors import ConfigError

    site = _site(tmp_path, count=3)
    config = _config(tmp_path, "nowhere", site, {"dask_address": "tcp://127.0.0.1:1"})
    with pytest.raises(ConfigError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:1"):
        reindex_flow(config=config, audit=False)
    assert IndexStore(str(tmp_path / "nowhere" / "index")).current() is None


@pytest.mark.parametrize("execution", [{"local_workers": -1}, {"chunk_batch_articles": 0}, {"embed_batch_chunks": 0}])
def test_execution_settings_that_cannot_work_are_refused(tmp_path, execution) -> None:
    from kbcurator.errors import ConfigError
    from kbcurator.settings import load_settings

    with pytest.raises(ConfigError, match="execution"):
        load_settings(_config(tmp_path, "bad", _site(tmp_path, count=1), execution))
