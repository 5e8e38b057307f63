"""Any user ``nn.Module`` as a graftlab backbone.

The module's named children become its named layers (their outputs are captured with forward
hooks), so layer choice, freezing and caching work as for the built-in families.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from graftlab.backbones.base import Backbone
from graftlab.backbones.registry import register_module_wrapper
from graftlab.errors import ConfigError


def _default_image_preprocess(inputs: Any) -> dict[str, torch.Tensor]:
    x = torch.as_tensor(np.asarray(inputs)) if not torch.is_tensor(inputs) else inputs
    if x.ndim == 4 and x.shape[-1] in (1, 3):  # NHWC uint8 -> NCHW float in [0, 1]
        x = x.permute(0, 3, 1, 2)
    pixels = x.dtype == torch.uint8  # 0-255 by its type, whatever this batch holds
    x = x.float()
    return {"x": x / 255.0 if pixels or x.max() > 1.5 else x}


class ModuleBackbone(Backbone):
    """Wraps ``module``; its top-level children are the named layers, input to output."""

    def __init__(self, module: nn.Module, *, name: str = "custom", modality: str = "image",
                 preprocess: Callable[[Any], dict[str, torch.Tensor]] | None = None,
                 num_features: int | None = None, layers: Sequence[str] | None = None,
                 lora_targets: Sequence[str] | None = None,
                 lr_backbone: float | None = None) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise ConfigError(
                f"wrap_module needs a torch.nn.Module, got {type(module).__name__}.",
                hint="pass the model object itself, e.g. wrap_module(MyNet()).",
            )
        if modality not in ("image", "text"):
            raise ConfigError(f"modality must be 'image' or 'text', got {modality!r}.")
        if modality == "text" and preprocess is None:
            raise ConfigError(
                "a text module needs preprocess=: a function from a list of strings to the "
                "dict of tensors the module takes (e.g. a tokenizer call)."
            )
        self.module = module
        self.name = name
        self.modality = modality
        self.default_pooling = "avg" if modality == "image" else "mean"
        # unless told: the names EfficientNet / BERT use, and their families' learning rates
        self.lora_targets = tuple(lora_targets) if lora_targets is not None else (
            ("_expand_conv", "_project_conv", "0") if modality == "image"
            else ("query", "key", "value", "dense"))
        self.lr_backbone = lr_backbone or (3e-4 if modality == "image" else 5e-5)
        self._preprocess = preprocess or _default_image_preprocess
        names = [n for n, _ in module.named_children()]
        self._layer_names = list(layers) if layers is not None else names + ["output"]
        self.num_features = int(num_features or 0)

    def layer_names(self) -> list[str]:
        return list(self._layer_names)

    def blocks(self) -> list[tuple[str, nn.Module]]:
        return [(n, self.module.get_submodule(n)) for n in self._layer_names if n != "output"]

    def unit_images(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The default image preprocessing's ``x`` is already [0, 1] RGB; a user's preprocess
        cannot be undone."""
        return batch["x"] if self._preprocess is _default_image_preprocess else None

    def from_unit_images(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if self._preprocess is not _default_image_preprocess:
            return super().from_unit_images(images)
        return {"x": images}

    def cache_key(self) -> dict:
        """Name, class, a sha256 of every parameter and buffer, and the preprocess function:
        changing any weight (or the preprocessing) must not return stale cached features."""
        digest = hashlib.sha256()
        for key, tensor in self.module.state_dict().items():
            flat = tensor.detach().cpu().contiguous().reshape(-1)
            digest.update(f"{key}:{flat.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes())
        return {"name": self.name, "class": type(self.module).__qualname__,
                "state": digest.hexdigest(), "preprocess": _callable_id(self._preprocess)}

    def preprocess(self, inputs: Any) -> dict[str, torch.Tensor]:
        return self._preprocess(inputs)

    def forward_layers(self, batch: dict[str, torch.Tensor], layers: Sequence[str]
                       ) -> dict[str, torch.Tensor]:
        wanted = self.check_layers(list(layers))
        captured: dict[str, torch.Tensor] = {}
        handles = []
        for layer in wanted:
            if layer == "output":
                continue
            sub = self.module.get_submodule(layer)
            handles.append(sub.register_forward_hook(
                lambda _m, _i, out, key=layer: captured.__setitem__(
                    key, out[0] if isinstance(out, tuple) else out)))
        try:
            # The default image preprocess gives {"x": images}: pass it positionally, since
            # forward's argument need not be called x (nn.Sequential's is `input`).
            output = self.module(batch["x"]) if list(batch) == ["x"] else self.module(**batch)
        finally:
            for handle in handles:
                handle.remove()
        if "output" in wanted:
            captured["output"] = getattr(output, "last_hidden_state", output)
        if not self.num_features and self.default_layer in captured:  # measured on first use
            out = captured[self.default_layer]
            self.num_features = int(out.shape[-1] if out.ndim == 3 else out.shape[1])
        return {layer: captured[layer] for layer in wanted}


def _callable_id(fn: Callable) -> str:
    """A name for a preprocess function that is stable across processes (no addresses): its
    code and constants, and what it was given (a ``functools.partial``'s arguments, the
    values a closure holds), so that ``partial(prep, scale=1/255)`` and ``scale=1.0`` differ."""
    if isinstance(fn, functools.partial):
        return (f"partial({_callable_id(fn.func)}, {_plain(fn.args)}, "
                f"{_plain(sorted(fn.keywords.items()))})")
    if not hasattr(fn, "__code__") and hasattr(type(fn), "__call__") and \
            hasattr(fn, "__dict__"):  # a callable object: its class's code and what it holds
        call = type(fn).__call__
        return (f"{_callable_id(call) if hasattr(call, '__code__') else type(fn).__qualname__}"
                f"({_plain(sorted(vars(fn).items()))})")
    name = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    code = getattr(fn, "__code__", None)
    if code is not None:
        consts = [c for c in code.co_consts if not hasattr(c, "co_code")]  # no code objects
        cells = [_plain(c.cell_contents) for c in (getattr(fn, "__closure__", None) or ())
                 if _has_contents(c)]
        name += ":" + hashlib.sha256(code.co_code + repr((consts, cells)).encode()
                                     ).hexdigest()[:12]
    return name


def _has_contents(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def _plain(value: Any) -> str:
    """``repr`` without memory addresses (a callable by its own id; arrays by their bytes)."""
    if isinstance(value, nn.Module):  # a module held by the preprocess: its weights
        from graftlab.backbones.base import state_fingerprint

        return f"{type(value).__qualname__}:{state_fingerprint(value)}"
    if callable(value) and not isinstance(value, type):
        return _callable_id(value)
    if isinstance(value, np.ndarray | torch.Tensor):
        data = value.detach().cpu().numpy() if torch.is_tensor(value) else value
        return f"array{data.shape}:{hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()[:12]}"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(_plain(v) for v in value) + ")"
    return re.sub(r" at 0x[0-9a-f]+", "", repr(value))


def wrap_module(module: nn.Module, **options: Any) -> ModuleBackbone:
    """Make any ``nn.Module`` a backbone; ``num_features`` is measured on first use if not given."""
    return ModuleBackbone(module, **options)


register_module_wrapper(wrap_module)
