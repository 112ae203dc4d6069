from __future__ import annotations

from builders import make_article

from kbcurator.chunking import ChunkPolicy, chunk_article, chunk_articles
from kbcurator.records import Rejected

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
