"""`accelerate launch --multi_gpu --num_processes 2` on a CPU-only machine (the Trainer asks for
the CPU, so the processes talk over gloo) trains the same model as one process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow  # trains end to end (make test-fast skips it)

SCRIPT = Path(__file__).with_name("_ddp_train.py")


def _loopback_up() -> bool:
    import socket

    try:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            socket.create_connection(server.getsockname(), timeout=2).close()
        return True
    except OSError:
        return False


def test_two_processes_train_the_same_model(tmp_path):
    if not _loopback_up():
        pytest.skip("no loopback interface for the processes to meet on (e.g. `unshare -n` "
                    "without `ip link set lo up`)")
    launcher = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if launcher is None:
        pytest.skip("accelerate's launcher is not installed beside this Python")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    single = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "one.pt")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    double = subprocess.run([launcher, "launch", "--multi_gpu", "--num_processes", "2",
                             "--num_machines", "1", "--mixed_precision", "no",
                             "--dynamo_backend", "no", "--main_process_port", "29533",
                             str(SCRIPT), str(tmp_path / "two.pt")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert double.returncode == 0, double.stderr[-3000:]
    assert "processes 2" in double.stdout
    one, two = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    for key in one:
        assert torch.allclose(one[key], two[key], atol=1e-5), key
