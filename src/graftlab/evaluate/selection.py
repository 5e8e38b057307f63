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
    means = {m: {v: mean_score(runs, m, v, True) for v in names} for m in chosen}
    picks = {v: max(chosen, key=lambda m: np.nan_to_num(means[m][v], nan=-np.inf))
             for v in names}
    voters = [v for v in vote if v in names] or names
    points = rank_vote(means, voters)
    # ties: source_only first (the guard's side), then the higher ensemble agreement
    ranked = sorted(chosen, key=lambda m: (-points[m], m != "source_only",
                                           -np.nan_to_num(means[m].get("ensv", 0.0), nan=-1)))
    best = ranked[0]
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
