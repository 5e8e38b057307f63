"""No tracker opens a network connection: a tiny fit tracked by both backends runs in a fresh
process whose sockets refuse (and record) every connection and name look-up.

A fresh process with a plain environment, because MLflow decides at import time whether to
send usage telemetry, and it never does under pytest or CI (it reads PYTEST_CURRENT_TEST,
CI ...): in-process, the guard could not catch what a user's run would send."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"


def _guarded_run(tmp_path: Path, **env: str) -> str:
    """The connections the guarded run attempted (one JSON line each; empty: none)."""
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "GRAFTLAB_HOME", "GRAFTLAB_CACHE",
                                       "HF_HUB_OFFLINE", "TMPDIR") if k in os.environ}
    subprocess.run([sys.executable, str(HERE / "_tiny_fit.py"), str(tmp_path)], check=True,
                   env={**keep, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", **env},
                   capture_output=True, text=True, timeout=300)
    log = tmp_path / "connections.jsonl"
    return log.read_text() if log.exists() else ""


def test_tracking_opens_no_network_connection(tmp_path):
    assert _guarded_run(tmp_path) == ""
    assert (tmp_path / "mlflow" / "mlflow.db").is_file()
    assert list((tmp_path / "tensorboard" / "tensorboard" / "fit").glob("events.out.*"))


@pytest.mark.slow
def test_the_guard_catches_mlflows_telemetry_when_it_is_turned_on(tmp_path):
    """The check above can fail: with MLflow's telemetry explicitly on, the guard sees it."""
    assert "mlflow-telemetry" in _guarded_run(tmp_path, MLFLOW_DISABLE_TELEMETRY="false")
