"""Source selection: which samples (or parts) of a source pool to train on for a target, and
with what weight, from cached features (seconds, not a training run per choice).

- feature similarity: ``knn`` (k nearest source neighbours of the target samples),
  ``mmd_herding`` (kernel herding towards the target's mean embedding);
- sample importance: ``domain_classifier`` (calibrated, clipped density ratio), ``kliep``
  (direct density-ratio fit on a bounded kernel basis);
- task similarity: ``task_similarity`` (a model per pool part, scored on the target).

Class-level weighting for partial adaptation (PADA) is the ``pada`` adaptation method.
"""

from graftlab.select import domain_classifier, herding, kliep, knn, task_similarity  # noqa: F401
from graftlab.select.base import (SELECTORS, Selector, check_fraction, check_weights,
                                  list_selectors)
from graftlab.select.parts import Pool, load_pool
from graftlab.select.pool import Selection, select_pool

__all__ = ["SELECTORS", "Pool", "Selection", "Selector", "check_fraction", "check_weights",
           "list_selectors", "load_pool", "select_pool"]
