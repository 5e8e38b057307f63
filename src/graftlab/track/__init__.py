"""Run tracking: ``--track tensorboard|mlflow`` keeps a command's parameters, per-epoch
metrics, report and model in the run folder, in a tracker's own format.

    with open_tracker("mlflow", folder, run_name="compare") as tracker:
        tracker.log_params(config)
        with tracker.nested("lora seed 0") as run:
            Grafter(..., callbacks=[run.callback()]).fit(...)
        tracker.log_artifact(folder / "report.md")

Nothing is sent anywhere: mlflow writes a SQLite store (``mlflow.db``) and its artifacts
into the run folder, tensorboard its event files (``tensorboard/``). The backends import
their library only when a tracker is opened.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from graftlab.errors import ConfigError
from graftlab.registry import Registry
from graftlab.track.base import Tracker, TrackerCallback


def _load() -> None:
    from graftlab.track import mlflow_backend, tensorboard_backend  # noqa: F401


TRACKERS: Registry[type[Tracker]] = Registry(
    "tracker", load=_load, hint="--track takes tensorboard or mlflow (or leave it out).")


def check_tracker(kind: str | None) -> None:
    """Before any work: ``kind`` is a registered backend whose library is installed."""
    if kind is None:
        return
    backend = TRACKERS.get(kind)  # unknown names: did-you-mean
    if importlib.util.find_spec(backend.module) is None:
        raise ConfigError(f"--track {kind} needs the {backend.module} package, which is not "
                          "installed.", hint="pip install 'graftlab[track]', or leave out "
                          "--track.")


def open_tracker(kind: str | None, run_dir: Path, *, run_name: str | None = None,
                 outputs: bool = False) -> Tracker:
    """A tracker of ``kind`` (a registered backend) writing into ``run_dir``; None: one that
    tracks nothing. Close it (or use it as a context manager). ``outputs``: when it closes,
    it logs what the run wrote into ``run_dir`` (see :meth:`Tracker.log_outputs`), also when
    the run failed or was interrupted (a partial report)."""
    if kind is None:
        return Tracker()
    check_tracker(kind)
    tracker = TRACKERS.get(kind)(Path(run_dir), run_name=run_name)
    tracker.outputs = Path(run_dir) if outputs else None
    return tracker


__all__ = ["TRACKERS", "Tracker", "TrackerCallback", "check_tracker", "open_tracker"]
