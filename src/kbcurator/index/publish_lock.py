"""One change of the current release at a time: a lock around publish and rollback.

Two runs that publish into one index at once (the nightly and a manual ``kbcurator reindex``, say) would both
read release N as current and both write release N+1: two release rows with one sequence number, and one tag
moved under the other's feet. Only the release change is serialised, not the build: two builds may run side by
side, but only the first to publish lands; the second was built, diffed and checked against release N, which is
no longer current, and ``publish`` refuses it with a PublishError asking for a rerun (see ``index.publish``).

A local index gets an OS file lock (``filelock``) beside its tables. The OS drops it when its holder dies, so a
killed run never leaves a stale lock; a second publisher waits for it, then gives up with who holds it. Object
stores offer no such lock: there the release row is written only if the release that was current when the
publish began still is (``check_still_current``), which turns a lost race into a clear error instead of a
duplicate, but leaves a window of one write: run one publisher per object-store index.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from kbcurator.errors import PublishError
from kbcurator.index.store import IndexStore, is_local_uri
from kbcurator.records import IndexRelease

logger = logging.getLogger(__name__)

LOCK_NAME = "_publish.lock"
# Who holds the lock, for the message a waiting run prints. A separate file: the lock file itself is
# truncated by every process that opens it to wait.
HOLDER_NAME = "_publish.holder.json"


def _holder() -> dict[str, object]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv[:4]),
    }


def _describe(holder_path: Path) -> str:
    try:
        holder = json.loads(holder_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "another run"
    return f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')} ({holder.get('command')})"


@contextmanager
def publish_lock(store: IndexStore, *, timeout_s: float) -> Iterator[None]:
    """Hold the index's publish lock for the block; wait up to ``timeout_s`` seconds for another holder.

    Raises:
        PublishError: the lock stayed taken for ``timeout_s``; nothing was written, the current release stays.
    """
    if not is_local_uri(store.uri):
        yield
        return
    folder = Path(store.uri.removeprefix("file://"))
    lock = FileLock(str(folder / LOCK_NAME))
    holder_path = folder / HOLDER_NAME
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.warning(
            "waiting up to %.0f s for the publish lock of %s, held by %s", timeout_s, store.uri, _describe(holder_path)
        )
        try:
            lock.acquire(timeout=timeout_s)
        except Timeout:
            raise PublishError(
                f"another publish into {store.uri} has held its lock for over {timeout_s:.0f} s "
                f"({_describe(holder_path)}): nothing was published, the current release stays current; "
                "rerun when it is done (publish_lock_timeout_s sets the wait)"
            ) from None
    except OSError as exc:  # after Timeout, which is a TimeoutError: here a folder the lock file cannot be made in
        raise PublishError(f"cannot take the publish lock {folder / LOCK_NAME}: {exc}") from exc
    try:
        holder_path.write_text(json.dumps(_holder()), encoding="utf-8")
        yield
    finally:
        holder_path.unlink(missing_ok=True)
        lock.release()


def check_still_current(store: IndexStore, started_from: IndexRelease | None) -> None:
    """Refuse to record a release if another run changed the current release since ``started_from`` was read.

    Under the file lock this cannot happen; on an object store it is the only guard (see the module's doc).
    """
    now = store.current()
    before = started_from.seq if started_from else 0
    after = now.seq if now else 0
    if after != before:
        raise PublishError(
            f"release {now.tag if now else '?'} (#{after}) was recorded in {store.uri} by another run while this "
            f"one was writing (it started from #{before}): this release was not recorded, the other stays "
            "current; rerun to publish on top of it"
        )
