from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kbcurator.runtime import apply_runtime_defaults

# Offline, quiet runtime for every test, the same as the CLI's.
apply_runtime_defaults()

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
sys.path.insert(0, str(TESTS))  # tests import their helpers (fakes, site_server) by name
SAMPLE = REPO / "kb_sources" / "sample_help_center"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for every flow test of the session (it costs ~20 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
