"""Accuracy against the fraction of the pool kept: a (weighted) logistic regression on the kept
source features, scored on labelled target samples. The target labels score the curve only;
the selector is fitted without them (it never sees them unless it declares it may and is
given them, which the curve does not do)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from graftlab.select.base import SELECTORS
from graftlab.select.pool import select_pool

FRACTIONS = (0.1, 0.25, 0.5, 0.75, 1.0)


def probe_accuracy(f_s: np.ndarray, y_s: np.ndarray, weights: np.ndarray | None,
                   f_t: np.ndarray, y_t: np.ndarray, seed: int = 0, C: float = 1.0
                   ) -> float | None:
    """Target accuracy of a logistic regression fitted on the source samples of weight > 0;
    None where they hold one class (no classifier to fit: a small fraction of a small pool)."""
    keep = np.ones(len(f_s), bool) if weights is None else weights > 0
    if len(np.unique(np.asarray(y_s)[keep])) < 2:
        return None
    scaler = StandardScaler().fit(f_s[keep])
    clf = LogisticRegression(C=C, max_iter=500, random_state=seed)
    clf.fit(scaler.transform(f_s[keep]), y_s[keep],
            sample_weight=None if weights is None else weights[keep])
    return float((clf.predict(scaler.transform(f_t)) == y_t).mean())


def fraction_curve(selectors: Sequence[str], f_s: np.ndarray, y_s: np.ndarray,
                   f_t: np.ndarray, y_t: np.ndarray, *, groups: np.ndarray | None = None,
                   fractions: Sequence[float] = FRACTIONS, seed: int = 0,
                   options: dict | None = None) -> list[dict]:
    """One row per (selector, fraction): kept, target accuracy. A selector that needs pool
    parts is skipped when there are none."""
    rows = []
    for name in selectors:
        if SELECTORS.get(name).needs_groups and groups is None:
            continue
        sel = SELECTORS.create(name, **(options or {}).get(name, {}))
        sel.fit(f_s, f_t, source_groups=groups, source_labels=y_s)
        for fraction in fractions:
            chosen = select_pool(sel, f_s, f_t, fraction=fraction, groups=groups,
                                 source_labels=y_s, refit=False)
            accuracy = probe_accuracy(f_s, y_s, chosen.weights, f_t, y_t, seed)
            rows.append({"selector": name, "fraction": fraction, "kept": len(chosen.kept),
                         "target_accuracy": None if accuracy is None else round(accuracy, 4)})
    return rows
