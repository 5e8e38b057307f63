"""The small contract every backbone keeps, whatever its family.

A backbone turns raw inputs (uint8 images or strings) into a batch (:meth:`preprocess`), runs
its trunk up to any named layer (:meth:`forward_layers`), and pools a layer's output into one
vector per sample (:meth:`features`). Later steps (feature extraction, freezing, fine-tuning)
use only this contract, never a family's internals.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from graftlab.errors import ConfigError, NotFoundError, closest
from graftlab.pooling import pool_tokens

IMAGE_POOLINGS = ("avg", "max", "none")  # none: the feature map, flattened
TEXT_POOLINGS = ("mean", "cls", "max")


def resolve_layers(backbone: str, known: list[str], layers: str | Sequence[str] | None
                   ) -> list[str]:
    """Normalise a layer request (None: the last layer); unknown names list the known ones."""
    if layers is None:
        return [known[-1]]
    if isinstance(layers, str):
        layers = [layers]
    for layer in layers:
        if layer not in known:
            # Listed input to output (not sorted: blocks.10 would precede blocks.2).
            guess = closest(layer, known)
            raise NotFoundError(
                f"unknown layer {layer!r}. Known layers: {', '.join(known)}."
                + (f" Did you mean {guess!r}?" if guess else ""),
                hint=f"backbone {backbone!r} has layers {known[0]} ... {known[-1]}; "
                "pick one of them (`graftlab layers BACKBONE` lists them all).",
            )
    return list(layers)


def resolve_pooling(modality: str, pooling: str | None, default: str) -> str:
    pooling = pooling or default
    allowed = IMAGE_POOLINGS if modality == "image" else TEXT_POOLINGS
    if pooling not in allowed:
        raise ConfigError(
            f"pooling {pooling!r} is not available for {modality} backbones; "
            f"choose one of {', '.join(allowed)}."
        )
    return pooling


def image_batch(images: np.ndarray | torch.Tensor, size: int, mean: Sequence[float] | torch.Tensor,
                std: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """uint8 images (B, H, W, 3) -> float (B, 3, size, size): scaled to [0, 1], resized
    (bilinear, antialiased, ``align_corners=False``; skipped when already ``size`` x ``size``),
    then ``(x - mean) / std`` per channel. The image backbones' preprocessing, and an exported
    model's (its ``contract.json`` names these steps)."""
    x = torch.as_tensor(np.asarray(images)) if not torch.is_tensor(images) else images
    step = max(1, FLOAT_BUDGET // max(1, x[0].numel() * 4)) if len(x) else 1
    if len(x) > step:  # large photos: a few at a time, so their float copies stay bounded
        return torch.cat([image_batch(x[i:i + step], size, mean, std)
                          for i in range(0, len(x), step)])
    return unit_image_batch(x.permute(0, 3, 1, 2).float().div(255.0), size, mean, std)


FLOAT_BUDGET = 64 * 2**20  # bytes of float pixels image_batch holds at once (one image at least)


def unit_image_batch(x: torch.Tensor, size: int, mean: Sequence[float] | torch.Tensor,
                     std: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Float RGB in [0, 1], (B, 3, H, W) -> the last steps of :func:`image_batch`: resized
    to ``size`` x ``size`` (unless already so) and normalised."""
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True)
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def state_fingerprint(module: nn.Module) -> str:
    """A cheap digest of a module's weights and buffers (each tensor's shape, exact sum and
    ~64 evenly spaced values): any training step or edit changes it. Milliseconds where a
    full hash of the bytes takes a good part of a second."""
    digest = hashlib.sha256()
    ints = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
    with torch.no_grad():
        for key, tensor in module.state_dict().items():
            flat = tensor.detach().cpu().contiguous().reshape(-1)
            # the sum of the values' bit patterns, as integers: the same in any order, on
            # any machine or thread count (a float sum is not)
            total = int(flat.view(ints[flat.element_size()]).to(torch.int64).sum()) \
                if flat.element_size() in ints and flat.numel() else 0
            digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}:{total}".encode())
            step = max(1, flat.numel() // 64)
            digest.update(flat[::step].contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


class Backbone(nn.Module):
    """Base class: subclasses set the attributes below and implement the three methods;
    ``forward_from`` (resuming from a layer's cached output) is optional."""

    name: str = "backbone"
    modality: str = "image"

    def mark_loaded(self) -> None:
        """Remember the weights as loaded, block by block (a registered backbone's constructor
        ends here), so that :meth:`weights_id` tells them from weights changed since."""
        self._loaded_blocks = {name: state_fingerprint(m) for name, m in self.blocks()}

    def weights_id(self, upto: str | None = None) -> str:
        """What the cache key calls the weights that compute layer ``upto`` (the blocks up to
        it; None: all): the weight file's sha256 while they are the file's; their fingerprint
        once training (or anything) changed them, or when they were drawn at random. A layer
        below the blocks fine-tuning changed keeps the file's name: its cached outputs hold."""
        source = self.__dict__.get("_source_ids")  # an inference copy: its source's
        if source is not None:
            return source.get(upto, source[None])
        sha = getattr(self, "weights_sha256", None)
        blocks = self.blocks()
        names = [name for name, _ in blocks]
        used = blocks[:names.index(upto) + 1] if upto in names else blocks
        now = {name: state_fingerprint(m) for name, m in used}
        loaded = getattr(self, "_loaded_blocks", {})
        if sha and sha != "random-init" and all(loaded.get(n) == f for n, f in now.items()) \
                and (upto in names or len(now) == len(loaded)):
            return sha
        joined = hashlib.sha256(repr(sorted(now.items())).encode()).hexdigest()[:32]
        return f"{'random' if sha == 'random-init' else 'changed'}:{joined}"
    num_features: int = 0
    default_pooling: str = "avg"
    # declared by each family (from its spec): the modules LoRA adapts (last part of their
    # name) and the learning rate fine-tuning uses for backbone weights unless told otherwise
    lora_targets: tuple[str, ...] = ()
    lr_backbone: float = 3e-4

    def preprocess(self, inputs: Any) -> dict[str, torch.Tensor]:
        """Raw inputs (a uint8 array (B, H, W, 3) or a list of str) -> model-ready tensors."""
        raise NotImplementedError

    def layer_names(self) -> list[str]:
        """Named layers, input to output, that :meth:`forward_layers` can return."""
        raise NotImplementedError

    def forward_layers(self, batch: dict[str, torch.Tensor], layers: Sequence[str]
                       ) -> dict[str, torch.Tensor]:
        """Unpooled outputs of ``layers``; stops after the deepest one asked for."""
        raise NotImplementedError

    def blocks(self) -> list[tuple[str, nn.Module]]:
        """The trunk's blocks in order (for freezing and layer-wise learning rates)."""
        return [(n, self.get_submodule(n)) for n in self.layer_names()]

    def sequence_lengths(self, inputs: Sequence[str]) -> np.ndarray:
        """Tokens per text after truncation, to batch equal lengths together (text only).
        The default, characters, is a rough stand-in; tokenizer-backed encoders override it."""
        return np.fromiter((len(t) for t in inputs), dtype=np.int64, count=len(inputs))

    def prepare(self, inputs: Any) -> Prepared:
        """Ready a chunk of raw inputs once, to be cut into many batches (extraction). Text
        encoders tokenise the whole chunk here, so neither sorting by length nor batching
        tokenises again."""
        return Prepared(self, inputs)

    def forward_from(self, start: str, x: torch.Tensor, layers: Sequence[str],
                     attention_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Continue the trunk from layer ``start``'s output ``x`` to ``layers`` (all after
        ``start``), as :meth:`forward_layers` would compute them. Text passes the (B, T)
        ``attention_mask`` of ``x``'s tokens (None: no padding); images ignore it. Families
        that support it let fine-tuning train the upper blocks from cached activations."""
        raise NotImplementedError

    def for_inference(self) -> Backbone:
        """This backbone for frozen, eval-mode forward passes (feature extraction): a family
        may return a copy restructured for speed (EfficientNet-Lite's: channels-last, padding
        inside its convs) that gives the same outputs to float rounding, and leave the backbone
        as it is. The default: the backbone itself."""
        return self

    def cache_key(self) -> dict:
        """What identifies this backbone's outputs (name, weights checksum, preprocessing)."""
        return {"name": self.name}

    def input_contract(self, folder: Path) -> dict:
        """How raw inputs become this backbone's batch, as data (an exported model's
        ``contract.json``): the image size and normalisation, or the tokenizer, whose files
        go into ``folder``. A family that cannot say so cannot be exported."""
        raise ConfigError(
            f"backbone {self.name!r} does not describe its preprocessing as data, so a model "
            "built on it cannot be exported (export takes the registered image and text "
            "families: efficientnet_lite*, minilm_l6, hf:PATH).",
            hint="graftlab predict works on the saved model folder without export.")

    def unit_images(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """Model-ready images back to float RGB in [0, 1], (B, 3, H, W): so another image
        backbone (a distillation teacher) sees the pixels this one saw, augmentation included.
        None where the family cannot undo its preprocessing (then nothing is passed on)."""
        return None

    def from_unit_images(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Float RGB images in [0, 1], (B, 3, H, W) -> model-ready tensors, as
        :meth:`preprocess` makes them from uint8 images (resized to the input size)."""
        raise NotImplementedError(f"{self.name} cannot take images in [0, 1]")

    # ---- shared behaviour -------------------------------------------------------------
    def probe_batch(self) -> dict[str, torch.Tensor]:
        """One tiny dummy sample, preprocessed: to measure a layer's output shape or width."""
        return self.preprocess(np.zeros((1, 32, 32, 3), np.uint8) if self.modality == "image"
                               else ["a b"])

    @property
    def default_layer(self) -> str:
        return self.layer_names()[-1]

    def check_layers(self, layers: str | Sequence[str] | None) -> list[str]:
        """Normalise a layer request; unknown names get the list of available ones."""
        return resolve_layers(self.name, self.layer_names(), layers)

    def check_resume(self, start: str, layers: Sequence[str]) -> tuple[int, list[str]]:
        """For :meth:`forward_from`: the index of ``start`` among the layers and the checked
        ``layers``, which must all come after it."""
        (start,) = self.check_layers([start])
        wanted = self.check_layers(list(layers))
        names = self.layer_names()
        first = names.index(start)
        early = [layer for layer in wanted if names.index(layer) <= first]
        if early:
            raise ConfigError(
                f"cannot resume {self.name} from {start!r} to {', '.join(early)}: "
                f"layers must come after the start layer.",
                hint=f"ask for a layer after {start!r} (layers run {names[0]} ... {names[-1]}), "
                "or run forward_layers from the raw inputs.",
            )
        return first, wanted

    def check_pooling(self, pooling: str | None) -> str:
        return resolve_pooling(self.modality, pooling, self.default_pooling)

    def pool(self, x: torch.Tensor, pooling: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One vector per sample from a layer output.

        Images: (B, C, H, W) -> (B, C) by global average or max. Text: (B, T, D) -> (B, D) by
        the mask-aware mean over tokens, the first ([CLS]) token, or the max.
        """
        if x.ndim == 2:
            return x
        if x.ndim == 4:
            if pooling == "none":
                return x.flatten(1)
            return x.amax(dim=(2, 3)) if pooling == "max" else x.mean(dim=(2, 3))
        if x.ndim == 3:
            return pool_tokens(x, batch.get("attention_mask"), pooling)
        raise ConfigError(f"cannot pool a layer output of shape {tuple(x.shape)}.")

    def features(self, batch: dict[str, torch.Tensor], layer: str | None = None,
                 pooling: str | None = None) -> torch.Tensor:
        """Pooled features (B, D) of one layer (default: the last)."""
        (layer,) = self.check_layers(layer)
        pooling = self.check_pooling(pooling)
        return self.pool(self.forward_layers(batch, [layer])[layer], pooling, batch)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.features(batch)


class Prepared:
    """A chunk of raw inputs readied once (:meth:`Backbone.prepare`) and batched many times.

    ``lengths`` (text only) orders samples so a batch pads little; the default counts
    characters and preprocesses each batch from the raw inputs.
    """

    def __init__(self, backbone: Backbone, inputs: Any) -> None:
        self.backbone, self.inputs = backbone, inputs
        self.lengths: np.ndarray | None = (
            backbone.sequence_lengths(inputs) if backbone.modality == "text" else None)

    def __len__(self) -> int:
        return len(self.inputs)

    def batch(self, positions: np.ndarray) -> dict[str, torch.Tensor]:
        """Model-ready tensors of the samples at ``positions`` (indices into the chunk)."""
        if isinstance(self.inputs, np.ndarray | torch.Tensor):
            return self.backbone.preprocess(self.inputs[positions])
        return self.backbone.preprocess([self.inputs[i] for i in positions])
