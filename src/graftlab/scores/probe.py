"""The honest baseline: the cross-validated accuracy (R²) of graftlab's tuned linear probe.

It trains (a logistic regression per fold, its C tuned inside), so it costs more than the
closed-form scores; it is the yardstick the other scores must beat to be worth their speed."""

from __future__ import annotations

import numpy as np

from graftlab.scores.base import SCORES, Score, cv_folds

FOLDS = 3


def probe_cv(features: np.ndarray, y: np.ndarray, *, regression: bool = False,
             seed: int = 0) -> float:
    """Mean over ``FOLDS`` folds of the held-out accuracy (R²) of a tuned linear probe."""
    from sklearn.model_selection import cross_val_score

    from graftlab.probe import LinearProbeClassifier, LinearProbeRegressor

    folds = cv_folds(y, FOLDS, regression=regression, seed=seed)
    probe = LinearProbeRegressor() if regression else LinearProbeClassifier(random_state=seed)
    return float(cross_val_score(probe, features, y, cv=folds).mean())


@SCORES.register("probe")
class Probe(Score):
    """Cross-validated accuracy (R²) of the tuned linear probe: the baseline."""

    regression = True
    paper = "graftlab.probe (logistic regression / ridge, regularisation tuned)"

    def compute(self, features, y, *, regression=False, source_probs=None, seed=0) -> float:
        return probe_cv(features, y, regression=regression, seed=seed)
