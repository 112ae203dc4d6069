"""What changed between releases, and rolling back to an earlier one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

from kbcurator.errors import PublishError
from kbcurator.index import schema
from kbcurator.index.publish_lock import check_still_current, publish_lock
from kbcurator.index.store import IndexStore, manifest_of
from kbcurator.records import IndexRelease


@dataclass(frozen=True, slots=True)
class IdChanges:
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]

    def counts(self) -> dict[str, int]:
        return {"added": len(self.added), "changed": len(self.changed), "removed": len(self.removed)}


@dataclass(frozen=True, slots=True)
class ReleaseDiff:
    old_tag: str
    new_tag: str
    articles: IdChanges
    chunks: IdChanges


def compare_hashes(old: dict[str, str], new: dict[str, str]) -> IdChanges:
    return IdChanges(
        added=tuple(sorted(set(new) - set(old))),
        changed=tuple(sorted(k for k in new.keys() & old.keys() if new[k] != old[k])),
        removed=tuple(sorted(set(old) - set(new))),
    )


def hashes_of(table: pa.Table, id_column: str) -> dict[str, str]:
    return dict(zip(table[id_column].to_pylist(), table["content_hash"].to_pylist(), strict=True))


def _hashes(store: IndexStore, name: str, version: int, id_column: str) -> dict[str, str]:
    return hashes_of(store.read_table(name, version, [id_column, "content_hash"]), id_column)


def diff_releases(store: IndexStore, old_ref: str | int, new_ref: str | int) -> ReleaseDiff:
    old, new = store.resolve(old_ref), store.resolve(new_ref)
    return ReleaseDiff(
        old_tag=old.tag,
        new_tag=new.tag,
        articles=compare_hashes(
            _hashes(store, schema.ARTICLES, old.articles_version, "article_id"),
            _hashes(store, schema.ARTICLES, new.articles_version, "article_id"),
        ),
        chunks=compare_hashes(
            _hashes(store, schema.CHUNKS, old.chunks_version, "chunk_id"),
            _hashes(store, schema.CHUNKS, new.chunks_version, "chunk_id"),
        ),
    )


def rollback(store: IndexStore, ref: str | int, *, lock_timeout_s: float = 900.0) -> IndexRelease:
    """Make an earlier release current again by appending a release that points at its table versions.

    Nothing is deleted: the release rolled away from stays listed and can be rolled forward to. Takes the
    publish lock, so a rollback never interleaves with a publish.
    """
    with publish_lock(store, timeout_s=lock_timeout_s):
        return _rollback(store, ref)


def _rollback(store: IndexStore, ref: str | int) -> IndexRelease:
    target = store.resolve(ref)
    current = store.current()
    if current is None:
        raise PublishError("nothing to roll back: no release yet")
    if (target.articles_version, target.chunks_version) == (current.articles_version, current.chunks_version):
        raise PublishError(f"{target.tag} is already current")
    manifest = manifest_of(target)
    manifest["rolled_back_from"] = current.tag
    manifest["rollback_at"] = datetime.now(UTC).isoformat()
    release = IndexRelease(
        seq=current.seq + 1,
        tag=target.tag,
        kind="rollback",
        created_at=datetime.now(UTC),
        articles_version=target.articles_version,
        chunks_version=target.chunks_version,
        previous_tag=current.tag,
        manifest_json=json.dumps(manifest, default=str),
    )
    check_still_current(store, current)
    store.append_release(release)
    return release
