"""Label-free validation: scores of an adapted model computed without target labels, to pick
a checkpoint or a method (higher is better for every score here).

- ``entropy``: minus the mean prediction entropy on the target (confident is better).
- ``info_max``: information maximisation, H(mean p) - mean H(p): confident *and* diverse
  (Shi & Sha 2012; used for selection by Musgrave et al. 2022, https://arxiv.org/abs/2208.07360).
- ``snd``: soft neighbourhood density (Saito et al. 2021, https://arxiv.org/abs/2108.10860):
  the entropy of each target sample's softmax similarity to the other target samples; dense
  neighbourhoods of same-class points score high.
- ``ensv``: ensemble validation (Hu et al. 2023, https://arxiv.org/abs/2303.05315): the share of
  target samples on which a candidate's prediction agrees with the ensemble (mean
  probabilities) of the adaptation methods; source_only is scored but does not vote, so the
  baseline does not pull the ensemble towards not adapting. It needs the other candidates,
  so ``run_adapt`` adds it once all methods of a seed have trained, and only when there are two adaptation methods or
  more (one method's agreement with itself says nothing). A run whose probabilities are not
  finite neither joins the ensemble nor gets a score.
- ``iwv``: importance-weighted validation (Sugiyama et al. 2007): the held-out *source*
  cross-entropy, each sample weighted by p(target | x) / p(source | x) from a domain classifier
  on the features, so the source looks like the target. Needs held-out labelled source.

And distances between the domains' feature sets: the proxy A-distance (Ben-David et al. 2007)
2 (1 - 2 err) of a linear domain classifier, and the (RBF, median-bandwidth) MMD.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.preprocessing import StandardScaler

from graftlab.registry import Registry



def _entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-12, 1))).sum(-1)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def entropy_score(probs_t: np.ndarray) -> float:
    return float(-_entropy(probs_t).mean())


def info_max(probs_t: np.ndarray) -> float:
    return float(_entropy(probs_t.mean(0)) - _entropy(probs_t).mean())


def snd(features_t: np.ndarray, temperature: float = 0.05, max_samples: int = 2000,
        seed: int = 0) -> float:
    f = features_t
    if len(f) > max_samples:
        f = f[np.random.default_rng(seed).choice(len(f), max_samples, replace=False)]
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    sim = f @ f.T
    np.fill_diagonal(sim, -np.inf)
    return float(_entropy(_softmax(sim / temperature)).mean())


def _domain_probability(f_s: np.ndarray, f_t: np.ndarray, seed: int = 0) -> LogisticRegression:
    x = StandardScaler().fit(np.vstack([f_s, f_t]))
    clf = LogisticRegression(C=0.1, max_iter=1000, random_state=seed)
    clf.fit(x.transform(np.vstack([f_s, f_t])), np.r_[np.zeros(len(f_s)), np.ones(len(f_t))])
    return lambda f: clf.predict_proba(x.transform(f))[:, 1]


def importance_weights(features_val_s: np.ndarray, features_s: np.ndarray,
                       features_t: np.ndarray) -> np.ndarray:
    """p(target | x) / p(source | x) for held-out source samples, from a regularised linear
    domain classifier, clipped at twice the 95th percentile (the heavy tail)."""
    p_t = _domain_probability(features_s, features_t)(features_val_s)
    w = p_t / np.clip(1 - p_t, 1e-6, None) * len(features_s) / len(features_t)
    return np.clip(w, 0, np.quantile(w, 0.95) * 2 + 1e-12)


def iwv(features_val_s: np.ndarray, probs_val_s: np.ndarray, labels_val_s: np.ndarray,
        features_s: np.ndarray, features_t: np.ndarray, weights: np.ndarray | None = None
        ) -> float:
    """Minus the importance-weighted cross-entropy of held-out source samples. ``weights``
    (from :func:`importance_weights` on features every candidate shares, e.g. the frozen
    backbone's) make the scores of different models comparable; without them each model's
    own features set the weights."""
    w = importance_weights(features_val_s, features_s, features_t) if weights is None \
        else np.asarray(weights)
    ce = -np.log(np.clip(probs_val_s[np.arange(len(labels_val_s)), labels_val_s], 1e-12, 1))
    return float(-(w * ce).sum() / max(w.sum(), 1e-12))


def iwv_squared_error(pred_val_s: np.ndarray, y_val_s: np.ndarray, weights: np.ndarray
                      ) -> float:
    """Regression's IWV (Sugiyama et al. 2007 introduced it for regression): minus the
    importance-weighted squared error of held-out source samples, ``weights`` as for
    :func:`iwv`."""
    w = np.asarray(weights, dtype=float)
    err = (np.asarray(pred_val_s, dtype=float) - np.asarray(y_val_s, dtype=float)) ** 2
    return float(-(w * err).sum() / max(w.sum(), 1e-12))


def ensemble_agreement(probs_t: list[np.ndarray], members: list[int] | None = None
                       ) -> list[float]:
    """For each candidate's target probabilities (N, C): the fraction of the N samples where
    its argmax equals the argmax of the ensemble's mean probabilities (the ``members``, by
    index; all candidates by default)."""
    chosen = range(len(probs_t)) if not members else members
    finite = [i for i in chosen if np.isfinite(probs_t[i]).all()]  # a diverged run: no vote
    if not finite:
        return [float("nan")] * len(probs_t)
    votes = np.mean([probs_t[i] for i in finite], axis=0).argmax(-1)
    return [float((p.argmax(-1) == votes).mean()) if np.isfinite(p).all() else float("nan")
            for p in probs_t]


def proxy_a_distance(f_s: np.ndarray, f_t: np.ndarray, seed: int = 0,
                     max_samples: int = 2000) -> float:
    """2 (1 - 2 err) of a cross-validated linear domain classifier: 0 when the domains are
    indistinguishable, 2 when perfectly separable."""
    rng = np.random.default_rng(seed)
    f_s = f_s[rng.permutation(len(f_s))[:max_samples]]
    f_t = f_t[rng.permutation(len(f_t))[:max_samples]]
    x = StandardScaler().fit_transform(np.vstack([f_s, f_t]))
    y = np.r_[np.zeros(len(f_s)), np.ones(len(f_t))]
    pred = cross_val_predict(LogisticRegression(C=0.1, max_iter=1000), x, y, cv=3)
    err = float((pred != y).mean())
    return max(0.0, 2 * (1 - 2 * min(err, 0.5)))


def mmd(f_s: np.ndarray, f_t: np.ndarray, seed: int = 0, max_samples: int = 1000) -> float:
    """Biased MMD^2 with one RBF kernel at the median pairwise distance."""
    rng = np.random.default_rng(seed)
    f_s = f_s[rng.permutation(len(f_s))[:max_samples]].astype(np.float64)
    f_t = f_t[rng.permutation(len(f_t))[:max_samples]].astype(np.float64)
    x = np.vstack([f_s, f_t])
    sq = (x ** 2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0)
    bandwidth = np.median(d2[d2 > 0]) if (d2 > 0).any() else 1.0
    k = np.exp(-d2 / bandwidth)
    n = len(f_s)
    return float(k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean())


@dataclass(frozen=True)
class Validator:
    """A label-free score of one adapted model (higher is better), and what it needs: some of
    ``probs_t``, ``features_t`` (the target's probabilities and aligned features),
    ``features_s``, ``features_val_s``, ``probs_val_s``, ``labels_val_s`` (held-out labelled
    source), or ``ensemble`` (every candidate's target probabilities at once)."""

    score: Callable[[dict], float] | None
    needs: tuple[str, ...]
    description: str


VALIDATORS: Registry[Validator] = Registry("validator")
VALIDATORS.register("entropy", Validator(
    lambda a: entropy_score(a["probs_t"]), ("probs_t",), "minus the mean prediction entropy"))
VALIDATORS.register("info_max", Validator(
    lambda a: info_max(a["probs_t"]), ("probs_t",),
    "information maximisation: diversity of predictions minus their entropy"))
VALIDATORS.register("snd", Validator(
    lambda a: snd(a["features_t"]), ("features_t",), "soft neighbourhood density"))
VALIDATORS.register("iwv", Validator(
    lambda a: iwv(a["features_val_s"], a["probs_val_s"], a["labels_val_s"], a["features_s"],
                  a["features_t"], a.get("weights")),
    ("features_val_s", "probs_val_s", "labels_val_s", "features_s", "features_t"),
    "importance-weighted validation on held-out source"))
VALIDATORS.register("ensv", Validator(
    None, ("ensemble",), "agreement with the ensemble of candidates (ensemble_agreement)"))


def validate(probs_t: np.ndarray, features_t: np.ndarray, *, features_s: np.ndarray | None = None,
             features_val_s: np.ndarray | None = None, probs_val_s: np.ndarray | None = None,
             labels_val_s: np.ndarray | None = None, weights: np.ndarray | None = None
             ) -> dict[str, float]:
    """Every per-model validator whose needs the inputs meet (iwv needs held-out labelled
    source; ensemble agreement is scored over all candidates by the caller)."""
    given = {k: v for k, v in dict(probs_t=probs_t, features_t=features_t,
                                   features_s=features_s, features_val_s=features_val_s,
                                   probs_val_s=probs_val_s, labels_val_s=labels_val_s).items()
             if v is not None}
    return {name: v.score({**given, "weights": weights}) for name, v in VALIDATORS.items()
            if v.score is not None and all(need in given for need in v.needs)}
