"""Publish a checked release candidate: write the tables, tag both versions, then commit the release row.

Order matters for crash safety. The tables are written so that a rerun after a kill converges on the same rows
with no duplicates (the articles replaced whole; the chunks upserted by id where their hash changed and the gone
ones deleted, or replaced whole when most changed); the ``releases`` row is written last
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

import itertools
import json
import logging
from datetime import UTC, datetime
from typing import Any

import lancedb
import pyarrow as pa
import pyarrow.compute as pc

from kbcurator.config.ann import AnnSettings
from kbcurator.errors import StaleBase, ValidationFailed
from kbcurator.index import schema
from kbcurator.index.ann import build_vector_index
from kbcurator.index.build import ReleaseCandidate
from kbcurator.index.publish_lock import check_still_current, publish_lock
from kbcurator.index.staging import Rows, batches_of, columns_of
from kbcurator.index.store import (
    IDS_PER_FILTER,
    PAGE_ROWS,
    IndexStore,
    lance_errors,
    manifest_of,
    pages,
    sql_in,
    tag_for,
)
from kbcurator.records import IndexRelease
from kbcurator.runtime import release_freed_memory

logger = logging.getLogger(__name__)


# Above this share of the candidate's chunks new or changed (a new model, a new chunking policy), the chunks
# table is rewritten whole: a merge would rewrite nearly every row anyway, and its join holds more (measured at
# 200,000 rows: +429..690 MB for a merge of every row against +272 MB for a streamed write).
_REWRITE_SHARE = 0.5
# Pages written per commit when a table is written whole. One write of the whole stream peaked with the table's
# size (+180 MB at 200,000 chunk rows); slices of 4 pages with the freed heap given back after each stay near
# one slice's worth (+106 MB at 200,000 rows, +80 at 20,000).
_SLICE_PAGES = 4
_CHUNK_KEY = ["chunk_id", "row_hash"]
# Rows per page when reading the chunks table's ids and hashes (~100 bytes a row).
_ID_PAGE_ROWS = 65_536


def _write_articles(table: Any, articles: Rows) -> None:
    """Replace the articles table's rows with the candidate's: they were all rewritten before too (a merge
    updating every row, whose join held them all), and articles carry no hash to skip the unchanged ones."""
    _write_whole(table, articles, overwrite=True)


def _write_chunks(table: Any, chunks: Rows, *, new_model: bool) -> None:
    """Make the chunks table hold exactly the candidate's rows, rewriting only those whose ``row_hash`` changed
    (or all of them, when most did, or when the vectors come from another model than the table's: ``row_hash``
    does not cover the vector, so a new backend of the same dimension would otherwise keep the old vectors).

    Each step commits a version, and a rerun after a kill recomputes what is left to do from the table as that
    run left it, so it converges on the same rows with no duplicates. Readers never see the steps in between:
    they follow the release row, written last, to the versions it names.
    """
    if int(table.count_rows()) == 0:
        _write_whole(table, chunks, overwrite=False)
        return
    if new_model:
        _write_whole(table, chunks, overwrite=True)
        return
    changed, gone = _chunk_changes(table, chunks)
    if len(changed) > _REWRITE_SHARE * chunks.num_rows:
        _write_whole(table, chunks, overwrite=True)
        return
    if changed:
        merge = table.merge_insert("chunk_id").when_matched_update_all().when_not_matched_insert_all()
        merge.execute(_only(chunks, changed))
    for start in range(0, len(gone), IDS_PER_FILTER):
        table.delete(sql_in("chunk_id", gone[start : start + IDS_PER_FILTER]))


def _chunk_changes(table: Any, chunks: Rows) -> tuple[list[str], list[str]]:
    """The ids of the candidate's chunks that ``table`` lacks or holds with another ``row_hash``, and the ids of
    the table's chunks the candidate has no more (small columns only: ~100 bytes a row)."""
    wanted = columns_of(chunks, _CHUNK_KEY)
    present = pa.Table.from_batches(list(pages(table, _CHUNK_KEY, _ID_PAGE_ROWS)), schema=_key_schema(table))
    changed = wanted.join(present, keys=_CHUNK_KEY, join_type="left anti", use_threads=False).column("chunk_id")
    present_ids = present.column("chunk_id")
    gone = pc.filter(present_ids, pc.invert(pc.is_in(present_ids, value_set=wanted.column("chunk_id"))))
    return changed.to_pylist(), gone.to_pylist()


def _write_whole(table: Any, rows: Rows, *, overwrite: bool) -> None:
    """Write every row of ``rows`` to ``table`` (replacing its rows with ``overwrite``), ``_SLICE_PAGES`` pages
    per commit. A kill between two commits leaves a table holding part of ``rows``; it is never read as a
    release (see ``_write_chunks``) and the rerun writes it again."""
    # Cast to the table's schema: an overwrite would otherwise take the batches' own (nullability, metadata).
    table_schema = table.schema
    # One empty batch when there is no row: an overwrite then empties the table.
    stream = (batch.cast(table_schema) for batch in batches_of(rows, batch_rows=PAGE_ROWS))
    mode = "overwrite" if overwrite else "append"
    for first in stream:
        part = itertools.chain([first], itertools.islice(stream, _SLICE_PAGES - 1))
        table.add(pa.RecordBatchReader.from_batches(table_schema, part), mode=mode)
        mode = "append"
        release_freed_memory()


def _key_schema(table: Any) -> pa.Schema:
    return pa.schema([table.schema.field(name) for name in _CHUNK_KEY])


def _only(chunks: Rows, ids: list[str]) -> pa.RecordBatchReader:
    """The candidate's rows whose ``chunk_id`` is in ``ids``, streamed."""
    if isinstance(chunks, pa.Table):
        wanted = pc.is_in(chunks.column("chunk_id"), value_set=pa.array(ids, pa.string()))
        return chunks.filter(wanted).to_reader(max_chunksize=PAGE_ROWS)
    return pa.RecordBatchReader.from_batches(chunks.schema, chunks.matching("chunk_id", ids))


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
        _write_articles(articles, candidate.articles)
    with lance_errors("cannot write the chunks table"):
        previous_model = manifest_of(current).get("model") if current is not None else None
        _write_chunks(chunks, candidate.chunks, new_model=previous_model not in (None, candidate.model))
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
