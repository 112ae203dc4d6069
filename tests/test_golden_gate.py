"""The retrieval gate on every publish: golden questions from a file and from resolved gaps, measured on the
candidate and on the current release, on a real LanceDB directory with the hashing fake as the model."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from builders import make_article, sample_articles
from fakes import FakeHashingEmbedder

from kbcurator.chunking import ChunkPolicy
from kbcurator.errors import ConfigError, ValidationFailed
from kbcurator.index import golden, schema
from kbcurator.index.build import build_candidate
from kbcurator.index.golden import GoldenStore, read_golden_file
from kbcurator.index.store import IndexStore, manifest_of
from kbcurator.quality import ValidationReport
from kbcurator.records import Article
from kbcurator.settings import Settings, SourceConfig
from kbcurator.triage import TriageStore
from kbcurator.usecases import reindex as usecase

PASSED = ValidationReport(success=True, outcomes=(), results_json={})
URL = "https://help.example.com/articles/{}"
DIMENSION = 256


def _settings(tmp_path: Path, **retrieval) -> Settings:
    return Settings(
        index_uri=str(tmp_path / "index"),
        runs_dir=str(tmp_path / "runs"),
        sources=[SourceConfig(id="test", kind="folder", location=str(tmp_path))],
        retrieval=retrieval,
        gaps={"answered_lift": 0.1},  # the hashing fake's lifts are not MiniLM's
    )


def _golden_file(tmp_path: Path) -> str:
    path = tmp_path / "golden.csv"
    path.write_text(
        "question,expected,locale\n"
        f"How do I get a refund for my purchase?,{URL.format('refunds')},\n"
        f"Refund within 30 days of purchase?,{URL.format('refunds')},en-us\n"
        f"I forgot my password: how do I reset it?,{URL.format('reset-password')},\n"
        f"How can I cancel my subscription?,{URL.format('cancel')}|{URL.format('export')},\n"
        f"Turn on two-factor authentication with an authenticator app,{URL.format('two-factor')},\n",
        encoding="utf-8",
    )
    return str(path)


def _run(settings: Settings, articles: list[Article], embedder: FakeHashingEmbedder, **job_options):
    """One reindex through the use case as the flow runs it; returns (job, decision, release or error, result)."""
    job = usecase.start_reindex(settings, None, **job_options)
    candidate = build_candidate(articles, store=job.store, embedder=embedder, policy=ChunkPolicy())
    check = usecase.evaluate(job, candidate, embedder=embedder)
    decision = usecase.decide(job, candidate, [], PASSED, check)
    try:
        release = usecase.publish_decided(job, candidate, decision)
        error = None
    except ValidationFailed as exc:
        release, error = None, exc
    result, summary = usecase.finish(job, candidate, [], PASSED, decision, release, {})
    return decision, release, error, result, summary


def _without(slug: str) -> list[Article]:
    return [a for a in sample_articles() if not a.url.endswith("/" + slug)]


def test_a_candidate_that_drops_the_answering_article_is_blocked_naming_the_questions(tmp_path) -> None:
    settings = _settings(tmp_path, golden_file=_golden_file(tmp_path))
    embedder = FakeHashingEmbedder(dimension=DIMENSION)
    _, release, _, result, summary = _run(settings, sample_articles(), embedder)
    assert release is not None and release.tag == "release-0001"
    gate = manifest_of(release)["retrieval"]
    assert gate["passed"] and gate["questions"] == 5 and gate["by_origin"] == {"file": 5}
    assert gate["candidate"]["recall_at_5"] == 1.0 and gate["baseline"] is None
    assert "Retrieval gate passed" in summary and result["retrieval"]["candidate"]["mrr"] > 0.5

    # The refunds article is gone: the two questions it answers lose it; the cancel question keeps "export".
    decision, release, error, result, summary = _run(settings, _without("refunds"), embedder)
    assert decision.action == "blocked" and release is None and error is not None
    lost = {q["question"]: q for q in decision.retrieval["lost"]}
    assert set(lost) == {"How do I get a refund for my purchase?", "Refund within 30 days of purchase?"}
    assert {q["reason"] for q in lost.values()} == {"vanished"}
    assert {q["article_url"] for q in lost.values()} == {URL.format("refunds")}
    assert "retrieval.recall_at_k" in error.failed
    assert "How do I get a refund for my purchase?" in str(error) and "not in the candidate" in str(error)
    assert decision.retrieval["baseline"]["recall_at_5"] == 1.0
    assert decision.retrieval["candidate"]["recall_at_5"] == pytest.approx(0.6)
    assert "Refund within 30 days of purchase?" in summary and "vanished" in summary
    assert result["outcome"].startswith("retrieval gate FAILED") and result["current"] == "release-0001"

    store = IndexStore(settings.index_uri)
    assert [r.tag for r in store.releases()] == ["release-0001"]  # the current release is untouched
    titles = store.read_table("articles", store.current().articles_version, ["title"])["title"].to_pylist()
    assert "Request a refund" in titles


def test_the_override_publishes_and_the_manifest_says_so(tmp_path) -> None:
    settings = _settings(tmp_path, golden_file=_golden_file(tmp_path))
    embedder = FakeHashingEmbedder(dimension=DIMENSION)
    _run(settings, sample_articles(), embedder)
    _, release, error, _, summary = _run(settings, _without("refunds"), embedder, allow_retrieval_drop=True)
    assert error is None and release is not None and release.tag == "release-0002"
    gate = manifest_of(release)["retrieval"]
    assert gate["passed"] is False and gate["overridden"] is True and len(gate["lost"]) == 2
    assert "overridden" in summary


def test_a_rewritten_article_that_falls_out_of_the_top_k_is_named_as_rewritten(tmp_path) -> None:
    settings = _settings(tmp_path, golden_file=_golden_file(tmp_path), k=1)
    embedder = FakeHashingEmbedder(dimension=DIMENSION)
    _run(settings, sample_articles(), embedder)
    articles = [
        *_without("reset-password"),
        make_article("reset-password", "Account access", "Sign in problems are handled by the support team."),
    ]
    decision, release, *_ = _run(settings, articles, embedder)
    lost = {q["question"]: q for q in decision.retrieval["lost"]}
    assert lost["I forgot my password: how do I reset it?"]["reason"] == "rewritten"
    assert lost["I forgot my password: how do I reset it?"]["rank_after"] > 1
    assert decision.action == "blocked" and release is None


def test_a_golden_file_without_an_expected_article_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "golden.csv"
    path.write_text("question,expected\nWhere is my order?,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="row 1"):
        read_golden_file(path)


def _record_gap(store: IndexStore, gap_id: str, questions: list[str]) -> None:
    """A gap as a gaps run stores it (only the columns the golden questions read matter here)."""
    now = datetime.now(UTC)
    row = {
        "run_id": "gaps-1",
        "run_at": now,
        "release_tag": "release-0001",
        "gap_id": gap_id,
        "label": "export data",
        "keywords": ["export"],
        "size": len(questions),
        "previous_size": 0,
        "trend": "new",
        "escalation_share": 0.0,
        "coverage_score": 0.0,
        "gap_score": 1.0,
        "action": "write",
        "suggestion": "write a new article",
        "best_articles": "[]",
        "central_query": questions[0],
        "representatives": questions,
        "first_seen_at": now,
        "last_seen_at": now,
        "weekly_counts": "{}",
        "centroid": np.zeros(DIMENSION, dtype=np.float32).tolist(),
    }
    table = store.open_or_create(schema.GAPS, schema.gaps_schema(DIMENSION))
    table.add(pa.Table.from_pylist([row], schema=schema.gaps_schema(DIMENSION)))


def test_a_resolved_gaps_questions_become_golden_questions_and_guard_the_next_publish(tmp_path) -> None:
    settings = _settings(tmp_path)  # no golden file: only the resolved gap's questions
    embedder = FakeHashingEmbedder(dimension=DIMENSION)
    _, first, *_ = _run(settings, _without("export"), embedder)
    assert first is not None
    store = IndexStore(settings.index_uri)
    questions = ["How do I export my data?", "Where is the download link for my data export archive?"]
    _record_gap(store, "gap-export", questions)
    TriageStore(store).decide("gap-export", "resolved", decided_by="ana", note="wrote 'Export your data'")

    # The release that adds the article answers the gap; it was published after the gap was resolved.
    decision, second, *_ = _run(settings, sample_articles(), embedder)
    assert second is not None and decision.retrieval["questions"] == 0

    # The next run takes the gap's questions as golden questions for the article that answers them ...
    decision, third, *_ = _run(settings, sample_articles(), embedder, force_publish=True)
    assert third is not None and decision.retrieval["added_from_resolved_gaps"] == 2
    stored = [q for q in GoldenStore(store).all() if q.origin == "resolved_gap"]
    assert {q.question for q in stored} == set(questions)
    assert all(URL.format("export") in q.expected and q.origin_ref == "gap-export" for q in stored)
    assert all(q.release_tag == "release-0002" for q in stored)

    # ... and a candidate that drops that article is blocked, naming them: the fixed gap cannot come back.
    decision, blocked, error, result, _ = _run(settings, _without("export"), embedder)
    assert blocked is None and error is not None and decision.action == "blocked"
    assert {q["question"] for q in decision.retrieval["lost"]} == set(questions)
    assert {q["origin"] for q in decision.retrieval["lost"]} == {"resolved_gap"}
    assert store.current().tag == "release-0003"
    assert json.loads((Path(result["run_dir"]) / "result.json").read_text())["retrieval"]["passed"] is False
    # Harvested once: the gap is not read again.
    assert decision.retrieval["added_from_resolved_gaps"] == 0


def test_without_golden_questions_the_gate_is_not_applied(tmp_path) -> None:
    settings = _settings(tmp_path)
    embedder = FakeHashingEmbedder(dimension=DIMENSION)
    _run(settings, sample_articles(), embedder)
    decision, release, error, _, summary = _run(settings, _without("refunds"), embedder)
    assert release is not None and error is None
    assert decision.retrieval["passed"] and "gate not applied" in summary


@pytest.mark.model
def test_the_samples_golden_questions_all_name_a_sample_article_and_pass_the_gate(tmp_path) -> None:
    """The bundled golden file against the bundled help center with the real model: every question resolves to
    an article, and the first publish passes its own floor."""
    from conftest import REPO

    from kbcurator.embedding import load_embedder
    from kbcurator.ingest import read_articles
    from kbcurator.settings import load_settings

    settings = load_settings(
        REPO / "kb_sources" / "sample.yaml", index_uri=str(tmp_path / "index"), runs_dir=str(tmp_path / "runs")
    )
    embedder = load_embedder(settings.embedding.model)
    job = usecase.start_reindex(settings, None)
    articles, _ = read_articles(settings.sources[0])
    candidate = build_candidate(articles, store=job.store, embedder=embedder, policy=ChunkPolicy())
    check = usecase.evaluate(job, candidate, embedder=embedder)
    print(f"sample golden questions: {check.candidate.as_dict()}")
    assert check.unresolved == () and check.candidate.questions == len(read_golden_file(settings.retrieval.golden_file))
    assert usecase.retrieval_failures(check, settings.retrieval) == []


def test_tickets_that_link_their_solving_article_become_golden_questions_and_guard_the_next_publish(tmp_path) -> None:
    """A ticket export with a ``solved_by`` column: the gaps run stores the linked tickets' questions (solved ones
    too, which do not count as gaps), and the next publish that drops the article is blocked naming them."""
    from kbcurator.usecases import gaps as gaps_usecase

    tickets = tmp_path / "tickets.csv"
    tickets.write_text(
        "id,status,text,solved_by\n"
        f"t1,solved,How do I get my money back for an order?,{URL.format('refunds')}\n"
        f"t2,solved,Card charged twice - can I get a refund?,{URL.format('refunds')} | {URL.format('cancel')}\n"
        "t3,open,Where is the dark mode switch?,\n"
        f"t4,open,Mail ana@example.com about my two-factor codes,{URL.format('two-factor')}\n",
        encoding="utf-8",
    )
    desk = {"id": "desk", "format": "csv", "location": str(tickets)}
    settings = Settings.model_validate({**_settings(tmp_path).model_dump(), "tickets": [desk]})
    embedder = FakeHashingEmbedder(dimension=DIMENSION)
    _, first, *_ = _run(settings, sample_articles(), embedder)
    assert first is not None

    job = gaps_usecase.start_gaps(settings)
    ticket_set = gaps_usecase.gather(job, [gaps_usecase.read_source(source, job) for source in settings.tickets])
    assert ticket_set.golden_from_links == 3
    assert {t.ticket_id for t in ticket_set.tickets} == {"t3", "t4"}  # solved tickets are no gap evidence
    stored = {q.origin_ref: q for q in GoldenStore(job.store).all() if q.origin == "ticket_link"}
    assert set(stored) == {"desk:t1", "desk:t2", "desk:t4"}
    assert stored["desk:t2"].expected == (URL.format("refunds"), URL.format("cancel"))
    assert "ana@example.com" not in stored["desk:t4"].question  # the redacted text, as every ticket record
    # Read again: nothing new; a ticket whose link changes replaces its question rather than adding one.
    again = gaps_usecase.gather(job, [gaps_usecase.read_source(source, job) for source in settings.tickets])
    assert again.golden_from_links == 0 and len(GoldenStore(job.store).all()) == 3

    decision, blocked, error, *_ = _run(settings, _without("refunds"), embedder)
    assert blocked is None and error is not None and decision.action == "blocked"
    assert decision.retrieval["by_origin"] == {"ticket_link": 3}
    assert {q["question"] for q in decision.retrieval["lost"]} == {"How do I get my money back for an order?"}
    assert {q["origin"] for q in decision.retrieval["lost"]} == {"ticket_link"}
    assert IndexStore(settings.index_uri).current().tag == first.tag


def test_article_scores_read_the_chunks_a_block_at_a_time_with_the_scores_of_one_matrix() -> None:
    # A release's vectors are never held whole: its chunks come in blocks, and an article's chunks may sit in
    # several. Each article's score is still its best chunk's similarity, whatever the blocks.
    rng = np.random.default_rng(3)
    articles = pa.table(
        {
            "article_id": [f"a{i}" for i in range(7)],
            "title": [f"T{i}" for i in range(7)],
            "url": [f"https://help.example.com/{i}" for i in range(7)],
            "locale": ["en"] * 7,
            "content_hash": ["h"] * 7,
        }
    )
    owners = [f"a{i % 6}" for i in rng.permutation(40)] + ["gone"]  # a6 has no chunk; "gone" no article
    vectors = rng.standard_normal((41, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = pa.table({"article_id": owners, "vector": pa.FixedSizeListArray.from_arrays(vectors.reshape(-1), 8)})
    queries = rng.standard_normal((3, 8)).astype(np.float32)

    expected = np.full((3, 7), -np.inf, dtype=np.float32)
    for row, owner in enumerate(owners):
        if owner != "gone":
            column = int(owner[1:])
            expected[:, column] = np.maximum(expected[:, column], queries @ vectors[row])
    for rows in (1, 5, 41):
        view = golden.view_of("candidate", articles, lambda rows=rows: chunks.to_batches(max_chunksize=rows))
        np.testing.assert_allclose(golden.article_scores(view, queries, block_rows=3), expected, rtol=1e-6)
    assert np.isneginf(expected[:, 6]).all()
