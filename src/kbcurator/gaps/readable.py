"""Tickets nobody can read (keyboard mash, a pasted token), kept out of the gaps.

An embedding model still gives such a text a vector, and vectors of mash sit close to each other: mixed into
BANKING77's test queries, 91% of 308 keyboard-mash queries formed 4 clusters of their own, which ``kbcurator gaps``
would report as knowledge gaps. A text is unreadable when under a third of its words (runs of 3 or more letters)
are wordlike by the embedding model's own vocabulary (its WordPiece ``vocab.txt``): a word is wordlike when the
vocabulary holds it whole, or splits it into pieces of 2.5 letters or more on average ("contactless" is contact + less,
"troubleshoot" trouble + sho + ot; mash such as "jyjhwb" falls apart into single letters). No word list is
shipped, and a typo or a product name among real words does not count against a ticket.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kbcurator.errors import EmbeddingError
from kbcurator.model_files import resolve_model_path

__all__ = ["READABLE_SHARE", "Vocabulary"]

log = logging.getLogger(__name__)

# A ticket is readable when at least this share of its words is wordlike, and a word the vocabulary splits into
# pieces this long on average (letters per piece) is wordlike. Over the 24,119 queries of BANKING77 and HWU64
# (train and test) these flag 11, such as "snooze", "start robo vac" and "i love zydeco jams", and none of the
# sample's 171 tickets; they catch 98.1% of 1,000 keyboard-mash queries (bench/cluster_bench.py's junk). A half and
# 3 letters flagged 19 real queries and a sample ticket ("What is SARS-CoV-2? What is COVID-19?").
READABLE_SHARE = 1 / 3
_PIECE_LETTERS = 2.5
_WORD = re.compile(r"[a-z]{3,}")


class Vocabulary:
    """The words and word pieces an embedding model knows; says which texts are unreadable."""

    def __init__(self, words: frozenset[str], suffixes: frozenset[str] = frozenset()) -> None:
        self._words = words  # whole words, and the pieces a word may start with
        self._suffixes = suffixes  # the pieces that continue a word ("##less" without its "##")
        self._longest = max((len(w) for w in words | suffixes), default=0)

    @classmethod
    def of_model(cls, model_dir: Path) -> Vocabulary | None:
        """The model's WordPiece vocabulary, or None when it has none (then every ticket counts as readable)."""
        path = model_dir / "vocab.txt"
        if not path.is_file():
            return None
        try:
            lines = path.read_text(encoding="utf-8").split()
        except (OSError, UnicodeDecodeError) as exc:
            raise EmbeddingError(f"cannot read the model's vocabulary {path}: {exc}") from exc
        words = frozenset(word for word in lines if word.isalpha() and word.islower())
        suffixes = frozenset(w[2:] for w in lines if w.startswith("##") and w[2:].isalpha() and w[2:].islower())
        return cls(words, suffixes)

    @classmethod
    def for_model(cls, model: str) -> Vocabulary | None:
        """``of_model`` for an ``embedding.model`` setting; None for a model not installed here (a rerun over cached
        vectors needs no model, and then no ticket is flagged)."""
        try:
            model_dir = resolve_model_path(model)
        except EmbeddingError:
            return None
        try:
            return cls.of_model(model_dir)
        except EmbeddingError as exc:  # the check is an extra: a damaged vocabulary turns it off, not the run
            log.warning("%s; no ticket is flagged unreadable", exc)
            return None

    def unreadable(self, texts: Sequence[str]) -> np.ndarray:
        """One flag per text: True when under ``READABLE_SHARE`` of its words are wordlike (a text with no word of
        3 or more letters is not flagged: "ok", "1234" are for the clusterer to judge)."""
        flags = np.zeros(len(texts), dtype=bool)
        for index, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            if words:
                known = sum(self._wordlike(word) for word in words)
                flags[index] = known < READABLE_SHARE * len(words)
        return flags

    def _wordlike(self, word: str) -> bool:
        if word in self._words:
            return True
        pieces = self._pieces(word)
        return pieces > 0 and len(word) / pieces >= _PIECE_LETTERS

    def _pieces(self, word: str) -> int:
        """How many pieces WordPiece's greedy longest-match split gives ``word``; 0 when it cannot split it."""
        start, pieces = 0, 0
        while start < len(word):
            known = self._words if start == 0 else self._suffixes
            for end in range(min(len(word), start + self._longest), start, -1):
                if word[start:end] in known:
                    break
            else:
                return 0
            start, pieces = end, pieces + 1
        return pieces
