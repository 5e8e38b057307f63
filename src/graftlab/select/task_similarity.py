"""Task similarity per part of the pool: train a linear model on each named part (a domain,
a folder, a CSV ``source`` value) and score how well it transfers to the target.

Label-free (the default), with graftlab's validators on the part's target predictions:
``info_max`` (confident *and* diverse predictions; Shi & Sha 2012) or ``entropy``, or
``agreement``, the share of target samples on which the part's model agrees with the ensemble of
all parts' models (Hu et al. 2023's ensemble validation, https://arxiv.org/abs/2303.05315).
With a few target labels, ``score="accuracy"`` uses them instead (and then requires them).

Whole parts are kept best first; the last one partly, at random within it.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.linear_model import LogisticRegression

from graftlab.errors import ConfigError
from graftlab.evaluate.validators import ensemble_agreement, entropy_score, info_max
from graftlab.select.base import Selector, register_selector, standardise

log = logging.getLogger(__name__)
SCORES = ("info_max", "entropy", "agreement", "accuracy")


@register_selector("task_similarity")
class TaskSimilarity(Selector):
    output = "subset"
    target_labels = "optional"
    needs_groups = True
    needs_source_labels = True

    def __init__(self, *, score: str = "info_max", C: float = 1.0, seed: int = 0) -> None:
        self.score, self.C, self.seed = score, C, seed

    def uses_target_labels(self) -> str:
        if self.score not in SCORES:
            raise ConfigError(f"task_similarity score {self.score!r} is not one of "
                              f"{', '.join(SCORES)}.")
        return "required" if self.score == "accuracy" else "never"

    def _score(self, f_s, f_t, *, groups, source_labels, target_labels) -> np.ndarray:
        s, t = standardise(f_s, f_t)
        y = np.asarray(source_labels)
        names = list(dict.fromkeys(groups.tolist()))
        probs, classes = {}, np.unique(y)
        for name in names:
            rows = groups == name
            if len(np.unique(y[rows])) < 2:
                log.warning("pool part %r holds one class; it cannot be scored and ranks last",
                            name)
                continue
            clf = LogisticRegression(C=self.C, max_iter=300, random_state=self.seed)
            clf.fit(s[rows], y[rows])
            p = np.zeros((len(t), len(classes)))
            p[:, np.searchsorted(classes, clf.classes_)] = clf.predict_proba(t)
            probs[name] = p
        self.part_scores_ = self._part_scores(probs, classes, target_labels)
        ranked = sorted(names, key=lambda n: self.part_scores_.get(n, -np.inf))
        rank = np.array([ranked.index(g) for g in groups.tolist()], dtype=np.float64)
        return rank + np.random.default_rng(self.seed).uniform(0, 0.5, len(rank))

    def _part_scores(self, probs: dict, classes: np.ndarray, target_labels) -> dict:
        if self.score == "agreement":
            return dict(zip(probs, ensemble_agreement(list(probs.values())), strict=True))
        if self.score == "accuracy":
            labels = np.asarray(target_labels)
            known = labels >= 0 if labels.dtype.kind in "iu" else np.ones(len(labels), bool)
            return {n: float((classes[p[known].argmax(1)] == labels[known]).mean())
                    for n, p in probs.items()}
        score = info_max if self.score == "info_max" else entropy_score
        return {n: score(p) for n, p in probs.items()}
