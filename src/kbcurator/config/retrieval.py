"""Settings of the retrieval gate: golden questions and the recall a release must keep to be published.

Defined here, below both ``kbcurator.settings`` (which composes it into ``Settings``) and the code that measures
and decides (``kbcurator.index.golden``, ``kbcurator.usecases.reindex``), like the other sections in ``config/``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class RetrievalSettings(BaseModel):
    """Golden questions (question -> the article that answers it) and the thresholds a publish is held to.

    The thresholds were set before any release was measured, not fitted to the sample: ``k`` 5 because a RAG
    service reads the top five hits; a floor of 0.5 catches a broken release (wrong model, empty or truncated
    chunks: recall@5 near 0) without blocking a KB whose golden questions are hard (resolved tickets are worded
    as customers write, not as titles); a drop of at most 0.05 lets one question in twenty move while two lost
    questions, or one article that answers several, block. An unchanged article keeps its vectors, so only a
    content change moves recall: the drop is not noise.
    """

    # A CSV (columns question, expected, optional locale; several expected articles separated by "|") or JSONL
    # ({"question": ..., "expected": [...], "locale": ...}) file; expected: article URLs or article ids.
    # Relative paths are read against the settings file's folder. None: no file.
    golden_file: str | None = None
    k: int = Field(default=5, ge=1)
    # The candidate's recall@k on the golden questions must reach this (absolute floor).
    min_recall_at_k: float = Field(default=0.5, ge=0, le=1)
    # ... and may fall at most this far below the current release's recall@k on the same questions.
    max_recall_drop: float = Field(default=0.05, ge=0, le=1)
    # A gap triaged "resolved" whose questions the current release answers adds them as golden questions.
    from_resolved_gaps: bool = True
    # A ticket whose export links the article that solved it (the tickets' ``solved_by`` column, or Zendesk's
    # ``solved_by_field``) adds its redacted question as a golden question for that article, at each gaps run.
    from_ticket_links: bool = True
