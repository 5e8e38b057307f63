"""Every selector through one contract (shapes, weights, fraction, target labels untouched),
then each bad input and its message."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.base import clone

from graftlab.errors import ConfigError, DataError, NotFittedError
from graftlab.select import SELECTORS, check_weights, list_selectors, select_pool


class _Untouchable:
    """Target labels that fail the test if anything looks at them."""

    def __getattr__(self, name):
        raise AssertionError(f"target labels were read ({name})")

    def __array__(self, *args, **kwargs):
        raise AssertionError("target labels were read (as an array)")

    def __len__(self):
        raise AssertionError("target labels were read (len)")

    def __iter__(self):
        raise AssertionError("target labels were read (iter)")


def _pool(seed: int = 0):
    """A source pool of two parts, one near the target and one far from it."""
    rng = np.random.default_rng(seed)
    near, far = rng.normal(0, 1, (120, 8)), rng.normal(5, 1, (120, 8))
    labels = np.r_[(near[:, 0] > 0).astype(int), rng.integers(0, 2, 120)]
    groups = np.array(["near"] * 120 + ["far"] * 120)
    return np.vstack([near, far]), rng.normal(0, 1, (80, 8)), groups, labels


@pytest.mark.parametrize("name", list_selectors())
def test_selector_contract(name):
    f_s, f_t, groups, labels = _pool()
    sel = SELECTORS.create(name)
    assert sel.output in ("subset", "weights")
    assert sel.target_labels in ("never", "optional", "required")
    with pytest.raises(NotFittedError, match="not fitted yet"):
        sel.select(0.5)
    assert sel.uses_target_labels() != "required"  # defaults are label-free
    # never reads target labels unless asked to: an object that fails on any access
    assert sel.fit(f_s, f_t, source_groups=groups, source_labels=labels,
                   target_labels=_Untouchable()) is sel
    assert sel.weights_.shape == sel.scores_.shape == (len(f_s),)
    assert np.isfinite(sel.weights_).all() and (sel.weights_ >= 0).all()
    for fraction in (0.25, 0.5, 1.0):
        kept = sel.select(fraction)
        assert len(kept) == round(fraction * len(f_s)) and len(set(kept)) == len(kept)
    # the part near the target is preferred: most of the kept half comes from it
    assert (sel.select(0.5) < 120).mean() > 0.9
    assert not any(k.endswith("_") for k in sel.get_params())
    twin = clone(sel)
    assert not hasattr(twin, "scores_") and twin.get_params() == sel.get_params()


def test_task_similarity_reads_target_labels_only_when_asked():
    f_s, f_t, groups, labels = _pool()
    sel = SELECTORS.create("task_similarity", score="accuracy")
    with pytest.raises(ConfigError, match="needs target labels, and none were given"):
        sel.fit(f_s, f_t, source_groups=groups, source_labels=labels)
    y_t = (f_t[:, 0] > 0).astype(int)
    sel.fit(f_s, f_t, source_groups=groups, source_labels=labels, target_labels=y_t)
    assert sel.part_scores_["near"] > sel.part_scores_["far"]


def test_selection_records_parts_and_names_an_emptied_part(caplog):
    f_s, f_t, groups, labels = _pool()
    with caplog.at_level(logging.WARNING):
        sel = select_pool("knn", f_s, f_t, fraction=0.5, groups=groups)
    assert sel.parts == {"near": {"kept": 120, "total": 120}, "far": {"kept": 0, "total": 120}}
    assert sel.emptied == ["far"] and "left no sample of pool part(s) 'far'" in caplog.text
    assert sel.weights[sel.kept].mean() == pytest.approx(1.0) and sel.weights[120:].sum() == 0


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, float("nan"), "half"])
def test_keep_fraction_outside_0_1(fraction):
    f_s, f_t, _, _ = _pool()
    with pytest.raises(ConfigError, match=r"keep fraction must be in \(0, 1\]"):
        select_pool("knn", f_s, f_t, fraction=fraction)


@pytest.mark.parametrize(("weights", "message"), [
    ([0.0, 0.0], "are all zero"), ([1.0, np.nan], "not finite"), ([1.0, np.inf], "not finite"),
    ([1.0, -1.0], "negative"), ([1.0], "1 sample weights for 2 samples")])
def test_bad_weights(weights, message):
    with pytest.raises(DataError, match=message):
        check_weights(weights, 2)


def test_bad_inputs_are_named():
    f_s, f_t, groups, labels = _pool()
    with pytest.raises(ConfigError, match="scores named parts of the pool"):
        select_pool("task_similarity", f_s, f_t, source_labels=labels)
    with pytest.raises(ConfigError, match="trains on the source; give source_labels"):
        select_pool("task_similarity", f_s, f_t, groups=groups)
    with pytest.raises(DataError, match="8 dimensions but target features 3"):
        select_pool("knn", f_s, f_t[:, :3])
    with pytest.raises(DataError, match="NaN or infinite"):
        select_pool("knn", np.full((4, 8), np.nan), f_t)
    with pytest.raises(DataError, match="3 pool-part names for 240"):
        select_pool("knn", f_s, f_t, groups=["a", "b", "c"])
    with pytest.raises(ConfigError, match="score 'auc' is not one of"):
        select_pool("task_similarity", f_s, f_t, groups=groups, source_labels=labels,
                    options={"score": "auc"})
    with pytest.raises(KeyError, match="Did you mean 'knn'"):
        select_pool("kmn", f_s, f_t)


def test_kliep_kernels_are_bounded_by_its_centres(monkeypatch):
    from graftlab.select import kliep

    shapes, rbf = [], kliep._rbf
    monkeypatch.setattr(kliep, "_rbf", lambda x, c, h: shapes.append(c.shape[0]) or rbf(x, c, h))
    f_s, f_t, _, _ = _pool()
    sel = SELECTORS.create("kliep", n_centres=20).fit(f_s, f_t)
    assert shapes == [20, 20]  # target x 20 and source x 20: never source x target
    assert sel.weights_[:120].mean() > 5 * sel.weights_[120:].mean()


def test_a_curve_point_that_keeps_one_class_has_no_accuracy_and_the_report_says_so():
    """A small fraction of a small pool may keep one class: no classifier to fit, so the
    point is left empty (it crashed the whole selection before)."""
    from graftlab.report.select import fraction_curve as curve_svg
    from graftlab.report.select import selection_summary
    from graftlab.select.curve import fraction_curve, probe_accuracy

    f_s, f_t, groups, labels = _pool()
    one = (labels == 1).astype(float)
    assert probe_accuracy(f_s, labels, one, f_t, np.zeros(len(f_t), int)) is None
    near_first = np.r_[np.zeros(120, int), np.ones(120, int)]  # the near part: all class 0
    rows = fraction_curve(["knn"], f_s, near_first, f_t, np.zeros(len(f_t), int),
                          fractions=(0.25, 1.0))
    assert rows[0]["target_accuracy"] is None and rows[1]["target_accuracy"] is not None
    assert curve_svg(rows).startswith("<svg") or "<svg" in curve_svg(rows)
    record = {"selector": "knn", "keep_fraction": 0.25, "kept": 60, "pool": 240,
              "parts": {"near": {"kept": 60, "total": 120}}, "emptied_parts": []}
    assert "— (one class kept)" in selection_summary(record, rows)
