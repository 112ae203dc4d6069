"""The search API (/api/v1) of `kbcurator serve`, served by uvicorn on 127.0.0.1 over a real LanceDB index.

Releases are built with a hashing fake whose name is its import path, so the app loads it as it would load MiniLM:
lazily, once, from the name in the release's manifest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from app_server import running
from builders import make_article, sample_articles, sectioned_article
from fakes import FakeHashingEmbedder
from fastapi import FastAPI

from kbcurator.chunking import ChunkPolicy
from kbcurator.index.build import build_candidate
from kbcurator.index.publish import publish
from kbcurator.index.store import IndexStore
from kbcurator.records import Article, make_article_id
from kbcurator.settings import Settings
from kbcurator.usecases.search import BadSearch, SearchRequest, SearchService
from kbcurator.web import create_app
from kbcurator.web.api import API_PREFIX, search_api

TOKEN = "s3cret-read-token-for-tests"


class ImportableFake(FakeHashingEmbedder):
    """The hashing fake under a name the app can load by (``module:Class``), as it loads a model package."""

    def __init__(self) -> None:
        super().__init__(dimension=64, name=f"{__name__}:ImportableFake")


def _copy(article: Article, slug: str) -> Article:
    """The same page published again under another URL: an exact duplicate."""
    url = f"https://help.example.com/articles/{slug}"
    return replace(article, url=url, article_id=make_article_id(article.source_id, url))


def _articles() -> list[Article]:
    articles = sample_articles()  # source "test", section "General", locale en-us, updated 2026-01-05
    reset = articles[0]
    billing = make_article(
        "invoices",
        "Download an invoice",
        "Open Billing, pick the order and choose Download invoice. Refunds show as credit notes.",
        source_id="billing",
        updated=datetime(2026, 3, 1, tzinfo=UTC),
    )
    german = make_article("passwort", "Passwort zurücksetzen", "Öffnen Sie Einstellungen und wählen Sie Passwort.")
    return [
        *articles,
        _copy(reset, "reset-password-copy"),
        replace(billing, section="Billing"),
        replace(german, locale="de-de"),
        sectioned_article("password-rules", "Password rules"),
    ]


def _publish(store: IndexStore, articles: list[Article]):
    candidate = build_candidate(articles, store=store, embedder=ImportableFake(), policy=ChunkPolicy())
    return publish(store, candidate, checks_passed=True, manifest={})


@pytest.fixture
def index(tmp_path):
    store = IndexStore(str(tmp_path / "index"))
    _publish(store, _articles())
    return store


def _settings(store: IndexStore, **serve) -> Settings:
    return Settings(index_uri=store.uri, serve=serve)


def _search(client: httpx.Client, **params) -> httpx.Response:
    return client.get("/api/v1/search", params=params)


def test_hits_carry_the_chunk_its_article_and_the_release(index) -> None:
    with running(create_app(_settings(index))) as base, httpx.Client(base_url=base) as client:
        answer = _search(client, query="refund within 30 days of purchase", k=3, mode="vector")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        top = body["hits"][0]
        assert top["title"] == "Request a refund" and top["url"] == "https://help.example.com/articles/refunds"
        assert "Refunds are available within 30 days" in top["text"]
        assert top["heading_path"] == ["Request a refund"] and top["locale"] == "en-us"
        assert top["updated_at"].startswith("2026-01-05") and top["source_id"] == "test"
        assert top["section"] == "General" and top["chunk_id"].startswith(top["article_id"] + "#")
        assert top["release"] == body["release"]["tag"] == "release-0001"
        assert 0 < top["similarity"] == top["score"] <= 1
        for mode in ("hybrid", "fulltext"):
            hits = _search(client, query="refund within 30 days of purchase", mode=mode).json()["hits"]
            assert hits[0]["title"] == "Request a refund", mode
        assert _search(client, query="refund", mode="fulltext").json()["hits"][0]["similarity"] is None
        posted = client.post("/api/v1/search", json={"query": "refund within 30 days of purchase", "k": 3})
        assert posted.status_code == 200 and posted.json()["hits"][0]["title"] == "Request a refund"


def test_filters_narrow_the_hits(index) -> None:
    with running(create_app(_settings(index))) as base, httpx.Client(base_url=base) as client:

        def titles(**params) -> list[str]:
            answer = _search(client, query="password billing refund invoice", k=10, mode="hybrid", **params)
            assert answer.status_code == 200, answer.text
            return [hit["title"] for hit in answer.json()["hits"]]

        everything = titles()
        assert {"Download an invoice", "Passwort zurücksetzen", "Request a refund"} <= set(everything)
        assert titles(source="billing") == ["Download an invoice"]
        assert titles(section="billing") == ["Download an invoice"]  # sections and locales match case-insensitively
        assert titles(locale="DE-de") == ["Passwort zurücksetzen"]
        assert titles(updated_after="2026-02-01T00:00:00Z") == ["Download an invoice"]
        assert titles(updated_after="2026-03-01T00:00:00") == []  # strictly after; no offset is UTC
        assert "Download an invoice" not in titles(source="test")
        assert set(titles(source=["test", "billing"])) == set(everything)  # one filter's values: OR
        assert titles(source="test", section="Billing") == []  # filters: AND
        similar = _search(client, query="reset password", mode="vector", k=10, min_score=0.3).json()["hits"]
        assert similar and all(hit["similarity"] >= 0.3 for hit in similar)
        assert len(similar) < len(_search(client, query="reset password", mode="vector", k=10).json()["hits"])


def test_exact_duplicate_articles_and_an_articles_siblings_take_one_hit(index) -> None:
    with running(create_app(_settings(index))) as base, httpx.Client(base_url=base) as client:
        body = _search(client, query="reset password link email", k=4, mode="vector").json()
        urls = [hit["url"] for hit in body["hits"]]
        reset, copy = (
            f"https://help.example.com/articles/{slug}" for slug in ("reset-password", "reset-password-copy")
        )
        assert len({reset, copy} & set(urls)) == 1  # the two identical pages take one slot, not two
        kept = next(hit for hit in body["hits"] if hit["url"] in (reset, copy))
        assert kept["also_in"] == [copy if kept["url"] == reset else reset] and body["collapsed"] >= 1

        rules = "https://help.example.com/articles/password-rules"
        one = _search(client, query="passwords twelve characters letters digits", k=5, mode="vector").json()
        assert [hit["url"] for hit in one["hits"]].count(rules) == 1
        more = _search(client, query="passwords twelve characters letters digits", k=5, mode="vector", per_article=3)
        paths = [hit["heading_path"] for hit in more.json()["hits"] if hit["url"] == rules]
        assert len(paths) == 3 and ["Password rules", "Rule 1"] in paths


def test_a_pinned_release_answers_the_same_while_another_is_published(index) -> None:
    articles = [a for a in _articles() if "refund" not in a.url]
    articles.append(make_article("refund-policy", "Refund policy", "Refunds are available within 14 days only."))
    query = {"query": "refund within 30 days of purchase", "k": 3, "mode": "hybrid"}
    with running(create_app(_settings(index))) as base, httpx.Client(base_url=base) as client:
        before = _search(client, release="release-0001", **query).json()
        assert before["hits"][0]["title"] == "Request a refund"
        publishing = threading.Thread(target=_publish, args=(IndexStore(index.uri), articles))
        publishing.start()
        during = []
        while publishing.is_alive():
            during.append(_search(client, release="release-0001", **query).json())
        publishing.join()
        after = _search(client, release="release-0001", **query).json()
        current = _search(client, **query).json()
    assert all(answer == before for answer in [*during, after])
    assert current["release"]["tag"] == "release-0002" and current["hits"][0]["title"] == "Refund policy"
    assert {hit["release"] for hit in current["hits"]} == {"release-0002"}


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"release": "release-0099"}, 404, "no release 'release-0099' (the newest: release-0001"),
        ({"release": "drop table;"}, 400, "release must be a tag"),
        ({"source": "nope"}, 400, "no source 'nope' in release-0001 (known: billing, test)"),
        ({"locale": "fr-fr"}, 400, "no locale 'fr-fr' in release-0001 (known: de-de, en-us)"),
        ({"section": "Nope' OR '1'='1"}, 400, "no section"),
        ({"updated_after": "last tuesday"}, 422, "updated_after: Input should be a valid datetime"),
        ({"mode": "semantic"}, 422, "mode: Input should be 'vector', 'fulltext' or 'hybrid'"),
        ({"k": 51}, 422, "k: Input should be less than or equal to 50"),
        ({"mode": "fulltext", "min_score": 0.5}, 400, "min_score is a cosine similarity"),
        ({"sorce": "billing"}, 400, "unknown parameter 'sorce'"),
    ],
)
def test_a_bad_release_filter_or_mode_is_a_clear_4xx(index, params, status, says) -> None:
    with running(create_app(_settings(index))) as base, httpx.Client(base_url=base) as client:
        answer = _search(client, query="refund", **params)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert says in answer.json()["detail"] and "Traceback" not in answer.text
    assert index.uri not in answer.text  # the server's paths stay on the server


def test_releases_and_their_manifests(index) -> None:
    _publish(index, _articles()[:-1])
    with running(create_app(_settings(index))) as base, httpx.Client(base_url=base) as client:
        listed = client.get("/api/v1/releases").json()
        assert listed["current"] == "release-0002"
        assert [r["tag"] for r in listed["releases"]] == ["release-0002", "release-0001"]
        first = client.get("/api/v1/releases/release-0001").json()
        assert first["current"] is False and first["release"]["seq"] == 1
        assert (
            first["manifest"]["model"] == f"{__name__}:ImportableFake" and first["manifest"]["counts"]["articles"] == 9
        )
        assert client.get("/api/v1/releases/current").json()["release"]["tag"] == "release-0002"
        missing = client.get("/api/v1/releases/release-0042")
        assert missing.status_code == 404 and "no release 'release-0042'" in missing.json()["detail"]


def test_batch_search_answers_in_order_and_names_a_bad_query(index) -> None:
    embedder = ImportableFake()
    app = FastAPI()  # the API alone, with the use case given the embedder
    app.mount(API_PREFIX, search_api(_settings(index), search=SearchService(_settings(index), embedder=embedder)))
    queries = [{"query": "refund within 30 days"}, {"query": "export my data", "k": 2}, {"query": "invoice"}]
    with running(app) as base, httpx.Client(base_url=base) as client:
        answer = client.post("/api/v1/search/batch", json={"queries": queries})
        assert answer.status_code == 200, answer.text
        tops = [result["hits"][0]["title"] for result in answer.json()["results"]]
        assert tops == ["Request a refund", "Export your data", "Download an invoice"]
        assert embedder.embedded_texts == [q["query"] for q in queries]  # one embedding call for the batch
        bad = client.post("/api/v1/search/batch", json={"queries": [queries[0], {"query": "x", "source": "nope"}]})
        assert bad.status_code == 400 and bad.json()["detail"].startswith("queries[1]: no source 'nope'")
        too_many = client.post("/api/v1/search/batch", json={"queries": queries * 7})
        assert too_many.status_code == 422 and "queries" in too_many.json()["detail"]


def test_the_read_token_is_required_when_configured(index) -> None:
    with running(create_app(_settings(index, read_token=TOKEN))) as base, httpx.Client(base_url=base) as client:
        for path in ("/api/v1/search?query=refund", "/api/v1/releases", "/api/v1/openapi.json"):
            missing = client.get(path)
            assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer", path
            wrong = client.get(path, headers={"Authorization": f"Bearer {TOKEN[:-1]}x"})
            assert wrong.status_code == 401 and "read token is required" in wrong.json()["detail"]
            assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        # From another machine (uvicorn applies X-Forwarded-For from 127.0.0.1), the token still opens it.
        remote = {"Authorization": f"Bearer {TOKEN}", "X-Forwarded-For": "203.0.113.9"}
        assert client.get("/api/v1/releases", headers=remote).status_code == 200


def test_without_a_token_only_clients_on_this_machine_are_answered(index) -> None:
    with running(create_app(_settings(index))) as base, httpx.Client(base_url=base) as client:
        assert client.get("/api/v1/releases").status_code == 200
        remote = client.get("/api/v1/releases", headers={"X-Forwarded-For": "203.0.113.9"})
        assert remote.status_code == 403 and "serve.read_token" in remote.json()["detail"]


def test_the_api_is_described_by_its_own_openapi_document(index) -> None:
    with running(create_app(_settings(index))) as base, httpx.Client(base_url=base) as client:
        document = client.get("/api/v1/openapi.json").json()
        assert client.get("/openapi.json").status_code == 404 and client.get("/docs").status_code == 404
    assert document["servers"] == [{"url": "/api/v1"}]
    assert {"/search", "/search/batch", "/releases", "/releases/{tag}"} <= set(document["paths"])
    parameters = {p["name"] for p in document["paths"]["/search"]["get"]["parameters"]}
    assert {"query", "k", "mode", "release", "source", "locale", "section", "updated_after", "min_score"} <= parameters
    assert "HTTPBearer" in document["components"]["securitySchemes"]


def test_the_model_is_loaded_once_on_the_first_search(index, monkeypatch) -> None:
    from kbcurator.embedding import sentence

    loads = []

    def counting(model: str, *args, **options):
        loads.append(model)
        return ImportableFake()

    monkeypatch.setattr(sentence, "load_embedder", counting)
    with running(create_app(_settings(index))) as base, httpx.Client(base_url=base) as client:
        assert client.get("/api/v1/releases").status_code == 200
        assert loads == []  # serving releases, or starting, loads no model
        for mode in ("vector", "hybrid", "vector"):
            assert _search(client, query="refund", mode=mode).status_code == 200
        client.post("/api/v1/search/batch", json={"queries": [{"query": "a"}, {"query": "b"}]})
    assert loads == [f"{__name__}:ImportableFake"]


def test_no_index_yet_is_a_clear_503(tmp_path) -> None:
    settings = Settings(index_uri=str(tmp_path / "nothing"))
    with running(create_app(settings)) as base, httpx.Client(base_url=base) as client:
        answer = _search(client, query="refund")
    assert answer.status_code == 503 and answer.json()["detail"] in (
        "no index has been built here yet: publish a release first",
        "no release has been published yet",
    )


def test_searches_log_no_lancedb_deprecation_warnings(index) -> None:
    """LanceDB logs a deprecation warning from Rust per search that selects columns without its score column."""
    script = (
        "import sys; sys.path.insert(0, sys.argv[2])\n"
        "from test_search_api import ImportableFake\n"
        "from kbcurator.settings import Settings\n"
        "from kbcurator.usecases.search import BadSearch, SearchRequest, SearchService\n"
        "service = SearchService(Settings(index_uri=sys.argv[1]), embedder=ImportableFake())\n"
        "for mode in ('vector', 'hybrid', 'fulltext'):\n"
        "    for query in ('refund', 'reset password', 'export data'):\n"
        "        assert service.search(SearchRequest(query, mode=mode, sources=('test',))).hits\n"
    )
    environment = {**os.environ, "LANCEDB_LOG": "warn"}
    tests = str(Path(__file__).parent)
    done = subprocess.run(
        [sys.executable, "-c", script, index.uri, tests], env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Deprecation" not in done.stderr and "WARN" not in done.stderr, done.stderr[-2000:]


def test_the_use_case_returns_typed_hits(index) -> None:
    service = SearchService(_settings(index), embedder=ImportableFake())
    result = service.search(SearchRequest("download an invoice", k=2, mode="hybrid", sections=("Billing",)))
    assert result.release.tag == "release-0001" and result.searched_as == "hybrid"
    assert [hit.title for hit in result.hits] == ["Download an invoice"]
    assert result.hits[0].updated_at == datetime(2026, 3, 1, tzinfo=UTC)


def test_a_release_without_a_full_text_index(tmp_path) -> None:
    store = IndexStore(str(tmp_path / "index"))
    candidate = build_candidate(sample_articles(), store=store, embedder=ImportableFake(), policy=ChunkPolicy())
    publish(store, candidate, checks_passed=True, manifest={}, fts=False)
    service = SearchService(_settings(store), embedder=ImportableFake())
    with pytest.raises(BadSearch, match="release-0001 has no full-text index: search it in vector mode"):
        service.search(SearchRequest("refund", mode="fulltext"))
    hybrid = service.search(SearchRequest("request a refund", mode="hybrid"))
    assert hybrid.searched_as == "vector" and hybrid.hits[0].title == "Request a refund"


def test_the_service_keeps_the_release_list_until_a_publish_or_a_rollback_changes_it(index, monkeypatch) -> None:
    """Reading the releases table costs more than the rest of a search's own work: a long-lived service reads it
    once, and again only when a publish or a rollback (from another process's store) committed to it."""
    from kbcurator.index.versions import rollback

    service = SearchService(_settings(index), embedder=ImportableFake())
    reads: list[int] = []
    real = IndexStore.releases

    def counted(store: IndexStore):
        if store is service._store:  # the service's own reads, not the publish's or the rollback's
            reads.append(1)
        return real(store)

    monkeypatch.setattr(IndexStore, "releases", counted)
    for _ in range(3):
        assert service.search(SearchRequest("reset my password", k=2)).release.tag == "release-0001"
    assert len(reads) == 1

    other = IndexStore(index.uri)  # the nightly's own handle
    _publish(other, [*_articles(), make_article("new-one", "A new article", "Something new to say.")])
    assert service.search(SearchRequest("reset my password", k=2)).release.tag == "release-0002"
    assert service.release("release-0002").current
    rollback(other, "release-0001")
    assert service.search(SearchRequest("reset my password", k=2)).release.tag == "release-0001"
    assert [r.tag for r in service.releases()][:2] == ["release-0001", "release-0002"]
    assert len(reads) == 3  # one read per change, not per search
