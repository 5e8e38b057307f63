"""What every source selector shares: the scikit-learn shape, the declared needs, the checks.

A selector scores each source sample by how useful it looks for the target, from *features*
(the frozen backbone's, through the feature cache), so selection takes seconds:

    sel = SELECTORS.create("knn").fit(f_source, f_target, source_groups=parts)
    sel.weights_            # (n_source,) finite, >= 0, mean 1 over the kept samples
    sel.select(0.5)         # indices of the best half (by ``scores_``)

A selector declares what it reads and what it gives (``target_labels``: "never", "optional"
or "required"; ``needs_groups``, ``needs_source_labels``; ``output``: "subset" or "weights"),
and the engine asks those declarations instead of comparing names. Target labels are read
only by a selector that declares it may, and only when they are given.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from graftlab.errors import ConfigError, DataError, NotFittedError
from graftlab.registry import Registry

log = logging.getLogger(__name__)
SELECTORS: Registry[type[Selector]] = Registry(
    "selector", hint="knn needs nothing but features (in Python, list_selectors() names them all).")


def register_selector(name: str):
    return SELECTORS.register(name)


def list_selectors() -> list[str]:
    return SELECTORS.names()


def check_fraction(fraction: Any) -> float:
    """A keep fraction in (0, 1]."""
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 < value <= 1.0:
        raise ConfigError(f"keep fraction must be in (0, 1], got {fraction!r}.",
                          hint="e.g. --keep-fraction 0.5 keeps the better half of the pool; "
                          "1 keeps all of it.")
    return value


def check_weights(weights: Any, n: int | None = None, what: str = "sample weights"
                  ) -> np.ndarray:
    """Per-sample weights that training can use: one per sample, finite, >= 0, not all 0."""
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{what} must be numbers, got {type(weights).__name__} "
                        f"{str(weights)[:40]!r}.", hint="give one number >= 0 per sample.") from None
    if w.ndim > 1 and not (w.ndim == 2 and w.shape[1] == 1):  # (n, 1) is a column
        raise DataError(f"{what} must be one number per sample (1-D), got shape {w.shape}.",
                        hint="give one weight per sample, e.g. w.ravel() of an (n, 1) column.")
    w = w.reshape(-1)
    if n is not None and len(w) != n:
        raise DataError(f"{len(w)} {what} for {n} samples; give one per sample.")
    if not np.isfinite(w).all():
        raise DataError(f"{what}: {int((~np.isfinite(w)).sum())} of {len(w)} are not finite "
                        "(NaN or infinite).", hint="check the selector's inputs (features with "
                        "NaN?) or give finite weights.")
    if (w < 0).any():
        raise DataError(f"{what}: {int((w < 0).sum())} are negative; weights must be >= 0.")
    if not (w > 0).any():
        raise DataError(f"{what} are all zero: nothing would be trained on.",
                        hint="keep a larger fraction, or check the selector's inputs.")
    return w


class Selector(BaseEstimator):
    """Base of every selector: scikit-learn conventions (keyword-only ``__init__`` that only
    stores, so ``get_params`` and ``clone`` work; ``fit`` returns self; fitted attributes
    ``scores_`` and ``weights_``)."""

    name = "selector"
    target_labels: ClassVar[str] = "never"      # "never" | "optional" | "required"
    needs_groups: ClassVar[bool] = False        # scores named parts of the pool
    needs_source_labels: ClassVar[bool] = False
    output: ClassVar[str] = "subset"            # "subset" (keep the best) | "weights"

    def uses_target_labels(self) -> str:
        """Whether this configured selector reads target labels (a parameter may decide)."""
        return self.target_labels

    def fit(self, source_features: np.ndarray, target_features: np.ndarray, *,
            source_groups: Any = None, source_labels: Any = None, target_labels: Any = None
            ) -> Selector:
        """Score the source samples against the target. ``target_labels`` is looked at only by a
        selector that declares it may (and then only if given)."""
        f_s, f_t = _features(source_features, "source"), _features(target_features, "target")
        if f_s.shape[1] != f_t.shape[1]:
            raise DataError(f"source features have {f_s.shape[1]} dimensions but target "
                            f"features {f_t.shape[1]}; extract both with the same backbone.")
        needs = self.uses_target_labels()
        if needs == "required" and target_labels is None:
            raise ConfigError(f"selector {self.name!r} as configured needs target labels, "
                              "and none were given.",
                              hint="give a few labelled target samples (target_labels=), or "
                              "use a label-free selector (knn, mmd_herding, domain_classifier).")
        groups = None if source_groups is None else np.asarray(source_groups)
        if groups is not None and len(groups) != len(f_s):
            raise DataError(f"{len(groups)} pool-part names for {len(f_s)} source samples.")
        if self.needs_groups and groups is None:
            raise ConfigError(f"selector {self.name!r} scores named parts of the pool; give "
                              "source_groups (one part name per source sample).",
                              hint="a pool such as mnist+fashion_mnist+digits names its parts.")
        if self.needs_source_labels and source_labels is None:
            raise ConfigError(f"selector {self.name!r} trains on the source; give "
                              "source_labels.")
        labels = target_labels if needs != "never" else None  # never touched otherwise
        scores = self._score(f_s, f_t, groups=groups, source_labels=source_labels,
                             target_labels=labels)
        self.scores_ = np.asarray(scores, dtype=np.float64)
        self.groups_ = groups
        self.weights_ = check_weights(self._weights(self.scores_), len(f_s))
        return self

    def _score(self, f_s: np.ndarray, f_t: np.ndarray, **given: Any) -> np.ndarray:
        raise NotImplementedError

    def _weights(self, scores: np.ndarray) -> np.ndarray:
        """Per-sample weights from scores: a weighting selector's own; for a subset selector,
        all ones (it says *which*, :meth:`select`, not *how much*)."""
        return np.ones_like(scores)

    def _check(self) -> None:
        if not hasattr(self, "scores_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call "
                                 "fit(source_features, target_features) first.")

    def select(self, fraction: float) -> np.ndarray:
        """Sorted indices of the ``fraction`` of source samples that score highest (ties
        broken by position, so the result is deterministic)."""
        self._check()
        n_keep = max(1, round(check_fraction(fraction) * len(self.scores_)))
        order = np.lexsort((np.arange(len(self.scores_)), -self.scores_))
        return np.sort(order[:n_keep])


def _features(x: Any, which: str) -> np.ndarray:
    f = np.asarray(x, dtype=np.float64)
    if f.ndim != 2 or not len(f):
        raise DataError(f"{which} features must be a non-empty (N, D) array, got shape "
                        f"{f.shape}.")
    if not np.isfinite(f).all():
        raise DataError(f"{which} features hold NaN or infinite values.",
                        hint="re-extract them (graftlab cache clear) or drop those samples.")
    return f


def standardise(f_s: np.ndarray, f_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sets scaled by the statistics of the two together (no label is involved)."""
    both = np.vstack([f_s, f_t])
    mean, std = both.mean(0), both.std(0) + 1e-8
    return (f_s - mean) / std, (f_t - mean) / std


def median_bandwidth(x: np.ndarray, seed: int = 0, max_samples: int = 1000) -> float:
    """The median squared distance between sample pairs (the usual RBF bandwidth)."""
    rng = np.random.default_rng(seed)
    s = x[rng.permutation(len(x))[:max_samples]]
    sq = (s ** 2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * s @ s.T, 0)
    positive = d2[d2 > 0]
    return float(np.median(positive)) if len(positive) else 1.0


def random_features(x: np.ndarray, omega: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Random Fourier features (Rahimi & Recht 2007): phi(x) . phi(y) ~ exp(-|x-y|^2 / h)
    for omega drawn N(0, 2/h). Memory (N, R): no N x M kernel is ever formed."""
    return np.sqrt(2.0 / omega.shape[1]) * np.cos(x @ omega + phase)


def rff_params(dim: int, bandwidth: float, n_features: int, seed: int
               ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.normal(0, np.sqrt(2.0 / bandwidth), (dim, n_features)),
            rng.uniform(0, 2 * np.pi, n_features))
