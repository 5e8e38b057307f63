"""The tracker interface, the no-op tracker, and the callback that feeds a tracker from the
trainer's events.

A tracker is one run of an experiment tracker, kept in the run folder: parameters, metrics
per step, artifacts (files the run wrote), and nested runs (one per model trained where a
command trains several, one per trial when tuning). Backends import their library only when
a tracker is opened, so ``import graftlab`` stays fast and needs neither.
"""

from __future__ import annotations

import logging
import math
import numbers as _numbers
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graftlab.train.callbacks import Callback

if TYPE_CHECKING:
    from graftlab.train.trainer import Trainer

log = logging.getLogger(__name__)
STORES = ("mlflow.db", "mlartifacts", "mlruns", "tensorboard")  # what the backends write


class Tracker:
    """One tracked run. The base class tracks nothing (``open_tracker(None, ...)``); a
    backend overrides the ``_`` methods. Also a context manager: leaving it closes the run,
    marked failed when an exception left the block."""

    name: str | None = None  # the backend's registered name

    def __init__(self) -> None:
        self._params: dict[str, str] = {}
        self.closed = self.broken = False
        self.outputs: Path | None = None  # a folder whose files are logged at close

    # ------------------------------------------------------------------ public
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Parameters, nested mappings flattened to dotted keys (``train.epochs``). A key
        logged again with another value is kept as first logged (backends refuse a change),
        with a warning."""
        new = {}
        for key, value in flatten(params).items():
            if key in self._params and self._params[key] != value:
                log.warning("tracking: parameter %r already logged as %r; %r not logged.",
                            key, self._params[key], value)
            elif key not in self._params:
                new[key] = self._params[key] = value
        if new:
            self._safely(self._log_params, new)

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """The finite numbers in ``metrics`` (a list of numbers ``x`` as ``x_0, x_1, ...``;
        anything else is skipped), at ``step`` (the epoch; None: a run's final values)."""
        scalars = numbers(metrics)
        if scalars:
            self._safely(self._log_metrics, scalars, step)

    def log_artifact(self, path: str | Path) -> None:
        """A file or folder the run wrote (a report, a saved model)."""
        path = Path(path)
        if path.exists():
            self._safely(self._log_artifact, path)
        else:
            log.warning("tracking: artifact %s does not exist; not logged.", path)

    def log_outputs(self, folder: str | Path) -> None:
        """Everything a run wrote into its folder (report, results, the saved model), less
        the trackers' own stores."""
        folder = Path(folder)
        for child in sorted(folder.iterdir()) if folder.is_dir() else []:
            if child.name not in STORES and not child.name.startswith("."):
                self.log_artifact(child)

    @contextmanager
    def nested(self, name: str) -> Iterator[Tracker]:
        """A child run (mlflow: a nested run; tensorboard: a sub-folder) for the block."""
        child: Tracker = Tracker()
        if not (self.broken or self.closed):
            try:
                child = self._child(name)
            except Exception as exc:  # noqa: BLE001 - as in _safely
                self._safely(_raise, exc)
        with child:
            yield child

    def close(self, failed: bool = False) -> None:
        """End the run (marked failed with ``failed``); closing again does nothing."""
        if not self.closed:
            if self.outputs is not None:
                self.log_outputs(self.outputs)
            self._safely(self._close, failed, always=True)  # a broken one still lets go
            self.closed = True

    def _safely(self, call: Callable[..., None], *args: Any, always: bool = False) -> None:
        """Tracking never loses the run it tracks: a backend that fails (a locked or full
        disk) is reported once, at ERROR, and tracks nothing more; the work goes on."""
        if (self.broken and not always) or self.closed:
            return
        try:
            call(*args)
        except Exception as exc:  # noqa: BLE001 - whatever the backend raises
            if self.broken:
                return  # reported already
            self.broken = True
            log.error("tracking (%s) failed and stops for this run; the run goes on: %s: %s",
                      self.name, type(exc).__name__, exc)

    def callback(self) -> Callback:
        """A trainer callback: the trainer's settings as parameters at ``on_fit_start``, the
        metrics of every epoch (``on_epoch_end``) with the epoch as step."""
        return TrackerCallback(self)

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, kind: type | None, *_: Any) -> None:
        self.close(failed=kind is not None)

    # ---------------------------------------------------------- for backends
    def _log_params(self, params: dict[str, str]) -> None: ...
    def _log_metrics(self, metrics: dict[str, float], step: int | None) -> None: ...
    def _log_artifact(self, path: Path) -> None: ...
    def _close(self, failed: bool) -> None: ...

    def _child(self, name: str) -> Tracker:
        return Tracker()


def _raise(exc: Exception) -> None:
    raise exc


class TrackerCallback(Callback):
    """Feeds a :class:`Tracker` from the trainer (main process only: on several processes
    the others would log the same values again)."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def on_fit_start(self, trainer: Trainer) -> None:
        if _main(trainer):
            trains = sum(p.numel() for p in trainer.unwrapped.parameters() if p.requires_grad)
            self.tracker.log_params({"trainer": {
                "epochs": trainer.epochs, "batch_size": trainer.batch_size,
                "seed": trainer.seed, "trainable_params": trains}})

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict) -> None:
        if _main(trainer):
            self.tracker.log_metrics({k: v for k, v in metrics.items() if k != "epoch"},
                                     step=epoch)


def _main(trainer: Trainer) -> bool:
    return trainer.accelerator.is_main_process


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"train": {"epochs": 3}}`` -> ``{"train.epochs": "3"}``; values as text."""
    out: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


def numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The finite scalar metrics; a list of numbers (one learning rate per group) as
    ``name_0, name_1, ...``."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        items = [(key, value)] if not isinstance(value, list | tuple) else \
            [(f"{key}_{i}", v) for i, v in enumerate(value)]
        for name, item in items:
            if isinstance(item, bool) or not isinstance(item, _numbers.Real):
                continue
            if math.isfinite(item):
                out[name] = float(item)
    return out
