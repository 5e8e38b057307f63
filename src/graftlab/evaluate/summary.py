"""From per-run results to the comparison table and the verdict (which strategy, why, and how
sure we are).

The verdict compares strategies *paired by seed* (each seed is one train/test split that every
strategy saw), so split-to-split noise cancels: a strategy is called better than another only
when a paired t-test over the seeds says so at 95%. Among the strategies the best one is not
clearly better than, the cheapest (fewest trainable parameters, then least time) is recommended.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

BASELINE = "scratch"
# With 2 seeds a paired t-test needs a gain of 12.7 standard errors: almost nothing passes, and
# "within noise, take the cheapest" would overrule real gains. From 3 seeds on it decides.
MIN_SEEDS_FOR_TIES = 3
METRICS = {  # primary metric, secondary metric, and whether higher is better for each
    "classification": (("accuracy", True), ("macro_f1", True)),
    "regression": (("r2", True), ("mae", False)),
}
LABELS = {"accuracy": "accuracy", "macro_f1": "macro-F1", "r2": "R²", "mae": "MAE"}


def _mean_std(values: list[float]) -> tuple[float, float]:
    return (statistics.fmean(values),
            statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(runs: list[dict], strategies: list[str], task: str) -> list[dict]:
    """One row per strategy that finished at least one seed, in the order asked."""
    rows = []
    for strategy in strategies:
        done = [r for r in runs if r["strategy"] == strategy]
        if not done:
            continue
        row: dict[str, Any] = {"strategy": strategy, "seeds": len(done)}
        for metric, _ in METRICS[task]:
            row[f"{metric}_mean"], row[f"{metric}_std"] = _mean_std([r[metric] for r in done])
        if task == "classification":
            recalls = [r["per_class_recall"] for r in done]
            row["per_class_recall"] = [statistics.fmean(col) for col in zip(*recalls)]
        row["trainable_params"] = done[0]["trainable_params"]
        row["total_params"] = done[0]["total_params"]
        row["seconds_median"] = statistics.median(r["seconds"] for r in done)
        row["peak_rss_mib_median"] = statistics.median(r["peak_rss_mib"] for r in done)
        rows.append(row)
    return rows


def paired(runs: list[dict], a: str, b: str, metric: str) -> tuple[float, float, int]:
    """Mean and standard error of ``metric(a) - metric(b)`` over the seeds both finished."""
    by_seed = {(r["strategy"], r["seed"]): r[metric] for r in runs}
    seeds = sorted({s for (name, s) in by_seed if name == a} &
                   {s for (name, s) in by_seed if name == b})
    diffs = [by_seed[(a, s)] - by_seed[(b, s)] for s in seeds]
    if not diffs:
        return math.nan, math.nan, 0
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else math.nan
    return statistics.fmean(diffs), se, len(diffs)


def _clearly_better(gain: float, se: float, n: int) -> bool:
    """A paired t-test at 95% (two-sided): with 2 seeds the gain must exceed 12.7 standard
    errors, with 3 seeds 4.3, with 10 seeds 2.3."""
    from scipy.stats import t

    return n > 1 and gain > 0 and gain > t.ppf(0.975, n - 1) * se


def verdict(summary: list[dict], runs: list[dict], task: str) -> dict:
    """The recommendation and a one-paragraph explanation with its uncertainty."""
    (metric, higher), _ = METRICS[task]
    name = LABELS[metric]
    pct = 100.0 if task == "classification" else 1.0
    unit = " points" if task == "classification" else ""
    candidates = [row for row in summary if row["strategy"] != BASELINE]
    if not candidates:
        return {"best": None, "recommended": None,
                "text": "No transfer strategy finished, so there is nothing to recommend yet."}
    sign = 1 if higher else -1
    best = max(candidates, key=lambda r: (sign * r[f"{metric}_mean"], -r["trainable_params"]))
    ties, beaten = [], []
    for row in candidates:
        if row is best:
            continue
        gain, se, n = paired(runs, best["strategy"], row["strategy"], metric)
        if _clearly_better(sign * gain, se, n):
            beaten.append((row, gain, se, n))
        elif n >= MIN_SEEDS_FOR_TIES:  # fewer seeds cannot tell noise from a difference
            ties.append((row, gain, se, n))
    pool = [best] + [row for row, *_ in ties]
    recommended = min(pool, key=lambda r: (r["trainable_params"], r["seconds_median"]))

    def score(row: dict) -> str:
        return (f"{row[f'{metric}_mean'] * pct:.1f} ± {row[f'{metric}_std'] * pct:.1f}"
                if task == "classification" else
                f"{row[f'{metric}_mean']:.3f} ± {row[f'{metric}_std']:.3f}")

    seeds = best["seeds"]
    parts = [f"Use **{recommended['strategy']}**."]
    if recommended is best:
        parts.append(f"It scores the best {name} ({score(best)}{'' if pct == 1 else ' %'}, mean "
                     f"± std over {seeds} seed{'s' if seeds > 1 else ''})")
        if ties:
            parts[-1] += (" and is the cheapest of the strategies within noise of the top ("
                          + ", ".join(r["strategy"] for r, *_ in ties) + ")")
        parts[-1] += "."
    else:
        gain, se, n = paired(runs, best["strategy"], recommended["strategy"], metric)
        parts.append(
            f"**{best['strategy']}** has the highest mean {name} ({score(best)}), but its "
            f"paired gain over {recommended['strategy']} ({score(recommended)}) is "
            f"{gain * pct:+.1f}{unit} ± {se * pct:.1f} (standard error over {n} seeds), "
            f"within noise, while {best['strategy']} trains "
            f"{_ratio(best['trainable_params'], recommended['trainable_params'])} as many "
            f"parameters and takes "
            f"{_ratio(best['seconds_median'], recommended['seconds_median'])} as long.")
    if seeds < MIN_SEEDS_FOR_TIES:
        parts.append(f"With {seeds} seed{'s' if seeds > 1 else ''} there is no "
                     "reliable estimate of the uncertainty, so the highest mean wins: run with "
                     "--seeds 3 or more before trusting small differences.")
    elif beaten:
        row, gain, se, _ = max(beaten, key=lambda t: sign * t[0][f"{metric}_mean"])
        parts.append(f"It is clearly ahead of {len(beaten)} other strateg"
                     f"{'y' if len(beaten) == 1 else 'ies'}: the closest of those, "
                     f"{row['strategy']}, trails by {gain * pct:.1f}{unit} ± {se * pct:.1f}.")
    scratch = next((row for row in summary if row["strategy"] == BASELINE), None)
    negative = False
    if scratch is not None:
        gain, se, n = paired(runs, best["strategy"], BASELINE, metric)
        if _clearly_better(sign * gain, se, n):
            parts.append(f"Pretraining helps: the same network trained from random weights "
                         f"scores {score(scratch)}, {abs(gain) * pct:.1f}{unit} worse.")
        elif sign * gain > 0:
            parts.append(f"The same network trained from random weights scores "
                         f"{score(scratch)}, {abs(gain) * pct:.1f}{unit} worse on average, but "
                         f"{n} seed(s) cannot confirm that pretraining helps: run more seeds.")
        else:
            negative = True
            parts.append(f"Warning: the same network trained from random weights scores "
                         f"{score(scratch)}, no worse than the best transfer strategy. The "
                         "pretrained weights do not help on this data (negative or no "
                         "transfer): try another backbone or layer.")
    return {"best": best["strategy"], "recommended": recommended["strategy"],
            "metric": metric, "within_noise": [r["strategy"] for r, *_ in ties],
            "negative_transfer": negative, "text": " ".join(parts)}


def _ratio(a: float, b: float) -> str:
    r = a / b if b > 0 else math.inf
    return f"{r:.0f}x" if r >= 10 else f"{r:.1f}x"
