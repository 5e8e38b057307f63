"""NCE: negative conditional entropy of the target labels given the source model's labels.

Tran, Nguyen, Hassner, "Transferability and Hardness of Supervised Classification Tasks",
ICCV 2019 (https://arxiv.org/abs/1908.08142). With z the source classifier's predicted class
and the empirical joint P(y, z): NCE = −H(Y | Z) = Σ P(y, z) log P(y | z). It scores the
backbone's source task, not a layer: every layer of one backbone gets the same value.
"""

from __future__ import annotations

import numpy as np

from graftlab.scores.base import SCORES, Score, one_hot


def nce(source_probs: np.ndarray, y: np.ndarray) -> float:
    """NCE of labels ``y`` (N,) given the source model's probabilities (N, Z)."""
    z = np.asarray(source_probs).argmax(axis=1)
    joint = one_hot(y).T @ (z[:, None] == np.arange(source_probs.shape[1])[None, :])
    joint = joint / len(y)  # (C, Z)
    pz = joint.sum(axis=0, keepdims=True)
    seen = joint > 0
    return float((joint[seen] * np.log(joint[seen] / np.broadcast_to(pz, joint.shape)[seen]))
                 .sum())


@SCORES.register("nce")
class NCE(Score):
    """−H(target labels | source model's labels); needs a source classifier."""

    needs_source = True
    paper = "Tran et al. 2019, https://arxiv.org/abs/1908.08142"

    def compute(self, features, y, *, regression=False, source_probs=None, seed=0) -> float:
        return nce(source_probs, y)
