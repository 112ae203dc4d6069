"""The Great Expectations suites a release must pass before its index is published.

One suite per data contract, keyed by the frame it checks (see ``checks/README.md``). The suites read
the frames made by ``kbcurator.quality.prepare_for_checks``, which adds the derived scalar columns
(``text_length``, ``vector_dim``, ``vector_finite``, ``article_present``) used here.

Suites are built without a Data Context (expectations are passed to the constructor, which needs
none), so building them is cheap and has no side effects; ``kbcurator.quality.run_suites`` runs copies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import great_expectations as gx
import great_expectations.expectations as gxe

from kbcurator.errors import ConfigError
from kbcurator.ingest.parse import MAX_TITLE_CHARS
from kbcurator.settings import CheckSettings

ARTICLES_SUITE = "articles"
CHUNKS_SUITE = "chunks"
RELEASE_SUITE_NAMES = (ARTICLES_SUITE, CHUNKS_SUITE)

# An absolute http(s) URL, or a relative POSIX path (folder sources without a base URL); no whitespace.
URL_REGEX = r"^(?:https?://[^\s/$.?#][^\s]*|[^\s:]+)\Z"
# GX runs these through pandas' str.contains (Python re): groups are non-capturing because pandas warns
# on capturing ones, and they end in \Z because "$" also matches before a trailing newline.
# Lower-case BCP 47-ish tags as kbcurator normalises them: "en", "en-us", "pt-br", "zh-hant".
LOCALE_REGEX = r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})*\Z"
SHA256_HEX_REGEX = r"^[0-9a-f]{64}\Z"


@dataclass(frozen=True, slots=True)
class ReleaseCheckParams:
    """The numbers a release's suites are built from.

    ``min_articles`` and ``min_chunks`` are absolute floors; the caller derives them from the current
    release so that a publish cannot shrink the index by more than a configured share (see
    :meth:`from_settings`). ``max_title_chars`` bounds titles; the parser rejects longer ones with the same
    default (``kbcurator.ingest.parse.MAX_TITLE_CHARS``).
    """

    dimension: int
    min_text_chars: int
    max_chunk_chars: int
    max_article_chars: int
    min_articles: int
    min_chunks: int
    max_title_chars: int = MAX_TITLE_CHARS

    def __post_init__(self) -> None:
        problems = []
        if self.dimension < 1:
            problems.append(f"dimension must be at least 1, got {self.dimension}")
        if self.min_text_chars < 0:
            problems.append(f"min_text_chars must be >= 0, got {self.min_text_chars}")
        for name in ("max_chunk_chars", "max_article_chars"):
            value = getattr(self, name)
            if value < self.min_text_chars:
                problems.append(f"{name} ({value}) is below min_text_chars ({self.min_text_chars})")
        for name in ("min_articles", "min_chunks"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_title_chars < 1:
            problems.append(f"max_title_chars must be at least 1, got {self.max_title_chars}")
        if problems:
            raise ConfigError("invalid release check parameters: " + "; ".join(problems))

    @classmethod
    def from_settings(
        cls,
        settings: CheckSettings,
        *,
        dimension: int,
        current_articles: int | None = None,
        current_chunks: int | None = None,
    ) -> ReleaseCheckParams:
        """Parameters for a publish, given the row counts of the current release (None: first release).

        The row floors allow a drop of at most ``settings.max_row_drop_share`` of the current counts,
        and never go below ``settings.min_articles`` (chunks too: every article yields a chunk).
        """
        share = settings.max_row_drop_share
        if not 0.0 <= share <= 1.0:
            raise ConfigError(f"checks.max_row_drop_share must lie in [0, 1], got {share}")
        return cls(
            dimension=dimension,
            min_text_chars=settings.min_text_chars,
            max_chunk_chars=settings.max_chunk_chars,
            max_article_chars=settings.max_article_chars,
            min_articles=max(settings.min_articles, min_rows_after_drop(current_articles, share)),
            min_chunks=max(settings.min_articles, min_rows_after_drop(current_chunks, share)),
            max_title_chars=MAX_TITLE_CHARS,  # the parser's own cap: a lower one would fail every long title
        )


def release_suites_for(
    settings: CheckSettings, *, dimension: int, current_articles: int | None, current_chunks: int | None
) -> dict[str, gx.ExpectationSuite]:
    """The suites a candidate of ``dimension`` must pass, given the current release's row counts: the factory the
    reindex use case takes (``usecases.reindex.check``), from a flow or from the CLI alike."""
    params = ReleaseCheckParams.from_settings(
        settings, dimension=dimension, current_articles=current_articles, current_chunks=current_chunks
    )
    return build_release_suites(params)


def min_rows_after_drop(current: int | None, max_drop_share: float) -> int:
    """The fewest rows a new release may have: ``current`` less at most ``max_drop_share`` of it."""
    if not current:
        return 0
    # round() first so that float noise (e.g. 0.3 * 10 = 3.0000000000000004) cannot cost a row.
    allowed_drop = math.floor(round(current * max_drop_share, 9))
    return current - allowed_drop


def build_release_suites(params: ReleaseCheckParams) -> dict[str, gx.ExpectationSuite]:
    """The ``articles`` and ``chunks`` suites, keyed by the frame each one checks."""
    return {
        ARTICLES_SUITE: _articles_suite(params),
        CHUNKS_SUITE: _chunks_suite(params),
    }


def _articles_suite(params: ReleaseCheckParams) -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name=ARTICLES_SUITE,
        expectations=[
            gxe.ExpectColumnValuesToNotBeNull(column="article_id"),
            gxe.ExpectColumnValuesToBeUnique(column="article_id"),
            gxe.ExpectColumnValuesToNotBeNull(column="url"),
            gxe.ExpectColumnValuesToMatchRegex(column="url", regex=URL_REGEX),
            # Regex expectations skip nulls, so the columns they guard also get a not-null check.
            gxe.ExpectColumnValuesToNotBeNull(column="locale"),
            gxe.ExpectColumnValuesToMatchRegex(column="locale", regex=LOCALE_REGEX),
            gxe.ExpectColumnValuesToNotBeNull(column="title"),
            # A runaway title (a YAML alias bomb once made one of 34.7 MB) is a broken page, not a title.
            gxe.ExpectColumnValueLengthsToBeBetween(column="title", min_value=1, max_value=params.max_title_chars),
            gxe.ExpectColumnValuesToBeBetween(
                column="text_length", min_value=params.min_text_chars, max_value=params.max_article_chars
            ),
            gxe.ExpectColumnValuesToNotBeNull(column="content_hash"),
            gxe.ExpectColumnValuesToMatchRegex(column="content_hash", regex=SHA256_HEX_REGEX),
            gxe.ExpectTableRowCountToBeBetween(min_value=params.min_articles),
        ],
        meta={"contract": "articles", "see": "checks/README.md"},
    )


def _chunks_suite(params: ReleaseCheckParams) -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name=CHUNKS_SUITE,
        expectations=[
            gxe.ExpectColumnValuesToNotBeNull(column="chunk_id"),
            gxe.ExpectColumnValuesToBeUnique(column="chunk_id"),
            gxe.ExpectColumnValuesToNotBeNull(column="article_id"),
            gxe.ExpectColumnValuesToBeInSet(column="article_present", value_set=[True]),
            gxe.ExpectColumnValuesToBeBetween(
                column="text_length", min_value=params.min_text_chars, max_value=params.max_chunk_chars
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="vector_dim", min_value=params.dimension, max_value=params.dimension
            ),
            gxe.ExpectColumnValuesToBeInSet(column="vector_finite", value_set=[True]),
            gxe.ExpectTableRowCountToBeBetween(min_value=params.min_chunks),
        ],
        meta={"contract": "chunks", "see": "checks/README.md"},
    )
