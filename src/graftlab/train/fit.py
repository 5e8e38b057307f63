"""Fit a method with a strategy's plan: the one training set-up every estimator shares.

AdamW over the plan's groups, linear warm-up then cosine decay, the strategy's callbacks (a
schedule) before the user's, early stopping and progress as callbacks, checkpoints, frozen
BatchNorm statistics, batches grouped by length where the inputs have one (text); then the
one :class:`~graftlab.train.trainer.Trainer` runs it.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from graftlab.train.callbacks import Callback, EarlyStopping, ProgressCallback
from graftlab.train.strategies import Plan, trainable_parameters
from graftlab.train.trainer import Trainer, adamw, config_hash

Collate = Callable[[np.ndarray], dict]  # positions in a split -> a batch


@dataclass
class FitSettings:
    """How long and how to train: the estimator's options that the loop reads."""

    epochs: int = 5
    batch_size: int = 32
    seed: int = 0
    callbacks: list[Callback] = field(default_factory=list)
    checkpoint_dir: str | None = None
    freeze_bn_stats: bool = False
    early_stopping: int | None = None
    progress: Callable[[str, int, int], None] | None = None
    config_hash: str | None = None  # names what trains: a checkpoint of another is refused
    group_by_length: bool = True  # batch texts of similar length together (when lengths given)


@dataclass
class Fitted:
    """What a fit leaves: per-epoch history, the run's record, the parameters it trained."""

    history: list[dict]
    record: dict
    trainable_params: int
    total_params: int


def fit_method(method: nn.Module, model: nn.Module, plan: Plan,
               collate: Callable[[np.ndarray], Collate], train_idx: np.ndarray,
               val_idx: np.ndarray, settings: FitSettings,
               lengths: np.ndarray | None = None) -> Fitted:
    """Train ``method`` (which wraps ``model``) on ``train_idx``, validating on ``val_idx``;
    ``collate(split)`` turns positions in that split into a batch.

    ``lengths`` (one per sample that ``train_idx`` and ``val_idx`` index, e.g. a route's
    ``Pick.lengths``: tokens per text, None for images) makes each batch hold samples of similar
    length, so text batches pad little; ``settings.group_by_length=False`` turns it off."""
    t0 = time.perf_counter()
    callbacks = [*plan.callbacks, *settings.callbacks]
    if settings.early_stopping:
        callbacks.append(EarlyStopping(monitor="val_loss", patience=settings.early_stopping))
    if settings.progress is not None:
        callbacks.append(ProgressCallback(settings.progress))
    optimizer = adamw(plan.param_groups)
    steps = settings.epochs * math.ceil(len(train_idx) / settings.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(steps))
    trainer = Trainer(epochs=settings.epochs, batch_size=settings.batch_size,
                      seed=settings.seed, callbacks=callbacks,
                      checkpoint_dir=settings.checkpoint_dir,
                      freeze_bn_stats=settings.freeze_bn_stats,
                      config_hash=settings.config_hash)
    grouped = lengths is not None and settings.group_by_length
    if grouped:
        lengths = np.asarray(lengths)
    history = trainer.fit(method, n_train=len(train_idx), collate=collate(train_idx),
                          optimizer=optimizer, scheduler=scheduler, n_val=len(val_idx),
                          collate_val=collate(val_idx),
                          lengths=lengths[train_idx] if grouped else None,
                          lengths_val=lengths[val_idx] if grouped and len(val_idx) else None)
    model.eval()
    at_end = trainable_parameters(model)
    # a schedule (gradual unfreezing) trains what it had unfrozen by the last epoch
    return Fitted(history, {**trainer.record, "fit_seconds": time.perf_counter() - t0,
                            "trainable_params_at_end": at_end, "length_grouped": grouped},
                  at_end if plan.scheduled else plan.num_trainable,
                  sum(p.numel() for p in model.parameters()))


def run_hash(params: dict, *parts: Any) -> str:
    """What a checkpoint must match to be resumed: an estimator's parameters (callbacks and
    the checkpoint folder left out; an object backbone by its name) and the data (each
    Domain's fingerprint, arrays by their bytes)."""
    plain = {k: v for k, v in params.items() if k not in ("callbacks", "checkpoint_dir")}
    if not isinstance(plain.get("backbone"), str | None):
        backbone = plain["backbone"]
        plain["backbone"] = f"{type(backbone).__name__}:{getattr(backbone, 'name', '')}"

    def part(value: Any) -> Any:
        if hasattr(value, "fingerprint"):
            return value.fingerprint()
        if isinstance(value, np.ndarray | torch.Tensor):
            return hashlib.sha256(np.ascontiguousarray(np.asarray(value)).tobytes()).hexdigest()
        return value

    return config_hash(plain, [part(p) for p in parts])


def warmup_cosine(total: int, warmup_fraction: float = 0.1) -> Callable[[int], float]:
    """Learning-rate factor: linear warm-up over the first 10% of steps, then cosine to 0."""
    warm = max(1, int(total * warmup_fraction))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total - warm)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor
