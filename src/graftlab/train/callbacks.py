"""Callbacks: cross-cutting concerns on a small fixed list of trainer events.

Events: ``on_fit_start``, ``on_epoch_start``, ``on_batch_end``, ``on_epoch_end`` (after
validation, with the epoch's metrics), ``on_fit_end``. A callback implements any of them;
the trainer calls them in order, like Lightning Fabric's ``fabric.call(...)``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from graftlab.errors import ConfigError

if TYPE_CHECKING:
    from graftlab.train.trainer import Trainer

EVENTS = ("on_fit_start", "on_epoch_start", "on_batch_end", "on_epoch_end", "on_fit_end")


class Callback:
    """Base class: override the events you need. ``trainer.stop = True`` ends training.

    A callback whose state must survive a resume returns it from ``state_dict`` (saved in
    every checkpoint) and takes it back in ``load_state_dict``; the default is stateless.
    """

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None: ...
    def on_batch_end(self, trainer: Trainer, step: int, total: int, loss: float) -> None: ...
    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict) -> None: ...
    def on_fit_end(self, trainer: Trainer) -> None: ...


class ProgressCallback(Callback):
    """Reports ``update(description, done, total)``; the CLI passes a rich progress bar."""

    def __init__(self, update: Callable[[str, int, int], None]) -> None:
        self.update = update
        self.epoch = 0

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        self.epoch = epoch

    def on_batch_end(self, trainer: Trainer, step: int, total: int, loss: float) -> None:
        self.update(f"epoch {self.epoch + 1}/{trainer.epochs}", step, total)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; restore the best weights."""

    def __init__(self, *, monitor: str = "val_loss", patience: int = 3, mode: str | None = None,
                 restore_best: bool = True) -> None:
        if patience < 1:
            raise ConfigError(f"early stopping patience must be >= 1, got {patience}.")
        self.monitor, self.patience, self.restore_best = monitor, patience, restore_best
        self.mode = mode or ("min" if "loss" in monitor else "max")
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch, self.best_state, self.bad = -1, None, 0

    _STATE = ("best", "best_epoch", "best_state", "bad")

    def state_dict(self) -> dict:
        return {k: getattr(self, k) for k in self._STATE}

    def load_state_dict(self, state: dict) -> None:
        for k in self._STATE:
            if k in state:
                setattr(self, k, state[k])

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict) -> None:
        if self.monitor not in metrics:
            raise ConfigError(
                f"early stopping monitors {self.monitor!r}, but the epoch's metrics are "
                f"{sorted(metrics)}.", hint="give validation data, or monitor one of those.")
        value = metrics[self.monitor]
        better = value < self.best if self.mode == "min" else value > self.best
        if better:
            self.best, self.best_epoch, self.bad = value, epoch, 0
            if self.restore_best:
                self.best_state = copy.deepcopy(trainer.unwrapped.state_dict())
        else:
            self.bad += 1
            if self.bad >= self.patience:
                trainer.stop = True

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.restore_best and self.best_state is not None:
            trainer.unwrapped.load_state_dict(self.best_state)
            trainer.record["best_epoch"] = self.best_epoch
