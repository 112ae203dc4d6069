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


_M_ARENA_MAX = -8  # glibc's malloc.h


def cap_malloc_arenas(arenas: int = 2) -> None:
    """Let glibc's malloc keep at most ``arenas`` heaps from now on, unless ``MALLOC_ARENA_MAX`` says otherwise.

    For a process that builds a release (``usecases.reindex.start_reindex`` calls it, before it opens the index):
    LanceDB decodes and writes on a pool of threads, each of which glibc gives a heap of its own (8 per core by
    default); pages freed in one are not reused by another, so reading or writing a whole table a page at a time
    left a peak that grew with the table. Measured reading 20,000 / 200,000 chunk rows a page at a time: +69 / +169 MB
    with glibc's default, +56 / +103 MB with 2, at the same speed. A thread gets its heap when it first allocates,
    so the cap holds for the threads started after it. A process that only searches is left as it is. Elsewhere
    than glibc, nothing.
    """
    if "MALLOC_ARENA_MAX" in os.environ:  # glibc read it at start-up: the user's choice stands
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # no glibc (musl, macOS), or no CDLL(None) (Windows)
        return
    mallopt(_M_ARENA_MAX, arenas)
