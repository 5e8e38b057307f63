"""k nearest source neighbours of the target samples (feature similarity).

Each target sample votes for its ``k`` nearest source samples (Euclidean, on features
standardised over both sets); a source sample's score is its number of votes, ties broken by
its distance to the nearest target sample (closer is better). Memory: scikit-learn's
neighbour search works in chunks, never an n x m distance matrix.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from graftlab.select.base import Selector, register_selector, standardise


@register_selector("knn")
class KNNSelector(Selector):
    output = "subset"

    def __init__(self, *, k: int = 10) -> None:
        self.k = k

    def _score(self, f_s, f_t, **given) -> np.ndarray:
        s, t = standardise(f_s, f_t)
        k = max(1, min(int(self.k), len(s)))
        _, idx = NearestNeighbors(n_neighbors=k).fit(s).kneighbors(t)
        votes = np.bincount(idx.ravel(), minlength=len(s)).astype(np.float64)
        nearest, _ = NearestNeighbors(n_neighbors=1).fit(t).kneighbors(s)
        closeness = 1.0 / (1.0 + nearest[:, 0])  # in (0, 1]: only breaks ties of votes
        return votes + closeness
