"""The nightly chain as the schedule runs it: reindex, gaps, report in one flow run, and the on-call engineer's
webhook called when a check blocks the publish. Real Prefect, the real model, a real LanceDB directory, a real
HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SAMPLE
from test_notify import Receiver

from kbcurator.errors import ValidationFailed
from kbcurator.index.store import IndexStore

pytestmark = [pytest.mark.flow, pytest.mark.model, pytest.mark.usefixtures("prefect_harness")]

SLICE = 16


def _config(root: Path, site: Path, webhook: str) -> str:
    config = yaml.safe_load((REPO / "kb_sources" / "sample.yaml").read_text())
    config["index_uri"] = str(root / "index")
    config["runs_dir"] = str(root / "runs")
    config["sources"][0]["location"] = str(site)
    config["tickets"][0]["location"] = str(SAMPLE.parent / "sample_tickets" / "tickets.csv")
    config["retrieval"]["golden_file"] = str(REPO / "kb_sources" / config["retrieval"]["golden_file"])
    config["notify"] = {"webhook_url": webhook}
    path = root / "kb.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_the_night_runs_in_order_and_a_blocked_publish_calls_the_webhook(tmp_path) -> None:
    from flows.nightly import nightly_flow

    site = tmp_path / "site"
    (site / "articles").mkdir(parents=True)
    pages = sorted((SAMPLE / "site" / "articles").glob("*.html"))[:SLICE]
    for page in pages:
        shutil.copy(page, site / "articles" / page.name)

    with Receiver() as receiver:
        config = _config(tmp_path, site, receiver.url())
        steps = nightly_flow(config=config)
        # Reindex first, then the gaps against the release it made current, then the report holding those gaps.
        assert steps["reindex"]["outcome"] == "published release-0001"
        assert steps["gaps"]["release"] == "release-0001" and steps["gaps"]["tickets"] > 0
        report = Path(steps["report"]["latest"])
        first_gap = next(g for g in steps["gaps"]["gaps"] if g["action"] != "covered")
        assert first_gap["gap_id"] in report.read_text(encoding="utf-8")
        assert receiver.posts == []  # a good night is quiet by default (notify.on: failed, blocked)

        written = report.stat().st_mtime_ns
        for page in sorted((site / "articles").glob("*.html"))[4:]:
            page.unlink()
        with pytest.raises(ValidationFailed, match="row_count"):
            nightly_flow(config=config)

    assert IndexStore(str(tmp_path / "index")).current().tag == "release-0001"
    (post,) = receiver.posts
    text = post["json"]["text"]
    assert text.startswith("kbcurator nightly: blocked: publish blocked") and "row_count" in text
    assert f"would have removed {SLICE - 4} articles" in text
    # The morning report was still written, against the release that stayed current.
    assert report.stat().st_mtime_ns > written
    assert "release-0001" in report.read_text(encoding="utf-8")
