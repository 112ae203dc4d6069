"""The semantic duplicate check and pages that only look alike to an embedding model: a short note quoting an
article (containment is the section check's business, not a duplicate) and a translation."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from test_duplicates import EXPORT, EXPORT_REWORDED, REFUNDS, _article, _corpus

from kbcurator.analysis.base import AuditCorpus
from kbcurator.analysis.duplicates import DuplicateDetector
from kbcurator.config.health import DuplicateSettings
from kbcurator.records import Article, Finding

# EXPORT in Czech: the same facts, hardly a word in common.
EXPORT_CZECH = [
    (
        "Export dat",
        "Kopii všeho, co máte uloženo v účtu, si můžete kdykoli stáhnout. Export obsahuje vaše projekty, "
        "komentáře, nahrané soubory a historii všech změn, zabalené do jednoho archivu ZIP.",
    ),
    (
        "Spuštění exportu",
        "Otevřete Nastavení, zvolte Soukromí a vyberte Exportovat data. Zvolte pracovní prostory a stiskněte "
        "Spustit export. Velké prostory mohou trvat až dvě hodiny; stránku mezitím můžete zavřít.",
    ),
]


def _side_by_side(articles: Sequence[Article], together: Sequence[int]) -> AuditCorpus:
    """A corpus whose vectors put the articles at ``together`` (indices) on one topic, the others elsewhere, as
    a model that reads them as the same would."""
    corpus = _corpus(articles)
    rng = np.random.default_rng(3)
    topic, other = rng.normal(size=(2, 64))
    ids = {articles[i].article_id for i in together}
    vectors = np.zeros((len(corpus.chunks), 64), dtype=np.float32)
    for row, chunk in enumerate(corpus.chunks):
        vectors[row] = (topic if chunk.article_id in ids else other) + 0.05 * rng.normal(size=64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return dataclasses.replace(corpus, chunk_vectors=vectors)


def _findings(corpus: AuditCorpus) -> list[Finding]:
    return list(DuplicateDetector(DuplicateSettings()).detect(corpus))


def test_a_short_note_quoting_an_article_is_not_its_duplicate() -> None:
    guide = _article("export", "Export your data", [*EXPORT, *REFUNDS])
    note = _article("export-tip", "Tip of the week", [EXPORT[1]])
    corpus = _side_by_side([guide, note, _article("refunds", "Refunds", REFUNDS)], together=(0, 1))

    assert not [f for f in _findings(corpus) if f.check == "semantic"]


def test_an_older_shorter_version_under_the_same_title_is_still_a_duplicate() -> None:
    current = _article("export", "Export your data", [*EXPORT, *REFUNDS])
    older = _article("export-2019", "Export your data", [EXPORT[1]])
    corpus = _side_by_side([current, older, _article("refunds", "Refunds", REFUNDS)], together=(0, 1))

    semantic = [f for f in _findings(corpus) if f.check == "semantic"]

    assert [set(f.article_ids) for f in semantic] == [{current.article_id, older.article_id}]


def test_a_reworded_copy_of_similar_length_stays_a_semantic_duplicate() -> None:
    articles = [_article("export", "Export your data", EXPORT), _article("copy", "Get a copy", EXPORT_REWORDED)]
    corpus = _side_by_side([*articles, _article("refunds", "Refunds", REFUNDS)], together=(0, 1))

    assert [set(f.article_ids) for f in _findings(corpus)] == [{a.article_id for a in articles}]


def test_a_translation_in_the_same_declared_locale_is_not_a_duplicate() -> None:
    english = _article("export", "Export your data", EXPORT[:2])
    czech = _article("export-cs", "Export dat", EXPORT_CZECH)
    corpus = _side_by_side([english, czech, _article("refunds", "Refunds", REFUNDS)], together=(0, 1))

    assert _findings(corpus) == []


def _at_similarity(articles: Sequence[Article], first: int, second: int, cosine: float) -> AuditCorpus:
    """A corpus whose article vectors put ``articles[first]`` and ``articles[second]`` at ``cosine``, every
    other article on an unrelated topic: a model that reads two answers as related, not as the same text."""
    corpus = _corpus(articles)
    rng = np.random.default_rng(7)
    basis, _ = np.linalg.qr(rng.normal(size=(64, 3)))
    one, across, elsewhere = basis.T
    place = {
        articles[first].article_id: one,
        articles[second].article_id: cosine * one + float(np.sqrt(1 - cosine**2)) * across,
    }
    vectors = np.stack([place.get(chunk.article_id, elsewhere) for chunk in corpus.chunks]).astype(np.float32)
    return dataclasses.replace(corpus, chunk_vectors=vectors)


# Two answers to "How do I move my projects to a new workspace?": the old step-by-step one and a current short
# one that points elsewhere. Few words in common, so neither the shingles nor a 0.92 cosine find them.
MOVE_OLD = [
    (
        "Moving projects",
        "Open the project, choose Settings and then Transfer. Pick the workspace that should receive it and confirm "
        "with your password. Comments, files and history travel with the project; shared links stop working.",
    ),
]
MOVE_NEW = [("Moving projects", "Transfers are now handled by workspace owners. Ask an owner, or read Workspaces.")]


def test_the_same_question_answered_twice_in_other_words_is_a_semantic_duplicate() -> None:
    question = "How do I move my projects to a new workspace?"
    old, new = _article("move-2019", question, MOVE_OLD), _article("move", question, MOVE_NEW)
    corpus = _at_similarity([old, new, _article("refunds", "Refunds", REFUNDS)], 0, 1, cosine=0.8)

    found = _findings(corpus)

    assert [(f.check, set(f.article_ids)) for f in found] == [("semantic", {old.article_id, new.article_id})]
    assert any("the same question" in e.detail for e in found[0].evidence)


def test_a_shared_label_title_or_an_unrelated_answer_is_not_the_same_question() -> None:
    # two notes under the same label, quoting different articles
    tip_export = _article("tip-1", "Tip of the week", [EXPORT[1]])
    tip_refund = _article("tip-2", "Tip of the week", [REFUNDS[1]])
    label = _at_similarity([tip_export, tip_refund, _article("other", "Other", EXPORT[2:])], 0, 1, cosine=0.8)
    # one question, two answers the vectors put far apart (a page reused for something else)
    question = "How do I move my projects to a new workspace?"
    apart = _at_similarity(
        [_article("move-2019", question, MOVE_OLD), _article("move", question, REFUNDS)], 0, 1, cosine=0.5
    )

    assert _findings(label) == []
    assert _findings(apart) == []
