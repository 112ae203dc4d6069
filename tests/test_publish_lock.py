"""One publish or rollback at a time per index: real processes against a real LanceDB directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from builders import make_article, sample_articles
from fakes import FakeHashingEmbedder

from kbcurator.chunking import ChunkPolicy
from kbcurator.errors import PublishError
from kbcurator.index.build import build_candidate
from kbcurator.index.publish import publish
from kbcurator.index.publish_lock import HOLDER_NAME, check_still_current, publish_lock
from kbcurator.index.store import IndexStore
from kbcurator.index.versions import rollback

TESTS = Path(__file__).resolve().parent

# A second publisher in its own process: publishes the sample plus one article named on the command line.
_PUBLISHER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from builders import make_article, sample_articles
    from fakes import FakeHashingEmbedder
    from kbcurator.chunking import ChunkPolicy
    from kbcurator.index.build import build_candidate
    from kbcurator.index.publish import publish
    from kbcurator.index.store import IndexStore

    store = IndexStore(sys.argv[1])
    articles = [*sample_articles(), make_article(sys.argv[2], "Added by " + sys.argv[2], "Body of " + sys.argv[2])]
    candidate = build_candidate(articles, store=store, embedder=FakeHashingEmbedder(), policy=ChunkPolicy())
    print("built", flush=True)
    release = publish(store, candidate, checks_passed=True, manifest={{}}, lock_timeout_s=float(sys.argv[3]))
    print("published", release.tag, flush=True)
    """
).format(tests=str(TESTS))

# Holds the lock until killed.
_HOLDER = textwrap.dedent(
    """
    import sys, time
    from kbcurator.index.publish_lock import publish_lock
    from kbcurator.index.store import IndexStore

    with publish_lock(IndexStore(sys.argv[1]), timeout_s=5):
        print("holding", flush=True)
        time.sleep(600)
    """
)


@pytest.fixture()
def store(tmp_path) -> IndexStore:
    store = IndexStore(str(tmp_path / "index"))
    candidate = build_candidate(sample_articles(), store=store, embedder=FakeHashingEmbedder(), policy=ChunkPolicy())
    publish(store, candidate, checks_passed=True, manifest={})
    return store


def _candidate(store: IndexStore, slug: str):
    articles = [*sample_articles(), make_article(slug, f"Added by {slug}", f"Body of {slug}")]
    return build_candidate(articles, store=store, embedder=FakeHashingEmbedder(), policy=ChunkPolicy())


def _start(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait_for_line(process: subprocess.Popen[str], wanted: str) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(wanted):
            return
    raise AssertionError(f"the process ended before printing {wanted!r} (exit {process.wait()})")


def test_a_publish_waits_for_the_one_in_progress_then_lands_on_top_of_it(store) -> None:
    other = None
    with publish_lock(store, timeout_s=5):
        other = _start(_PUBLISHER, store.uri, "second-writer", "120")
        _wait_for_line(other, "built")
        time.sleep(1.5)
        # Built, but its publish is waiting: nothing recorded while the lock is held.
        assert other.poll() is None
        assert store.current().seq == 1
    assert other.wait(timeout=120) == 0, other.stdout.read() if other.stdout else ""
    releases = store.releases()
    assert [r.seq for r in releases] == [1, 2]
    assert len({r.tag for r in releases}) == 2
    assert releases[-1].previous_tag == releases[0].tag


def test_of_two_publishes_built_on_one_release_the_second_is_refused_not_stacked_on_the_first(store) -> None:
    with publish_lock(store, timeout_s=5):
        writers = [_start(_PUBLISHER, store.uri, slug, "120") for slug in ("first", "second")]
        for writer in writers:
            _wait_for_line(writer, "built")  # both built on release-0001, both now wait for the lock
    outcomes = [(writer.wait(timeout=120), writer.stdout.read() if writer.stdout else "") for writer in writers]
    assert sorted(code for code, _ in outcomes) == [0, 1], outcomes
    # The second's change list and row-count check were against release-0001: it must not land as release 3.
    refused = next(output for code, output in outcomes if code)
    assert "built on release-0001 (#1), but release-0002 (#2) was made current since" in refused
    assert [r.seq for r in store.releases()] == [1, 2]


def test_a_publish_that_cannot_get_the_lock_fails_clearly_and_changes_nothing(store) -> None:
    candidate = _candidate(store, "late")
    held = rf"held its lock .*pid {os.getpid()}.*current release stays current"
    with publish_lock(store, timeout_s=5), pytest.raises(PublishError, match=held):
        publish(store, candidate, checks_passed=True, manifest={}, lock_timeout_s=0.3)
    assert [r.seq for r in store.releases()] == [1]
    # Released: the same publish now goes through.
    assert publish(store, candidate, checks_passed=True, manifest={}).seq == 2
    assert not (Path(store.uri) / HOLDER_NAME).exists()


def test_a_rollback_takes_the_same_lock(store) -> None:
    publish(store, _candidate(store, "second"), checks_passed=True, manifest={})
    with publish_lock(store, timeout_s=5), pytest.raises(PublishError, match="held its lock"):
        rollback(store, 1, lock_timeout_s=0.3)
    assert store.current().seq == 2
    assert rollback(store, 1).seq == 3


def test_a_killed_holder_leaves_no_stale_lock(store) -> None:
    holder = _start(_HOLDER, store.uri)
    try:
        _wait_for_line(holder, "holding")
        with pytest.raises(PublishError, match="held its lock"):
            publish(store, _candidate(store, "blocked"), checks_passed=True, manifest={}, lock_timeout_s=0.3)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    # The OS dropped the dead process's lock: no manual clean-up needed.
    assert publish(store, _candidate(store, "after"), checks_passed=True, manifest={}, lock_timeout_s=5).seq == 2


def test_a_release_recorded_meanwhile_by_another_run_is_refused_not_duplicated(store) -> None:
    # What guards an object store, where there is no file lock: the release read at the start must still be current.
    started_from = store.current()
    publish(store, _candidate(store, "meanwhile"), checks_passed=True, manifest={})
    with pytest.raises(PublishError, match=r"recorded .* by another run"):
        check_still_current(store, started_from)
    check_still_current(store, store.current())


def test_a_lock_that_cannot_be_created_is_a_publish_error_not_a_traceback(tmp_path) -> None:
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("x")
    # Only the URI is read before the lock is taken: a stand-in store is enough to reach the OS error.
    store = SimpleNamespace(uri=str(not_a_folder / "index"))
    with pytest.raises(PublishError, match="cannot take the publish lock"), publish_lock(store, timeout_s=1):
        pass
