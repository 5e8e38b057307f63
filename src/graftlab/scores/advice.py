"""What ``graftlab advise`` decides, as data: each score's ranking of the candidates, how far
the scores agree (Kendall τ), and the recommendation (a backbone, a layer and pooling, probe or
fine-tune). The report turns it into prose; nothing here formats text for people."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from graftlab.scores.base import OK

# the score a recommendation follows: the first of these that scored some candidate
PRIMARY = ("probe", "logme", "knn", "hscore", "leep", "nce")
# Probe or fine-tune. Chosen on the design data of BENCHMARKS.md "Fine-tuning strategies"
# (MNIST at 64 px and VADER movies, 1,000 training samples each): there the probe reached
# 88.5% and 75.2% and fine-tuning (full, LoRA) gained 6-7 points. Rule: fine-tune when the
# probe's cross-validated accuracy (R² for a numeric target) is below PROBE_ENOUGH and there are
# at least FINE_TUNE_MIN_SAMPLES labelled samples (fewer, and fine-tuning tends to overfit).
PROBE_ENOUGH = 0.95
FINE_TUNE_MIN_SAMPLES = 500


@dataclass(frozen=True)
class Recommendation:
    """The candidate to use and how to train on it, with the numbers the rule looked at."""

    backbone: str
    layer: str
    pooling: str
    by: str  # the score whose best candidate this is
    value: float
    strategy: str  # "probe" | "fine-tune" | "undecided" (the probe score did not run)
    probe_value: float | None  # the probe's CV accuracy (R²) on this candidate, if scored
    samples: int
    probe_enough: float = PROBE_ENOUGH
    fine_tune_min_samples: int = FINE_TUNE_MIN_SAMPLES


@dataclass
class Advice:
    """``graftlab.advise``'s result. ``candidates``: one dict per (backbone, layer, pooling)
    with ``dims`` and ``scores`` (name -> ``{value, status, seconds, note}``); ``rankings``:
    score -> candidate indices, best first (only candidates it scored); ``agreement``: score ->
    score -> Kendall τ over the candidates both scored (None with fewer than 3);
    ``seconds``: ``features`` (extraction and source heads), each score's total, ``total``."""

    data: str
    task: str
    samples: int
    classes: int | None
    scores: list[str]
    candidates: list[dict]
    rankings: dict[str, list[int]] = field(default_factory=dict)
    agreement: dict[str, dict[str, float | None]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    recommendation: Recommendation | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def values(self, score: str) -> list[float | None]:
        """Each candidate's value of ``score`` (None where it has no finite value)."""
        return [c["scores"][score]["value"] if c["scores"][score]["status"] == OK else None
                for c in self.candidates]


def rank(values: list[float | None]) -> list[int]:
    """Indices of the scored candidates, highest value first (ties keep candidate order)."""
    scored = [i for i, v in enumerate(values) if v is not None]
    return sorted(scored, key=lambda i: -values[i])


def kendall(a: list[float | None], b: list[float | None]) -> float | None:
    """Kendall τ between two scores over the candidates both scored (None: fewer than 3, or
    one score constant there)."""
    from scipy.stats import kendalltau

    both = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if len(both) < 3:
        return None
    tau = kendalltau(*zip(*both)).statistic
    return None if not np.isfinite(tau) else float(tau)


def decide(advice: Advice) -> Advice:
    """Fill in ``rankings``, ``agreement`` and ``recommendation`` from the score table."""
    values = {s: advice.values(s) for s in advice.scores}
    advice.rankings = {s: rank(v) for s, v in values.items()}
    advice.agreement = {s: {t: kendall(values[s], values[t]) for t in advice.scores if t != s}
                        for s in advice.scores}
    advice.recommendation = recommend(advice)
    return advice


def recommend(advice: Advice) -> Recommendation | None:
    """The best candidate by the probe, where it ranked any; else by the first score asked
    for (``scores``' order) that did, or, when every score ran (the default), the first of
    :data:`PRIMARY`; and probe or fine-tune by the rule above. None when no score ranked any
    candidate."""
    every = sorted(advice.scores) == sorted(PRIMARY)
    order = PRIMARY if every else ("probe", *advice.scores)
    by = next((s for s in order if advice.rankings.get(s)), None)
    if by is None:
        return None
    best = advice.rankings[by][0]
    cand = advice.candidates[best]
    probe = advice.values("probe")[best] if "probe" in advice.scores else None
    if probe is None:
        strategy = "undecided"  # the rule reads the probe's score, which did not run
    elif probe < PROBE_ENOUGH and advice.samples >= FINE_TUNE_MIN_SAMPLES:
        strategy = "fine-tune"
    else:
        strategy = "probe"
    return Recommendation(cand["backbone"], cand["layer"], cand["pooling"], by,
                          float(cand["scores"][by]["value"]), strategy, probe, advice.samples)
