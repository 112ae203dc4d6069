"""The approximate vector index on a real LanceDB directory: built past the threshold only, searched through
by the reader and the contradiction detector with recall measured against exact search, and never the
reason a publish fails."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import lancedb
import numpy as np
import pyarrow as pa
import pytest

from kbcurator.analysis.contradictions import ContradictionDetector
from kbcurator.analysis.corpus import corpus_from_release
from kbcurator.analysis.neighbours import candidate_pairs, nearest_neighbours, recall_at_k
from kbcurator.config.health import ContradictionSettings
from kbcurator.index import open_index, schema
from kbcurator.index.ann import LanceChunkIndex, has_vector_index
from kbcurator.index.build import BuildStats, ReleaseCandidate
from kbcurator.index.publish import publish
from kbcurator.index.store import IndexStore, manifest_of
from kbcurator.records import sha256_hex
from kbcurator.settings import AnnSettings

DIM = 384
ROWS = 4000
CHUNKS_PER_ARTICLE = 4
RUN_AT = datetime(2026, 3, 1, tzinfo=UTC)
MODEL = "lookup"
# Two chunks of different articles with near-identical vectors and conflicting refund windows.
PLANTED = (
    "Refunds are available within 30 days of purchase from the billing page.",
    "Refunds are available within 14 days of purchase from the billing page.",
)
_WORDS = tuple(
    [
        "account",
        "billing",
        "invoice",
        "export",
        "archive",
        "profile",
        "device",
        "browser",
        "session",
        "token",
        "folder",
        "sharing",
        "report",
        "calendar",
        "contact",
        "message",
        "inbox",
        "filter",
        "label",
        "backup",
        "restore",
        "storage",
        "upload",
        "download",
        "sync",
        "mobile",
        "desktop",
        "printer",
        "scanner",
        "network",
        "router",
        "wireless",
        "cable",
        "monitor",
        "keyboard",
        "language",
        "region",
        "theme",
        "widget",
        "plugin",
    ]
)


def clustered(rows: int, seed: int = 0) -> np.ndarray:
    """Unit vectors in clusters of about 40, as sentence embeddings of one help topic sit together."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(rows // 40, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    scale = rng.uniform(0.6, 1.4, size=(rows, 1)).astype(np.float32)
    data = centres[rng.integers(0, len(centres), rows)] + scale * rng.normal(size=(rows, DIM)) / np.sqrt(DIM)
    return (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)


def corpus_vectors() -> np.ndarray:
    vectors = clustered(ROWS)
    # The planted pair: chunk 0 of article 0 and chunk 0 of article 1, a hair apart.
    twin = vectors[0] + np.random.default_rng(7).normal(size=DIM).astype(np.float32) * 0.01
    vectors[CHUNKS_PER_ARTICLE] = twin / np.linalg.norm(twin)
    return vectors


def chunk_text(row: int, rng: np.random.Generator) -> str:
    if row in (0, CHUNKS_PER_ARTICLE):
        return PLANTED[row // CHUNKS_PER_ARTICLE]
    return "Notes on " + " ".join(rng.choice(_WORDS, size=6)) + "."


def candidate_of(vectors: np.ndarray) -> ReleaseCandidate:
    """A release candidate of ``len(vectors)`` chunks, four to an article, with these vectors."""
    rng = np.random.default_rng(3)
    updated = datetime(2026, 1, 5, tzinfo=UTC)
    texts = [chunk_text(row, rng) for row in range(len(vectors))]
    article_count = len(vectors) // CHUNKS_PER_ARTICLE
    articles = [
        {
            "article_id": f"a{n:05d}",
            "source_id": "test",
            "url": f"https://help.example.com/articles/{n}",
            "title": f"Article {n}",
            "section": "General",
            "locale": "en-us",
            "body_html": "",
            "text": "\n\n".join(texts[n * CHUNKS_PER_ARTICLE : (n + 1) * CHUNKS_PER_ARTICLE]),
            "updated_at": updated,
            "content_hash": f"h{n}",
            "links": [],
            "chunk_policy": "test",
        }
        for n in range(article_count)
    ]
    chunks = [
        {
            "chunk_id": f"a{row // CHUNKS_PER_ARTICLE:05d}#{row % CHUNKS_PER_ARTICLE}",
            "article_id": f"a{row // CHUNKS_PER_ARTICLE:05d}",
            "position": row % CHUNKS_PER_ARTICLE,
            "text": texts[row],
            "heading_path": [],
            "heading": "",
            "char_start": 0,
            "char_end": len(texts[row]),
            "content_hash": sha256_hex(texts[row]),
            "url": f"https://help.example.com/articles/{row // CHUNKS_PER_ARTICLE}",
            "title": f"Article {row // CHUNKS_PER_ARTICLE}",
            "locale": "en-us",
            "updated_at": updated,
            "row_hash": sha256_hex(texts[row] + str(row)),
            "vector": vectors[row].tolist(),
        }
        for row in range(article_count * CHUNKS_PER_ARTICLE)
    ]
    return ReleaseCandidate(
        articles=pa.Table.from_pylist(articles, schema=schema.articles_schema()),
        chunks=pa.Table.from_pylist(chunks, schema=schema.chunks_schema(DIM)),
        model=MODEL,
        dimension=DIM,
        chunk_policy="test",
        stats=BuildStats(len(articles), len(chunks), 0, len(articles), len(chunks), 0, 0.0, 0.0),
    )


class LookupEmbedder:
    """A query "row 17" embeds as chunk 17's vector nudged off it, so exact search knows the answer."""

    name = MODEL
    dimension = DIM

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def embed(self, texts: list[str]) -> np.ndarray:
        rows = [int(text.split()[1]) for text in texts]
        noise = np.random.default_rng(rows[0]).normal(size=(len(rows), DIM)).astype(np.float32) * 0.03
        out = self.vectors[rows] + noise
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def exact_top(vectors: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    return np.argsort(-(vectors @ query), kind="stable")[:k].tolist()


def row_of(chunk_id: str) -> int:
    article, position = chunk_id.split("#")
    return int(article[1:]) * CHUNKS_PER_ARTICLE + int(position)


# Measured on this data with refine_factor=2: recall@10 through the reader 0.990 (IVF_PQ) and 1.000
# (IVF_HNSW_SQ), through the chunk index 0.992 and 1.000, contradiction candidate pairs 1.000 of the in-memory
# ones for both. The bounds leave room for the randomness of LanceDB's kmeans, not for a broken search.
SEARCH_RECALL = 0.97
PAIR_RECALL = 0.98
REFINE = 2


TYPES = ("IVF_PQ", "IVF_HNSW_SQ")


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """Per index type, built once: release-0001 below the threshold (no index), release-0002 past it."""
    built: dict[str, tuple[str, np.ndarray, AnnSettings]] = {}

    def publish_once(index_type: str) -> tuple[str, np.ndarray, AnnSettings]:
        if index_type not in built:
            uri = str(tmp_path_factory.mktemp(index_type) / "index")
            store = IndexStore(uri)
            vectors = corpus_vectors()
            candidate = candidate_of(vectors)
            below = AnnSettings(min_rows=ROWS + 1, index_type=index_type)
            publish(store, candidate, checks_passed=True, manifest={}, ann=below)
            past = AnnSettings(
                min_rows=ROWS // 2, index_type=index_type, refine_factor=REFINE, audit_min_rows=ROWS // 2
            )
            publish(store, candidate, checks_passed=True, manifest={}, ann=past)
            built[index_type] = uri, vectors, past
        return built[index_type]

    return publish_once


@pytest.fixture(params=TYPES)
def published(request, releases):
    return releases(request.param)


def test_publish_builds_the_index_past_the_threshold_only(published) -> None:
    uri, _, settings = published
    store = IndexStore(uri)
    first, second = store.resolve("release-0001"), store.resolve("release-0002")
    assert manifest_of(first)["ann"] == {}
    built = manifest_of(second)["ann"]
    assert built["index_type"] == settings.index_type and built["rows"] == ROWS and built["metric"] == "cosine"
    # The tag carries the version with the index; the first release's version has none.
    assert has_vector_index(store.open_at(schema.CHUNKS, second.chunks_version))
    assert not has_vector_index(store.open_at(schema.CHUNKS, first.chunks_version))
    assert manifest_of(second)["fts"] is True


def test_search_through_the_index_finds_what_exact_search_finds(published) -> None:
    uri, vectors, settings = published
    embedder = LookupEmbedder(vectors)
    index = open_index(uri, embedder=embedder, ann=settings)
    assert index.has_vector_index
    queries = range(7, ROWS, 97)
    approximate, exact, top_agrees = [], [], 0
    for row in queries:
        hits = index.search(f"row {row}", k=10, mode="vector")
        query = embedder.embed([f"row {row}"])[0]
        truth = exact_top(vectors, query, 10)
        approximate.append([row_of(hit.chunk_id) for hit in hits])
        exact.append(truth)
        top_agrees += row_of(hits[0].chunk_id) == truth[0]
        assert hits[0].similarity == pytest.approx(float(vectors[truth[0]] @ query), abs=0.05)
    assert recall_at_k(np.array(approximate), np.array(exact)) >= SEARCH_RECALL
    assert top_agrees >= 0.95 * len(queries)
    hybrid = index.search("row 1234", k=5, mode="hybrid")
    assert row_of(hybrid[0].chunk_id) in exact_top(vectors, embedder.embed(["row 1234"])[0], 5)


def test_a_pinned_release_without_the_index_still_searches_exactly(published) -> None:
    uri, vectors, settings = published
    embedder = LookupEmbedder(vectors)
    pinned = open_index(uri, "release-0001", embedder=embedder, ann=settings)
    assert not pinned.has_vector_index
    for row in (11, 2222, 3999):
        hits = pinned.search(f"row {row}", k=10, mode="vector")
        assert [row_of(h.chunk_id) for h in hits] == exact_top(vectors, embedder.embed([f"row {row}"])[0], 10)


def test_the_chunk_index_answers_as_exact_search_does(published) -> None:
    uri, _, settings = published
    store = IndexStore(uri)
    corpus = corpus_from_release(store, store.resolve("release-0002"), run_at=RUN_AT, reviews={}, ann=settings)
    assert isinstance(corpus.chunk_index, LanceChunkIndex)
    rows = np.arange(3, ROWS, 7)
    approximate, sims = corpus.chunk_index.search(corpus.chunk_vectors[rows], 10, rows=rows)
    exact, exact_sims = nearest_neighbours(corpus.chunk_vectors, 10)
    exact, exact_sims = exact[rows], exact_sims[rows]
    assert approximate.shape == exact.shape
    assert recall_at_k(approximate, exact) >= SEARCH_RECALL
    assert not (approximate == rows[:, None]).any()  # no row is its own neighbour
    found = approximate[:, 0] == exact[:, 0]
    assert np.allclose(sims[found, 0], exact_sims[found, 0], atol=1e-5)  # exact cosines from memory
    # The release before the index reads as an in-memory corpus.
    older = corpus_from_release(store, store.resolve("release-0001"), run_at=RUN_AT, reviews={}, ann=settings)
    assert older.chunk_index is None
    # So does a release with an index but fewer chunks than the audit's threshold: in memory is faster there.
    small = settings.model_copy(update={"audit_min_rows": ROWS + 1})
    assert (
        corpus_from_release(store, store.resolve("release-0002"), run_at=RUN_AT, reviews={}, ann=small).chunk_index
        is None
    )


class RememberingIndex:
    """Delegates to a chunk index, answering a repeated question from memory and counting the searches."""

    def __init__(self, index: LanceChunkIndex) -> None:
        self.index = index
        self.searches = 0
        self._answers: dict[tuple[bytes, int], tuple[np.ndarray, np.ndarray]] = {}

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self.searches += 1
        key = (queries.tobytes(), k)
        if key not in self._answers:
            self._answers[key] = self.index.search(queries, k)
        return self._answers[key]


def test_contradiction_pairs_through_the_index_match_the_in_memory_ones(releases) -> None:
    uri, _, settings = releases(AnnSettings().index_type)  # the default type: a full k-NN pass is the slow part
    store = IndexStore(uri)
    corpus = corpus_from_release(store, store.resolve("release-0002"), run_at=RUN_AT, reviews={}, ann=settings)
    assert isinstance(corpus.chunk_index, LanceChunkIndex)
    index = RememberingIndex(corpus.chunk_index)
    owners = [chunk.article_id for chunk in corpus.chunks]
    contradiction = ContradictionSettings()
    kwargs = {"k": contradiction.neighbours, "min_similarity": contradiction.candidate_similarity, "owners": owners}
    in_memory = {(i, j): sim for i, j, sim in candidate_pairs(corpus.chunk_vectors, **kwargs)}
    indexed = {(i, j): sim for i, j, sim in candidate_pairs(corpus.chunk_vectors, **kwargs, index=index)}
    planted = (0, CHUNKS_PER_ARTICLE)  # corpus rows follow (article_id, position): the same as the table's
    assert planted in in_memory and indexed[planted] == pytest.approx(in_memory[planted], abs=1e-6)
    assert len(in_memory.keys() & indexed.keys()) >= PAIR_RECALL * len(in_memory)

    detector = ContradictionDetector(contradiction)
    through_index = list(detector.detect(replace(corpus, chunk_index=index)))
    assert index.searches == 2  # the detector asked the index, not an in-memory search
    in_memory_findings = list(detector.detect(replace(corpus, chunk_index=None)))
    assert {f.finding_id for f in through_index} == {f.finding_id for f in in_memory_findings}
    assert any(set(f.article_ids) == {"a00000", "a00001"} for f in through_index)  # 30 days against 14


def test_a_publish_that_adds_a_few_rows_keeps_the_index_and_finds_them_and_a_big_change_retrains(tmp_path) -> None:
    vectors = clustered(800, seed=11)
    store = IndexStore(str(tmp_path / "index"))
    settings = AnnSettings(min_rows=100, max_unindexed_share=0.1)
    first = manifest_of(publish(store, candidate_of(vectors), checks_passed=True, manifest={}, ann=settings))
    again = manifest_of(publish(store, candidate_of(vectors), checks_passed=True, manifest={}, ann=settings))
    assert "reused" not in first["ann"] and again["ann"]["reused"] is True and again["ann"]["unindexed_rows"] == 0

    # Ten more articles (5% of the rows): the trained index stays, and the rows it lacks are still found.
    grown = np.vstack([vectors, clustered(400, seed=12)[:40]])
    kept = publish(store, candidate_of(grown), checks_passed=True, manifest={}, ann=settings)
    assert manifest_of(kept)["ann"]["reused"] is True and manifest_of(kept)["ann"]["unindexed_rows"] == 40
    embedder = LookupEmbedder(grown)
    index = open_index(store.uri, embedder=embedder, ann=settings)
    assert index.has_vector_index
    for row in range(800, 840, 3):
        hits = index.search(f"row {row}", k=5, mode="vector")
        assert row_of(hits[0].chunk_id) == exact_top(grown, embedder.embed([f"row {row}"])[0], 1)[0]

    # Past the share (200 rows added to 840): retrained over every row.
    bigger = np.vstack([grown, clustered(400, seed=13)[:200]])
    retrained = manifest_of(publish(store, candidate_of(bigger), checks_passed=True, manifest={}, ann=settings))
    assert "reused" not in retrained["ann"] and retrained["ann"]["rows"] == len(bigger)
    table = store.open_at(schema.CHUNKS, store.current().chunks_version)
    assert has_vector_index(table) and sum(int(i.num_unindexed_rows) for i in table.list_indices()) == 0
    # The earlier release still reads at its own version, with its own index.
    assert store.open_at(schema.CHUNKS, kept.chunks_version).count_rows() == len(grown)


def test_a_failed_index_build_leaves_the_publish_standing(tmp_path, monkeypatch) -> None:
    vectors = clustered(600, seed=5)
    store = IndexStore(str(tmp_path / "index"))
    real_create_index = lancedb.table.LanceTable.create_index

    def failing(self, column, *args, **kwargs):
        if column == "vector":
            raise RuntimeError("out of memory while training kmeans")
        return real_create_index(self, column, *args, **kwargs)

    monkeypatch.setattr(lancedb.table.LanceTable, "create_index", failing)
    release = publish(store, candidate_of(vectors), checks_passed=True, manifest={}, ann=AnnSettings(min_rows=100))
    manifest = manifest_of(release)
    assert "out of memory" in manifest["ann_error"] and "ann" not in manifest
    assert store.current() == release and manifest["fts"] is True
    index = open_index(store.uri, embedder=LookupEmbedder(vectors))
    assert not index.has_vector_index
    hits = index.search("row 42", k=3, mode="vector")
    assert [row_of(h.chunk_id) for h in hits] == exact_top(vectors, LookupEmbedder(vectors).embed(["row 42"])[0], 3)


def test_publish_without_ann_settings_builds_no_index(tmp_path) -> None:
    store = IndexStore(str(tmp_path / "index"))
    release = publish(store, candidate_of(clustered(400, seed=9)), checks_passed=True, manifest={})
    assert "ann" not in manifest_of(release)
    assert not has_vector_index(store.open_at(schema.CHUNKS, release.chunks_version))
