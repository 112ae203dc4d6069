"""The staleness detector: each check finds its case and stays quiet on the look-alike next to it."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from builders import make_article
from fakes import FakeHashingEmbedder

from kbcurator.analysis.base import AuditCorpus
from kbcurator.analysis.staleness import StalenessDetector, split_sentences
from kbcurator.config.health import ReviewSettings, StaleSettings
from kbcurator.records import Article, Chunk, Finding

RUN_AT = datetime(2026, 6, 1, tzinfo=UTC)
URL = "https://help.example.com/articles/"


def corpus_of(
    articles: Sequence[Article],
    *,
    run_at: datetime = RUN_AT,
    vectors: np.ndarray | None = None,
    **kwargs: object,
) -> AuditCorpus:
    """Each article as two chunks (its first paragraph, then the rest), embedded by the hashing fake."""
    chunks: list[Chunk] = []
    for article in articles:
        cut = article.text.find("\n\n")
        cut = cut if cut > 0 else len(article.text)
        for position, (start, end) in enumerate(((0, cut), (cut, len(article.text)))):
            if end > start:
                text = article.text[start:end].strip()
                chunk_id = f"{article.article_id}#{position}"
                chunks.append(Chunk(chunk_id, article.article_id, position, text, (article.title,), start, end, ""))
    if vectors is None:
        vectors = FakeHashingEmbedder(dimension=64).embed([c.text for c in chunks])
    return AuditCorpus(articles=articles, chunks=chunks, chunk_vectors=vectors, run_at=run_at, **kwargs)


def detect(corpus: AuditCorpus, check: str, **settings: object) -> list[Finding]:
    return [f for f in StalenessDetector(StaleSettings(**settings)).detect(corpus) if f.check == check]


def article(slug: str, body: str, *, title: str = "", days_old: int = 10, **changes: object) -> Article:
    made = make_article(slug, title or slug.replace("-", " ").capitalize(), body, updated=RUN_AT - timedelta(days_old))
    return dataclasses.replace(made, **changes)


# --- age ------------------------------------------------------------------------------------------------


def test_age_flags_articles_past_their_review_interval_and_scores_by_how_far():
    articles = [
        article("fresh", "Updated last month.", days_old=30),
        article("just-due", "A year and a bit.", days_old=370),
        article("twice", "Two years.", days_old=730),
        article("ancient", "Five years.", days_old=5 * 365),
    ]
    found = {f.article_ids[0]: f for f in detect(corpus_of(articles), "age")}
    ids = {a.url.rsplit("/", 1)[-1]: a.article_id for a in articles}

    assert ids["fresh"] not in found
    assert 0.3 <= found[ids["just-due"]].score < 0.35
    assert found[ids["just-due"]].score < found[ids["twice"]].score < found[ids["ancient"]].score
    assert found[ids["ancient"]].score == 1.0
    assert found[ids["ancient"]].action == "review"
    assert "1825 days" in found[ids["ancient"]].summary


def test_age_uses_each_sources_interval_and_skips_articles_without_a_date():
    yearly = article("yearly", "Reviewed yearly.", days_old=100)
    quarterly = article("quarterly", "Reviewed quarterly.", days_old=100, source_id="fast")
    undated = article("undated", "No date at all.", updated_at=None)
    corpus = corpus_of([yearly, quarterly, undated], reviews={"fast": ReviewSettings(interval_days=90)})

    assert [f.article_ids for f in detect(corpus, "age")] == [(quarterly.article_id,)]


# --- dated content --------------------------------------------------------------------------------------


def dated(*bodies: str, **review: object) -> list[Finding]:
    articles = [article(f"a{i}", body) for i, body in enumerate(bodies)]
    reviews = {"test": ReviewSettings(**review)} if review else {}
    return detect(corpus_of(articles, reviews=reviews), "dated_content")


def test_an_ended_offer_is_flagged_with_its_sentence_chunk_and_phrase():
    body = "Plans renew every year.\n\nThe launch discount is valid until March 31, 2024. Ask support for details."
    target = article("discount", body)
    corpus = corpus_of([target])
    (finding,) = detect(corpus, "dated_content")

    assert finding.action == "update" and finding.severity == "high"
    (evidence,) = finding.evidence
    assert evidence.text == "The launch discount is valid until March 31, 2024."
    assert evidence.highlights == ("until March 31, 2024",)
    sentence_at = target.text.index(evidence.text)
    (chunk,) = [c for c in corpus.chunks if c.chunk_id == evidence.chunk_id]
    assert chunk.char_start <= sentence_at < chunk.char_end
    assert "March 31, 2024" in chunk.text


def test_end_dates_still_ahead_and_history_told_in_the_past_are_not_flagged():
    assert (
        dated(
            "The launch discount is valid until March 31, 2030.",
            "Support for the desktop app runs through 2027.",
            "The company was founded in 2008 and has been profitable since 2014.",
            "Prior to December 2018, attachments used a different encryption method.",
            "The beta offer was valid until March 2019.",
            "We supported Windows 7 until 2020.",
        )
        == []
    )


@pytest.mark.parametrize(
    ("sentence", "phrase", "action"),
    [
        ("Support for the legacy app runs through 2023.", "through 2023", "update"),
        ("We are planning to add shared folders in mid-2025.", "in mid-2025", "update"),
        ("Starting 5/15/2021, we'll delete items that stay in the trash for 30 days.", "Starting 5/15/2021", "update"),
        ("As of 2021, the extension works in three browsers.", "As of 2021", "review"),
        ("Starting January 2020, every account needs two-factor authentication.", "Starting January 2020", "review"),
        ("In 2022 we currently support two regions.", "In 2022", "review"),
    ],
)
def test_expired_periods_plans_and_snapshots_are_flagged(sentence, phrase, action):
    (finding,) = dated(sentence)
    assert finding.evidence[0].highlights == (phrase,)
    assert finding.action == action


def test_temporary_notes_year_labels_and_last_updated_lines_age():
    temporary = "Note: As of August 2025, a newly discovered bug may temporarily stop sync."
    assert dated(temporary)[0].action == "review"  # 9 months old: past half the grace for a temporary note
    assert dated("As of August 2025, sync works on three platforms.") == []  # a plain snapshot is not due yet
    assert dated("A Privacy Guide for 2025")[0].evidence[0].highlights == ("Guide for 2025",)
    assert dated("A Privacy Guide for 2026") == []
    assert dated("This article reflects current plans, updated on March 2, 2024.")[0].action == "review"


def test_release_notes_are_dated_records_and_not_flagged():
    entry = "Starting 5/15/2021, we'll delete items that stay in the trash for 30 days."
    notes = article("release-notes", entry, title="Release Notes")
    html = f"<h2>2021-05-11</h2><p>{entry}</p><h2>2021-03-11</h2><p>Send is here.</p>"
    dated_sections = article("changes", entry, title="Vault changes", body_html=html)
    assert detect(corpus_of([notes, dated_sections]), "dated_content") == []


def test_a_recent_snapshot_is_not_yet_due():
    assert dated("As of February 2026, the extension works in three browsers.") == []
    assert dated("This feature will be available in Q3 2027.") == []


def test_version_notes_are_stale_only_when_the_product_is_majors_ahead():
    (finding,) = dated("New in version 3: the Acme app exports CSV.", current_versions={"Acme": "6.2"})
    assert "6.2" in finding.summary and finding.evidence[0].highlights == ("New in version 3",)

    assert dated("Since Acme version 5 you can export CSV.", current_versions={"Acme": "6.2"}) == []
    assert dated("New in version 3: the Beta tool exports CSV.", current_versions={"Acme": "6.2"}) == []


def test_dated_content_can_be_turned_off():
    corpus = corpus_of([article("a", "The discount is valid until March 31, 2024.")])
    assert detect(corpus, "dated_content", check_dated_content=False) == []


# --- broken links ---------------------------------------------------------------------------------------


def linking(links: Sequence[str], html: str = "", **corpus_kwargs: object) -> tuple[Article, list[Finding]]:
    source = article("source", "See the related guides.", links=tuple(links), body_html=html or "<p>See guides.</p>")
    target = article("refunds", "Refunds within 30 days.")
    home_linked = article("cancel", "Cancel any time.")
    corpus = corpus_of([source, target, home_linked], **corpus_kwargs)
    return source, [f for f in detect(corpus, "broken_link") if f.article_ids == (source.article_id,)]


def test_a_link_to_a_removed_article_is_flagged_with_the_link_text_and_sentence():
    html = f'<p>First step.</p><p>Read <a href="{URL}retired-plans">our old plans</a> before you buy.</p>'
    source = article(
        "source",
        "First step.\n\nRead our old plans before you buy.",
        links=(f"{URL}retired-plans",),
        body_html=html,
    )
    corpus = corpus_of([source, article("refunds", "Refunds within 30 days.")])
    (finding,) = detect(corpus, "broken_link")

    assert finding.action == "fix_link"
    (evidence,) = finding.evidence
    assert evidence.link == f"{URL}retired-plans"
    assert evidence.text == "Read our old plans before you buy."
    assert evidence.highlights == ("our old plans",)
    assert evidence.chunk_id == f"{source.article_id}#1"


def test_links_to_existing_articles_external_sites_files_and_the_home_page_are_quiet():
    _, found = linking(
        [
            f"{URL}refunds",
            f"{URL}refunds/",  # trailing slash
            f"{URL}cancel#still-stuck",  # an anchor the heading "Still stuck?" gets
            "https://example.org/articles/gone",  # external: not checked without the network
            f"{URL}manual.pdf",
            "https://help.example.com/",
            "https://help.example.com/hc/contact",  # outside the articles folder: a form, not an article
        ]
    )
    assert found == []


def test_when_articles_live_at_the_site_root_every_page_link_is_checked_but_the_home_page():
    faq = dataclasses.replace(article("faq", "Questions."), url="https://help.example.com/faq/")
    links = ("https://help.example.com/", "https://help.example.com/faq", "https://help.example.com/gone/")
    source = article("source", "See the FAQ.", links=links)
    found = detect(corpus_of([faq, source]), "broken_link")
    assert [f.evidence[0].link for f in found] == ["https://help.example.com/gone/"]


def test_dead_links_say_why_and_missing_anchors_are_flagged():
    _, found = linking(
        [f"{URL}refunds#how-to-pay", "https://status.example.org/old"],
        dead_links={"https://status.example.org/old/": "HTTP 404 while crawling"},
    )
    by_link = {f.evidence[0].link: f for f in found}
    assert set(by_link) == {f"{URL}refunds#how-to-pay", "https://status.example.org/old"}
    assert "HTTP 404 while crawling" in by_link["https://status.example.org/old"].summary
    assert by_link[f"{URL}refunds#how-to-pay"].severity == "medium"


def test_fragments_are_checked_against_ids_and_headings_in_the_body_even_in_page_links():
    html = (
        '<h2 id="pay">Paying</h2><p>Go to <a href="#pay">paying</a>, <a href="#shipping">shipping</a> '
        'or <a href="#faq-1">the FAQ</a>.</p><h2>FAQ {#faq-1}</h2>'
    )
    page = article("page", "Paying\n\nGo to paying, shipping or the FAQ.\n\nFAQ", body_html=html)
    found = detect(corpus_of([page]), "broken_link")
    assert [f.evidence[0].link for f in found] == [f"{URL}page#shipping"]


def test_an_article_read_from_a_markdown_file_answers_to_the_urls_a_site_serves_it_at():
    refunds = article("refunds", "Refunds within 30 days.", url=f"{URL}refunds.md")
    links = (f"{URL}refunds/", f"{URL}refunds.html", f"{URL}refunds", f"{URL}refunds.md", f"{URL}refund/")
    source = article("source", "See refunds.", links=links, url=f"{URL}source.md")
    found = detect(corpus_of([refunds, source]), "broken_link")
    assert [f.evidence[0].link for f in found] == [f"{URL}refund/"]  # a typo in the slug is still broken


def test_an_article_at_a_served_url_does_not_answer_to_its_html_form():
    _, found = linking([f"{URL}refunds.html"])
    assert [f.evidence[0].link for f in found] == [f"{URL}refunds.html"]


def test_one_finding_per_target_even_when_linked_twice():
    _, found = linking([f"{URL}gone", f"{URL}gone/", f"{URL}gone#part"])
    assert len(found) == 1


# --- deprecated terms -----------------------------------------------------------------------------------


def test_a_retired_term_is_flagged_once_per_article_with_every_sentence_and_the_replacement():
    body = "Open the Classic Vault. Your classic  vault keeps items.\n\nThe classical view is gone."
    corpus = corpus_of(
        [article("vault", body), article("other", "Nothing retired here, not even classic-vault-export.")],
        reviews={"test": ReviewSettings(deprecated_terms={"Classic Vault": "Vault"})},
    )
    (finding,) = detect(corpus, "deprecated_term")

    assert '"Vault"' in finding.summary and "2 times" in finding.summary
    assert [e.text for e in finding.evidence] == ["Open the Classic Vault.", "Your classic  vault keeps items."]
    assert finding.evidence[1].highlights == ("classic  vault",)


def test_retired_terms_inside_words_urls_or_a_naming_note_are_not_flagged():
    corpus = corpus_of(
        [
            article("a", "Unclassic vaults and ClassicVault are fine."),
            article("b", "Details at https://example.com/lockbox/setup today."),
            article("c", 'The product was formerly called "Classic Vault".'),
        ],
        reviews={"test": ReviewSettings(deprecated_terms={"Classic Vault": "", "Lockbox": "Vault"})},
    )
    assert detect(corpus, "deprecated_term") == []


# --- superseded -----------------------------------------------------------------------------------------


def two_versions(days_apart: int, similarity: float) -> tuple[AuditCorpus, Article, Article]:
    old = article("export-v1", "Export your data from Settings.", days_old=days_apart + 5)
    new = article("export", "Export your data from Privacy.", days_old=5)
    other = article("refunds", "Refunds within 30 days.", days_old=5)
    base = corpus_of([old, new, other])
    angle = np.arccos(similarity)
    directions = {
        old.article_id: np.array([1.0, 0.0, 0.0]),
        new.article_id: np.array([np.cos(angle), np.sin(angle), 0.0]),
        other.article_id: np.array([0.0, 0.0, 1.0]),
    }
    vectors = np.stack([directions[c.article_id] for c in base.chunks]).astype(np.float32)
    return corpus_of([old, new, other], vectors=vectors), old, new


def test_an_older_near_copy_of_a_newer_article_is_flagged_for_retirement():
    corpus, old, new = two_versions(days_apart=400, similarity=0.97)
    (finding,) = detect(corpus, "superseded")
    assert finding.article_ids == (old.article_id, new.article_id)
    assert finding.action == "retire"
    assert [e.link for e in finding.evidence] == [old.url, new.url]  # each article links to itself


def test_close_dates_or_lower_similarity_are_not_superseded():
    assert detect(two_versions(days_apart=30, similarity=0.97)[0], "superseded") == []
    assert detect(two_versions(days_apart=400, similarity=0.8)[0], "superseded") == []


# --- failing articles -----------------------------------------------------------------------------------


def test_articles_escalated_tickets_keep_ending_on_are_flagged_with_the_queries():
    busy, quiet = article("busy", "Refunds within 30 days."), article("quiet", "Cancel any time.")
    queries = ("refund for [EMAIL] never arrived", "where is my refund", "refund denied after 20 days")
    corpus = corpus_of(
        [busy, quiet],
        escalations={busy.article_id: queries, quiet.article_id: ("cancel?",), "test:unknown": queries},
    )
    found = detect(corpus, "failing_article", failing_min_tickets=2)

    assert [f.article_ids for f in found] == [(busy.article_id,)]
    assert tuple(e.text for e in found[0].evidence) == queries
    assert found[0].action == "update"
    more = detect(dataclasses.replace(corpus, escalations={busy.article_id: queries * 3}), "failing_article")
    assert found[0].score < more[0].score < 1.0


# --- the detector as a whole ----------------------------------------------------------------------------


def test_finding_ids_stay_the_same_when_only_the_run_date_and_score_change():
    articles = [
        article("a", "The discount is valid until March 31, 2024.", days_old=500, links=(f"{URL}gone",)),
    ]
    first = {(f.check, f.finding_id) for f in StalenessDetector(StaleSettings()).detect(corpus_of(articles))}
    later = corpus_of(articles, run_at=RUN_AT + timedelta(days=200))
    second = {(f.check, f.finding_id) for f in StalenessDetector(StaleSettings()).detect(later)}
    assert first == second
    assert {check for check, _ in first} == {"age", "dated_content", "broken_link"}


def test_odd_articles_do_not_stop_the_detector():
    odd = [
        article("empty", "", body_html="", text=""),
        article("binary", "\x00\x01 until 99/99/2020 ##", body_html="<a href='mailto:x'>x</a><a href=''>y</a>"),
        article("naive-date", "As of 2020, fine.", updated_at=datetime(2020, 1, 1)),
        article("no-url", "Links nowhere.", url="", links=("not a url", "#")),
    ]
    findings = list(StalenessDetector(StaleSettings()).detect(corpus_of(odd)))
    assert all(f.detector == "staleness" and f.kind == "stale" and f.found_at == RUN_AT for f in findings)
    assert {f.check for f in findings} >= {"age", "dated_content"}


def test_sentences_keep_their_offsets_and_do_not_split_after_abbreviations():
    text = "Open Settings, e.g. the gear. Then wait.\n\nDone! Next step"
    sentences = split_sentences(text)
    assert [s.text for s in sentences] == ["Open Settings, e.g. the gear.", "Then wait.", "Done!", "Next step"]
    assert all(text[s.start : s.start + len(s.text)] == s.text for s in sentences)
