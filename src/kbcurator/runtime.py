"""Offline, quiet defaults for a process that runs kbcurator: the CLI and the benchmark scripts set them first.

A value already in the environment wins, so a user can still turn any of them back.
"""

from __future__ import annotations

import os

RUNTIME_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "GX_ANALYTICS_ENABLED": "false",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    # lance logs a deprecation warning per scored search with selected columns; keep errors only.
    "LANCEDB_LOG": "error",
}


def apply_runtime_defaults(**extra: str) -> None:
    """Set ``RUNTIME_DEFAULTS`` and ``extra`` in ``os.environ`` where the environment does not already say.

    Call it before importing Prefect, transformers or unstructured: they read these once, at import.
    """
    for key, value in {**RUNTIME_DEFAULTS, **extra}.items():
        os.environ.setdefault(key, value)
