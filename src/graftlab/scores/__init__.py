"""Transferability scores: rank backbones and layers on frozen features before training.

One file per score, each registered in :data:`SCORES` and declaring what it needs (a source
classifier's probabilities, regression support). :func:`run_score` runs one safely: a score
that does not apply, or features (or a result) that are not finite, come back with a status
instead of a number, so they are reported and never ranked.
"""

from graftlab.scores.base import (DEGENERATE, NON_FINITE, NOT_APPLICABLE, OK, SCORES, Score,
                                  ScoreResult, feature_problem, run_score)

# the scores register themselves (after the registry they register with)
from graftlab.scores import logme, hscore, nce, leep, knn, probe  # noqa: E402, F401, I001
from graftlab.scores.advice import Advice, Recommendation, decide  # noqa: E402

__all__ = ["Advice", "DEGENERATE", "Recommendation", "decide", "NON_FINITE", "NOT_APPLICABLE", "OK", "SCORES", "Score",
           "ScoreResult", "feature_problem", "run_score"]
