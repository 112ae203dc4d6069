"""The tasks a Dask worker runs: one batch of chunking or embedding each for the reindex, one detector each for
the audit.

Kept apart from the flow modules so a worker process imports only what these need (not the checks, Great
Expectations or the report code).
"""

from __future__ import annotations

from datetime import datetime

from prefect import task
from prefect.cache_policies import NO_CACHE

from kbcurator.analysis.audit import DetectorRun, default_detectors, run_detector
from kbcurator.analysis.corpus import corpus_from_release
from kbcurator.analysis.pipeline import reviews_of
from kbcurator.chunking import ChunkPolicy
from kbcurator.embedding import embedder_for
from kbcurator.index.build import ChunkedBatch, chunk_batch
from kbcurator.index.embedding_cache import EmbeddingCache, embed_with_cache
from kbcurator.index.store import IndexStore
from kbcurator.records import Article
from kbcurator.settings import EmbeddingSettings, Settings


@task(name="chunk-batch", cache_policy=NO_CACHE, retries=1)
def chunk_batch_task(articles: list[Article], policy: ChunkPolicy) -> ChunkedBatch:
    return chunk_batch(articles, policy)


@task(name="embedder-identity", cache_policy=NO_CACHE)
def embedder_identity_task(embedding: EmbeddingSettings) -> tuple[str, int]:
    embedder = embedder_for(embedding)
    return embedder.name, embedder.dimension


@task(name="embed-batch", cache_policy=NO_CACHE, retries=1)
def embed_batch_task(
    texts_by_hash: dict[str, str], embedding: EmbeddingSettings, index_uri: str, storage_options: dict[str, str]
) -> int:
    """Embed one batch on a worker and write the vectors to the index's embedding cache.

    Vectors go to LanceDB, not back through the scheduler: the flow reads them once, from the cache, when it
    assembles the release (and a rerun after a crash finds them there).
    """
    embedder = embedder_for(embedding)  # once per worker process
    cache = EmbeddingCache(IndexStore(index_uri, storage_options=storage_options))
    _, embedded = embed_with_cache(texts_by_hash, embedder, cache, batch_size=embedding.checkpoint_every)
    return embedded


@task(name="detect", cache_policy=NO_CACHE)
def detect_task(
    settings: Settings, release_seq: int, detector: str, run_at: datetime, escalations: dict[str, tuple[str, ...]]
) -> DetectorRun:
    """Run one detector over one release, read by the worker itself from the index (not shipped to it)."""
    store = IndexStore(settings.index_uri, storage_options=settings.index_storage_options)
    release = store.resolve(release_seq)
    corpus = corpus_from_release(
        store, release, run_at=run_at, reviews=reviews_of(settings), escalations=escalations, ann=settings.ann
    )
    chosen = [d for d in default_detectors(settings.health) if d.name == detector]
    if not chosen:
        raise ValueError(f"no enabled detector named {detector!r}")
    return run_detector(corpus, chosen[0])
