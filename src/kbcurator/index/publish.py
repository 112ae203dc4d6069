"""Publish a checked release candidate: write the tables, tag both versions, then commit the release row.

Order matters for crash safety. The tables are merged (upsert by id, delete what is gone) so that a
rerun after a kill converges on the same rows with no duplicates; the ``releases`` row is written last
and is the only thing readers of "current" follow, so a run that dies before it leaves the current
release untouched.

The tags go on before the release row, not after: a release row is then never without its tags (LanceDB's
version cleanup keeps tagged versions, and ``checkout(tag)`` users find every recorded release). The cost is a
tag with no release row when a run dies in between: the failing run removes it on its way out, and a run killed
outright leaves it to the next publish or rollback, which removes such orphan tags first, under the lock.

A candidate is published only on the release it was built from (``ReleaseCandidate.base_seq``): its reused
rows, the change list in its manifest and the row-count floor of its checks were all computed against that
release, so if another publish or a rollback made another release current meanwhile, it is refused (rerun).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import lancedb
import pyarrow as pa

from kbcurator.config.ann import AnnSettings
from kbcurator.errors import StaleBase, ValidationFailed
from kbcurator.index import schema
from kbcurator.index.ann import build_vector_index
from kbcurator.index.build import ReleaseCandidate
from kbcurator.index.publish_lock import check_still_current, publish_lock
from kbcurator.index.staging import reader_of
from kbcurator.index.store import IndexStore, lance_errors, tag_for
from kbcurator.records import IndexRelease

logger = logging.getLogger(__name__)


def _merge(table: Any, data: pa.Table | pa.RecordBatchReader, key: str, *, only_changed: bool) -> None:
    merge = table.merge_insert(key)
    merge = (
        merge.when_matched_update_all(where="target.row_hash != source.row_hash")
        if only_changed
        else (merge.when_matched_update_all())
    )
    merge.when_not_matched_insert_all().when_not_matched_by_source_delete().execute(data)


def _chunks_table(store: IndexStore, dimension: int) -> Any:
    wanted = schema.chunks_schema(dimension)
    table = store.open_or_create(schema.CHUNKS, wanted)
    existing = table.schema.field("vector").type
    if existing != wanted.field("vector").type:
        # A new model with another dimension: the next version of the table starts over. Older
        # versions (and their tags) stay readable, so releases on the old model can still be rolled to.
        with lance_errors("cannot replace the chunks table for a new embedding dimension"):
            table = store.db.create_table(schema.CHUNKS, schema=wanted, mode="overwrite")
    return table


def _tag(table: Any, tag: str, version: int) -> None:
    tags = table.tags
    with lance_errors(f"cannot tag version {version} as {tag}"):
        if tag in tags.list():
            # Left behind by a run killed between tagging and committing its release row (on an object store,
            # where remove_orphan_tags keeps tags past the current release).
            tags.update(tag, version)
        else:
            tags.create(tag, version)


def _drop_unrecorded_tag(store: IndexStore, tag: str, tables: tuple[Any, ...]) -> None:
    """After a failure between tagging and recording: remove ``tag`` unless its release row landed after all."""
    try:
        if any(release.tag == tag for release in store.releases()):
            return
        for table in tables:
            if tag in table.tags.list():
                table.tags.delete(tag)
    except Exception as exc:  # best effort, on the way out of a failure: the next publish or rollback removes it
        logger.warning("could not remove the unrecorded tag %s: %s", tag, exc)


def _require_base(store: IndexStore, candidate: ReleaseCandidate, current: IndexRelease | None) -> None:
    """Refuse a candidate built on another release than the current one (see the module's doc)."""
    now = current.seq if current else 0
    if candidate.base_seq is None or candidate.base_seq == now:
        return
    base = next((r for r in store.releases() if r.seq == candidate.base_seq), None)
    built_on = f"{base.tag} (#{base.seq})" if base else f"release #{candidate.base_seq}"
    if candidate.base_seq == 0:
        built_on = "an empty index"
    made_current = f"{current.tag} (#{current.seq}) was made current" if current else "its releases were removed"
    stays = f"{current.tag} stays current" if current else "the index is unchanged"
    raise StaleBase(
        f"this candidate was built on {built_on}, but {made_current} since (another publish or a rollback): "
        f"its list of changes and its row-count checks were made against {built_on}. "
        f"Nothing was published and {stays}; rerun the reindex to build on the current release"
    )


def publish(
    store: IndexStore,
    candidate: ReleaseCandidate,
    *,
    checks_passed: bool,
    manifest: dict[str, Any],
    fts: bool = True,
    ann: AnnSettings | None = None,
    lock_timeout_s: float = 900.0,
) -> IndexRelease:
    """Write ``candidate`` as the next release. Refuses unless its checks passed.

    ``manifest`` is stored with the release; model, dimension, counts, tag and versions are added here.
    With ``ann``, a chunks table of at least ``ann.min_rows`` rows gets a vector index (recorded under
    ``"ann"``; ``{}`` below the threshold); a failure to build one is recorded under ``"ann_error"`` and the
    release is published all the same, searched exactly.

    One publish or rollback at a time per index (``publish_lock``): a second waits up to ``lock_timeout_s``.

    Raises:
        ValidationFailed: ``checks_passed`` is false.
        PublishError: the lock stayed taken; another release became current since ``candidate`` was built from
            ``candidate.base_seq`` (rerun); or the index cannot be written. The current release stays current.
    """
    if not checks_passed:
        raise ValidationFailed("checks failed: not publishing; the current release stays current")
    with publish_lock(store, timeout_s=lock_timeout_s):
        return _publish(store, candidate, manifest=manifest, fts=fts, ann=ann)


def _publish(
    store: IndexStore, candidate: ReleaseCandidate, *, manifest: dict[str, Any], fts: bool, ann: AnnSettings | None
) -> IndexRelease:
    current = store.current()
    _require_base(store, candidate, current)
    store.remove_orphan_tags()
    seq = (current.seq + 1) if current else 1
    tag = tag_for(seq)

    articles = store.open_or_create(schema.ARTICLES, schema.articles_schema())
    chunks = _chunks_table(store, candidate.dimension)
    with lance_errors("cannot write the articles table"):
        _merge(articles, reader_of(candidate.articles), "article_id", only_changed=False)
    with lance_errors("cannot write the chunks table"):
        _merge(chunks, reader_of(candidate.chunks), "chunk_id", only_changed=True)
    if fts and candidate.chunks.num_rows:
        try:
            chunks.create_index("text", config=lancedb.index.FTS(), replace=True)
        except (RuntimeError, ValueError, OSError) as exc:  # search falls back to vector-only
            manifest = {**manifest, "fts_error": str(exc)}
    if ann is not None:
        try:
            manifest = {**manifest, "ann": build_vector_index(chunks, ann)}
        except (RuntimeError, ValueError, OSError, pa.ArrowException) as exc:  # search stays exact
            manifest = {**manifest, "ann_error": str(exc)}

    # Taken after the indices: building one commits a new version, and the tag must carry it.
    articles_version, chunks_version = int(articles.version), int(chunks.version)
    created_at = datetime.now(UTC)
    full_manifest = {
        **manifest,
        "tag": tag,
        "seq": seq,
        "created_at": created_at.isoformat(),
        "previous": current.tag if current else None,
        "model": candidate.model,
        "dimension": candidate.dimension,
        "chunk_policy": candidate.chunk_policy,
        "counts": {"articles": candidate.articles.num_rows, "chunks": candidate.chunks.num_rows},
        "table_versions": {"articles": articles_version, "chunks": chunks_version},
        "fts": fts and "fts_error" not in manifest,
    }
    release = IndexRelease(
        seq=seq,
        tag=tag,
        kind="publish",
        created_at=created_at,
        articles_version=articles_version,
        chunks_version=chunks_version,
        previous_tag=current.tag if current else "",
        manifest_json=json.dumps(full_manifest, default=str),
    )
    try:
        _tag(articles, tag, articles_version)
        _tag(chunks, tag, chunks_version)
        check_still_current(store, current)
        store.append_release(release)
    except BaseException:
        _drop_unrecorded_tag(store, tag, (articles, chunks))
        raise
    return release
