"""What a head predicts, and everything that depends on it: class labels (cross-entropy) or a
standardised continuous target (mean squared error). Each kind encodes the user's targets,
solves a linear head in closed form (linear_probe), decodes outputs back to the user's
labels or scale, and says what a saved model must remember."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from graftlab.errors import DataError


class ClassTargets:
    """Class labels of any type, kept in ``classes`` (sorted, as scikit-learn does)."""

    dtype = torch.long

    def __init__(self, classes: Any = None) -> None:
        self.classes = None if classes is None else np.asarray(classes)

    @property
    def num_outputs(self) -> int:
        return len(self.classes)

    @property
    def loss_classes(self) -> int:  # what the task loss needs: C classes, 0 for regression
        return len(self.classes)

    @staticmethod
    def of(domain) -> np.ndarray:
        """A Domain's targets of this kind: its labels (class ids, as ``domain.labels``)."""
        if domain.labels is None:
            raise DataError(f"data {domain.name!r} has no labels, and no y was given.",
                            hint="give the labels as y, or a Domain that holds them.")
        return domain.labels

    def fit(self, y: np.ndarray) -> np.ndarray:
        """Learn the classes; return ``y`` as indices into them (at least two classes)."""
        if y.ndim == 2 and y.shape[1] == 1:  # a column, e.g. df[["label"]]
            y = y.ravel()
        if y.ndim != 1:
            raise DataError(
                f"labels must be one per input (1-D), got an array of shape {y.shape}.",
                hint="one-hot or probability rows? pass y.argmax(1) (or the class names).")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            bad = np.flatnonzero(~np.isfinite(y))
            raise DataError(f"labels hold NaN or infinite values (at {bad[:10].tolist()}); a "
                            "missing label is not a class.",
                            hint="drop those samples, or fill in their labels.")
        if y.dtype == object and any(v is None or (isinstance(v, float) and v != v) for v in y):
            raise DataError("labels hold None or NaN; a missing label is not a class.",
                            hint="drop those samples, or fill in their labels.")
        self.classes, labels = np.unique(y, return_inverse=True)
        if len(self.classes) < 2:
            raise DataError(
                f"labels hold a single class ({self.classes[0].item()!r}); fine-tuning a "
                "classifier needs at least two.", hint="check the label column.")
        return labels

    def encode(self, y_val: np.ndarray) -> np.ndarray:
        unseen = sorted(set(y_val.tolist()) - set(self.classes.tolist()))
        if unseen:
            raise DataError(
                f"validation labels {unseen} never occur in the training labels "
                f"{self.classes.tolist()}; the model cannot predict them.",
                hint="add training samples of those classes, or drop them from validation.")
        return np.searchsorted(self.classes, y_val)

    def solve(self, x: np.ndarray, y: np.ndarray, seed: int,
              sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
        """graftlab's tuned logistic regression, as a linear head's weight and bias."""
        from graftlab.probe import LinearProbeClassifier

        probe = LinearProbeClassifier(random_state=seed).fit(x, y, sample_weight=sample_weight)
        scaler, clf = probe.model_.named_steps["scale"], probe.model_.named_steps["clf"]
        w = clf.coef_ / scaler.scale_                       # (C or 1, D) on raw features
        b = clf.intercept_ - w @ scaler.mean_
        if w.shape[0] == 1:                                 # binary: logits [0, z]
            w, b = np.vstack([np.zeros_like(w), w]), np.concatenate([[0.0], b])
        weight = np.zeros((len(self.classes), w.shape[1]))
        bias = np.zeros(len(self.classes))
        weight[probe.classes_], bias[probe.classes_] = w, b  # a class absent from train: 0
        return weight, bias, {"solver": "LinearProbeClassifier", "C": probe.C_}

    def config(self) -> dict:
        return {"classes": self.classes.tolist()}

    @classmethod
    def from_config(cls, config: dict) -> ClassTargets:
        return cls(config["classes"])


class ContinuousTargets:
    """A numeric target, trained standardised; outputs go back to the original scale."""

    dtype = torch.float32
    num_outputs = 1
    loss_classes = 0

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        self.mean, self.std = mean, std

    @staticmethod
    def of(domain) -> np.ndarray:
        """A Domain's targets of this kind (its numeric targets)."""
        return domain.targets

    def fit(self, y: np.ndarray) -> np.ndarray:
        """Learn the mean and spread; return ``y`` standardised."""
        try:
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError("regression targets must be numbers; got non-numeric values.",
                            hint="use Grafter (the classifier) for class labels.") from None
        if not np.isfinite(y).all():
            raise DataError("regression targets hold NaN or inf; drop or fill those rows.")
        if len(y) < 2:
            raise DataError(f"{len(y)} regression target(s): a scale needs two or more.",
                            hint="give more labelled samples.")
        std = float(y.std())
        if std == 0:
            raise DataError(f"every regression target is {y[0]:g}: there is nothing to learn.")
        self.mean, self.std = float(y.mean()), std
        return ((y - self.mean) / std).astype(np.float32)

    def encode(self, y_val: np.ndarray) -> np.ndarray:
        return ((np.asarray(y_val, dtype=np.float64) - self.mean) / self.std).astype(np.float32)

    def solve(self, x: np.ndarray, y: np.ndarray, seed: int,
              sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
        """graftlab's ridge regression (``alpha`` by leave-one-out) as the head's weights."""
        from graftlab.probe import LinearProbeRegressor

        probe = LinearProbeRegressor().fit(x, y, sample_weight=sample_weight)
        scaler, ridge = probe.model_.named_steps["scale"], probe.model_.named_steps["ridge"]
        w = np.atleast_2d(ridge.coef_ / scaler.scale_)
        b = np.atleast_1d(ridge.intercept_ - w @ scaler.mean_)
        return w, b, {"solver": "LinearProbeRegressor", "alpha": probe.alpha_}

    def config(self) -> dict:
        return {"target_mean": self.mean, "target_std": self.std}

    @classmethod
    def from_config(cls, config: dict) -> ContinuousTargets:
        return cls(config["target_mean"], config["target_std"])
