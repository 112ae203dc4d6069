"""The parse cache that ``read_articles`` can use, as ingest needs it; ``kbcurator.index.parse_memo`` implements it.

Ingest owns the key (what ``parse_page``'s output depends on) and the two calls it makes; the store behind them is
the index's business, so ingest imports nothing from ``kbcurator.index``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from kbcurator.ingest.parse import PARSER_VERSION
from kbcurator.records import Article, RawPage

__all__ = ["ParseCache", "page_key"]


class ParseCache(Protocol):
    """Articles parsed before, by page key: ``recall`` before parsing a batch of pages, ``remember`` after."""

    def recall(self, keys: Sequence[str]) -> dict[str, Article]:
        """The article parsed earlier from each of ``keys`` that may be handed back instead of parsing again."""
        ...

    def remember(self, parsed: Iterable[tuple[str, Article]]) -> None:
        """Record the articles parsed now under their page keys."""
        ...


def page_key(page: RawPage, *, default_locale: str, base_url: str | None) -> str | None:
    """A hash of what ``parse_page(page, default_locale=..., base_url=...)`` depends on; None when unknown.

    A .docx page carries its file's path, not its bytes: the bytes are read and hashed here (None when the file
    cannot be read; the parser will say why).
    """
    content = page.content
    if page.content_kind == "docx":
        try:
            content = hashlib.sha256(Path(page.content).read_bytes()).hexdigest()
        except OSError:
            return None
    material = json.dumps(
        [
            PARSER_VERSION,
            default_locale,
            base_url,
            page.source_id,
            page.location,
            page.content_kind,
            page.updated_at.isoformat() if page.updated_at else None,
            list(page.fields),
            content,
        ],
        ensure_ascii=False,
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()
