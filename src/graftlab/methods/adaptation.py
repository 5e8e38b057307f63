"""Unsupervised domain adaptation in the one trainer: labelled source, unlabelled target.

    L = CE(y_s, g(f(x_s)))  +  lambda(p) * L_transfer(f(x_s), f(x_t), g(f(x_s)), g(f(x_t)))

``f`` is the backbone up to the pooled features and, with an ``mlp`` head, on through its
hidden layers (the bottleneck, ``head.embed``); ``g`` is the head's last linear layer and ``p``
in [0, 1] the training progress. ``lambda(p) = lambda * (2 / (1 + exp(-gamma p)) - 1)`` (Ganin & Lempitsky 2015) warms
the transfer term up from 0, so early, meaningless features are not aligned; ``schedule=
"constant"`` uses ``lambda`` throughout. Each method is a small subclass that defines
``transfer``; batches are ``{"source": {"inputs", "labels"}, "target": {"inputs"}}``.

Self-training adds ``pseudo_weight * CE(g(f(x_t)), y_pseudo)`` over the target samples a
teacher labelled (``target["pseudo"]``, -1 where it abstains; see :mod:`graftlab.adapt.refine`).

Regression (``num_classes == 0``): the source term is the mean squared error on the
standardised target. The methods that align features (dann, dan, coral) apply as they are;
those that need class probabilities (cdan's conditioning, mcc's class confusion; declared by
``needs_probabilities``) are refused, and so is self-training.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from graftlab.errors import ConfigError
from graftlab.methods.erm import task_loss
from graftlab.registry import Registry

SCHEDULES = ("warmup", "constant")
METHODS: Registry[type[Adaptation]] = Registry(
    "adaptation method", hint="source_only trains on the source alone (the baseline).")


def register_method(name: str) -> Callable[[type[Adaptation]], type[Adaptation]]:
    return METHODS.register(name)


def list_methods() -> list[str]:
    return METHODS.names()


def create_method(name: str, model: nn.Module, **options) -> Adaptation:
    return METHODS.create(name, model, **options)


def warmup(p: float, gamma: float = 10.0) -> float:
    """2 / (1 + exp(-gamma p)) - 1: 0 at the start, ~1 from p = 0.5 on."""
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


class Adaptation(nn.Module):
    """Base: source cross-entropy plus ``lambda(p)`` times the method's transfer loss.

    ``model`` has ``features(inputs) -> (B, D)`` and a pooled ``head`` (``embed``/``classify``);
    ``feature_dim`` is ``head.embed_dim``; ``total_steps`` sets ``p``.
    The step count is a buffer, so it is saved in checkpoints and a resumed run continues the
    schedule where it stopped.
    """

    name = "adaptation"
    # whether the transfer term acts on features (the engine refuses a set-up where nothing
    # below the classifier trains); False for terms on the logits alone, and for source_only
    aligns: bool = True
    # whether the transfer term reads class probabilities (so a regression target has none)
    needs_probabilities: bool = False

    def __init__(self, model: nn.Module, *, num_classes: int, feature_dim: int,
                 total_steps: int, weight: float = 1.0, schedule: str = "warmup",
                 gamma: float = 10.0, pseudo_weight: float = 1.0) -> None:
        super().__init__()
        if schedule not in SCHEDULES:
            raise ConfigError(f"lambda schedule {schedule!r} is not one of "
                              f"{', '.join(SCHEDULES)}.")
        if weight < 0 or not math.isfinite(weight):
            raise ConfigError(f"the transfer weight lambda must be a finite number >= 0, got "
                              f"{weight}.")
        if num_classes == 0 and self.needs_probabilities:
            fit = [n for n, m in METHODS.items() if not m.needs_probabilities]
            raise ConfigError(f"{self.name} needs class probabilities, and a regression target "
                              "has none.", hint=f"for regression use {', '.join(fit)}.")
        self.model, self.num_classes, self.feature_dim = model, num_classes, feature_dim
        self.weight, self.schedule, self.gamma = weight, schedule, gamma
        self.pseudo_weight = pseudo_weight
        self.total_steps = max(1, total_steps)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    @property
    def backbone(self):
        return self.model.backbone

    def lam(self) -> float:
        p = min(1.0, float(self.step) / self.total_steps)
        return self.weight * (warmup(p, self.gamma) if self.schedule == "warmup" else 1.0)

    def transfer(self, f_s: torch.Tensor, f_t: torch.Tensor, logits_s: torch.Tensor,
                 logits_t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        src, tgt = batch["source"], batch["target"]
        head = self.model.head
        f_s = head.embed(self.model.features(src["inputs"]))
        f_t = head.embed(self.model.features(tgt["inputs"]))
        logits_s, logits_t = head.classify(f_s), head.classify(f_t)
        # regression (no classes): the mean squared error; a selection's / PADA's weights
        ce = task_loss(logits_s, src["labels"], self.num_classes,
                       weights=self.source_weights(src, logits_t))
        lam = self.lam()
        out = {"ce": ce.detach(), "lambda": torch.tensor(lam)}
        if self.weight > 0:
            transfer = self.transfer(f_s, f_t, logits_s, logits_t)
            out["transfer"] = transfer.detach()
            loss = ce + lam * transfer
        else:
            loss = ce
        pseudo = tgt.get("pseudo")  # self-training: a teacher's labels, -1 where it abstains
        if pseudo is not None and self.pseudo_weight > 0 and self.num_classes and \
                bool((pseudo >= 0).any()):
            keep = pseudo >= 0
            pl = F.cross_entropy(logits_t[keep], pseudo[keep])
            out["pseudo"] = pl.detach()
            loss = loss + self.pseudo_weight * pl
        if self.training:
            self.step += 1
        out["loss"] = loss
        return out

    def summary(self) -> dict:
        """What the method learned that a run records and its report shows, JSON-ready (PADA:
        its class weights); most methods learn nothing beyond the model."""
        return {}

    def source_weights(self, source: dict, logits_t: torch.Tensor) -> torch.Tensor | None:
        """Per-sample weights of the source loss: a selection's (``source["weights"]``), or
        None (all equal). A class-weighting method (PADA) multiplies its own in."""
        return source.get("weights")

    @torch.no_grad()
    def evaluate(self, batch: dict) -> dict[str, float]:
        """Labelled evaluation batches (held-out source): loss and accuracy sums."""
        logits = self.model.head(self.model.features(batch["inputs"]))
        labels = batch["labels"]
        n = len(labels)
        out = {"loss": float(task_loss(logits, labels, self.num_classes)) * n, "count": n}
        if self.num_classes:
            out["accuracy"] = float((logits.argmax(-1) == labels).sum())
        return out


@register_method("source_only")
class SourceOnly(Adaptation):
    """No transfer term: the baseline every adaptation is measured (and guarded) against."""

    aligns = False

    def __init__(self, model: nn.Module, **options) -> None:
        super().__init__(model, **{**options, "weight": 0.0})

    def transfer(self, f_s, f_t, logits_s, logits_t) -> torch.Tensor:
        return f_s.new_zeros(())


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Per-row Shannon entropy of probabilities ``(B, C) -> (B,)``."""
    return -(probs * torch.log(probs.clamp_min(1e-8))).sum(-1)


def discriminator(in_features: int, hidden: int = 256) -> nn.Sequential:
    """The domain classifier of DANN/CDAN: two hidden layers, one logit (source = 1)."""
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(hidden, 1))


def domain_loss(disc: nn.Module, h_s: torch.Tensor, h_t: torch.Tensor,
                w_s: torch.Tensor | None = None, w_t: torch.Tensor | None = None
                ) -> torch.Tensor:
    """Binary cross-entropy of the discriminator: source labelled 1, target 0."""
    d_s, d_t = disc(h_s).squeeze(-1), disc(h_t).squeeze(-1)
    l_s = F.binary_cross_entropy_with_logits(d_s, torch.ones_like(d_s), reduction="none")
    l_t = F.binary_cross_entropy_with_logits(d_t, torch.zeros_like(d_t), reduction="none")
    if w_s is not None:
        l_s, l_t = l_s * w_s / w_s.sum() * len(w_s), l_t * w_t / w_t.sum() * len(w_t)
    return 0.5 * (l_s.mean() + l_t.mean())
