"""What a damaged file, a killed publish or a stale candidate can do to an index, on a real LanceDB directory."""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from builders import TOPICS, make_article, sample_articles
from fakes import FakeHashingEmbedder

from kbcurator.chunking import ChunkPolicy
from kbcurator.errors import PublishError
from kbcurator.index.build import build_candidate
from kbcurator.index.publish import publish
from kbcurator.index.store import IndexStore, lance_errors, manifest_of
from kbcurator.index.versions import diff_releases, rollback

TESTS = Path(__file__).resolve().parent
POLICY = ChunkPolicy()


def _publish(store: IndexStore, articles, **manifest):
    candidate = build_candidate(articles, store=store, embedder=FakeHashingEmbedder(), policy=POLICY)
    return publish(store, candidate, checks_passed=True, manifest=manifest)


def _rewritten_articles():
    """The sample topics under new URLs: every article and chunk id differs, so no data file is shared."""
    return [make_article(f"{slug}-v2", title, f"{body} Updated in 2026.") for slug, (title, body) in TOPICS.items()]


def _data_files(store: IndexStore, table: str) -> set[Path]:
    return set((Path(store.uri) / f"{table}.lance" / "data").glob("*.lance"))


@pytest.fixture()
def two_releases(tmp_path) -> Iterator[tuple[str, dict[str, set[Path]]]]:
    """release-0001 (the sample) and release-0002 (every row replaced); yields the URI and release 1's data files."""
    store = IndexStore(str(tmp_path / "index"))
    _publish(store, sample_articles())
    first_files = {name: _data_files(store, name) for name in ("articles", "chunks")}
    _publish(store, _rewritten_articles())
    assert [r.tag for r in store.releases()] == ["release-0001", "release-0002"]
    yield store.uri, first_files


# -- 10: a damaged data file of an old release ----------------------------------------------------------------


def _varint(data: bytes | bytearray, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _fields(data: bytes | bytearray, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, first byte of the value, end of the value) of each protobuf field in data[start:end]."""
    pos = start
    while pos < end:
        key, pos = _varint(data, pos)
        wire = key & 7
        if wire == 0:
            _, after = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            after = pos + length
        else:
            after = pos + (8 if wire == 1 else 4)
        yield key >> 3, pos, after
        pos = after


def _declare_first_buffer_empty(path: Path) -> None:
    """Damage a Lance v2 file in place, keeping its size: column 0's first page says its first buffer is empty.

    Only decoding finds this out, and LanceDB 0.40 panics on it (``pyo3_async_runtimes.RustPanic``) instead of
    raising an error. The 40-byte footer locates the column-metadata offsets table; a column's metadata is
    ``ColumnMetadata{pages: 2 -> Page{buffer_sizes: 2 (packed)}}``.
    """
    data = bytearray(path.read_bytes())
    offsets_table = struct.unpack_from("<Q", data, len(data) - 32)[0]
    start, length = struct.unpack_from("<QQ", data, offsets_table)
    page = next((s, e) for field, s, e in _fields(data, start, start + length) if field == 2)
    sizes = next(s for field, s, _ in _fields(data, *page) if field == 2)
    assert 0 < data[sizes] < 0x80, "the file layout changed: pick another way to damage it"
    data[sizes] = 0
    path.write_bytes(bytes(data))


def test_diff_with_a_damaged_old_release_is_one_error_naming_release_and_table(two_releases) -> None:
    uri, first_files = two_releases
    for path in first_files["articles"]:
        _declare_first_buffer_empty(path)
    store = IndexStore(uri)  # a new process, as `kbcurator diff` is: nothing cached from before the damage
    with pytest.raises(PublishError, match=r"^release-0001 \(#1\): cannot read 'articles' at version \d+: "):
        diff_releases(store, "release-0001", "current")
    # The current release does not share the damaged file and still reads.
    current = store.current()
    assert store.scan("articles", current.articles_version) == 5


@pytest.mark.parametrize("table", ["articles", "chunks"])
def test_rollback_to_a_release_with_a_damaged_data_file_is_refused(two_releases, table: str) -> None:
    uri, first_files = two_releases
    for path in first_files[table]:
        path.write_bytes(path.read_bytes()[:-100])  # truncated, as by a full disk or an interrupted copy
    store = IndexStore(uri)
    with pytest.raises(
        PublishError,
        match=rf"^not rolling back: release-0001 \(#1\) does not read in full: cannot read '{table}' at version",
    ):
        rollback(store, "release-0001")
    assert store.current().tag == "release-0002"
    assert [r.seq for r in store.releases()] == [1, 2]


class PanicException(BaseException):
    """Shaped like pyo3's: a Rust panic surfaces as a BaseException, which ``except Exception`` misses."""


def test_lance_errors_maps_a_rust_panic_but_lets_an_interrupt_through() -> None:
    mapped = r"^cannot read 'chunks' at version 3: LanceDB panicked \(PanicException: index out of bounds[^\n]*$"
    with pytest.raises(PublishError, match=mapped), lance_errors("cannot read 'chunks' at version 3"):
        raise PanicException("index out of bounds: the len is 3 but the index is 7\nmore detail")
    with pytest.raises(KeyboardInterrupt), lance_errors("cannot read"):
        raise KeyboardInterrupt


# -- 11: a publish that dies between tagging and recording its release ---------------------------------------


def _release_tags(store: IndexStore) -> dict[str, set[str]]:
    return {name: set(store.db.open_table(name).tags.list()) for name in ("articles", "chunks")}


def test_a_publish_failing_after_tagging_leaves_no_tag_without_a_release(tmp_path, monkeypatch) -> None:
    store = IndexStore(str(tmp_path / "index"))
    first = _publish(store, sample_articles())
    candidate = build_candidate(_rewritten_articles(), store=store, embedder=FakeHashingEmbedder(), policy=POLICY)

    def disk_full(*_args, **_kwargs):
        raise PublishError("cannot record the release: No space left on device")

    monkeypatch.setattr(IndexStore, "append_release", disk_full)
    with pytest.raises(PublishError, match="No space left"):
        publish(store, candidate, checks_passed=True, manifest={})
    monkeypatch.undo()
    assert store.current() == first
    # A plain LanceDB checkout("release-0002") would otherwise serve rows that were never published.
    assert _release_tags(store) == {"articles": {"release-0001"}, "chunks": {"release-0001"}}

    second = publish(store, candidate, checks_passed=True, manifest={})
    assert second.tag == "release-0002"
    assert _release_tags(store) == {
        "articles": {"release-0001", "release-0002"},
        "chunks": {"release-0001", "release-0002"},
    }


# Publishes the rewritten articles on top of the current release and dies (no exception handler runs) right
# where the release row would be written: the state a SIGKILL or a lost machine leaves.
_KILLED_PUBLISHER = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {tests!r})
    from builders import TOPICS, make_article
    from fakes import FakeHashingEmbedder
    from kbcurator.chunking import ChunkPolicy
    from kbcurator.index.build import build_candidate
    from kbcurator.index.publish import publish
    from kbcurator.index.store import IndexStore

    store = IndexStore(sys.argv[1])
    articles = [make_article(f"{{s}}-v3", t, b + " Third.") for s, (t, b) in TOPICS.items()]
    candidate = build_candidate(articles, store=store, embedder=FakeHashingEmbedder(), policy=ChunkPolicy())
    IndexStore.append_release = lambda *_args, **_kwargs: os._exit(9)
    publish(store, candidate, checks_passed=True, manifest={{}})
    """
).format(tests=str(TESTS))


def test_a_tag_left_by_a_killed_publish_is_removed_by_the_next_rollback_and_publish(two_releases) -> None:
    uri, _ = two_releases
    killed = subprocess.run([sys.executable, "-c", _KILLED_PUBLISHER, uri], capture_output=True, text=True)
    assert killed.returncode == 9, killed.stdout + killed.stderr
    store = IndexStore(uri)
    assert store.current().seq == 2
    assert all("release-0003" in tags for tags in _release_tags(store).values())  # the orphan the kill left

    # The next change of the current release, whatever it is, clears it first: here a rollback, which takes
    # number 3 under release-0001's tag, so no publish would ever move release-0003 again.
    rolled = rollback(store, "release-0001")
    assert (rolled.seq, rolled.tag) == (3, "release-0001")
    both = {"release-0001", "release-0002"}
    assert _release_tags(store) == {"articles": both, "chunks": both}

    release = _publish(store, sample_articles())
    assert (release.seq, release.tag) == (4, "release-0004")
    assert {r.tag for r in store.releases()} == {"release-0001", "release-0002", "release-0004"}
    assert _release_tags(store) == {"articles": both | {"release-0004"}, "chunks": both | {"release-0004"}}


# -- 12: a candidate published on top of another release than the one it was built from ---------------------


def test_the_second_of_two_candidates_built_on_one_release_is_refused_not_published_on_top(tmp_path) -> None:
    store = IndexStore(str(tmp_path / "index"))
    _publish(store, sample_articles())
    embedder = FakeHashingEmbedder()
    extra = make_article("sso", "Sign in with SSO", "Ask your admin to enable single sign-on.")
    small = build_candidate([*sample_articles(), extra], store=store, embedder=embedder, policy=POLICY)
    big = build_candidate(_rewritten_articles(), store=store, embedder=embedder, policy=POLICY)

    second = publish(store, small, checks_passed=True, manifest={"changes": "against release-0001"})
    versions_before = {name: store.db.open_table(name).version for name in ("articles", "chunks")}
    # Its change list and its row-count check were made against release-0001, which is no longer current.
    refused = r"built on release-0001 \(#1\), but release-0002 \(#2\) was made current since.*rerun"
    with pytest.raises(PublishError, match=refused):
        publish(store, big, checks_passed=True, manifest={"changes": "against release-0001"})
    assert store.current() == second
    assert {name: store.db.open_table(name).version for name in ("articles", "chunks")} == versions_before

    # The rerun builds on release-0002 and lands on top of it.
    rerun = build_candidate(_rewritten_articles(), store=store, embedder=embedder, policy=POLICY)
    third = publish(store, rerun, checks_passed=True, manifest={})
    assert (third.seq, manifest_of(third)["previous"]) == (3, "release-0002")


def test_a_rollback_between_build_and_publish_also_refuses_the_candidate(two_releases) -> None:
    uri, _ = two_releases
    store = IndexStore(uri)
    candidate = build_candidate(sample_articles(), store=store, embedder=FakeHashingEmbedder(), policy=POLICY)
    rollback(store, "release-0001")
    with pytest.raises(PublishError, match=r"built on release-0002 \(#2\), but release-0001 \(#3\) was made current"):
        publish(store, candidate, checks_passed=True, manifest={})
    assert [r.seq for r in store.releases()] == [1, 2, 3]
