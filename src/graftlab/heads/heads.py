"""Heads: what turns a backbone layer's output into class logits or regression values.

Every head declares the input it takes — ``pooled`` (B, D), ``spatial`` (B, C, H, W: an image
feature map) or ``tokens`` (B, T, D with a (B, T) mask) — and maps it to (B, num_outputs).
The grafted model pools (or not) accordingly, so any head fits any backbone whose layer gives
that kind of output. A head also declares its ``task``: ``sample`` (one output row per sample:
classification, regression) or ``tokens`` (one per token, (B, T, num_outputs): tagging, NER).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from graftlab.errors import ConfigError
from graftlab.registry import Registry

HEADS: Registry[type[Head]] = Registry("head", sort=True)


def register_head(name: str) -> Callable[[type[Head]], type[Head]]:
    return HEADS.register(name)


def list_heads() -> list[str]:
    return HEADS.names()


def create_head(name: str, *, in_features: int, num_outputs: int, **options) -> Head:
    """Build a registered head; unknown names and options get a clear error."""
    cls = HEADS.get(name)
    if in_features < 1 or num_outputs < 1:
        raise ConfigError(f"head {name!r} needs in_features and num_outputs >= 1, got "
                          f"{in_features} and {num_outputs}.")
    try:
        return cls(in_features, num_outputs, **options)
    except TypeError as exc:
        raise ConfigError(f"head {name!r}: {exc}.",
                          hint=f"see graftlab.heads.{cls.__name__} for its options."
                          ) from exc


class Head(nn.Module):
    """Base: ``forward(x, mask=None) -> (B, num_outputs)``; ``input_kind`` says what x is.

    Pooled heads also split into ``embed(x) -> (B, embed_dim)`` (everything before the last
    linear layer: the bottleneck that domain adaptation aligns) and ``classify(z)``, with
    ``forward(x) == classify(embed(x))``.
    """

    name = "head"
    input_kind = "pooled"
    # one linear map ``fc`` of its input, no hidden layer: solvable in closed form
    # (linear_probe), and nothing below its classifier for domain adaptation to align
    linear = False
    expected_ndim = {"pooled": 2, "spatial": 4, "tokens": 3}
    task = "sample"  # one output row per sample; "tokens": one per token

    def check_input(self, x: torch.Tensor) -> None:
        want = self.expected_ndim[self.input_kind]
        if x.ndim != want:
            raise ConfigError(
                f"head {self.name!r} takes {self.input_kind} input ({want}-D), got a tensor of "
                f"shape {tuple(x.shape)}.",
                hint="use 'linear' or 'mlp' on pooled features, 'conv' on an image layer's "
                "feature map, 'sequence' on a text layer's token outputs.",
            )


TASKS = {"sample": "one output per sample (classification, regression)",
         "tokens": "one output per token (tagging, NER)"}


def check_head_task(head: Head, task: str) -> None:
    """Refuse a head whose declared ``task`` is not the estimator's (a sequence head on a
    tagging task, a token head on a classifier), naming the heads that fit."""
    if task not in TASKS:
        raise ConfigError(f"task {task!r} is not one of {', '.join(TASKS)}.")
    if head.task != task:
        fits = [name for name, cls in HEADS.items() if cls.task == task]
        where = ("tag tokens with graftlab.TokenTagger" if head.task == "tokens"
                 else "the token classifier's head")
        raise ConfigError(f"head {head.name!r} gives {TASKS[head.task]}, but this is a {task} "
                          f"task: it needs {TASKS[task]}.",
                          hint=f"use head={' or '.join(map(repr, fits))} ({where}).")


@register_head("linear")
class LinearHead(Head):
    """Dropout + one linear layer on pooled features."""

    linear = True

    def __init__(self, in_features: int, num_outputs: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_outputs)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        self.check_input(x)
        return self.fc(self.drop(x))

    @property
    def embed_dim(self) -> int:
        return self.fc.in_features

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return x

    def classify(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(z))


_NORMS = {"layer": nn.LayerNorm, "batch": nn.BatchNorm1d, None: lambda _: nn.Identity()}


@register_head("mlp")
class MLPHead(Head):
    """Hidden layers of ``hidden`` sizes, each Linear -> norm -> GELU -> dropout."""

    def __init__(self, in_features: int, num_outputs: int, *, hidden: Sequence[int] = (512,),
                 dropout: float = 0.1, norm: str | None = "layer") -> None:
        super().__init__()
        if norm not in _NORMS:
            raise ConfigError(f"mlp norm must be 'layer', 'batch' or None, got {norm!r}.")
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), _NORMS[norm](size), nn.GELU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, num_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        self.check_input(x)
        return self.net(x)

    @property
    def embed_dim(self) -> int:
        return self.net[-1].in_features

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.net[:-1](x)

    def classify(self, z: torch.Tensor) -> torch.Tensor:
        return self.net[-1](z)


@register_head("conv")
class ConvHead(Head):
    """A conv block over an image feature map, then global average pooling and a linear layer."""

    input_kind = "spatial"

    def __init__(self, in_features: int, num_outputs: int, *, hidden: int = 256,
                 kernel_size: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_features, hidden, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU(inplace=True))
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_outputs)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        self.check_input(x)
        return self.fc(self.drop(self.conv(x).mean(dim=(2, 3))))


@register_head("sequence")
class SequenceHead(Head):
    """Token outputs -> one vector by attention pooling (a learned query) or a bidirectional
    GRU, padding masked out, then a linear layer."""

    input_kind = "tokens"

    def __init__(self, in_features: int, num_outputs: int, *, kind: str = "attention",
                 hidden: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        if kind not in ("attention", "gru"):
            raise ConfigError(f"sequence head kind must be 'attention' or 'gru', got {kind!r}.")
        self.kind = kind
        if kind == "attention":
            self.score = nn.Sequential(nn.Linear(in_features, hidden), nn.Tanh(),
                                       nn.Linear(hidden, 1))
            width = in_features
        else:
            self.gru = nn.GRU(in_features, hidden, batch_first=True, bidirectional=True)
            width = 2 * hidden
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(width, num_outputs)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        self.check_input(x)
        mask = torch.ones(x.shape[:2], device=x.device) if mask is None else mask.to(x.dtype)
        if self.kind == "attention":
            scores = self.score(x).squeeze(-1).masked_fill(mask == 0, float("-inf"))
            pooled = (torch.softmax(scores, dim=1).unsqueeze(-1) * x).sum(1)
        else:
            lengths = mask.sum(1).clamp(min=1).long().cpu()
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                       enforce_sorted=False)
            _, h = self.gru(packed)
            pooled = torch.cat([h[0], h[1]], dim=-1)
        return self.fc(self.drop(pooled))


@register_head("token")
class TokenHead(Head):
    """One label per token: dropout and a linear layer on every token's output (Hugging Face's
    ``*ForTokenClassification``), after an optional hidden layer (``hidden`` units, GELU;
    ``norm``: a LayerNorm before the GELU, as in the mlp head and a multi-task shared layer)."""

    input_kind = "tokens"
    task = "tokens"

    def __init__(self, in_features: int, num_outputs: int, *, hidden: int = 0,
                 dropout: float = 0.1, norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden:
            layers += [nn.Linear(in_features, hidden), *([nn.LayerNorm(hidden)] if norm else []),
                       nn.GELU(), nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers, nn.Linear(hidden or in_features, num_outputs))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, D) -> (B, T, num_outputs); padded tokens get outputs too (the loss and the
        decoding skip them)."""
        self.check_input(x)
        return self.net(x)
