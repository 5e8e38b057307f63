"""Cross-validated k-nearest-neighbour accuracy (cosine), or R² for a continuous target.

A training-free baseline: how well the features' neighbourhoods already agree with the labels
(as in e.g. Kornblith et al. 2019's and Caron et al. 2021's kNN evaluations)."""

from __future__ import annotations

import numpy as np

from graftlab.scores.base import SCORES, Score, cv_folds

K, FOLDS = 10, 5


def knn_cv(features: np.ndarray, y: np.ndarray, *, regression: bool = False,
           seed: int = 0) -> float:
    """Mean over ``FOLDS`` folds of the held-out accuracy (R²) of a cosine kNN."""
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    folds = cv_folds(y, FOLDS, regression=regression, seed=seed)
    model = KNeighborsRegressor if regression else KNeighborsClassifier
    k = max(1, min(K, len(y) - len(y) // folds.get_n_splits() - 1))
    knn = model(n_neighbors=k, metric="cosine", algorithm="brute")
    return float(cross_val_score(knn, features, y, cv=folds).mean())


@SCORES.register("knn")
class KNN(Score):
    """Cross-validated cosine kNN accuracy (R² for regression)."""

    regression = True
    paper = "a training-free baseline (cosine kNN, k=10, 5-fold CV)"

    def compute(self, features, y, *, regression=False, source_probs=None, seed=0) -> float:
        return knn_cv(features, y, regression=regression, seed=seed)
