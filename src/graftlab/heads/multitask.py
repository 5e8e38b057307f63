"""``multitask``: one head per task over a shared (optional) hidden layer, outputs side by side.

    pooled (B, D) -> [shared: Linear -> LayerNorm -> GELU -> dropout] -> task heads -> (B, sum)

Each task's head is a registered pooled head (``linear``, ``mlp``) with its own output size;
the outputs are concatenated in task order, so the grafted model stays one module with one
output tensor: the engine's routes, strategies, checkpoints, save/load and the ONNX exporter
take it as they take any head, and one forward pass answers every task. The estimator
(:mod:`graftlab.multitask`) knows which columns belong to which task.

With a token task (a task head whose declared ``task`` is ``tokens``, e.g. ``token``) the head
reads the layer's token outputs instead (``input_kind`` ``tokens``, per instance):

    tokens (B, T, D) -> shared per token -> token heads            -> (B, T, outputs) each
                     -> pooled over the mask (``pooling``) -> shared -> the other heads
                                                                    -> (B, outputs) each

and returns ``{task: tensor}`` in task order: a sample-level task sees exactly what it sees
without a token task (the shared layer on the pooled features), and the shared layer is what
every task moves.
"""

from __future__ import annotations

import torch
from torch import nn

from graftlab.errors import ConfigError
from graftlab.heads.heads import HEADS, Head, create_head, register_head
from graftlab.pooling import pool_tokens


@register_head("multitask")
class MultiTaskHead(Head):
    """``tasks``: ``[{"name", "outputs", "head" (default linear), "head_options"}]`` in output
    order (default: one linear task of ``num_outputs``); ``shared``: the width of a hidden
    layer every task reads (None: the task heads read the pooled features directly);
    ``pooling`` (``mean``, ``cls``, ``max``): how the sample-level tasks pool token outputs
    when a token task makes the head read them."""

    def __init__(self, in_features: int, num_outputs: int, *, tasks: list[dict] | None = None,
                 shared: int | None = None, dropout: float = 0.1, pooling: str = "mean"
                 ) -> None:
        super().__init__()
        tasks = tasks or [{"name": "y", "outputs": num_outputs}]
        if sum(int(t["outputs"]) for t in tasks) != num_outputs:
            raise ConfigError(f"multitask head: the tasks' outputs sum to "
                              f"{sum(int(t['outputs']) for t in tasks)}, not {num_outputs}.")
        self.shared = (nn.Sequential(nn.Linear(in_features, shared), nn.LayerNorm(shared),
                                     nn.GELU(), nn.Dropout(dropout)) if shared else nn.Identity())
        self.width = width = shared or in_features
        self.names = [str(t["name"]) for t in tasks]
        if pooling not in POOLINGS:
            raise ConfigError(f"multitask head: pooling must be one of {', '.join(POOLINGS)}, "
                              f"got {pooling!r}.")
        self.pooling = pooling
        self.token_tasks = [str(t["name"]) for t in tasks
                            if HEADS.get(t.get("head", "linear")).task == "tokens"]
        if self.token_tasks:
            self.input_kind = "tokens"  # this instance reads token outputs
        heads = {}
        for task in tasks:
            kind = task.get("head", "linear")
            cls = HEADS.get(kind)
            if cls.input_kind != "pooled" and cls.task != "tokens":
                raise ConfigError(
                    f"task {task['name']!r}: head {kind!r} takes {cls.input_kind} input, but a "
                    "multi-task head's task heads read pooled features (or, a token task's, "
                    "token outputs).", hint="give this task head 'linear' or 'mlp' (a token "
                    "task 'token').")
            heads[str(task["name"])] = create_head(kind, in_features=width,
                                                   num_outputs=int(task["outputs"]),
                                                   **(task.get("head_options") or {}))
        self.tasks = nn.ModuleDict(heads)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None
                ) -> torch.Tensor | dict[str, torch.Tensor]:
        if not self.token_tasks:
            return self.classify(self.embed(x))
        self.check_input(x)
        pooled, per_token = self.shared(pool_tokens(x, mask, self.pooling)), self.shared(x)
        return {name: self.tasks[name](per_token if name in self.token_tasks else pooled)
                for name in self.names}

    @property
    def embed_dim(self) -> int:
        return self.width

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The shared representation (every task reads it): the hidden layer, or the input."""
        self.check_input(x)
        return self.shared(x)

    def classify(self, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.tasks[name](z) for name in self.names], dim=-1)

    def task_parameters(self) -> list[nn.Parameter]:
        """Parameters that belong to one task only (the rest of a model is shared)."""
        return [p for head in self.tasks.values() for p in head.parameters()]


POOLINGS = ("mean", "cls", "max")
