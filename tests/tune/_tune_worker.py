"""One tuning worker in its own process (``python _tune_worker.py URL STUDY N DIR
[sleep=SECONDS] [peers=K]``): the tests start several on one PostgreSQL study, and kill one
mid-trial.

Its tracker writes ``DIR/trial-NUMBER.PID`` when a trial starts and appends a line per
reported step (after sleeping ``sleep`` seconds: a trial long enough to be killed in, or to
leave its peers their share), so the test sees which process ran what. With ``peers=K`` it
starts once K workers are ready."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from _tune_data import tiny_data, tiny_grafter

from graftlab.tune import Tuner


# a closed-form linear probe per fold: no optimiser, so no second of torch start-up per process
SPACE = {"params": {"lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True}},
         "fixed": {"strategy": "linear_probe"}}


class FileTracker:
    def __init__(self, folder: Path, sleep: float) -> None:
        self.folder, self.sleep = folder, sleep

    @contextmanager
    def nested(self, name: str):
        path = self.folder / f"{name}.{os.getpid()}"
        path.write_text("")
        yield Run(path, self.sleep)


class Run:
    def __init__(self, path: Path, sleep: float) -> None:
        self.path, self.sleep = path, sleep

    def log_params(self, params: dict) -> None: ...

    def log_metrics(self, metrics: dict, step: int) -> None:
        if "cv_accuracy" not in metrics:
            time.sleep(self.sleep)
        with self.path.open("a") as f:
            f.write(f"{step}\n")


def wait_for_peers(folder: Path, peers: int) -> None:
    (folder / f"ready.{os.getpid()}").write_text("")
    deadline = time.monotonic() + 120
    while len(list(folder.glob("ready.*"))) < peers and time.monotonic() < deadline:
        time.sleep(0.05)


if __name__ == "__main__":
    url, study, n, folder = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    extra = dict(a.split("=") for a in sys.argv[5:])
    sleep, peers = float(extra.get("sleep", 0)), int(extra.get("peers", 1))
    x, y = tiny_data()
    wait_for_peers(folder, peers)
    Tuner(estimator=tiny_grafter(), space=SPACE, n_trials=n, cv=2, storage=url,
          study_name=study, heartbeat_interval=1, grace_period=2, refit=False,
          tracker=FileTracker(folder, sleep), pruner="none").fit(x, y)
