"""Pooling a text encoder's token outputs (B, T, D) into one row per sample (B, D), padding left
out: shared by the backbones (their pooled features) and the multi-task head (its sample-level
tasks beside a token task), which cannot import each other."""

from __future__ import annotations

import torch


def pool_tokens(x: torch.Tensor, mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """``cls``: the first token; ``max``/``mean`` over the tokens ``mask`` keeps (all without
    one)."""
    if pooling == "cls":
        return x[:, 0]
    if mask is None:
        return x.amax(1) if pooling == "max" else x.mean(1)
    mask = mask.unsqueeze(-1).to(x.dtype)
    if pooling == "max":
        return x.masked_fill(mask == 0, torch.finfo(x.dtype).min).amax(1)
    return (x * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
