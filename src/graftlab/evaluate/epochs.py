"""Keep the epoch a label-free validator scores best on the unlabelled target (``adapt
--select-epoch``): a callback scores every epoch, early stopping restores the best."""

from __future__ import annotations

import math

import numpy as np
import torch

from graftlab.evaluate import validators
from graftlab.train.callbacks import Callback, EarlyStopping

# the validators that score one model from its own target outputs alone
EPOCH_VALIDATORS = tuple(name for name, v in validators.VALIDATORS.items()
                         if v.score is not None and set(v.needs) <= {"probs_t", "features_t"})


class TargetScore(Callback):
    """After each epoch: a label-free validator on the unlabelled target, added to the
    epoch's metrics as ``target_<name>`` (for EarlyStopping to keep the best epoch)."""

    def __init__(self, name: str, net: torch.nn.Module, inputs, n: int) -> None:
        self.name, self.net, self.inputs, self.n = name, net, inputs, n

    @torch.no_grad()
    def on_epoch_end(self, trainer, epoch: int, metrics: dict) -> None:
        was_training, net = self.net.training, self.net.eval()
        embed, probs = [], []
        for idx in np.array_split(np.arange(self.n), max(1, math.ceil(self.n / 256))):
            z = net.head.embed(net.features(self.inputs(idx)))
            embed.append(z.float().numpy())
            probs.append(net.head.classify(z).softmax(-1).float().numpy())
        net.train(was_training)
        score = validators.VALIDATORS.get(self.name).score
        metrics[f"target_{self.name}"] = score({"probs_t": np.concatenate(probs),
                                                "features_t": np.concatenate(embed)})


def epoch_selection(name: str, net, inputs, n: int, epochs: int) -> list[Callback]:
    """Callbacks that score every epoch on the target and restore the best-scoring one."""
    return [TargetScore(name, net, inputs, n),
            EarlyStopping(monitor=f"target_{name}", mode="max", patience=epochs + 1)]
