"""Importance weights from a domain classifier: the density ratio

    w(x) = p_target(x) / p_source(x) = [P(t | x) / P(s | x)] * (n_s / n_t)

with P(t | x) from a logistic regression on standardised features, calibrated (isotonic or
sigmoid, cross-validated; Platt 1999 / scikit-learn's CalibratedClassifierCV), and the ratio
clipped at ``clip`` times its median so a few near-target samples cannot take all the weight
(Bickel et al. 2009, "Discriminative learning under covariate shift").
"""

from __future__ import annotations

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression

from graftlab.select.base import Selector, register_selector, standardise


@register_selector("domain_classifier")
class DomainClassifier(Selector):
    output = "weights"

    def __init__(self, *, C: float = 0.1, clip: float = 20.0, seed: int = 0) -> None:
        self.C, self.clip, self.seed = C, clip, seed

    def _score(self, f_s, f_t, **given) -> np.ndarray:
        s, t = standardise(f_s, f_t)
        x, y = np.vstack([s, t]), np.r_[np.zeros(len(s)), np.ones(len(t))]
        cv = max(2, min(3, len(s), len(t)))
        clf = CalibratedClassifierCV(LogisticRegression(C=self.C, max_iter=1000,
                                                        random_state=self.seed),
                                     method="sigmoid", cv=cv).fit(x, y)
        p_t = np.clip(clf.predict_proba(s)[:, 1], 1e-6, 1 - 1e-6)
        ratio = p_t / (1 - p_t) * len(s) / len(t)
        return np.minimum(ratio, self.clip * max(np.median(ratio), 1e-12))

    def _weights(self, scores: np.ndarray) -> np.ndarray:
        return scores / max(scores.mean(), 1e-12)
