"""The verdict: paired by seed, a t-test before calling a strategy better, the cheapest of the
strategies within noise, and a warning when random weights do as well (negative transfer)."""

from __future__ import annotations

import pytest

from graftlab.evaluate.summary import paired, summarise, verdict


def _runs(scores: dict[str, list[float]], params: dict[str, int]) -> list[dict]:
    return [{"strategy": s, "seed": i, "accuracy": a, "macro_f1": a,
             "per_class_recall": [a, a], "trainable_params": params[s], "total_params": 100,
             "seconds": params[s] / 10, "peak_rss_mib": 100.0}
            for s, values in scores.items() for i, a in enumerate(values)]


PARAMS = {"linear_probe": 10, "lora": 1000, "full": 100000, "scratch": 100000}


def _verdict(scores):
    runs = _runs(scores, PARAMS)
    summary = summarise(runs, list(scores), "classification")
    return verdict(summary, runs, "classification"), summary


def test_a_clear_winner_is_recommended_and_pretraining_is_credited():
    v, summary = _verdict({"linear_probe": [0.80, 0.82, 0.81], "lora": [0.90, 0.93, 0.91],
                           "full": [0.85, 0.86, 0.86], "scratch": [0.30, 0.35, 0.32]})
    assert v["best"] == v["recommended"] == "lora" and not v["negative_transfer"]
    assert "Use **lora**" in v["text"] and "Pretraining helps" in v["text"]
    assert summary[1]["accuracy_mean"] == sum([0.90, 0.93, 0.91]) / 3


def test_within_noise_the_cheapest_strategy_is_recommended():
    # full is ahead on average but not consistently: the paired t-test cannot tell them apart
    v, _ = _verdict({"linear_probe": [0.88, 0.80, 0.86], "full": [0.84, 0.90, 0.87],
                     "scratch": [0.3, 0.3, 0.3]})
    assert v["best"] == "full" and v["recommended"] == "linear_probe"
    assert "within noise" in v["text"] and "linear_probe" in v["within_noise"] + [v["recommended"]]


def test_random_weights_as_good_as_transfer_is_a_warning():
    v, _ = _verdict({"linear_probe": [0.60, 0.62, 0.61], "scratch": [0.62, 0.63, 0.61]})
    assert v["negative_transfer"] and "Warning" in v["text"]


def test_one_seed_says_there_is_no_uncertainty_estimate():
    v, _ = _verdict({"linear_probe": [0.8], "full": [0.9]})
    assert v["recommended"] == "full" and "no reliable estimate" in v["text"]


def test_two_seeds_trust_the_mean_rather_than_a_powerless_test():
    v, _ = _verdict({"linear_probe": [0.86, 0.88], "full": [0.92, 0.93]})
    assert v["recommended"] == "full" and "no reliable estimate" in v["text"]


def test_paired_differences_cancel_split_noise():
    runs = _runs({"a": [0.5, 0.7, 0.9], "b": [0.4, 0.6, 0.8]}, {"a": 1, "b": 1})
    gain, se, n = paired(runs, "a", "b", "accuracy")
    assert n == 3 and abs(gain - 0.1) < 1e-9 and se < 1e-9


def test_scratch_worse_on_average_but_unconfirmed_asks_for_more_seeds():
    v, _ = _verdict({"full": [0.9, 0.5], "scratch": [0.3, 0.45]})
    assert not v["negative_transfer"] and "run more seeds" in v["text"]


def test_the_decision_is_data_apart_from_its_words():
    from graftlab.evaluate.summary import decide, verdict_text

    runs = _runs({"linear_probe": [0.88, 0.80, 0.86], "full": [0.84, 0.90, 0.87],
                  "scratch": [0.3, 0.3, 0.3]}, PARAMS)
    summary = summarise(runs, ["linear_probe", "full", "scratch"], "classification")
    d = decide(summary, runs, "classification")
    assert d.best["strategy"] == "full" and d.recommended["strategy"] == "linear_probe"
    assert [r["strategy"] for r, *_ in d.ties] == ["linear_probe"] and d.gap[2] == 3
    assert d.pretraining == "helps" and d.beaten == [] and d.closest is None
    assert verdict_text(d) == verdict(summary, runs, "classification")["text"]
    assert decide([row for row in summary if row["strategy"] == "scratch"], runs,
                  "classification") is None


def test_a_lead_measured_from_the_best_mean_is_credited_to_it_not_to_the_pick():
    v, _ = _verdict({"full": [0.95, 0.90, 0.97], "lora": [0.93, 0.91, 0.94],
                     "linear_probe": [0.90, 0.86, 0.925]})
    assert (v["best"], v["recommended"]) == ("full", "lora")
    assert "full is clearly ahead of 1 other strategy" in v["text"]  # full's gap, not lora's
    assert "It is clearly ahead" not in v["text"]
    assert "(94.0 ± 3.6 %)" in v["text"]  # the scores keep their unit


def test_a_class_the_test_set_lacks_has_no_recall_rather_than_zero():
    import numpy as np

    from graftlab.workflows.compare import _score

    scored = _score(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 0]), 3)  # class 2 untested
    assert scored["per_class_recall"] == [1.0, 0.5, None]
    assert scored["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)  # over classes 0 and 1
    runs = [{"strategy": "s", "seed": i, "accuracy": 0.75, "macro_f1": 0.7,
             "per_class_recall": [1.0, 0.5, None], "trainable_params": 1, "total_params": 1,
             "seconds": 1.0, "peak_rss_mib": 1.0} for i in range(2)]
    assert summarise(runs, ["s"], "classification")[0]["per_class_recall"] == [1.0, 0.5, None]
