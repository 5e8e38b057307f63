"""Augmentation: a registry of small ops, each declaring its modality (image, text, features)
and where it applies (the input batch or the pooled features), and presets that name them
(``Grafter(augment="expand")``). Image ops run on whole batches ``(B, 3, H, W)`` in [0, 1]
with per-sample random parameters; text edits run once, offline; mixing ops mix labels too.
"""

from graftlab.augment import blend, geometry, mixing, text, trivial  # noqa: F401  (register)
from graftlab.augment.pairs import augment_pairs, check_pairs_route
from graftlab.augment.text import TokenEdits, with_edited_texts
from graftlab.augment.base import AUGMENTATIONS, Augmentation, register_augmentation
from graftlab.augment.presets import (PRESETS, Augmenting, ImageAugmenter, build_preset,
                                      presets_for)

__all__ = ["AUGMENTATIONS", "PRESETS", "Augmentation", "Augmenting", "ImageAugmenter",
           "augment_pairs", "build_preset", "check_pairs_route", "presets_for",
           "register_augmentation", "TokenEdits", "with_edited_texts"]
