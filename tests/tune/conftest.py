"""A throw-away PostgreSQL server for the tuning tests (one per session)."""

from __future__ import annotations

import os

import pytest
from _postgres import INSTALL, binaries, postgres_server


@pytest.fixture(scope="session")
def postgres_url():
    """The URL of a fresh PostgreSQL 15 server, stopped after the session. Without the
    server binaries the test skips saying what to install; in CI (CI=true) it fails."""
    bin_dir = binaries()
    if bin_dir is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {INSTALL}")
        pytest.skip(INSTALL)
    with postgres_server(bin_dir) as url:
        yield url
