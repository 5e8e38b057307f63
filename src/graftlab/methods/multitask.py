"""Multi-task training: per-task losses on one model's output columns, masked per sample, and
a loss weighting that combines them into the one loss the trainer minimises.

    L = combine({L_t}),  L_t = mean over the batch's samples that carry task t's label of
                               loss_t(f(x)[:, cols_t], y_t)

A sample may carry labels for some tasks only (LibMTL cannot: its issues #11, #63): a task
without a label in the batch drops out of that step. Weightings (:data:`WEIGHTINGS`):

``equal``        sum_t L_t: a strong baseline (Kurin et al. 2022, https://arxiv.org/abs/2201.04122;
                 Xin et al. 2022, https://arxiv.org/abs/2209.11379)
``uncertainty``  sum_t L_t / (2 exp(s_t)) + s_t / 2 with learned log-variances s_t
                 (Kendall et al. 2018, https://arxiv.org/abs/1705.07115)
``pcgrad``       the per-task gradients on the shared parameters, each projected onto the
                 normal plane of any other it conflicts with (negative dot product), in a random
                 order, then summed (Yu et al. 2020, https://arxiv.org/abs/2001.06782); a task's
                 own head gets its own gradient. The loss's value stays sum_t L_t; its gradient
                 on the shared parameters is the projected sum (a detached correction term), so
                 the one trainer's single ``backward`` applies PCGrad.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from graftlab.registry import Registry

WEIGHTINGS: Registry[type[Weighting]] = Registry(
    "loss weighting", hint="equal (the sum of the task losses) is a strong baseline.")


@dataclass(frozen=True)
class TaskLoss:
    """One task's columns ``[start, stop)`` of the output (or, where the model outputs a dict
    ``{task: tensor}``, its entry), its loss on labelled rows, which rows are labelled
    (``present(y) -> bool mask``) and a metric summed over them (or None)."""

    name: str
    start: int
    stop: int
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    present: Callable[[torch.Tensor], torch.Tensor]
    metric: tuple[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] | None = None

    def take(self, out: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        """This task's outputs, one row per sample."""
        return out[self.name] if isinstance(out, dict) else out[:, self.start:self.stop]


class Weighting(nn.Module):
    """Base: ``combine(losses, shared) -> loss``; ``shared`` are the parameters every task
    moves. A weighting's own parameters train with the head's learning rate."""

    name = "weighting"

    def __init__(self, tasks: Sequence[str]) -> None:
        super().__init__()
        self.task_names = list(tasks)

    def combine(self, losses: dict[str, torch.Tensor], shared: list[nn.Parameter]
                ) -> torch.Tensor:
        raise NotImplementedError


@WEIGHTINGS.register("equal")
class Equal(Weighting):
    def combine(self, losses, shared):
        return sum(losses.values())


@WEIGHTINGS.register("uncertainty")
class Uncertainty(Weighting):
    def __init__(self, tasks: Sequence[str]) -> None:
        super().__init__(tasks)
        self.log_vars = nn.Parameter(torch.zeros(len(self.task_names)))

    def combine(self, losses, shared):
        s = {name: self.log_vars[i] for i, name in enumerate(self.task_names)}
        return sum(loss / (2 * torch.exp(s[t])) + s[t] / 2 for t, loss in losses.items())


@WEIGHTINGS.register("pcgrad")
class PCGrad(Weighting):
    def combine(self, losses, shared):
        total = sum(losses.values())
        params = [p for p in shared if p.requires_grad]
        if len(losses) < 2 or not params or not torch.is_grad_enabled():
            return total
        grads = torch.stack([_flat(torch.autograd.grad(loss, params, retain_graph=True,
                                                       allow_unused=True), params)
                             for loss in losses.values()])
        delta = project_conflicts(grads).sum(0) - grads.sum(0)
        chunks = torch.split(delta, [p.numel() for p in params])
        correction = sum((p * d.view_as(p)).sum() for p, d in zip(params, chunks, strict=True))
        return total + correction - correction.detach()


def project_conflicts(grads: torch.Tensor) -> torch.Tensor:
    """PCGrad's surgery on (T, P) per-task gradients: each, against the others in a random
    order, loses its component along any it conflicts with (g_i . g_j < 0)."""
    out = grads.clone()
    for i in range(len(grads)):
        for j in torch.randperm(len(grads)).tolist():
            if j == i:
                continue
            dot = out[i] @ grads[j]
            if dot < 0:
                out[i] = out[i] - dot / grads[j].pow(2).sum().clamp_min(1e-12) * grads[j]
    return out


def _flat(grads: Sequence[torch.Tensor | None], params: list[nn.Parameter]) -> torch.Tensor:
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                      for g, p in zip(grads, params, strict=True)])


class MultiTask(nn.Module):
    """Wraps a model ``f(inputs) -> (B, sum of the tasks' outputs)`` or ``{task: tensor}``
    (a token task's (B, T, outputs)); batches are ``{"inputs": ..., "targets": {task: (B,)
    tensor, or a token task's (B, T) labels, missing labels marked}}``. ``shared``
    are the trained parameters no single task owns (what PCGrad projects on)."""

    def __init__(self, model: nn.Module, tasks: Sequence[TaskLoss], weighting: Weighting,
                 shared: Callable[[], list[nn.Parameter]]) -> None:
        super().__init__()
        self.model, self.tasks, self.weighting = model, list(tasks), weighting
        self._shared = shared

    def _losses(self, out: torch.Tensor, targets: dict) -> tuple[dict, dict]:
        losses, counts = {}, {}
        for task in self.tasks:
            y = targets[task.name]
            keep = task.present(y)
            counts[task.name] = int(keep.sum())
            if counts[task.name]:
                losses[task.name] = task.loss(task.take(out)[keep], y[keep])
        return losses, counts

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        out = self.model(batch["inputs"])
        losses, _ = self._losses(out, batch["targets"])
        loss = self.weighting.combine(losses, self._shared())
        return {"loss": loss, **{f"loss_{t}": v.detach() for t, v in losses.items()}}

    @torch.no_grad()
    def evaluate(self, batch: dict) -> dict[str, float]:
        """Sums over the batch (the trainer divides every one by ``count``, the batch size):
        per task its loss and metric summed over labelled rows and ``<task>_labelled``, the
        number of those rows, so a sum divided by it is the mean over the task's labels."""
        out = self.model(batch["inputs"])
        losses, counts = self._losses(out, batch["targets"])
        sums: dict[str, float] = {"count": len(self.tasks[0].take(out))}
        sums["loss"] = sum(float(v) * counts[t] for t, v in losses.items())
        for task in self.tasks:
            sums[f"{task.name}_labelled"] = counts[task.name]
            sums[f"{task.name}_loss"] = float(losses.get(task.name, 0.0)) * counts[task.name]
            if task.metric is not None:
                y = batch["targets"][task.name]
                keep = task.present(y)
                name, fn = task.metric
                value = fn(task.take(out)[keep], y[keep]) if keep.any() else 0.0
                sums[f"{task.name}_{name}"] = float(value)
        return sums
