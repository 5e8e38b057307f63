"""``GrafterRegressor``: fine-tune for a continuous target, scikit-learn style."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import RegressorMixin

from graftlab.grafter import Grafter
from graftlab.train.targets import ContinuousTargets


class GrafterRegressor(RegressorMixin, Grafter):
    """Fine-tune for a continuous target (mean squared error on the standardised target).

    The same strategies and options as :class:`Grafter`; ``linear_probe`` solves ridge
    regression (``alpha`` by leave-one-out) instead of logistic regression. ``predict`` returns
    values on the original scale.
    """

    _targets = ContinuousTargets

    def _set_targets(self, targets: ContinuousTargets, encoded: np.ndarray) -> np.ndarray:
        self.targets_ = targets
        self.target_mean_, self.target_std_ = targets.mean, targets.std
        return encoded

    def predict(self, X: Any) -> np.ndarray:
        return self.decision_function(X)[:, 0] * self.target_std_ + self.target_mean_
