"""The advice a KB owner acts on is right, and every finding names its article: one test per advice rule.

Real detectors, chunking, report writers and a published LanceDB release (hashing fake embedder); where a test
needs two articles to "mean the same", their chunk vectors are set to one direction, as test_staleness does.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import test_duplicates
from builders import make_article, published_sample
from fakes import FakeHashingEmbedder
from test_duplicates import EXPORT, REFUNDS, RUN_AT

from kbcurator.analysis.audit import run_audit
from kbcurator.analysis.base import AuditCorpus
from kbcurator.analysis.contradictions import ContradictionDetector
from kbcurator.analysis.corpus import corpus_from_articles
from kbcurator.analysis.duplicates import DuplicateDetector, choose_canonical, contradiction_pairs, settle_canonicals
from kbcurator.analysis.report import findings_payload, health_markdown
from kbcurator.analysis.review_due import review_due
from kbcurator.analysis.staleness import StalenessDetector
from kbcurator.chunking import ChunkPolicy
from kbcurator.config.health import ContradictionSettings, DuplicateSettings, ReviewSettings, StaleSettings
from kbcurator.gaps.coverage import CoveragePolicy, ReleaseVectors, cluster_coverage
from kbcurator.gaps.labels import label_clusters
from kbcurator.records import Article, Evidence, Finding, make_finding_id, sha256_hex

# The same help-center passages as the duplicate detector's own tests.
TWO_FACTOR = test_duplicates.TWO_FACTOR[:1]


def _article(slug: str, title: str, sections: Sequence[tuple[str, str]], *, updated: datetime) -> Article:
    html = f"<h1>{title}</h1>" + "".join(f"<h2>{h}</h2><p>{p}</p>" for h, p in sections)
    text = "\n\n".join(f"{h}\n\n{p}" for h, p in sections)
    base = make_article(slug, title, "", updated=updated)
    return dataclasses.replace(base, body_html=html, text=text, content_hash=sha256_hex(f"{title}\n{text}"))


def _corpus(articles: Sequence[Article], *, same: Sequence[Sequence[Article]] = (), **fields: object) -> AuditCorpus:
    """Chunked and embedded for real; the articles of each group in ``same`` then point one way (they say the
    same thing), every other article its own way."""
    corpus, _ = corpus_from_articles(
        articles, embedder=FakeHashingEmbedder(dimension=64), policy=ChunkPolicy(), run_at=RUN_AT, reviews={}
    )
    if same:
        axis = {a.article_id: n for n, a in enumerate(articles)}
        for n, group in enumerate(same):
            for article in group:
                axis[article.article_id] = len(articles) + n
        vectors = np.zeros((len(corpus.chunks), len(articles) + len(same)), dtype=np.float32)
        vectors[np.arange(len(corpus.chunks)), [axis[c.article_id] for c in corpus.chunks]] = 1.0
        corpus = dataclasses.replace(corpus, chunk_vectors=vectors)
    return dataclasses.replace(corpus, **fields) if fields else corpus


def _background() -> list[Article]:
    return [
        _article("two-factor", "Two-factor authentication", TWO_FACTOR, updated=datetime(2025, 1, 1, tzinfo=UTC)),
    ]


def _set_finding(findings: Sequence[Finding]) -> Finding:
    (found,) = [f for f in findings if f.kind == "duplicate" and f.check != "section"]
    return found


# --- the canonical article of a duplicate set -------------------------------------------------------------


@pytest.mark.parametrize(
    ("copy_slug", "copy_title", "why"),
    [
        ("refunds-copy", "Refunds (copy)", "not 'Refunds (copy)': a copy"),
        ("refund-rules", "Refund rules", "not 'Refund rules': an exact copy of 'Refunds', made later"),
    ],
)
def test_the_canonical_article_is_never_a_copy(copy_slug: str, copy_title: str, why: str) -> None:
    original = _article("refunds", "Refunds", REFUNDS, updated=datetime(2023, 5, 1, tzinfo=UTC))
    # Newer: the old rule (newest wins) kept the copy.
    copy = _article(copy_slug, copy_title, REFUNDS, updated=datetime(2025, 9, 1, tzinfo=UTC))
    corpus = _corpus([copy, original, *_background()])

    finding = _set_finding(list(DuplicateDetector(DuplicateSettings()).detect(corpus)))

    assert finding.evidence[0].article_id == original.article_id
    assert finding.evidence[0].detail.startswith("suggested canonical: updated 2023-05-01")
    assert why in finding.evidence[0].detail
    assert "keep 'Refunds'" in finding.summary


def test_the_canonical_article_is_never_a_short_page_quoting_another() -> None:
    guide = _article("export", "Export your data", EXPORT, updated=datetime(2024, 2, 1, tzinfo=UTC))
    note = _article(
        "export-note",
        "Exporting: a quick note",
        [
            (
                "Note",
                "Open Settings, choose Privacy and select Export data. When the archive is ready we send an email "
                "with a download link to the address on your account. See the full guide.",
            )
        ],
        updated=datetime(2025, 12, 1, tzinfo=UTC),  # newer, and linked to as often (never)
    )
    corpus = _corpus([note, guide, *_background()], same=[[note, guide]])

    choice = choose_canonical(corpus, [note, guide])

    assert choice.article.article_id == guide.article_id
    assert dict((a.article_id, why) for a, why in choice.passed_over)[note.article_id] == (
        "a short page quoting 'Export your data'"
    )
    # and the semantic check does not call the note a duplicate of the guide it quotes (issue 17)
    assert not [f for f in DuplicateDetector(DuplicateSettings()).detect(corpus) if f.check == "semantic"]


def test_the_canonical_article_never_contradicts_another_member_of_the_set() -> None:
    agreed = _article("refunds", "Refunds", REFUNDS, updated=datetime(2023, 1, 1, tzinfo=UTC))
    changed = [(REFUNDS[0][0], REFUNDS[0][1].replace("30 days", "14 days")), REFUNDS[1]]
    odd_one = _article("refund-policy", "Refund policy", changed, updated=datetime(2025, 11, 1, tzinfo=UTC))
    steps = _article(
        "refund-steps",
        "Refund steps",
        [
            (
                "Refunds, step by step",
                "To get your money back, open Billing and pick the invoice. Choose Request refund and add a short "
                "reason. Your bank shows the money after a few business days.",
            )
        ],
        updated=datetime(2022, 6, 1, tzinfo=UTC),  # the oldest: kept only because the others disagree
    )
    members = [agreed, odd_one, steps]
    corpus = _corpus([*members, *_background()], same=[members])
    duplicates = DuplicateDetector(DuplicateSettings())
    audit = run_audit(corpus, [duplicates, ContradictionDetector(ContradictionSettings())])
    conflict = next(f for f in audit.findings if f.kind == "contradiction")
    assert set(conflict.article_ids) == {agreed.article_id, odd_one.article_id}
    # On its own the duplicate detector does not know the contradiction: it picks the newest.
    alone = _set_finding(list(DuplicateDetector(DuplicateSettings()).detect(corpus)))
    assert alone.evidence[0].article_id == odd_one.article_id

    settled = _set_finding(audit.findings)  # the audit settles the canonical once every detector has run
    assert _set_finding(settle_canonicals(corpus, audit.findings)) == settled  # settling twice changes nothing

    assert settled.finding_id == alone.finding_id
    assert settled.evidence[0].article_id == steps.article_id
    assert "not 'Refund policy': contradicts 'Refunds'" in settled.evidence[0].detail
    assert "not 'Refunds': contradicts 'Refund policy'" in settled.evidence[0].detail
    assert settled.summary.endswith("merge into 'Refund steps'")
    assert {e.article_id for e in settled.evidence} == set(settled.article_ids)
    # Told the pairs up front, the detector makes the same choice.
    told = DuplicateDetector(DuplicateSettings(), contradicting=contradiction_pairs(audit.findings))
    assert _set_finding(list(told.detect(corpus))).evidence[0].article_id == steps.article_id


# --- evidence links -----------------------------------------------------------------------------------------


def test_superseded_and_every_other_evidence_link_to_their_own_article() -> None:
    old = _article("export-2023", "Export your data (2023)", EXPORT, updated=datetime(2023, 1, 1, tzinfo=UTC))
    new = _article("export", "Export your data", EXPORT[:2], updated=datetime(2025, 12, 1, tzinfo=UTC))
    refunds = _article("refunds", "Refunds", REFUNDS, updated=datetime(2025, 12, 1, tzinfo=UTC))
    corpus = _corpus(
        [old, new, refunds],
        same=[[old, new]],
        reviews={"test": ReviewSettings(interval_days=365, deprecated_terms={"ZIP archive": "archive"})},
        escalations={refunds.article_id: ("my refund never came", "refund [EMAIL] still missing")},
    )
    url_of = {a.article_id: a.url for a in corpus.articles}

    findings = list(StalenessDetector(StaleSettings()).detect(corpus))

    (superseded,) = [f for f in findings if f.check == "superseded"]
    assert superseded.article_ids == (old.article_id, new.article_id)
    assert [e.link for e in superseded.evidence] == [old.url, new.url]
    assert "'Export your data'" in superseded.evidence[0].detail  # the newer article is named, not linked
    assert {"age", "deprecated_term", "failing_article", "superseded"} <= {f.check for f in findings}
    for finding in findings:
        for evidence in finding.evidence:
            assert evidence.link == url_of[evidence.article_id], (finding.check, evidence)


# --- gaps -----------------------------------------------------------------------------------------------------


def test_a_gap_whose_closest_article_falls_short_lists_the_questions_it_does_not_answer(tmp_path) -> None:
    store, release, embedder = published_sample(str(tmp_path / "index"))
    questions = [
        "refund billing purchase gift voucher partial",
        "partial refund purchase billing voucher",
        "request a refund within 30 days of purchase from billing",  # the article says this
        "voucher refund billing purchase partial amount",
        "partial refund purchase billing voucher",  # asked twice: listed once
    ]
    policy = CoveragePolicy(answered_lift=0.3, related_lift=0.1, covered_share=0.5)

    coverage = cluster_coverage(embedder.embed(questions), ReleaseVectors(store, release), policy, questions=questions)

    assert coverage.action == "extend"
    closest = coverage.best_articles[0]
    assert closest.title == "Request a refund"
    assert sorted(closest.unanswered) == sorted({q for q in questions if "voucher" in q})
    advice = coverage.suggestion()
    assert advice.startswith("extend article 'Request a refund' (https://help.example.com/articles/refunds) to answer:")
    assert "“partial refund purchase billing voucher”" in advice and "30 days" not in advice


def test_a_gap_has_a_readable_title_and_keeps_its_keywords_beside_it() -> None:
    exposed = [
        "Hi team, I was wondering what does it mean if I was exposed to the illness in other countries? Thanks!",
        "exposed to the illness abroad, what does it mean",
        "illness exposure in other countries meaning",
        "Hello, my husband [NAME] was exposed to the illness in two countries. What does it mean for us?",
    ]
    masks = ["should I wear a mask outside", "do masks work", "mask at the shop, is it needed", "masks for kids"]
    texts = exposed + masks
    labels = np.array([0] * len(exposed) + [1] * len(masks))
    # The greeting-laden question is the most central (on the centroid): its question is the title, cleaned.
    spread = [[1.0, 0.0, 0.0], [1.0, 0.1, 0.0], [1.0, -0.1, 0.0], [1.0, 0.0, 0.0]]
    vectors = np.vstack([spread, np.tile([0.0, 0.0, 1.0], (len(masks), 1))])

    names = label_clusters(texts, labels, vectors.astype(np.float32))

    gap = names[0]
    assert gap.title == "What does it mean if I was exposed to the illness in other countries?"
    assert " · " in gap.label and "illness" in gap.keywords  # keywords stay, secondary
    assert names[1].title == "Should I wear a mask outside"


# --- every finding names its article ------------------------------------------------------------------------


class _Listed:
    name = "listed"
    version = "1"

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings

    def detect(self, corpus: AuditCorpus) -> Iterator[Finding]:
        yield from self.findings


def _old_help_center(count: int) -> list[Article]:
    return [
        dataclasses.replace(
            make_article(f"page-{n}", f"Page {n}", f"Page {n} says {n} things.", updated=RUN_AT - timedelta(400 + n)),
            source_id="team-b" if n % 3 == 0 else "test",
        )
        for n in range(count)
    ]


def test_findings_json_names_the_title_and_url_of_every_article_a_finding_concerns() -> None:
    articles = [
        *_old_help_center(3),
        _article("refunds", "Refunds", REFUNDS, updated=datetime(2023, 5, 1, tzinfo=UTC)),
        _article("refunds-copy", "Refunds (copy)", REFUNDS, updated=datetime(2025, 9, 1, tzinfo=UTC)),
    ]
    corpus = _corpus(articles)
    result = run_audit(corpus, [StalenessDetector(StaleSettings()), DuplicateDetector(DuplicateSettings())])
    assert {f.kind for f in result.findings} == {"stale", "duplicate"}

    payload = json.loads(json.dumps(findings_payload(result, None, corpus.article_by_id)))

    for finding in payload["findings"]:
        named = finding["articles"]
        assert [a["id"] for a in named] == finding["article_ids"]
        for a in named:
            article = corpus.article_by_id[a["id"]]
            assert (a["title"], a["url"]) == (article.title, article.url) and a["title"]


def _conflicts(articles: Sequence[Article]) -> list[Finding]:
    out = []
    for left, right in zip(articles[::2], articles[1::2], strict=True):
        ids = (left.article_id, right.article_id)
        out.append(
            Finding(
                finding_id=make_finding_id("contradiction", "quantity", ids, "n"),
                kind="contradiction",
                check="quantity",
                article_ids=ids,
                score=0.8,
                severity="high",
                summary="different numbers of things",
                action="review",
                evidence=tuple(Evidence(a.article_id, a.text, link=a.url) for a in (left, right)),
                detector="listed",
                detector_version="1",
                found_at=RUN_AT,
            )
        )
    return out


def test_health_md_names_every_article_and_says_how_many_more_a_cut_list_holds() -> None:
    articles = _old_help_center(24)
    corpus = _corpus(articles)
    owners: Mapping[str, str] = {"test": "ana@example.com", "team-b": "bo@example.com"}
    result = run_audit(corpus, [StalenessDetector(StaleSettings()), _Listed(_conflicts(articles))])

    text = health_markdown(result, None, corpus.article_by_id, top=10, owners=owners)

    contradictions = text.split("## Contradictions (12)", 1)[1].split("##", 1)[0]
    assert "… and 2 more in findings.json" in contradictions
    shown = [line for line in contradictions.splitlines() if line.startswith("| high")]
    assert len(shown) == 10
    assert all(line.count("](https://help.example.com/articles/page-") == 2 for line in shown)
    # 24 age findings: one review-due block per owner, oldest first, not a line each.
    due = text.split("### Review due (24 articles, 2 owners)", 1)[1]
    ana, bo = due.split("**ana@example.com**", 1)[1], due.split("**bo@example.com**", 1)[1]
    assert "16 due" in ana and "… and 6 more in findings.json" in ana.split("**bo@example.com**")[0]
    assert "8 due" in bo and "more in findings.json" not in bo
    listed = [line for line in ana.split("**bo@example.com**")[0].splitlines() if line.startswith("- ")]
    assert listed[0].startswith("- low · [Page 23](https://help.example.com/articles/page-23)")
    assert text.count("Not updated for") == 0


def test_age_findings_become_one_review_due_list_per_owner_oldest_first() -> None:
    articles = [
        dataclasses.replace(make_article("a", "A", "A.", updated=RUN_AT - timedelta(days=400)), source_id="s1"),
        dataclasses.replace(make_article("b", "B", "B.", updated=RUN_AT - timedelta(days=1200)), source_id="s1"),
        dataclasses.replace(make_article("c", "C", "C.", updated=RUN_AT - timedelta(days=700)), source_id="s2"),
    ]
    corpus = _corpus(articles, reviews={"s1": ReviewSettings(interval_days=365), "s2": ReviewSettings()})
    findings = list(StalenessDetector(StaleSettings()).detect(corpus))

    due = review_due(
        findings, corpus.article_by_id, run_at=RUN_AT, owners={"s1": "ana@example.com"}, reviews=corpus.reviews
    )

    assert [(d.owner, d.severity, [a.title for a in d.articles]) for d in due] == [
        ("ana@example.com", "high", ["B", "A"]),  # 1200 days: more than two intervals past
        ("", "medium", ["C"]),  # a source without an owner still gets its list
    ]
    assert [a.severity for a in due[0].articles] == ["high", "low"]
    assert due[0].oldest.overdue_days == 1200 - 365 and due[0].oldest.url.endswith("/b")
