"""Arrow schemas of the tables in a kbcurator LanceDB database."""

from __future__ import annotations

import pyarrow as pa

ARTICLES = "articles"
CHUNKS = "chunks"
RELEASES = "releases"
EMBEDDING_CACHE = "embedding_cache"
PARSE_MEMO = "parse_memo"

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
