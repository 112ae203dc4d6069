"""Offline, quiet defaults for a process that runs kbcurator: the CLI and the benchmark scripts set them first.

A value already in the environment wins, so a user can still turn any of them back.
"""

from __future__ import annotations

import ctypes
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


def release_freed_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    After a step that read a lot and let it go (a build's batches, the checks' frames, a search view's first read),
    glibc keeps the freed pages, so the process stays at that step's peak for the rest of the run and the next
    step's peak lands on top of it.
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):  # no glibc (musl, macOS), or no CDLL(None) (Windows)
        return
    trim(0)
