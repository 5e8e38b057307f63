"""The guard's partial-label check: the classes a target seems to lack (from source_only's
predicted class mass), a method that draws the target onto them left out of the vote, and
held-out source accuracy counted on the classes the target seems to hold."""

from __future__ import annotations

import numpy as np
import pytest

from graftlab.evaluate.selection import (ABSENT_SHARE, absent_mass, class_scores,
                                         partial_check, partial_label, select)

# four classes; the target holds 0 and 1 only
SHARES = {"source_only": [0.40, 0.40, 0.10, 0.10], "dann": [0.25, 0.25, 0.25, 0.25],
          "pada": [0.48, 0.48, 0.02, 0.02]}
# held-out source accuracy per class: pada gave up the two classes the target lacks
CLASS_ACC = {"source_only": [0.9, 0.9, 0.9, 0.9], "dann": [0.9, 0.9, 0.9, 0.9],
             "pada": [0.9, 0.88, 0.2, 0.2]}


def _runs(methods=("source_only", "dann", "pada"), seeds=(0, 1), shares=SHARES,
          better="dann") -> list[dict]:
    """Runs whose validators all favour ``better`` (so the vote picks it unless left out)."""
    runs = []
    for seed in seeds:
        for m in methods:
            score = 2.0 if m == better else 1.0 if m != "source_only" else 0.5
            acc = CLASS_ACC[m]
            runs.append({"method": m, "seed": seed, "target_class_mass": shares[m],
                         **({"class_weights": [1.0, 1.0, 0.2, 0.2]} if m == "pada" else {}),
                         "source_class_accuracy": acc, "source_class_count": [10] * 4,
                         "source_accuracy": float(np.mean(acc)),
                         "validators": {"info_max": score, "snd": score, "ensv": score}})
    return runs


def test_the_classes_source_only_rarely_predicts_are_the_absent_ones():
    found = partial_label(_runs())
    assert found["absent"] == [2, 3]
    assert found["class_share"] == [1.0, 1.0, 0.25, 0.25]
    assert 0.25 < ABSENT_SHARE < 1.0


def test_no_check_without_class_masses_a_rare_class_or_two_classes_left():
    assert partial_label([{"method": "source_only", "validators": {}}]) is None
    even = {**SHARES, "source_only": [0.25, 0.25, 0.25, 0.25]}
    assert partial_label(_runs(shares=even)) is None
    piled = {**SHARES, "source_only": [0.85, 0.05, 0.05, 0.05]}  # one class left: too poor
    assert partial_label(_runs(shares=piled)) is None


def test_a_method_that_draws_the_target_onto_absent_classes_is_flagged():
    check = partial_check(_runs(), ["source_only", "dann", "pada"])
    assert check["flagged"] == ["dann"]
    assert check["drawn"]["dann"] == pytest.approx(0.5 - 0.2)
    assert check["drawn"]["pada"] == pytest.approx(0.04 - 0.2)
    assert absent_mass(_runs(), "pada", [2, 3]) == pytest.approx(0.04)


def test_the_guard_leaves_the_flagged_method_out_and_keeps_pada():
    """The vote would pick DANN; it is left out, and PADA, whose held-out source accuracy
    fell on the classes it gave up only, is not refused by the source check."""
    out = select(_runs(), ["source_only", "dann", "pada"], guard=True)
    assert out["rank_pick"] == "pada" and out["selected"] == "pada"
    assert "dann" not in out["rank_points"]
    assert out["guard"]["source_accuracy_drop"] == pytest.approx(0.9 - 0.89)
    assert not out["guard"]["kept_source_only"]
    # the plain source check would have refused pada: 0.9 against a mean of 0.545
    assert np.mean(CLASS_ACC["pada"]) < 0.9 - 0.05


def test_without_pada_the_check_reports_and_does_not_act():
    """Only pada among the methods says the target may lack classes: without it the finding is
    reported, and the vote and the plain source check decide as before."""
    pair = _runs(methods=("source_only", "dann"))
    out = select(pair, ["source_only", "dann"], guard=True)
    assert out["partial"]["flagged"] == ["dann"] and not out["partial"]["acts"]
    assert out["selected"] == "dann" and not out["guard"]["kept_source_only"]


def test_dann_beside_pada_is_left_out_and_no_guard_keeps_it():
    out = select(_runs(better="dann"), ["source_only", "dann", "pada"], guard=True)
    assert out["partial"]["acts"] and "dann" not in out["rank_points"]
    unguarded = select(_runs(), ["source_only", "dann", "pada"], guard=False)
    assert unguarded["selected"] == "dann" and "dann" in unguarded["rank_points"]


def test_every_method_flagged_keeps_source_only():
    shares = {**SHARES, "pada": [0.2, 0.2, 0.3, 0.3]}
    out = select(_runs(shares=shares), ["source_only", "dann", "pada"], guard=True)
    assert out["partial"]["flagged"] == ["dann", "pada"]
    assert out["selected"] == "source_only" and out["guard"]["kept_source_only"]


def test_runs_without_class_scores_are_judged_as_before():
    """A method whose runs lack class scores (stored before they were recorded) turns the
    check off, rather than passing it with NaN."""
    runs = _runs()
    for r in runs:
        if r["method"] == "pada":
            del r["target_class_mass"], r["source_class_accuracy"]
    assert partial_check(runs, ["source_only", "dann", "pada"]) is None
    out = select(runs, ["source_only", "dann", "pada"], guard=True)
    assert "partial" not in out and out["selected"] == "dann"


def test_a_whole_target_changes_nothing():
    even = {**SHARES, "source_only": [0.25, 0.25, 0.25, 0.25]}
    out = select(_runs(shares=even), ["source_only", "dann", "pada"], guard=True)
    assert "partial" not in out and out["selected"] == "dann"


def test_class_scores_follow_the_class_order_and_count_empty_classes():
    probs_t = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    probs_v = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    got = class_scores(probs_t, probs_v, np.array(["a", "b", "b"]), np.array(["a", "b", "c"]))
    assert got["target_class_mass"] == pytest.approx([0.4, 0.5, 0.1])
    assert got["source_class_accuracy"] == [1.0, 0.5, None]
    assert got["source_class_count"] == [1, 2, 0]


def _partial_results(student_shares, student_acc, guard=True, members=("pada",)):
    """Results of a partial target (classes 2 and 3 look absent) with a refined student."""
    runs = _runs()
    results = {"runs": runs, "classes": ["a", "b", "c", "d"],
               "refined": [{"method": "refined", "seed": s, "target_class_mass": student_shares,
                            "source_class_accuracy": student_acc, "members": list(members),
                            "student": members[0], "source_class_count": [10] * 4}
                           for s in (0, 1)]}
    results.update(select(runs, ["source_only", "dann", "pada"], guard))
    return results


def test_the_student_is_refused_when_it_draws_the_target_onto_absent_classes():
    from graftlab.workflows.adapt import _student_passes

    ok = _partial_results([0.45, 0.45, 0.05, 0.05], [0.9, 0.9, 0.3, 0.3])
    assert _student_passes(ok, guard=True)  # gave up the absent classes only: no loss
    assert ok["guard"]["refined_source_drop"] == pytest.approx(0.0)
    drawn = _partial_results([0.3, 0.3, 0.2, 0.2], [0.9, 0.9, 0.9, 0.9])
    assert not _student_passes(drawn, guard=True)
    assert drawn["guard"]["refined_rejected"]
    assert drawn["guard"]["refined_drawn"] == pytest.approx(0.4 - 0.2)
    assert _student_passes(_partial_results([0.3, 0.3, 0.2, 0.2], [0.9] * 4, guard=False),
                           guard=False)


def test_the_verdict_names_the_absent_classes_and_the_method_left_out():
    from graftlab.report.adapt import partial_sentence

    results = _partial_results([0.45, 0.45, 0.05, 0.05], [0.9] * 4)
    text = partial_sentence(results)
    assert text.startswith("The target seems to lack c, d: source_only predicts each under 50%")
    assert "dann drew more of it onto them than source_only and was left out of the vote" in text
    assert "dann +30.0; pada -16.0" in text
    unguarded = _partial_results([0.45, 0.45, 0.05, 0.05], [0.9] * 4, guard=False)
    assert "dann drew more of it onto them than source_only and would be left out of the " \
        "vote; --no-guard keeps it in" in partial_sentence(unguarded)


def test_without_pada_the_verdict_suggests_it():
    from graftlab.report.adapt import partial_sentence

    runs = _runs(methods=("source_only", "dann"))
    results = {"runs": runs, "classes": ["a", "b", "c", "d"]}
    results.update(select(runs, ["source_only", "dann"], guard=True))
    text = partial_sentence(results)
    assert text.startswith("The target seems to lack c, d: source_only predicts each under 50%")
    assert "add pada (--method pada)" in text and "(here dann)" in text


def test_the_average_is_refused_when_it_would_hold_a_method_left_out():
    from graftlab.report.adapt import verdict
    from graftlab.workflows.adapt import _average_passes

    results = _partial_results([0.45, 0.45, 0.05, 0.05], [0.9] * 4)
    assert not _average_passes(results, guard=True)
    assert results["guard"]["average_rejected"] == ["dann"]
    results.update(kept=results["selected"], methods=["source_only", "dann", "pada"],
                   distances={"before": {"proxy_a_distance": 1.0},
                              "after": {"proxy_a_distance": 0.5, "model": "pada"}})
    text = verdict(results)
    assert "The average would hold dann, left out by the partial-label check, so the guard " \
        "keeps **pada** instead." in text
    assert _average_passes(_partial_results([0.45, 0.45, 0.05, 0.05], [0.9] * 4, guard=False),
                           guard=False)


def test_a_student_taught_by_a_method_left_out_is_refused():
    """The refined student learns from its members' consensus: one the check left out
    (here dann) refuses it, as it refuses the average."""
    from graftlab.report.adapt import verdict
    from graftlab.workflows.adapt import _student_passes

    results = _partial_results([0.45, 0.45, 0.05, 0.05], [0.9] * 4, members=("pada", "dann"))
    assert not _student_passes(results, guard=True)
    assert results["guard"]["refined_taught_by_flagged"] == ["dann"]
    results.update(kept=results["selected"], methods=["source_only", "dann", "pada"],
                   distances={"before": {"proxy_a_distance": 1.0},
                              "after": {"proxy_a_distance": 0.5, "model": "pada"}})
    assert "The refined model learned from dann, left out by the partial-label check, so the " \
        "guard keeps **pada** instead." in verdict(results)


def test_the_verdict_quotes_the_source_drop_when_it_refuses_the_vote_pick():
    from graftlab.report.adapt import verdict

    acc = {**CLASS_ACC, "pada": [0.7, 0.7, 0.2, 0.2]}  # loses 20 points on the classes kept
    runs = _runs(better="pada")
    for r in runs:
        r["source_class_accuracy"] = acc[r["method"]]
    results = {"runs": runs, "classes": ["a", "b", "c", "d"],
               "methods": ["source_only", "dann", "pada"]}
    results.update(select(runs, ["source_only", "dann", "pada"], guard=True))
    results.update(kept="source_only", distances={"before": {"proxy_a_distance": 1.0},
                                                  "after": {"proxy_a_distance": 0.5,
                                                            "model": "source_only"}})
    assert results["rank_pick"] == "pada" and results["guard"]["kept_source_only"]
    assert "picks **pada**, but it loses 20.0 points of held-out source accuracy on the " \
        "classes the target seems to hold against source_only" in verdict(results)


def test_no_minus_zero_in_the_drawn_points():
    from graftlab.report.adapt import partial_sentence

    shares = {**SHARES, "pada": [0.4, 0.4, 0.1000001, 0.0999998]}
    runs = _runs(shares=shares)
    results = {"runs": runs, "classes": ["a", "b", "c", "d"]}
    results.update(select(runs, ["source_only", "dann", "pada"], guard=True))
    assert "pada +0.0" in partial_sentence(results) and "-0.0" not in partial_sentence(results)
