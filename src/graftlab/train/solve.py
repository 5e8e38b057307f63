"""Held-out splits and the linear head solved in closed form (linear_probe)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from graftlab.data.domain import Domain
from graftlab.errors import DataError
from graftlab.features.extract import as_domain
from graftlab.methods.erm import task_loss
from graftlab.train.fit import Fitted
from graftlab.train.model import GraftedModel
from graftlab.train.routes import Picker
from graftlab.train.strategies import Plan, trainable_parameters


def holdout(labels: np.ndarray, fraction: float, seed: int, *, stratify: bool,
            names: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation positions: ``fraction`` held out (none when it is 0); ``names``
    the classes ``labels`` index, for messages."""
    idx = np.arange(len(labels))
    if not fraction:
        return idx, idx[:0]
    if stratify:
        values, counts = np.unique(labels, return_counts=True)
        few = values[counts < 2]
        if len(few):
            shown = [str(names[i]) for i in few] if names is not None else few.tolist()
            raise DataError(f"holding out {fraction:g} of the training data for validation "
                            "(early stopping) needs two samples of each class; class(es) "
                            f"{shown} have one.",
                            hint="add samples of those classes, give the validation data "
                            "yourself (Grafter.fit(..., validation_data=(X, y))), or turn early "
                            "stopping off.")
    return tuple(train_test_split(idx, test_size=fraction, random_state=seed,
                                  stratify=labels if stratify else None))


def join_validation(domain: Domain, labels: np.ndarray, validation_data: tuple, modality: str,
                    encode: Any) -> tuple[Domain, np.ndarray, np.ndarray, np.ndarray]:
    """Append explicit validation data after the training data (its targets encoded by
    ``encode``, which refuses classes never trained on)."""
    X_val, y_val = validation_data
    val = as_domain(X_val, modality)
    y_val = np.asarray(y_val)
    if len(y_val) != len(val):
        raise DataError(f"validation: {len(val)} inputs but {len(y_val)} labels.")
    encoded = encode(y_val)
    if domain.origin and val.origin and domain.origin[0] is val.origin[0]:
        # two splits of one data set: still a subset of it, so caches of the whole serve it
        joined = domain.origin[0].subset(np.concatenate([domain.origin[1], val.origin[1]]))
    else:
        if modality == "image" and val.inputs.shape[1:3] != domain.inputs.shape[1:3]:
            from graftlab.data.transforms import resized  # the network resizes both anyway

            val = resized(val, domain.inputs.shape[1:3])
        inputs = (np.concatenate([domain.inputs, val.inputs]) if modality == "image"
                  else [*domain.inputs, *val.inputs])
        joined = Domain(domain.name, modality, inputs)
    n = len(domain)
    return joined, np.concatenate([labels, encoded]), np.arange(n), np.arange(n, n + len(val))


def solve_linear_head(model: GraftedModel, plan: Plan, pick: Picker, labels: torch.Tensor,
                      train_idx: np.ndarray, val_idx: np.ndarray, targets: Any, seed: int,
                      sample_weight: Any = None) -> Fitted:
    """The linear head solved, not trained: graftlab's tuned logistic (or ridge) regression
    on standardised pooled features, folded into the head's weights, so the probe is the
    converged optimum rather than a few epochs of SGD (``sample_weight``: one per training
    position, weighing its loss). Validation, when given, is scored."""
    x, y = pick(train_idx)["features"].numpy(), labels[train_idx].numpy()
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    weight, bias, solver = targets.solve(x, y, seed, sample_weight=weights)
    with torch.no_grad():
        model.head.fc.weight.copy_(torch.as_tensor(weight))
        model.head.fc.bias.copy_(torch.as_tensor(bias))
    history = {"epoch": 0, **solver}
    if len(val_idx):
        with torch.no_grad():
            out = model.head(pick(val_idx)["features"])
            history["val_loss"] = float(task_loss(out, labels[val_idx], targets.loss_classes))
            if targets.loss_classes:
                history["val_accuracy"] = float((out.argmax(-1) == labels[val_idx]).float()
                                                .mean())
    return Fitted([history], {**solver, "trainable_params_at_end": trainable_parameters(model)},
                  plan.num_trainable, sum(p.numel() for p in model.parameters()))
