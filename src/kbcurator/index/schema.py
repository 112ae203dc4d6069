"""Names and Arrow schemas of every table kbcurator writes into an index's LanceDB database.

The one place a table's columns are defined: the modules that read and write a table (``analysis.store``,
``gaps.report``, ``triage``, ``index.*``) import its name and schema from here. A change to any of them is a new
``SCHEMA_VERSION`` with a migration in ``kbcurator.index.migrations`` that brings an older database to it.
"""

from __future__ import annotations

import pyarrow as pa

# The schema version this code writes and reads; stored in the database's META table (index.migrations).
SCHEMA_VERSION = 2

ARTICLES = "articles"
CHUNKS = "chunks"
RELEASES = "releases"
EMBEDDING_CACHE = "embedding_cache"
PARSE_MEMO = "parse_memo"
FINDINGS = "findings"
GAPS = "gaps"
TRIAGE = "triage"
TICKETS = "tickets"
TICKET_CURSORS = "ticket_cursors"
GOLDEN_QUESTIONS = "golden_questions"
GAP_RUNS = "gap_runs"
DETECTOR_MEMO = "detector_memo"
META = "kbcurator_meta"
# A reindex run's candidate (its chunks, its articles), written a batch at a time as it is built, then checked and
# published from there (kbcurator.index.staging): "staged_chunks_<run id>", "staged_articles_<run id>", dropped when
# the run ends. Transient, not data a release points at: not versioned, not in TABLES.
STAGED_PREFIX = "staged_"

# Every table of an index written before schema versions, META aside: a database holding any of them and no META
# was written before versions. Tables added since (TICKETS, TICKET_CURSORS) are not listed: no such database
# has them, and they are created, at the current version, by the first run that needs them.
TABLES = (ARTICLES, CHUNKS, RELEASES, EMBEDDING_CACHE, PARSE_MEMO, FINDINGS, GAPS, TRIAGE)

_TS = pa.timestamp("us", tz="UTC")


def articles_schema() -> pa.Schema:
    return pa.schema(
        [
            pa.field("article_id", pa.string(), nullable=False),
            pa.field("source_id", pa.string()),
            pa.field("url", pa.string()),
            pa.field("title", pa.string()),
            pa.field("section", pa.string()),
            pa.field("locale", pa.string()),
            pa.field("body_html", pa.string()),
            pa.field("text", pa.string()),
            pa.field("updated_at", _TS),
            pa.field("content_hash", pa.string()),
            pa.field("links", pa.list_(pa.string())),
            # Reuse key for incremental rebuilds: the content hash under one chunking policy.
            pa.field("chunk_policy", pa.string()),
        ]
    )


def chunks_schema(dimension: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("chunk_id", pa.string(), nullable=False),
            pa.field("article_id", pa.string()),
            pa.field("position", pa.int32()),
            pa.field("text", pa.string()),
            pa.field("heading_path", pa.list_(pa.string())),
            pa.field("heading", pa.string()),
            pa.field("char_start", pa.int32()),
            pa.field("char_end", pa.int32()),
            pa.field("content_hash", pa.string()),
            pa.field("url", pa.string()),
            pa.field("title", pa.string()),
            pa.field("locale", pa.string()),
            pa.field("updated_at", _TS),
            # Hash of every non-vector field: a merge rewrites a row only when this changes.
            pa.field("row_hash", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), dimension)),
        ]
    )


def releases_schema() -> pa.Schema:
    return pa.schema(
        [
            pa.field("seq", pa.int64(), nullable=False),
            pa.field("tag", pa.string()),
            pa.field("kind", pa.string()),
            pa.field("created_at", _TS),
            pa.field("articles_version", pa.int64()),
            pa.field("chunks_version", pa.int64()),
            pa.field("previous_tag", pa.string()),
            pa.field("manifest_json", pa.string()),
        ]
    )


def embedding_cache_schema() -> pa.Schema:
    return pa.schema(
        [
            pa.field("cache_key", pa.string(), nullable=False),  # f"{model}|{content_hash}"
            pa.field("model", pa.string()),
            pa.field("content_hash", pa.string()),
            pa.field("vector", pa.list_(pa.float32())),
        ]
    )


def parse_memo_schema() -> pa.Schema:
    return pa.schema(
        [
            pa.field("page_key", pa.string(), nullable=False),  # kbcurator.ingest.cache.page_key
            pa.field("article_id", pa.string()),
            pa.field("article_hash", pa.string()),  # of every field of the article parsed from the page
        ]
    )


def findings_schema() -> pa.Schema:
    """Every audit's findings, with the release (``index_version``) each was computed on."""
    return pa.schema(
        [
            pa.field("run_id", pa.string(), nullable=False),
            pa.field("run_at", _TS),
            pa.field("index_version", pa.string()),
            pa.field("finding_id", pa.string(), nullable=False),
            pa.field("kind", pa.string()),
            pa.field("check", pa.string()),
            pa.field("article_ids", pa.list_(pa.string())),
            pa.field("score", pa.float64()),
            pa.field("severity", pa.string()),
            pa.field("summary", pa.string()),
            pa.field("action", pa.string()),
            pa.field("evidence_json", pa.string()),
            pa.field("detector", pa.string()),
            pa.field("detector_version", pa.string()),
            pa.field("found_at", _TS),
            pa.field("first_seen_at", _TS),  # when this finding id was first reported
        ]
    )


def gaps_schema(dimension: int) -> pa.Schema:
    """One row per gap cluster per gaps run, each run versioned against the release it used."""
    return pa.schema(
        [
            pa.field("run_id", pa.string()),
            pa.field("run_at", _TS),
            pa.field("release_tag", pa.string()),
            pa.field("gap_id", pa.string()),
            pa.field("label", pa.string()),
            pa.field("keywords", pa.list_(pa.string())),
            pa.field("size", pa.int64()),
            pa.field("previous_size", pa.int64()),
            pa.field("trend", pa.string()),
            pa.field("escalation_share", pa.float64()),
            pa.field("coverage_score", pa.float64()),
            pa.field("gap_score", pa.float64()),
            pa.field("action", pa.string()),
            pa.field("suggestion", pa.string()),
            pa.field("best_articles", pa.string()),  # JSON: [{article_id, title, url, queries, best_similarity}]
            pa.field("central_query", pa.string()),
            pa.field("representatives", pa.list_(pa.string())),
            pa.field("first_seen_at", _TS),
            pa.field("last_seen_at", _TS),
            pa.field("weekly_counts", pa.string()),  # JSON {"2026-W47": 12}
            pa.field("centroid", pa.list_(pa.float32(), dimension)),
        ]
    )


def triage_schema() -> pa.Schema:
    """Append-only triage decisions: the latest row per item id is the one in force."""
    return pa.schema(
        [
            pa.field("item_id", pa.string(), nullable=False),
            pa.field("item_kind", pa.string()),
            pa.field("status", pa.string()),
            pa.field("note", pa.string()),
            pa.field("assignee", pa.string()),
            pa.field("snoozed_until", _TS),
            pa.field("decided_at", _TS),
            pa.field("decided_by", pa.string()),
        ]
    )


def tickets_schema() -> pa.Schema:
    """Tickets read from a helpdesk API, already redacted, one row per ticket: an update replaces the row.

    ``key`` is ``f"{source_id}:{ticket_id}"``; ``fetch_id`` names the fetch that wrote the row (a full refetch
    drops the rows it did not write). ``solved_by``: the article(s) an agent linked as the solution (version 2).
    """
    return pa.schema(
        [
            pa.field("key", pa.string(), nullable=False),
            pa.field("source_id", pa.string()),
            pa.field("ticket_id", pa.string()),
            pa.field("created_at", _TS),
            pa.field("updated_at", _TS),
            pa.field("subject", pa.string()),
            pa.field("body", pa.string()),
            pa.field("channel", pa.string()),
            pa.field("status", pa.string()),
            pa.field("escalated", pa.bool_()),
            pa.field("resolved_by_bot", pa.bool_()),
            pa.field("unanswered", pa.bool_()),
            pa.field("tags", pa.list_(pa.string())),
            pa.field("csat", pa.float64()),
            pa.field("fetched_at", _TS),
            pa.field("fetch_id", pa.string()),
            pa.field("solved_by", pa.list_(pa.string())),
        ]
    )


def ticket_cursors_schema() -> pa.Schema:
    """Where each helpdesk API source's next fetch starts, one row per source, written after its tickets.

    No ticket text: the cursor is the API's own opaque position in its change stream.
    """
    return pa.schema(
        [
            pa.field("source_id", pa.string(), nullable=False),
            pa.field("endpoint", pa.string()),  # the export URL the cursor belongs to (another account: start over)
            pa.field("cursor", pa.string()),
            pa.field("start_time", _TS),  # where the stream this cursor continues began
            pa.field("end_of_stream", pa.bool_()),  # false: a page cap or the deadline stopped the last fetch
            pa.field("pages", pa.int64()),  # read by the fetch that wrote this row
            pa.field("tickets", pa.int64()),  # ticket records it read
            pa.field("fetch_id", pa.string()),
            pa.field("updated_at", _TS),
        ]
    )


def golden_questions_schema() -> pa.Schema:
    """The questions a release must keep answering, one row each, with where each came from.

    ``origin``: ``file`` (the settings' ``retrieval.golden_file``), ``ticket_link`` (a ticket that names the
    article that solved it) or ``resolved_gap`` (a gap triaged resolved, whose questions a release then answered);
    ``origin_ref``: the file, the ticket key or the gap id. ``expected``: article ids or URLs, any one of which
    answers. Redacted text only: a resolved gap's questions are its stored (redacted) representatives.
    """
    return pa.schema(
        [
            pa.field("golden_id", pa.string(), nullable=False),
            pa.field("question", pa.string()),
            pa.field("expected", pa.list_(pa.string())),
            pa.field("locale", pa.string()),  # "" : any locale
            pa.field("origin", pa.string()),
            pa.field("origin_ref", pa.string()),
            pa.field("release_tag", pa.string()),  # resolved_gap: the release that answered it
            pa.field("added_at", _TS),
        ]
    )


def gap_runs_schema() -> pa.Schema:
    """One row per gaps run: the KB hit rate (share of counted tickets the release answers), overall and per
    ticket source (``per_source_json``: ``{source_id: {"tickets": n, "answered": m, "hit_rate": r}}``)."""
    return pa.schema(
        [
            pa.field("run_id", pa.string(), nullable=False),
            pa.field("run_at", _TS),
            pa.field("release_tag", pa.string()),
            pa.field("tickets", pa.int64()),
            pa.field("answered", pa.int64()),
            pa.field("hit_rate", pa.float64()),
            pa.field("per_source_json", pa.string()),
        ]
    )


def meta_schema() -> pa.Schema:
    """The migrations applied to the database, one row each; the highest ``schema_version`` is its version."""
    return pa.schema(
        [
            pa.field("schema_version", pa.int64(), nullable=False),
            pa.field("migration", pa.string()),
            pa.field("applied_at", _TS),
            pa.field("applied_by", pa.string()),  # the kbcurator version that applied it
        ]
    )


def detector_memo_schema() -> pa.Schema:
    """A content-only detector's findings on one release, kept so an audit of the same release with the same
    detector code and settings reuses them (``analysis.store.DetectorMemo``). ``memo_key`` hashes all of that."""
    return pa.schema(
        [
            pa.field("memo_key", pa.string(), nullable=False),
            pa.field("detector", pa.string()),
            pa.field("release_tag", pa.string()),
            pa.field("created_at", _TS),
            pa.field("findings_json", pa.string()),  # finding rows as ``analysis.store.finding_to_row`` writes them
        ]
    )
