"""Knowledge distillation (Hinton, Vinyals & Dean 2015, https://arxiv.org/abs/1503.02531): the
student learns the labels and a fitted teacher's softened class probabilities.

    L = (1 - alpha) * L_task  +  alpha * T^2 * KL( softmax(z_t / T) || softmax(z_s / T) )

``z_s``, ``z_t``: the student's and the teacher's logits, (B, C) each; ``T`` the temperature;
the KL is summed over classes and averaged over the batch. T^2 keeps the soft term's gradients
on the scale of the hard term's whatever T is (Hinton et al., section 2). The defaults, T = 4
and alpha = 0.9, are the KD baseline of Tian, Krishnan & Isola 2020 (CRD,
https://arxiv.org/abs/1910.10699; RepDistiller's ``scripts/run_cifar_distill.sh``: ``-r 0.1
-a 0.9``, ``kd_T`` 4), in line with Hinton et al.'s finding that a considerably lower weight on
the hard targets works best.

The teacher's logits come with the batch (``batch["teacher_logits"]``: computed once, where the
student's inputs are the same at every step) or from ``teacher(inputs)``, run on the inputs the
student saw at this step (augmented, mixed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real

import torch
import torch.nn.functional as F
from torch import nn

from graftlab.errors import ConfigError

TeacherFn = Callable[[dict], torch.Tensor]  # the student's model-ready inputs -> (B, C) logits


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float,
                 weights: torch.Tensor | None = None) -> torch.Tensor:
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)), averaged over the batch (with
    per-sample ``weights``, their weighted mean, as the task loss takes them): (B, C) and
    (B, C) logits -> a scalar (0 where the two agree)."""
    t = float(temperature)
    if weights is None:
        return F.kl_div(F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1),
                        reduction="batchmean", log_target=True) * (t * t)
    per = F.kl_div(F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1),
                   reduction="none", log_target=True).sum(-1)
    w = weights.to(per.dtype)
    return (per * w).sum() / w.sum().clamp_min(1e-12) * (t * t)


def check_distill_settings(temperature: float, weight: float) -> None:
    """The temperature is a finite number > 0, the weight alpha one in [0, 1]."""
    if not (isinstance(temperature, Real) and math.isfinite(temperature)
            and temperature > 0):
        raise ConfigError(f"distill_temperature must be a finite number > 0, got "
                          f"{temperature!r}.", hint="4 is the usual choice; 1 leaves the "
                          "teacher's probabilities as they are, higher values soften them.")
    if not (isinstance(weight, Real) and 0 <= weight <= 1):
        raise ConfigError(f"distill_weight (alpha) must be a number in [0, 1], got {weight!r}.",
                          hint="0 trains on the labels alone, 1 on the teacher alone; 0.9 is "
                          "the usual choice.")


class Distillation(nn.Module):
    """The distillation term of a method: mixes the method's task loss with the soft-target
    loss. ``teacher`` (optional) computes the teacher's logits from the student's inputs at each
    step; without it they are read from ``batch["teacher_logits"]``. The teacher is held outside
    the module tree on purpose: it never trains, never switches to training mode with the
    student, and never enters the student's checkpoints."""

    def __init__(self, *, temperature: float = 4.0, weight: float = 0.9,
                 teacher: TeacherFn | None = None) -> None:
        super().__init__()
        check_distill_settings(temperature, weight)
        self.temperature, self.weight = float(temperature), float(weight)
        object.__setattr__(self, "teacher", teacher)  # not a sub-module (see the docstring)

    def teacher_logits(self, inputs: dict, batch: dict) -> torch.Tensor:
        if self.teacher is not None:
            with torch.no_grad():
                return self.teacher(inputs)
        if "teacher_logits" not in batch:
            raise ConfigError("distillation without a teacher function needs "
                              "batch['teacher_logits'] (the teacher's logits per sample).",
                              hint="give Distillation(teacher=...) or add the cached logits "
                              "to each batch.")
        return batch["teacher_logits"]

    def forward(self, task_loss: torch.Tensor, logits: torch.Tensor, inputs: dict,
                batch: dict) -> dict[str, torch.Tensor]:
        """``{"loss": (1 - alpha) task_loss + alpha * soft, "distill": soft}``."""
        teacher = self.teacher_logits(inputs, batch).to(logits.device, logits.dtype)
        soft = distill_loss(logits, teacher, self.temperature, batch.get("weights"))
        return {"loss": (1 - self.weight) * task_loss + self.weight * soft,
                "distill": soft.detach()}
