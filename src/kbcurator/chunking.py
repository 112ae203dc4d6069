"""Partition an article's HTML with unstructured and chunk it by title, keeping where each chunk came from."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from kbcurator.records import Article, Chunk, Rejected, sha256_hex
from kbcurator.unstructured_compat import use_bundled_spacy_model

_SPACE = re.compile(r"\s+")

# The default of ``checks.max_article_chars``. An article over it is rejected before it is partitioned: one 20 MB
# page once made 17,836 chunks and then failed the release checks for every article.
MAX_ARTICLE_CHARS = 500_000


@dataclass(frozen=True, slots=True)
class ChunkPolicy:
    max_characters: int = 1500
    new_after_n_chars: int = 1000
    combine_text_under_n_chars: int = 200

    @property
    def policy_hash(self) -> str:
        """Changes when the chunking would change, so stored chunks are reused only under the same policy."""
        return sha256_hex(
            f"chunk_by_title:{self.max_characters}:{self.new_after_n_chars}:{self.combine_text_under_n_chars}:v1"
        )[:16]


def embedding_input(title: str, chunk_text: str) -> str:
    """The text that is embedded for a chunk: its article title gives short sections their context."""
    if chunk_text.startswith(title):
        return chunk_text
    return f"{title}\n\n{chunk_text}"


def _languages(locale: str) -> list[str]:
    """The article's declared language for unstructured ("en-us" -> ["en"]), so it skips detecting it per page.

    Detection (langdetect) was about 30% of chunking time; where the locale says nothing usable, detect.
    """
    language = locale.split("-")[0].split("_")[0].lower()
    return [language] if language.isalpha() and 2 <= len(language) <= 3 else ["auto"]


def chunk_article(article: Article, policy: ChunkPolicy) -> list[Chunk]:
    """Chunk one article. Ids depend on the article and the chunk's own text, not on its position,
    so an edit to one section leaves the other chunks' ids (and embeddings) untouched."""
    use_bundled_spacy_model()
    from unstructured.chunking.title import chunk_by_title
    from unstructured.documents.elements import Title
    from unstructured.partition.html import partition_html

    languages = _languages(article.locale)
    elements = partition_html(text=article.body_html, languages=languages) if article.body_html.strip() else []
    if not elements:
        return []
    composite = chunk_by_title(
        elements,
        max_characters=policy.max_characters,
        new_after_n_chars=policy.new_after_n_chars,
        combine_text_under_n_chars=policy.combine_text_under_n_chars,
        multipage_sections=True,
    )

    heading_stack: list[tuple[int, str]] = []
    chunks: list[Chunk] = []
    seen_ids: dict[str, int] = {}
    locator = _SpanLocator(article.text)
    for position, chunk in enumerate(composite):
        text = chunk.text.strip()
        if not text:
            continue
        originals = getattr(chunk.metadata, "orig_elements", None) or []
        path_at_start: tuple[str, ...] | None = None
        for element in originals:
            if isinstance(element, Title):
                depth = element.metadata.category_depth or 0
                heading_stack = [(d, h) for d, h in heading_stack if d < depth]
                heading_stack.append((depth, element.text.strip()))
            if path_at_start is None:
                path_at_start = _heading_path(article.title, heading_stack)
        heading_path = path_at_start if path_at_start is not None else _heading_path(article.title, heading_stack)

        start, end = locator.locate(text.split("\n\n"))
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
        occurrence = seen_ids.get(digest, 0)
        seen_ids[digest] = occurrence + 1
        chunk_id = f"{article.article_id}#{digest}" + (f"-{occurrence}" if occurrence else "")
        chunks.append(
            Chunk(
                chunk_id=chunk_id,
                article_id=article.article_id,
                position=position,
                text=text,
                heading_path=heading_path,
                char_start=start,
                char_end=end,
                content_hash=sha256_hex(embedding_input(article.title, text)),
            )
        )
    return chunks


def chunk_articles(
    articles: Iterable[Article], policy: ChunkPolicy, *, max_article_chars: int = MAX_ARTICLE_CHARS
) -> Iterator[tuple[Article, list[Chunk]] | Rejected]:
    """Chunk a stream of articles; an article that fails, yields nothing or is longer than ``max_article_chars``
    (text or HTML) becomes a ``Rejected`` and the others are chunked."""
    for article in articles:
        size = max(len(article.text), len(article.body_html) // _HTML_PER_TEXT)
        if size > max_article_chars:
            reason = f"article too long: {len(article.text):,} characters of text, {len(article.body_html):,} of HTML"
            yield Rejected(article.url, "chunk", f"{reason}, over the {max_article_chars:,} limit", article.source_id)
            continue
        try:
            chunks = chunk_article(article, policy)
        except Exception as exc:  # unstructured raises many types on odd markup; one bad page must not stop the run
            yield Rejected(article.url, "chunk", f"chunking failed: {type(exc).__name__}: {exc}", article.source_id)
            continue
        if not chunks:
            yield Rejected(article.url, "chunk", "no text to chunk", article.source_id)
            continue
        yield article, chunks


# HTML may be this many times longer than the limit on text before an article is refused for its markup alone.
_HTML_PER_TEXT = 4


def _heading_path(title: str, stack: list[tuple[int, str]]) -> tuple[str, ...]:
    headings = [h for _, h in stack if h]
    if not headings or _norm(headings[0]) != _norm(title):
        headings = [title, *headings]
    return tuple(headings)


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


class _SpanLocator:
    """Finds each chunk's character span in the article's clean text, moving forward through it.

    Element texts and the article text are both whitespace-normalised by different code, so matching is
    done on a whitespace-collapsed copy with a map back to the original offsets.
    """

    def __init__(self, text: str) -> None:
        collapsed: list[str] = []
        offsets: list[int] = []
        previous_space = False
        for index, char in enumerate(text):
            if char.isspace():
                if previous_space:
                    continue
                previous_space = True
                collapsed.append(" ")
            else:
                previous_space = False
                collapsed.append(char)
            offsets.append(index)
        self._collapsed = "".join(collapsed)
        self._offsets = offsets
        self._length = len(text)
        self._cursor = 0

    def locate(self, parts: list[str]) -> tuple[int, int]:
        first = _SPACE.sub(" ", parts[0]).strip()
        last = _SPACE.sub(" ", parts[-1]).strip()
        start = self._collapsed.find(first, self._cursor) if first else -1
        if start < 0:
            # Not found verbatim (markup the text extraction renders differently): keep the cursor honest.
            return self._original(self._cursor), self._original(self._cursor)
        last_at = self._collapsed.find(last, start) if last else start
        end = (last_at + len(last)) if last_at >= 0 else start + len(first)
        self._cursor = end
        return self._original(start), self._original(end - 1) + 1 if end > start else self._original(start)

    def _original(self, collapsed_index: int) -> int:
        if not self._offsets:
            return 0
        if collapsed_index >= len(self._offsets):
            return self._length
        return self._offsets[collapsed_index]
