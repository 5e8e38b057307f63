"""How many samples one extraction batch holds: sized from a memory budget, not fixed.

A batch's activations, not the model, set extraction's peak memory: EfficientNet-Lite0 at
224 px needs ~20 MB per image in a batch (a fixed batch of 64 peaked at 1.7 GB in eager
PyTorch), at 64 px about 1/12 of that, and ONNX Runtime keeps one batch in flight per worker.
So the batch is sized from the work one sample's forward does at the backbone's actual input
size (estimated once per input shape, from one sample), and the batches in flight together
stay within ``memory_budget()`` (512 MiB unless ``GRAFTLAB_EXTRACT_MEMORY_MB`` says otherwise).
Small inputs keep the full batch (:data:`MAX_BATCH`), where a big batch is cheap and fast.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from graftlab.errors import ConfigError

ENV = "GRAFTLAB_EXTRACT_MEMORY_MB"
DEFAULT_BUDGET_MIB = 512
MAX_BATCH = {"image": 64, "text": 32}  # the batch that is fast when memory is no concern
# The working set of a forward pass against its largest single step (one module's input plus
# output): measured 2.1x for EfficientNet-Lite0 at 224 px in eager PyTorch (19.6 MiB per image
# in a batch against 9.3 MiB) and 1.4x in ONNX Runtime without its arena; 2.5 leaves headroom.
WORKING_SET_FACTOR = 2.5


def memory_budget() -> int:
    """Bytes the activations of all batches in flight may take."""
    raw = os.environ.get(ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_BUDGET_MIB * 2**20
    try:
        mib = float(raw)
    except ValueError:
        mib = float("nan")
    if not mib > 0:
        raise ConfigError(f"{ENV}={raw!r} is not a positive number of MiB.",
                          hint=f"set it to the memory extraction may use for activations, e.g. "
                          f"{ENV}={DEFAULT_BUDGET_MIB}, or unset it for that default.")
    return int(mib * 2**20)


def activation_bytes(model: torch.nn.Module, sample: dict[str, torch.Tensor],
                     layers: Sequence[str]) -> int:
    """Estimated activation memory of ``sample``'s forward (a batch of one) up to ``layers``:
    the largest input + output of any leaf module, times :data:`WORKING_SET_FACTOR`, plus the
    layers' outputs (kept until pooled) and the input itself."""
    largest = 0

    def size(value) -> int:
        if torch.is_tensor(value):
            return value.numel() * value.element_size()
        if isinstance(value, list | tuple):
            return sum(map(size, value))
        return 0

    def hook(_module, inputs, output) -> None:
        nonlocal largest
        largest = max(largest, size(inputs) + size(output))

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.inference_mode():
            out = model.forward_layers(sample, list(layers))
    finally:
        for handle in handles:
            handle.remove()
    kept = sum(size(v) for v in out.values())
    return int(WORKING_SET_FACTOR * largest) + kept + size(list(sample.values()))


@dataclass(frozen=True)
class BatchPlan:
    """``batch_size`` samples per batch, at most ``workers`` batches in flight."""

    batch_size: int
    workers: int
    per_sample: int  # estimated activation bytes of one sample


def plan(per_sample: int, *, workers: int, cap: int, budget: int,
         batch_size: int | None = None) -> BatchPlan:
    """The largest batch (up to ``cap``; ``batch_size`` when the caller fixed it) and the most
    batches in flight (up to ``workers``) whose activations fit ``budget``; never below one
    batch of one sample, however large a sample is."""
    per_sample = max(1, per_sample)
    fits = max(1, budget // per_sample)  # samples in flight the budget allows
    if batch_size is None:
        in_flight = max(1, min(workers, fits))
        batch_size = max(1, min(cap, fits // in_flight))
    else:
        in_flight = max(1, min(workers, fits // batch_size))
    return BatchPlan(batch_size=batch_size, workers=in_flight, per_sample=per_sample)
