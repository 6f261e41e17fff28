"""Fixtures that start the inference server as a real process (127.0.0.1, free ports)."""

from __future__ import annotations

import pytest

# run_server and RunningServer live in tests/support.py (the session's shared server in
# tests/conftest.py uses them too); imported here for the modules that start their own.
from tests.support import RunningServer, run_server  # noqa: F401


@pytest.fixture(scope="session")
def served_models_dir(trained_models_dir):
    """The model the suite trained with the real trainer CLI (version 1)."""
    return trained_models_dir


@pytest.fixture(scope="session")
def shared_server(shared_inference):
    """The session's 2-worker server (tests/conftest.py) for the read-only tests of a module.
    Tests that kill, stop or reconfigure a server start their own with `run_server`."""
    return shared_inference
