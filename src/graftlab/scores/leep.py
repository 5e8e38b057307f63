"""LEEP: log expected empirical prediction of the source model re-mapped to the target labels.

Nguyen, Hassner, Seeger, Archambeau, "LEEP: A New Measure to Evaluate Transferability of
Learned Representations", ICML 2020 (https://arxiv.org/abs/2002.12462). With θ(x) the source
model's probabilities over its classes z, P(y, z) = 1/N Σᵢ θ(xᵢ)_z [yᵢ = y] and
P(y | z) = P(y, z) / P(z):

    LEEP = 1/N Σᵢ log Σ_z P(yᵢ | z) θ(xᵢ)_z

Like NCE it scores the backbone's source task: every layer of one backbone gets the same value.
"""

from __future__ import annotations

import numpy as np

from graftlab.scores.base import SCORES, Score, one_hot


def leep(source_probs: np.ndarray, y: np.ndarray) -> float:
    """LEEP of labels ``y`` (N,) given the source model's probabilities (N, Z)."""
    theta = np.asarray(source_probs, dtype=np.float64)
    onehot = one_hot(y)  # (N, C)
    joint = theta.T @ onehot / len(y)  # (Z, C)
    conditional = joint / np.maximum(joint.sum(axis=1, keepdims=True), 1e-300)
    expected = (theta @ conditional * onehot).sum(axis=1)  # each sample's own label
    return float(np.log(np.maximum(expected, 1e-300)).mean())


@SCORES.register("leep")
class LEEP(Score):
    """Log expected empirical prediction; needs a source classifier."""

    needs_source = True
    paper = "Nguyen et al. 2020, https://arxiv.org/abs/2002.12462"

    def compute(self, features, y, *, regression=False, source_probs=None, seed=0) -> float:
        return leep(source_probs, y)
