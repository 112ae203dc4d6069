"""Great Expectations suites, one per data contract; ``kbcurator.quality.run_suites`` runs them."""

from checks.release_suites import (
    ARTICLES_SUITE,
    CHUNKS_SUITE,
    LOCALE_REGEX,
    RELEASE_SUITE_NAMES,
    SHA256_HEX_REGEX,
    URL_REGEX,
    ReleaseCheckParams,
    build_release_suites,
    min_rows_after_drop,
    release_suites_for,
)

__all__ = [
    "ARTICLES_SUITE",
    "CHUNKS_SUITE",
    "LOCALE_REGEX",
    "RELEASE_SUITE_NAMES",
    "SHA256_HEX_REGEX",
    "URL_REGEX",
    "ReleaseCheckParams",
    "build_release_suites",
    "min_rows_after_drop",
    "release_suites_for",
]
