"""One trial's k-fold cross-validation, reported per epoch so a pruner can stop it early.

Fold ``i``'s validation accuracy after epoch ``e`` is reported at step ``i * stride + e``
(``stride``: the most epochs any trial of the study trains): every trial trains the same folds
in the same order, so the pruner compares trials at the same fold and epoch. Where the backbone stays frozen and nothing changes the inputs per step
(the route a Grafter would read from cached pooled features), each fold trains the head on
features extracted once for the whole study; otherwise each fold is a plain ``Grafter.fit``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.base import clone

from graftlab.backbones import Backbone
from graftlab.data.domain import Domain
from graftlab.grafter import Grafter, check_solved
from graftlab.methods import ERM
from graftlab.train.build import strategy_from
from graftlab.train.callbacks import Callback
from graftlab.train.fit import fit_method
from graftlab.train.routes import OnFeatures, Pick, pooled_features
from graftlab.train.solve import solve_linear_head


class Reporter(Callback):
    """Reports ``val_accuracy`` to the Optuna trial after each epoch (and to a tracker run),
    counts the epochs trained (the trial's compute), and raises ``TrialPruned`` when the
    pruner says so."""

    def __init__(self, trial: Any, tracked: Any = None) -> None:
        self.trial, self.tracked = trial, tracked
        self.offset, self.epochs_run = 0, 0

    def report(self, step: int, value: float, extra: dict | None = None) -> None:
        import optuna

        self.trial.report(value, step)
        if self.tracked is not None:
            self.tracked.log_metrics({"val_accuracy": value, **(extra or {})}, step=step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} (val_accuracy {value:.4f})")

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict) -> None:
        self.epochs_run += 1
        if "val_accuracy" in metrics:
            self.report(self.offset + epoch, float(metrics["val_accuracy"]),
                        {"train_loss": float(metrics["train_loss"])})


@dataclass
class Folds:
    """The data a study cross-validates on: inputs, labels, the folds, and the pooled features
    of the frozen backbone per (layer, pooling), extracted on first use."""

    domain: Domain
    y: np.ndarray
    splits: list[tuple[np.ndarray, np.ndarray]]
    backbone: Backbone | None = None
    features: dict = field(default_factory=dict)

    def pooled(self, model: Any) -> torch.Tensor:
        key = (model.layer, model.pooling)
        if key not in self.features:
            self.features[key] = pooled_features(model, self.domain, cache=True)
        return self.features[key]


def cross_validate(est: Grafter, *, folds: Folds, reporter: Reporter,
                   stride: int | None = None) -> list[float]:
    """Each fold's validation accuracy for the (unfitted) estimator ``est``. Fold ``i``
    reports from step ``i * stride``: the most epochs any trial trains (a searched
    ``epochs``' top), so that a step is the same fold and epoch in every trial."""
    scores = []
    for i, (train, val) in enumerate(folds.splits):
        reporter.offset = i * max(int(stride or 0), int(est.epochs))
        fast = _on_features(est, folds, train, val, reporter)
        scores.append(fast if fast is not None else _on_inputs(est, folds, train, val,
                                                               reporter))
    return scores


def _on_inputs(est: Grafter, folds: Folds, train: np.ndarray, val: np.ndarray,
               reporter: Reporter) -> float:
    """A plain fit on the fold's inputs (the backbone moves, or inputs change per step)."""
    d, y = folds.domain, folds.y
    est = clone(est).set_params(callbacks=[*(est.callbacks or []), reporter])
    if est.early_stopping:  # it picks its epoch on a part of the fold's training data, as
        est.fit(d.subset(train), y[train])  # the refit will: the fold scores it unseen
    else:
        est.fit(d.subset(train), y[train], validation_data=(d.subset(val), y[val]))
    return float((est.predict(d.subset(val)) == y[val]).mean())


def _on_features(est: Grafter, folds: Folds, train: np.ndarray, val: np.ndarray,
                 reporter: Reporter) -> float | None:
    """The fold trained on cached pooled features, as ``Grafter.fit`` would train it there
    (closed-form linear head for linear_probe, else ERM on the head); None when the
    estimator's route is not the pooled one."""
    check_solved(est, est._preset(folds.domain.modality))  # what the refit would refuse
    strategy = strategy_from(est.strategy, est.get_params(), est.strategy_options)
    if folds.backbone is None or (strategy.moves_backbone and not strategy.solved) or \
            not est.pretrained:
        return None  # building it on the shared backbone would change that (e.g. LoRA)
    if est.early_stopping or est.mixup or est.l2sp or isinstance(est.augment, str):
        return None  # what only Grafter.fit does (edited texts, mixing, its own held-out part)
    twin = clone(est).set_params(backbone=folds.backbone, backbone_options=None,
                                 checkpoint_dir=None,
                                 callbacks=[*(est.callbacks or []), reporter])
    targets = twin._targets()
    labels = torch.as_tensor(targets.fit(folds.y), dtype=targets.dtype)
    model, plan, strategy = twin.build(targets.num_outputs)
    if twin.training_route(model, strategy).kind != "pooled" or twin.distill_from is not None:
        return None
    feats = folds.pooled(model)
    pick = Pick(lambda idx: {"features": feats[idx]})
    if strategy.solved and model.head.linear and not twin.label_smoothing:
        solve_linear_head(model, plan, pick, labels, train, val, targets, twin.seed)
        reporter.epochs_run += 1
    else:
        method = ERM(OnFeatures(model), num_classes=targets.loss_classes,
                     label_smoothing=twin.label_smoothing)

        def collate(which: np.ndarray):
            return lambda pos: {"inputs": pick(which[pos]), "labels": labels[which[pos]]}

        fit_method(method, model, plan, collate, train, val, twin._settings(None))
    with torch.no_grad():
        score = float((model.head(feats[val]).argmax(-1) == labels[val]).float().mean())
    if strategy.solved:  # no epochs: the fold's one result at its last step
        reporter.report(reporter.offset + twin.epochs - 1, score)
    return score
