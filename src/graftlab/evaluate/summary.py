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
from dataclasses import dataclass
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
            row["per_class_recall"] = [  # None: a class no test split held
                statistics.fmean(kept) if (kept := [v for v in col if v is not None]) else None
                for col in zip(*recalls)]
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


Gap = tuple[float, float, int]  # paired gain of the best strategy over another, its SE, seeds
Pair = tuple[dict, float, float, int]  # a strategy's summary row and the best's Gap over it


@dataclass(frozen=True)
class Decision:
    """What the verdict decides, before any words: the best strategy by mean, the one
    recommended (the cheapest within noise of the best), and how sure that is."""

    task: str
    metric: str
    best: dict  # summary rows
    recommended: dict
    ties: list[Pair]  # within noise of the best (seeds enough to tell)
    beaten: list[Pair]  # clearly behind the best
    closest: Pair | None  # the beaten strategy nearest the best
    gap: Gap | None  # the best over the recommended one, when they differ
    scratch: dict | None  # the from-scratch baseline's row, if it ran
    scratch_gap: Gap | None  # the best over the baseline
    pretraining: str | None  # "helps", "unconfirmed" or "negative"; None without the baseline


def verdict(summary: list[dict], runs: list[dict], task: str) -> dict:
    """The recommendation and a one-paragraph explanation with its uncertainty."""
    decision = decide(summary, runs, task)
    if decision is None:
        return {"best": None, "recommended": None,
                "text": "No transfer strategy finished, so there is nothing to recommend yet."}
    return {"best": decision.best["strategy"], "recommended": decision.recommended["strategy"],
            "metric": decision.metric, "within_noise": [r["strategy"] for r, *_ in decision.ties],
            "negative_transfer": decision.pretraining == "negative",
            "text": verdict_text(decision)}


def decide(summary: list[dict], runs: list[dict], task: str) -> Decision | None:
    """The recommendation as data (None when no transfer strategy finished): strategies are
    compared with the best paired by seed; the cheapest of those within noise is recommended."""
    (metric, higher), _ = METRICS[task]
    candidates = [row for row in summary if row["strategy"] != BASELINE]
    if not candidates:
        return None
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
    gap = (None if recommended is best else
           paired(runs, best["strategy"], recommended["strategy"], metric))
    closest = max(beaten, key=lambda t: sign * t[0][f"{metric}_mean"]) if beaten else None
    scratch = next((row for row in summary if row["strategy"] == BASELINE), None)
    scratch_gap, pretraining = None, None
    if scratch is not None:
        scratch_gap = paired(runs, best["strategy"], BASELINE, metric)
        gain, se, n = scratch_gap
        pretraining = ("helps" if _clearly_better(sign * gain, se, n) else
                       "unconfirmed" if sign * gain > 0 else "negative")
    return Decision(task=task, metric=metric, best=best, recommended=recommended, ties=ties,
                    beaten=beaten, closest=closest, gap=gap, scratch=scratch,
                    scratch_gap=scratch_gap, pretraining=pretraining)


def verdict_text(d: Decision) -> str:
    """The decision in one paragraph (Markdown bold on the strategy to use)."""
    name, metric = LABELS[d.metric], d.metric
    pct = 100.0 if d.task == "classification" else 1.0
    unit = " points" if d.task == "classification" else ""

    def score(row: dict) -> str:
        return (f"{row[f'{metric}_mean'] * pct:.1f} ± {row[f'{metric}_std'] * pct:.1f}"
                if d.task == "classification" else
                f"{row[f'{metric}_mean']:.3f} ± {row[f'{metric}_std']:.3f}")

    best, recommended = d.best, d.recommended
    seeds = best["seeds"]
    parts = [f"Use **{recommended['strategy']}**."]
    if d.gap is None:
        parts.append(f"It scores the best {name} ({score(best)}{'' if pct == 1 else ' %'}, mean "
                     f"± std over {seeds} seed{'s' if seeds > 1 else ''})")
        if d.ties:
            parts[-1] += (" and is the cheapest of the strategies within noise of the top ("
                          + ", ".join(r["strategy"] for r, *_ in d.ties) + ")")
        parts[-1] += "."
    else:
        gain, se, n = d.gap
        per = "" if pct == 1 else " %"
        parts.append(
            f"**{best['strategy']}** has the highest mean {name} ({score(best)}{per}), but its "
            f"paired gain over {recommended['strategy']} ({score(recommended)}{per}) is "
            f"{gain * pct:+.1f}{unit} ± {se * pct:.1f} (standard error over {n} seeds), "
            f"within noise, while {best['strategy']} trains "
            f"{_ratio(best['trainable_params'], recommended['trainable_params'])} as many "
            f"parameters and takes "
            f"{_ratio(best['seconds_median'], recommended['seconds_median'])} as long.")
    if seeds < MIN_SEEDS_FOR_TIES:
        parts.append(f"With {seeds} seed{'s' if seeds > 1 else ''} there is no "
                     "reliable estimate of the uncertainty, so the highest mean wins: run with "
                     "--seeds 3 or more before trusting small differences.")
    elif d.closest is not None:
        row, gain, se, _ = d.closest
        # measured against the best mean: name it where the recommendation is another
        who = "It" if best is recommended or best["strategy"] == recommended["strategy"] else \
            best["strategy"]
        parts.append(f"{who} is clearly ahead of {len(d.beaten)} other strateg"
                     f"{'y' if len(d.beaten) == 1 else 'ies'}: the closest of those, "
                     f"{row['strategy']}, trails by {gain * pct:.1f}{unit} ± {se * pct:.1f}.")
    if d.scratch is not None:
        parts.append(_pretraining_words(d, score(d.scratch), pct, unit))
    return " ".join(parts)


def _pretraining_words(d: Decision, scratch_score: str, pct: float, unit: str) -> str:
    gain, _, n = d.scratch_gap
    if d.pretraining == "helps":
        return (f"Pretraining helps: the same network trained from random weights "
                f"scores {scratch_score}, {abs(gain) * pct:.1f}{unit} worse.")
    if d.pretraining == "unconfirmed":
        return (f"The same network trained from random weights scores "
                f"{scratch_score}, {abs(gain) * pct:.1f}{unit} worse on average, but "
                f"{n} seed(s) cannot confirm that pretraining helps: run more seeds.")
    return (f"Warning: the same network trained from random weights scores "
            f"{scratch_score}, no worse than the best transfer strategy. The "
            "pretrained weights do not help on this data (negative or no "
            "transfer): try another backbone or layer.")


def _ratio(a: float, b: float) -> str:
    r = a / b if b > 0 else math.inf
    return f"{r:.0f}x" if r >= 10 else f"{r:.1f}x"
