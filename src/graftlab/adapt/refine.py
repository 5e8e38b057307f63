"""Refinement: one student self-trained on the adapted models' consensus (the kept model).

After every method has trained, ``run_adapt`` refines in three label-free steps:

1. **Outliers out.** Each adapted model's agreement with the ensemble (the share of target
   samples where its argmax matches the mean probabilities' argmax, ``ensv``) is compared to
   the median member's; a model more than ``OUTLIER_GAP`` (15) points below it is an outlier.
   A method that failed in its own way (MCC collapsing on MNIST -> MNIST-M) disagrees with
   the consensus more than a method that works. The 15 was chosen on an earlier protocol's
   runs; :func:`cut_margin` says how close a run's models came to it, and BENCHMARKS.md
   ("Domain adaptation") replays a rule that falls back to the average near the cut.
2. **The teacher** is the average of the remaining models' probabilities; per predicted class,
   its most confident ``fraction`` of target samples keep its label (class-balanced
   self-training, Zou et al. 2018, https://arxiv.org/abs/1810.07911: a global threshold would
   keep mostly the easy classes and drift towards them).
3. **The student** is the remaining method with the highest information maximisation
   (confident and diverse target predictions), trained again from the start on the labelled
   source plus the teacher's pseudo-labels, with its own transfer loss on the whole target
   (:class:`graftlab.adapt.adapter.Adapter` with ``teacher_proba=``). The pseudo-labels
   anchor it where a method alone drifts (MCC reinforcing its own early mistakes), and its
   transfer loss decides the samples the teacher is unsure of. How it was chosen
   (BENCHMARKS.md, "Domain adaptation"): round 1 chose the student by ensemble agreement on
   four design pairs, and on twelve evaluation pairs the student by information
   maximisation did better; round 2 chose information maximisation on all sixteen pairs and
   measured it on partial-label pairs that neither round had seen.

Target labels are never read: the teacher's labels come from the unlabelled target alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graftlab.errors import ConfigError, DataError

OUTLIER_GAP = 0.15  # agreement with the ensemble below the median member's by more than this


def confident_pseudo_labels(probs: np.ndarray, fraction: float = 0.5) -> np.ndarray:
    """``probs`` (N, C) -> (N,) class indices, -1 where the sample is left unlabelled: per
    predicted class, its ``fraction`` most confident samples keep the argmax (at least one)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) == 0:
        raise DataError(f"teacher probabilities must be a non-empty (samples, classes) array, "
                        f"got shape {probs.shape}.")
    if not np.isfinite(probs).all():
        raise DataError("the teacher's probabilities are not finite (a diverged model?).",
                        hint="leave the diverged model out of the teacher.")
    check_pseudo(fraction)
    pred, conf = probs.argmax(1), probs.max(1)
    out = np.full(len(probs), -1, dtype=np.int64)
    for c in np.unique(pred):
        idx = np.flatnonzero(pred == c)
        top = idx[np.argsort(-conf[idx], kind="stable")[:max(1, round(len(idx) * fraction))]]
        out[top] = c
    return out


def check_pseudo(fraction: float, weight: float = 1.0) -> None:
    """Refuse a pseudo-label fraction outside (0, 1] or a negative pseudo-label weight."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"pseudo_fraction={fraction} must be in (0, 1]: the share of each "
                          "predicted class's most confident target samples that keep the "
                          "consensus's label.", hint="0.5 (the default) keeps the more "
                          "confident half.")
    if not weight >= 0:
        raise ConfigError(f"pseudo_weight={weight} must be a number >= 0 (0 turns the "
                          "pseudo-labels off).")


def outliers(agreement: dict[str, float], gap: float = OUTLIER_GAP) -> list[str]:
    """The methods whose agreement with the ensemble is more than ``gap`` below the median
    member's (a non-finite agreement, a diverged run, is an outlier too)."""
    finite = [a for a in agreement.values() if np.isfinite(a)]
    if not finite:
        return list(agreement)
    median = float(np.median(finite))
    return [m for m, a in agreement.items() if not np.isfinite(a) or a < median - gap]


STUDENTS = ("info_max", "agreement")


def cut_margin(agreement: dict[str, float], gap: float = OUTLIER_GAP) -> float:
    """How far the model nearest the outlier cut (the median member's agreement less
    ``gap``) is from it, on either side: a small margin means the outlier test's call could
    have gone the other way."""
    finite = [a for a in agreement.values() if np.isfinite(a)]
    if not finite:
        return 0.0
    cut = float(np.median(finite)) - gap
    return float(min(abs(a - cut) for a in finite))


def plan(probs: dict[str, np.ndarray], info_max: dict[str, float], fraction: float = 0.5,
         student: str = "info_max") -> dict:
    """The refinement of one seed from its adapted models' target probabilities and their
    information maximisation: ``{"teacher": probs, "members": [...], "outliers": [...],
    "student": method, "pseudo_labels": count, "margin": cut_margin}``. ``student`` says
    which member trains again: the one with the highest information maximisation
    (``"info_max"``, the default) or the one that agrees most with the ensemble
    (``"agreement"``)."""
    from graftlab.evaluate.validators import ensemble_agreement

    if student not in STUDENTS:
        raise ConfigError(f"student={student!r}: choose one of {', '.join(STUDENTS)}.")
    names = list(probs)
    agree = dict(zip(names, ensemble_agreement([probs[m] for m in names]), strict=True))
    out = outliers(agree)
    members = [m for m in names if m not in out]
    if not members:
        raise DataError("every adapted model's target predictions diverged; there is nothing "
                        "to refine.", hint="lower the transfer weight (--lambda).")
    teacher = np.mean([probs[m] for m in members], axis=0)
    score = info_max if student == "info_max" else agree
    chosen = max(members, key=lambda m: np.nan_to_num(score[m], nan=-np.inf))
    return {"teacher": teacher, "members": members, "outliers": out, "student": chosen,
            "agreement": agree, "margin": cut_margin(agree),
            "pseudo_labels": int((confident_pseudo_labels(teacher, fraction) >= 0).sum())}


def teacher_pseudo_labels(teacher_proba: Any, n_target: int, n_classes: int, fraction: float
                   ) -> np.ndarray:
    """Pseudo-labels from a teacher's target probabilities (checked against the target and
    the classes): per predicted class its most confident ``fraction``, -1 elsewhere."""
    probs = np.asarray(teacher_proba)
    if probs.shape != (n_target, n_classes):
        raise DataError(f"teacher_proba has shape {probs.shape}, but the target has "
                        f"{n_target} samples and the source {n_classes} classes.",
                        hint="give the teacher's predict_proba on the same target inputs, "
                        "columns in the order of classes_.")
    return confident_pseudo_labels(probs, fraction)
