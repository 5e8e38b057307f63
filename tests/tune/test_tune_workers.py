"""Several worker processes on one PostgreSQL study: shared trials, none lost or duplicated,
and a worker killed mid-trial (kill -9) whose trial is failed by its heartbeat and retried."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"


def _worker(url: str, study: str, n: int, folder: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE)]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(HERE / "_tune_worker.py"), url, study, str(n),
                             str(folder), *extra], env=env, cwd=HERE,
                            stderr=subprocess.PIPE, text=True)


def _wait(proc: subprocess.Popen, timeout: float = 120) -> None:
    _, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, stderr[-3000:]


def _study(url: str, name: str):
    import optuna

    return optuna.load_study(study_name=name, storage=url)


def _runs(folder: Path) -> dict[int, list[str]]:
    """trial number -> the processes that ran it (from the worker's tracker files)."""
    out: dict[int, list[str]] = {}
    for path in folder.glob("trial-*.*"):
        number, pid = path.name.removeprefix("trial-").split(".")
        out.setdefault(int(number), []).append(pid)
    return out


@pytest.mark.slow
def test_two_workers_share_one_study_without_losing_or_repeating_a_trial(postgres_url,
                                                                         tmp_path):
    from optuna.trial import TrialState

    workers = [_worker(postgres_url, "shared", 8, tmp_path, "peers=2", "sleep=0.3") for _ in range(2)]
    for proc in workers:
        _wait(proc)
    trials = _study(postgres_url, "shared").trials
    states = [t.state for t in trials]
    # both check the count before each trial: at the same instant they may add one too many
    assert 8 <= states.count(TrialState.COMPLETE) <= 9 and set(states) == {TrialState.COMPLETE}
    runs = _runs(tmp_path)
    assert sorted(runs) == [t.number for t in trials]  # every trial ran ...
    assert all(len(pids) == 1 for pids in runs.values())  # ... in exactly one process
    assert len({pid for pids in runs.values() for pid in pids}) == 2  # both took part


@pytest.mark.slow
def test_a_worker_killed_mid_trial_leaves_a_failed_trial_that_is_retried(postgres_url,
                                                                         tmp_path):
    from optuna.trial import TrialState

    victim = _worker(postgres_url, "killed", 4, tmp_path, "sleep=1.5")
    deadline = time.monotonic() + 120
    started = tmp_path / f"trial-0.{victim.pid}"
    while not (started.exists() and started.read_text()) and time.monotonic() < deadline:
        assert victim.poll() is None, victim.stderr.read()[-3000:]
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)  # mid-trial: it has reported an epoch, not finished
    victim.wait()
    survivor = _worker(postgres_url, "killed", 4, tmp_path)
    _wait(survivor)
    trials = _study(postgres_url, "killed").trials
    killed = max(n for n, pids in _runs(tmp_path).items() if str(victim.pid) in pids)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [t.number for t in failed] == [killed]
    assert failed[0].intermediate_values  # it was killed mid-trial, after reporting
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == failed[0].params
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 4
    assert _runs(tmp_path)[retries[0].number] == [str(survivor.pid)]


def test_postgres_binaries_are_found_in_ci():
    """In CI the PostgreSQL tests must run, not skip (the fixture fails there instead)."""
    from _postgres import binaries

    if os.environ.get("CI", "").lower() != "true":
        pytest.skip("only checked in CI (CI=true)")
    assert binaries() is not None
