"""The approximate vector index and the in-memory exact search: the section of ``Settings`` the index reads.

Here, not in ``kbcurator.settings``, so that ``import kbcurator.index`` (what a RAG service imports) does not load
pydantic-settings and YAML: ~0.3 s of its cold start.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class AnnSettings(BaseModel):
    """The approximate vector index that publish builds on big chunk tables (see kbcurator.index.ann)."""

    # Publish builds the index once the chunks table holds at least this many rows; below it, exact search is
    # fast enough and exact.
    min_rows: int = Field(default=50_000, ge=0)
    index_type: Literal["IVF_PQ", "IVF_HNSW_SQ"] = "IVF_HNSW_SQ"
    nprobes: int = Field(default=20, ge=1)  # IVF partitions searched per query
    # Re-rank this many times k candidates with exact distances: recall@10 0.989-0.993 -> 0.998-1.000 for ~10%
    # more time (bench/ann_recall.md); the scalar quantisation, not the graph's breadth, is what loses recall.
    refine_factor: int | None = Field(default=2, ge=1)
    # The audit's k-NN pass over every chunk goes through the published index only from this many chunks: below
    # it, the in-memory faiss graph is faster (50k chunks: 32 s in memory vs 50 s through the index; level at 100k).
    audit_min_rows: int = Field(default=100_000, ge=0)
    # A publish keeps the current index while the rows it lacks (added or rewritten since it was trained) are at
    # most this share of the table: LanceDB searches those rows exactly beside the index. Past it, publish retrains.
    max_unindexed_share: float = Field(default=0.1, ge=0, le=1)
    # A release without a vector index and of at most this many chunks is searched in memory (kbcurator.index.reader):
    # its vectors are read once per view and a search is one matrix-vector product, exactly what LanceDB's flat scan
    # returns for a fraction of its cost (2k chunks: ~12 ms in LanceDB, <1 ms in numpy; 23k: ~60 ms against a few).
    # A view then holds the release's vectors and hit columns in memory (23k chunks of MiniLM: ~35 MB of vectors).
    # 0: every search goes to LanceDB.
    exact_max_chunks: int = Field(default=100_000, ge=0)
    # A release with a vector index and of at most this many chunks keeps its hits' columns (text, title, URL and
    # the other metadata a hit carries; not its vectors) in memory, read once per view on its first search: LanceDB
    # is then asked for row ids and scores only, and does not read each hit's columns from disk, one random read per
    # column and row. The help centers at 100x (231k chunks), p50 on 2 busy cores: a vector search of 40 hits 12.5 ->
    # 6.7 ms, hybrid 25 -> 14 ms, full text 5 -> 2 ms, the same hits; a view holds 226 MB of Arrow (~1 KB a chunk),
    # read on its first search in 1.3-3 s, and the process ~300 MB more than without. 0: off.
    hit_columns_max_chunks: int = Field(default=250_000, ge=0)
