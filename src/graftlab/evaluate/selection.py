"""Label-free model selection for domain adaptation: the rank vote of validators and the
negative-transfer guard, computed as data (the report turns it into prose)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from graftlab.evaluate.validators import VALIDATORS


def mean_score(runs: list[dict], method: str, key: str, validator: bool = False) -> float:
    values = [(r["validators"] if validator else r)[key] for r in runs
              if r["method"] == method and key in (r["validators"] if validator else r)]
    return float(np.mean(values)) if values else float("nan")


# one voter per family: confidence (IM), neighbourhood structure (SND), consensus (ensv);
# entropy (IM's own half) and iwv are scored and reported but do not vote
VOTERS = ("info_max", "snd", "ensv")
MAX_SOURCE_DROP = 0.05


def loses_source(drop: float) -> bool:
    """Whether a drop in held-out source accuracy (a fraction) is more than
    ``MAX_SOURCE_DROP``: an exact 5 points is not (float noise aside)."""
    return drop > MAX_SOURCE_DROP + 1e-9


def class_scores(probs_t: np.ndarray, probs_val: np.ndarray, labels_val: np.ndarray,
                 classes: np.ndarray) -> dict:
    """A run's class-level scores, for the guard's partial-label check: the mean predicted
    probability of each class on the target (``target_class_mass``, in ``classes`` order) and
    the held-out source accuracy on each class (``source_class_accuracy``; None for a class
    with no held-out sample) with the number of held-out samples of each class."""
    predicted = np.asarray(classes)[np.asarray(probs_val).argmax(1)]
    labels_val = np.asarray(labels_val)
    counts = [int((labels_val == c).sum()) for c in classes]
    accuracy = [float((predicted[labels_val == c] == c).mean()) if n else None
                for c, n in zip(classes, counts, strict=True)]
    return {"target_class_mass": [float(m) for m in np.asarray(probs_t).mean(0)],
            "source_class_accuracy": accuracy, "source_class_count": counts}


# The partial-label check (a target that lacks some source classes, where unweighted alignment
# draws target samples onto the classes it does not hold). Both values were chosen on the
# design pair, MNIST -> MNIST-M digits 5-9, and its whole-target control before the evaluation
# pairs ran (BENCHMARKS.md "Source selection", ``benchmarks/source_selection.py``).
ABSENT_SHARE = 0.5  # a class source_only predicts under half as often as its most predicted one
MAX_DRAWN = 0.0  # more target mass on those classes than source_only puts there: flagged
# (the check acts only with pada among the methods: see partial_check)


def partial_label(runs: list[dict]) -> dict | None:
    """Which classes the target seems to lack, from source_only's mean predicted class mass on
    the target (mean over seeds, over its largest): those under ``ABSENT_SHARE``. None when
    no run recorded class masses, when no class is that rare, or when fewer than two classes
    are left (source_only's predictions then pile onto one class: a sign they are too poor
    to tell which classes the target holds, not that it holds one)."""
    got = [r["target_class_mass"] for r in runs
           if r["method"] == "source_only" and r.get("target_class_mass")]
    if not got:
        return None
    mass = np.mean(got, axis=0)
    share = mass / mass.max()
    absent = share < ABSENT_SHARE
    if not absent.any() or (~absent).sum() < 2:
        return None
    return {"absent": np.flatnonzero(absent).tolist(),
            "class_share": [round(float(x), 4) for x in share]}


def absent_mass(runs: list[dict], method: str, absent: list[int]) -> float:
    """The method's mean predicted mass on the ``absent`` classes (mean over seeds)."""
    values = [float(np.sum(np.asarray(r["target_class_mass"])[absent])) for r in runs
              if r["method"] == method and r.get("target_class_mass")]
    return float(np.mean(values)) if values else float("nan")


def present_source_accuracy(runs: list[dict], method: str, absent: list[int]) -> float:
    """Held-out source accuracy on the classes the target seems to hold (mean over seeds):
    what a model that gave up the absent classes, as PADA does, still knows of the rest."""
    values = []
    for r in runs:
        if r["method"] != method or "source_class_accuracy" not in r:
            continue
        counts = np.array(r["source_class_count"], dtype=float)
        counts[absent] = 0  # a class without held-out samples has count 0 (its accuracy None)
        if counts.sum():
            accuracy = np.nan_to_num(np.array(r["source_class_accuracy"], dtype=float))
            values.append(float((counts * accuracy).sum() / counts.sum()))
    return float(np.mean(values)) if values else float("nan")


def partial_check(runs: list[dict], chosen: list[str]) -> dict | None:
    """The partial-label check over ``chosen``: the classes the target seems to lack, how much
    more target mass each method puts on them than source_only (``drawn``), the methods that
    put more than ``MAX_DRAWN`` (``flagged``), and held-out source accuracy on the classes
    left (``present_source_accuracy``). None where :func:`partial_label` is, or where a
    chosen method's runs lack class scores (runs stored before they were recorded).

    It ``acts`` (the guard leaves the flagged methods out and counts source accuracy on the
    classes left) only with a class-weighting method among the methods (one whose runs record
    their ``class_weights``: ``pada``), the user's sign that the target may lack classes.
    Without one the finding is reported, not acted on: on a whole target whose classes
    source_only predicts unevenly, a method that evens them out looks the same."""
    if not all(r.get("target_class_mass") and r.get("source_class_accuracy") is not None
               for r in runs if r["method"] in chosen):
        return None
    found = partial_label(runs)
    if found is None:
        return None
    absent = found["absent"]
    base = absent_mass(runs, "source_only", absent)
    drawn = {m: absent_mass(runs, m, absent) - base for m in chosen}
    weighs_classes = any(r.get("class_weights") for r in runs if r["method"] in chosen)
    return {**found, "drawn": drawn, "acts": weighs_classes,
            "flagged": [m for m in chosen if m != "source_only" and drawn[m] > MAX_DRAWN],
            "present_source_accuracy": {m: present_source_accuracy(runs, m, absent)
                                        for m in chosen}}


def rank_vote(means: dict[str, dict[str, float]], voters: list[str]) -> dict[str, float]:
    """Borda count: each validator ranks the methods (0 = worst; tied scores share their
    average rank; a NaN score ranks worst), the ranks are summed."""
    from scipy.stats import rankdata

    names = list(means)
    points = np.zeros(len(names))
    for v in voters:
        scores = np.array([means[m][v] for m in names], dtype=float)
        points += rankdata(np.nan_to_num(scores, nan=-np.inf), method="average") - 1
    return {m: float(p) for m, p in zip(names, points, strict=True)}


def select(runs: list[dict], chosen: list[str], guard: bool,
            vote: tuple[str, ...] = VOTERS) -> dict:
    """The method with the most points in the rank vote (Borda count) of information
    maximisation, SND and ensemble agreement (each on the mean over seeds); every validator's
    own pick is reported, entropy's and IWV's included.

    No validator is reliable alone, and their failures differ: IM (and entropy) favour MCC,
    which minimises them itself, even where MCC collapses; SND favours the adversarial
    methods, even collapsed ones; ensemble agreement favours what most methods predict, which
    on text is close to source-only's decisions. One voter per family, so that no failure
    counts twice: entropy is IM's own half (IM = diversity - entropy). IWV does not vote: its
    importance weights degenerate when the domains are almost separable. Tied points go to
    ``source_only``, then to the higher ensemble agreement (the consensus). The guard keeps
    ``source_only`` when it is the pick, or when the pick loses more than 5 points of held-out
    source accuracy. How often the vote and each validator pick the best method, on design
    and evaluation pairs: BENCHMARKS.md, "Domain adaptation" (``benchmarks/adapt.py``).
    """
    names = [v for v in VALIDATORS if all(v in r["validators"] for r in runs)]
    partial = partial_check(runs, chosen)
    acts = bool(partial and partial["acts"])
    # a method that drew the target onto classes it seems to lack is left out of the vote
    voted = [m for m in chosen if not (guard and acts and m in partial["flagged"])]
    means = {m: {v: mean_score(runs, m, v, True) for v in names} for m in chosen}
    picks = {v: max(chosen, key=lambda m: np.nan_to_num(means[m][v], nan=-np.inf))
             for v in names}
    voters = [v for v in vote if v in names] or names
    points = rank_vote({m: means[m] for m in voted}, voters)
    # ties: source_only first (the guard's side), then the higher ensemble agreement
    ranked = sorted(voted, key=lambda m: (-points[m], m != "source_only",
                                           -np.nan_to_num(means[m].get("ensv", 0.0), nan=-1)))
    best = ranked[0]
    if acts:  # what is lost on the classes the target seems to hold
        held = partial["present_source_accuracy"]
        source_drop = held["source_only"] - held[best]
    else:
        source_drop = mean_score(runs, "source_only", "source_accuracy") - \
            mean_score(runs, best, "source_accuracy")
    hurts = best == "source_only" or loses_source(source_drop)
    if guard and hurts:
        selected = "source_only"
    else:
        selected = best if best != "source_only" else next(
            (m for m in ranked if m != "source_only"), "source_only")
    out = {"validator_picks": picks, "votes": dict(Counter(picks.values())),
           "primary_validator": "rank vote of " + ", ".join(voters), "voters": voters,
           "rank_points": points, "rank_pick": best, "selected": selected,
           "guard": {"enabled": guard, "kept_source_only": bool(guard and hurts and
                                                                 len(chosen) > 1),
                     "source_accuracy_drop": source_drop}}
    if partial:
        out["partial"] = partial
    if all("target_accuracy" in r for r in runs):
        oracle = max(chosen, key=lambda m: mean_score(runs, m, "target_accuracy"))
        out["oracle"] = oracle
        out["validator_matches_oracle"] = {v: picks[v] == oracle for v in names}
        out["validator_matches_oracle"]["rank vote"] = best == oracle
    return out


def collapsed(results: dict, guard: bool) -> bool:
    """The guard's collapse check on a refined student: whether its SND (soft neighbourhood
    density) is above source_only's, mean over seeds. A student whose target neighbourhoods
    grew denser than source_only's has most often drawn the target into tight, wrong clusters
    (BENCHMARKS.md "Domain adaptation", round 4: the rule chosen on 28 pairs, then measured
    on unseen ones). Records ``refined_snd_rise`` (and ``refined_collapsed``) in
    ``results["guard"]``; True means keep source_only (never with ``guard=False``)."""
    rise = float(np.mean([r["validators"]["snd"] for r in results["refined"]])
                 - mean_score(results["runs"], "source_only", "snd", validator=True))
    results["guard"]["refined_snd_rise"] = rise
    results["guard"]["refined_collapsed"] = bool(guard and rise > 0)
    return results["guard"]["refined_collapsed"]
