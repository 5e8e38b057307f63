"""TrivialAugment (Müller & Hutter 2021, https://arxiv.org/abs/2103.10158): each sample gets
one op drawn uniformly from the table (identity included) at a magnitude drawn uniformly from
[0, 1]. Batched: each op runs once, on the samples that drew it.
"""

from __future__ import annotations

import torch

from graftlab.augment.base import Augmentation, register_augmentation
from graftlab.augment.colour import COLOUR_OPS
from graftlab.augment.geometry import GEOMETRY_OPS
from graftlab.errors import ConfigError

OPS = {"identity": lambda x, m: x, **COLOUR_OPS, **GEOMETRY_OPS}


@register_augmentation("trivial")
class TrivialAugment(Augmentation):
    """One random op per sample from ``ops`` (default: all of :data:`OPS`), magnitude in
    [0, ``max_magnitude``]."""

    def __init__(self, *, ops: tuple[str, ...] | None = None, max_magnitude: float = 1.0
                 ) -> None:
        super().__init__()
        unknown = sorted(set(ops or ()) - set(OPS))
        if unknown:
            raise ConfigError(f"TrivialAugment has no op {unknown[0]!r}; its ops: "
                              f"{', '.join(OPS)}.", hint="pick ops from that list.")
        self.ops = tuple(ops or OPS)
        self.max_magnitude = max_magnitude

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        which = torch.randint(len(self.ops), (n,), device=x.device)
        magnitude = torch.rand(n, device=x.device, dtype=x.dtype) * self.max_magnitude
        out = x.clone()
        for i, name in enumerate(self.ops):
            chosen = which == i
            if name != "identity" and bool(chosen.any()):
                out[chosen] = OPS[name](x[chosen], magnitude[chosen])
        return out
