"""Label-free validators and domain distances behave as their definitions say."""

from __future__ import annotations

import numpy as np
import pytest

from graftlab.evaluate.validators import (ensemble_agreement, entropy_score, info_max, iwv, mmd,
                                       proxy_a_distance, snd, validate)

RNG = np.random.default_rng(0)


def test_entropy_and_info_max_prefer_confident_diverse_predictions():
    confident = np.eye(4)[RNG.integers(0, 4, 200)] * 0.97 + 0.0075
    collapsed = np.tile([0.97, 0.01, 0.01, 0.01], (200, 1))
    unsure = np.full((200, 4), 0.25)
    assert entropy_score(confident) > entropy_score(unsure)
    assert info_max(confident) > info_max(collapsed)  # entropy alone cannot tell these apart
    assert abs(entropy_score(confident) - entropy_score(collapsed)) < 0.05


def test_snd_is_higher_for_clustered_features():
    centres = RNG.normal(size=(4, 16)) * 5
    clustered = centres[RNG.integers(0, 4, 300)] + RNG.normal(size=(300, 16)) * 0.1
    scattered = RNG.normal(size=(300, 16))
    assert snd(clustered) > snd(scattered)


def test_domain_distances_grow_with_the_shift():
    a, b = RNG.normal(size=(300, 8)), RNG.normal(size=(300, 8))
    assert proxy_a_distance(a, b) < 0.5 < 1.5 < proxy_a_distance(a, b + 3)
    assert mmd(a, b) < 0.02 < mmd(a, b + 3)


def test_iwv_weights_the_source_samples_that_look_like_the_target():
    f_s = RNG.normal(size=(400, 2))
    f_t = RNG.normal(size=(400, 2)) + [2, 0]
    labels = np.zeros(400, int)
    # a model right where the target lives (x > 1) and wrong elsewhere scores better under iwv
    good_on_target = np.where(f_s[:, :1] > 1, [[0.9, 0.1]], [[0.1, 0.9]])
    bad_on_target = good_on_target[:, ::-1]
    assert iwv(f_s, good_on_target, labels, f_s, f_t) > iwv(f_s, bad_on_target, labels, f_s, f_t)
    scores = validate(good_on_target, f_t, features_s=f_s, features_val_s=f_s,
                      probs_val_s=good_on_target, labels_val_s=labels)
    assert set(scores) == {"entropy", "info_max", "snd", "iwv"}


def test_iwv_with_shared_weights_is_the_weighted_cross_entropy():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    labels = np.array([0, 0, 1])
    w = np.array([1.0, 0.0, 3.0])
    f = np.zeros((3, 2))
    expected = -(1.0 * -np.log(0.9) + 3.0 * -np.log(0.4)) / 4.0
    assert iwv(f, probs, labels, f, f, weights=w) == pytest.approx(expected)


def test_ensemble_agreement_favours_the_majority_and_never_the_outlier():
    labels = RNG.integers(0, 3, 100)
    good = np.eye(3)[labels] * 0.9 + 0.1 / 3
    near = good.copy()
    near[:10] = np.roll(near[:10], 1, axis=1)  # 10 samples differ
    outlier = np.roll(good, 2, axis=1)          # every sample differs
    scores = ensemble_agreement([good, good ** 2, near, outlier])
    assert scores == [1.0, 1.0, pytest.approx(0.9), 0.0]
    # a candidate scored without voting: only the members make the ensemble
    assert ensemble_agreement([outlier, good, near], members=[1, 2])[0] == 0.0
