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


def _hashes(store: IndexStore, release: IndexRelease, name: str, id_column: str) -> dict[str, str]:
    version = release.articles_version if name == schema.ARTICLES else release.chunks_version
    try:
        return hashes_of(store.read_table(name, version, [id_column, "content_hash"]), id_column)
    except PublishError as exc:
        raise PublishError(f"{release.tag} (#{release.seq}): {exc}") from exc


def diff_releases(store: IndexStore, old_ref: str | int, new_ref: str | int) -> ReleaseDiff:
    """Ids added, changed and removed between two releases.

    Raises:
        PublishError: either release cannot be read (a damaged data file included), naming release and table.
    """
    old, new = store.resolve(old_ref), store.resolve(new_ref)
    return ReleaseDiff(
        old_tag=old.tag,
        new_tag=new.tag,
        articles=compare_hashes(
            _hashes(store, old, schema.ARTICLES, "article_id"), _hashes(store, new, schema.ARTICLES, "article_id")
        ),
        chunks=compare_hashes(
            _hashes(store, old, schema.CHUNKS, "chunk_id"), _hashes(store, new, schema.CHUNKS, "chunk_id")
        ),
    )


def check_release_reads(store: IndexStore, release: IndexRelease) -> None:
    """Read every column of every row of both tables at ``release``'s versions, and count them.

    Raises:
        PublishError: a table of the release is missing, damaged, or holds other row counts than its manifest.
    """
    counts = manifest_of(release).get("counts", {})
    for name, version in ((schema.ARTICLES, release.articles_version), (schema.CHUNKS, release.chunks_version)):
        try:
            rows = store.scan(name, version)
        except PublishError as exc:
            raise PublishError(f"{release.tag} (#{release.seq}) does not read in full: {exc}") from exc
        expected = counts.get(name)
        if expected is not None and rows != expected:
            raise PublishError(
                f"{release.tag} (#{release.seq}) does not read as published: its {name} table holds {rows} rows "
                f"at version {version}, its manifest says {expected}"
            )


def rollback(store: IndexStore, ref: str | int, *, lock_timeout_s: float = 900.0) -> IndexRelease:
    """Make an earlier release current again by appending a release that points at its table versions.

    Nothing is deleted: the release rolled away from stays listed and can be rolled forward to. Takes the
    publish lock, so a rollback never interleaves with a publish.

    Raises:
        PublishError: the release does not exist, is already current, or does not read in full (a damaged or
            missing data file): the current release then stays current.
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
    # Before switching, not after: a release that does not read would break every reader and block the next
    # build, which reuses the current release's rows.
    try:
        check_release_reads(store, target)
    except PublishError as exc:
        raise PublishError(f"not rolling back: {exc}; {current.tag} stays current") from exc
    store.remove_orphan_tags()
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
