"""Augmentation presets: ``augment="expand"`` names a list of registered augmentations for one
modality. A preset for another modality is refused, naming those that fit.

==================  ==========  ==========================================================
``light``           image       random affine (the image default: rotate, translate, scale)
``expand``          image       TrivialAugment + photo-patch blending (p = 0.5)
``mixup``           image       input mixup (alpha 0.2)
``cutmix``          image       CutMix (alpha 1)
``mix``             image       mixup or CutMix, drawn per batch
``expand_mix``      image       ``expand`` then ``mix``
``token_edits``     text        deletion / swap / mask-token edits, one copy per text, offline
``feature_mixup``   features    mixup of the pooled features the head sees (any backbone)
``domain_mix``      image       source pixels mixed with target pixels (adaptation)
``feature_domain_mix``  features  source features mixed with target features (adaptation)
==================  ==========  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from graftlab.augment.base import AUGMENTATIONS, Augmentation
from graftlab.errors import ConfigError
from graftlab.registry import Registry


@dataclass(frozen=True)
class Preset:
    modality: str  # image, text or features (features fit any backbone)
    steps: tuple[tuple[str, dict], ...]
    description: str = ""

    def fits(self, modality: str) -> bool:
        return self.modality in (modality, "features")


PRESETS: Registry[Preset] = Registry("augmentation preset")
for _name, _preset in {
    "light": Preset("image", (("affine", {}),), "random affine"),
    "expand": Preset("image", (("trivial", {}), ("photo_blend", {})),
                     "TrivialAugment + photo-patch blending"),
    "mixup": Preset("image", (("mixup", {}),), "input mixup"),
    "cutmix": Preset("image", (("cutmix", {}),), "CutMix"),
    "mix": Preset("image", (("mix", {}),), "mixup or CutMix per batch"),
    "expand_mix": Preset("image", (("trivial", {}), ("photo_blend", {}), ("mix", {})),
                         "expand, then mixup or CutMix"),
    "token_edits": Preset("text", (("token_edits", {}),), "offline token edits"),
    "feature_mixup": Preset("features", (("feature_mixup", {}),), "feature-space mixup"),
    "domain_mix": Preset("image", (("domain_mix", {}),), "source-target pixel mixing"),
    "feature_domain_mix": Preset("features", (("feature_domain_mix", {}),),
                                 "source-target feature mixing"),
}.items():
    PRESETS.register(_name, _preset)


def presets_for(modality: str) -> list[str]:
    return [name for name, preset in PRESETS.items() if preset.fits(modality)]


@dataclass
class Augmenting:
    """A preset built for one modality: ``inputs`` (per-step image ops on [0, 1] pixels),
    ``mix`` (one op that mixes samples and labels: inputs or features, as it declares),
    ``texts`` (offline text edits)."""

    preset: str
    inputs: list[Augmentation] = field(default_factory=list)
    mix: Augmentation | None = None
    texts: Augmentation | None = None

    @property
    def changes_inputs(self) -> bool:
        """Whether the inputs differ at every step (then no cached features can stand in)."""
        return bool(self.inputs) or (self.mix is not None and self.mix.applies_to == "inputs")


def build_preset(name: str, modality: str, **options: dict) -> Augmenting:
    """The augmentations of preset ``name`` for a ``modality`` backbone; ``options`` maps an
    augmentation's name to keyword arguments that replace the preset's."""
    preset = PRESETS.get(name)
    if not preset.fits(modality):
        raise ConfigError(
            f"augmentation preset {name!r} is for {preset.modality} inputs, but the backbone "
            f"takes {modality}. Presets for {modality}: {', '.join(presets_for(modality))}.",
            hint="pick one of those, or augment=False.")
    out = Augmenting(name)
    for step, kwargs in preset.steps:
        aug = AUGMENTATIONS.create(step, **{**kwargs, **options.get(step, {})})
        if aug.mixes_labels:
            out.mix = aug
        elif aug.modality == "text":
            out.texts = aug
        else:
            out.inputs.append(aug)
    return out


class ImageAugmenter(nn.Module):
    """Model-ready pixels -> the same, augmented: undoes the backbone's normalisation, runs the
    ops on [0, 1] RGB, and normalises again (``backbone.unit_images`` / ``from_unit_images``)."""

    def __init__(self, ops: list[Augmentation], backbone: nn.Module) -> None:
        super().__init__()
        probe = backbone.unit_images({"pixel_values": torch.zeros(1, 3, 4, 4)})
        if probe is None:
            raise ConfigError(f"backbone {backbone.name!r} cannot undo its preprocessing, so "
                              "image augmentation presets cannot run on it.",
                              hint="use augment=True (the affine default) or augment=False.")
        self.ops, self.backbone = nn.ModuleList(ops), [backbone]  # a list: not a sub-module

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        backbone = self.backbone[0]
        x = backbone.unit_images({"pixel_values": pixels}).clamp(0, 1)
        for op in self.ops:
            x = op(x)
        return backbone.from_unit_images(x)["pixel_values"]
