"""A synthetic adapt results.json (no training) for rendering the report."""

from __future__ import annotations

METHODS = ["source_only", "coral", "dann", "mcc", "cdan"]
VALIDATORS = ["entropy", "info_max", "snd", "iwv", "ensv"]


def adapt_results(*, refined: bool = True, average: bool = True) -> dict:
    runs = []
    for i, m in enumerate(METHODS):
        for seed in (0, 1):
            runs.append({"method": m, "seed": seed, "source_accuracy": 0.9 - i / 100,
                         "target_accuracy": 0.5 + i / 20, "trainable_params": 1_234_567 + i,
                         "seconds": 12.5 + i,
                         "validators": {v: 0.1 * i + j / 10 for j, v in enumerate(VALIDATORS)}})
    members = METHODS[1:]
    results = {
        "source": {"name": "mnist"}, "target": {"name": "mnist_m", "labelled_for_evaluation": True},
        "methods": METHODS, "runs": runs, "selected": "dann", "kept": "dann",
        "guard": {"kept_source_only": False}, "primary_validator": "rank vote of snd, ensv",
        "voters": ["info_max", "snd", "ensv"], "validator_picks": {v: "dann" for v in VALIDATORS},
        "rank_points": {m: float(i) for i, m in enumerate(METHODS)}, "rank_pick": "cdan",
        "oracle": "cdan", "validator_matches_oracle": {**{v: False for v in VALIDATORS},
                                                       "rank vote": True},
        "distances": {"before": {"proxy_a_distance": 1.9, "mmd": 0.2},
                      "source_only": {"proxy_a_distance": 1.8, "mmd": 0.15},
                      "after": {"proxy_a_distance": 1.1, "mmd": 0.05, "model": "dann"}},
        "config": {"backbone": "efficientnet_lite0", "epochs": 5, "seeds": 2,
                   "methods": ",".join(METHODS), "keep": "refined"},
    }
    if average:
        results["average"] = [{"seed": s, "source_accuracy": 0.88, "target_accuracy": 0.7}
                              for s in (0, 1)]
    if refined:
        results["kept"] = "refined"
        results["refined"] = [{"seed": s, "student": "dann", "members": members,
                               "outliers": ["mcc"], "pseudo_labels": 4321,
                               "trainable_params": 1_234_567, "seconds": 30.0,
                               "source_accuracy": 0.89, "target_accuracy": 0.72} for s in (0, 1)]
    return results
