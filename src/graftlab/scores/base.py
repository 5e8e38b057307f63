"""The transferability-score registry and the one function that runs scores safely.

A score maps frozen features ``(N, D)`` and the task's labels (or continuous targets) to one
number, higher meaning "this backbone/layer should transfer better". Each registered score
declares what it needs, so the caller asks instead of comparing names:

- ``needs_source``: the source model's class probabilities on the same samples (NCE, LEEP);
- ``regression``: whether it also takes continuous targets;
- ``paper``: where it comes from.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from graftlab.registry import Registry

log = logging.getLogger(__name__)

OK, NOT_APPLICABLE, NON_FINITE, DEGENERATE = "ok", "not applicable", "non-finite", "degenerate"


class Score:
    """Base class: subclasses declare the attributes below and implement :meth:`compute`."""

    name: str = "score"
    needs_source: bool = False
    regression: bool = False
    paper: str = ""

    def compute(self, features: np.ndarray, y: np.ndarray, *, regression: bool = False,
                source_probs: np.ndarray | None = None, seed: int = 0) -> float:
        raise NotImplementedError


SCORES: Registry[type[Score]] = Registry(
    "score", hint="pick from logme, hscore, nce, leep, knn, probe (--score NAME, or scores=[...] "
    "in Python).")


@dataclass(frozen=True)
class ScoreResult:
    """One score on one candidate: its value (None unless ``status`` is ``ok``), why not, and
    the seconds it took."""

    value: float | None
    status: str = OK
    seconds: float = 0.0
    note: str = ""


def feature_problem(features: np.ndarray) -> tuple[str, str] | None:
    """``(status, note)`` when the features cannot be scored (NaN/inf, or every column
    constant), else None: such a candidate is reported, never ranked."""
    bad = ~np.isfinite(features)
    if bad.any():
        return NON_FINITE, f"{int(bad.any(axis=1).sum())} of {len(features)} feature rows " \
                           "hold NaN or inf"
    if len(features) < 2 or np.ptp(features, axis=0).max(initial=0.0) == 0:
        return DEGENERATE, "every feature is constant across samples"
    return None


def run_score(name: str, features: np.ndarray, y: np.ndarray, *, regression: bool = False,
              source_probs: np.ndarray | None = None, seed: int = 0) -> ScoreResult:
    """Score ``name`` on one candidate's features, timed; inapplicable, degenerate or
    non-finite cases come back with their status instead of a value."""
    score = SCORES.get(name)()
    if regression and not score.regression:
        return ScoreResult(None, NOT_APPLICABLE, note="classification only")
    if score.needs_source and source_probs is None:
        return ScoreResult(None, NOT_APPLICABLE, note="no source classifier for this backbone")
    problem = feature_problem(features)
    if problem is not None:
        return ScoreResult(None, problem[0], note=problem[1])
    start = time.perf_counter()
    with np.errstate(all="ignore"):
        value = float(score.compute(np.asarray(features, dtype=np.float64), np.asarray(y),
                                    regression=regression, source_probs=source_probs,
                                    seed=seed))
    seconds = time.perf_counter() - start
    if not np.isfinite(value):
        log.warning("score %s is %s on these features; not ranked", name, value)
        return ScoreResult(None, NON_FINITE, seconds, note=f"the score came out {value}")
    return ScoreResult(value, OK, seconds)


def cv_folds(y: np.ndarray, n: int, *, regression: bool, seed: int):
    """``n`` shuffled folds for a cross-validated score: stratified by class (never more folds
    than the smallest class has samples, at least 2), plain K-fold for a numeric target."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if regression:
        return KFold(min(n, len(y)), shuffle=True, random_state=seed)
    smallest = int(np.unique(y, return_counts=True)[1].min())
    return StratifiedKFold(max(2, min(n, smallest)), shuffle=True, random_state=seed)


def one_hot(y: np.ndarray) -> np.ndarray:
    """Labels ``(N,)`` -> ``(N, C)`` indicators, one column per class present."""
    classes, codes = np.unique(y, return_inverse=True)
    return (codes[:, None] == np.arange(len(classes))[None, :]).astype(np.float64)
