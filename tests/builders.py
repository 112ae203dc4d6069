"""Small real-looking articles for index tests (built in code so each test says what it changes)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from kbcurator.records import Article, make_article_id, sha256_hex

TOPICS = {
    "reset-password": (
        "Reset your password",
        "Open Settings and choose Reset password. A link arrives by email "
        "within 10 minutes and stays valid for 24 hours.",
    ),
    "refunds": (
        "Request a refund",
        "Refunds are available within 30 days of purchase. Open Billing, pick the order and choose Request refund.",
    ),
    "cancel": (
        "Cancel your subscription",
        "You can cancel at any time from Billing. Your plan stays active until the end of the paid period.",
    ),
    "two-factor": (
        "Turn on two-factor authentication",
        "Two-factor authentication adds a one-time code to every sign in. Use an authenticator app or SMS.",
    ),
    "export": (
        "Export your data",
        "Go to Settings, Privacy, Export. We email a download link when the archive is ready, usually within an hour.",
    ),
}


def make_article(
    slug: str, title: str, body: str, *, source_id: str = "test", updated: datetime | None = None
) -> Article:
    url = f"https://help.example.com/articles/{slug}"
    html = f"<h1>{title}</h1><p>{body}</p><h2>Still stuck?</h2><p>Contact support from the Help menu about {slug}.</p>"
    text = f"{title}\n\n{body}\n\nStill stuck?\n\nContact support from the Help menu about {slug}."
    return Article(
        article_id=make_article_id(source_id, url),
        source_id=source_id,
        url=url,
        title=title,
        section="General",
        locale="en-us",
        body_html=html,
        text=text,
        updated_at=updated or datetime(2026, 1, 5, tzinfo=UTC),
        content_hash=sha256_hex(f"{title}\n{text}"),
        links=(),
    )


def sample_articles() -> list[Article]:
    return [make_article(slug, title, body) for slug, (title, body) in TOPICS.items()]


def published_sample(index_dir: str, dimension: int = 256) -> tuple[Any, Any, Any]:
    """The sample articles built with the hashing fake and published as release-0001: (store, release, embedder)."""
    from fakes import FakeHashingEmbedder

    from kbcurator.chunking import ChunkPolicy
    from kbcurator.index.build import build_candidate
    from kbcurator.index.publish import publish
    from kbcurator.index.store import IndexStore

    store = IndexStore(index_dir)
    embedder = FakeHashingEmbedder(dimension=dimension)
    candidate = build_candidate(sample_articles(), store=store, embedder=embedder, policy=ChunkPolicy())
    return store, publish(store, candidate, checks_passed=True, manifest={}), embedder


SECTION_RULES = "Passwords must be twelve characters long and mix letters with digits. " * 12


def sectioned_article(slug: str, title: str, *, marked: bool = False) -> Article:
    """An article of three long sections, so of several chunks. ``marked``: each section also ends with its number
    and the slug, so no two sections (of this or another such article) have the same text."""
    mark = (lambda i: f" {i} {slug}") if marked else (lambda i: "")
    article = make_article(slug, title, SECTION_RULES)
    html = f"<h1>{title}</h1>" + "".join(f"<h2>Rule {i}</h2><p>{SECTION_RULES}{mark(i)}</p>" for i in range(3))
    text = f"{title}\n\n" + "\n\n".join(f"Rule {i}\n\n{SECTION_RULES}{mark(i)}" for i in range(3))
    return replace(article, body_html=html, text=text, content_hash=sha256_hex(f"{title}\n{text}"))
