"""Token-level edits of texts, made once before training (offline): random deletion, swaps of
neighbouring words and substitution by the tokenizer's mask token (EDA, Wei & Zou 2019,
https://arxiv.org/abs/1901.11196, less its synonym steps).

What is not here, and why: **synonym replacement** needs a lexicon (WordNet), and no installed
package ships one (nltk is not a dependency and its corpora download at run time); **back-
translation** needs translation models in both directions, which graftlab does not ship and
cannot fetch offline. Both are impossible offline as graftlab is installed.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from graftlab.augment.base import Augmentation, register_augmentation
from graftlab.data.domain import Domain
from graftlab.errors import ConfigError


@register_augmentation("token_edits")
class TokenEdits(Augmentation):
    """Each word is deleted with probability ``p_delete``, replaced by ``mask_token`` with
    ``p_mask``, and swapped with its right neighbour with ``p_swap``; a text keeps at least one
    word. ``copies`` edited copies of each training text join the originals."""

    modality = "text"

    def __init__(self, *, p_delete: float = 0.1, p_swap: float = 0.1, p_mask: float = 0.1,
                 mask_token: str = "[MASK]", copies: int = 1) -> None:
        super().__init__()
        for name, p in (("p_delete", p_delete), ("p_swap", p_swap), ("p_mask", p_mask)):
            if not 0 <= p < 1:
                raise ConfigError(f"token_edits {name} must be in [0, 1), got {p}.")
        if copies < 1:
            raise ConfigError(f"token_edits copies must be >= 1, got {copies}.")
        self.p_delete, self.p_swap, self.p_mask = p_delete, p_swap, p_mask
        self.mask_token, self.copies = mask_token, copies

    def edit(self, text: str, rng: np.random.Generator) -> str:
        words = text.split()
        if len(words) < 2:
            return text
        words = [self.mask_token if rng.random() < self.p_mask else w for w in words]
        keep = [w for w in words if rng.random() >= self.p_delete] or [words[0]]
        for i in range(len(keep) - 1):
            if rng.random() < self.p_swap:
                keep[i], keep[i + 1] = keep[i + 1], keep[i]
        return " ".join(keep)

    def forward(self, texts: list[str], seed: int = 0) -> list[str]:
        """One edited version of each text (the same for the same ``seed``)."""
        rng = np.random.default_rng(seed)
        return [self.edit(t, rng) for t in texts]


def with_edited_texts(edits: TokenEdits, domain: Domain, labels: np.ndarray,
                      train_idx: np.ndarray, backbone: Any, seed: int
                      ) -> tuple[Domain, np.ndarray, np.ndarray]:
    """The domain with ``edits.copies`` edited copies of its training texts appended (their
    labels too), and the training positions extended to them; validation is left alone.
    The mask token is the backbone tokenizer's where it has one."""
    mask = getattr(getattr(backbone, "tokenizer", None), "mask_token", None)
    if mask and mask != edits.mask_token:
        edits = copy.copy(edits)  # the caller's op stays as it was
        edits.mask_token = mask
    texts = [domain.inputs[i] for i in train_idx]
    added = [t for c in range(edits.copies) for t in edits(texts, seed=seed * 1000 + c)]
    n = len(domain)
    joined = Domain(domain.name, "text", list(domain.inputs) + added,
                    classes=list(domain.classes), meta={**domain.meta, "token_edits": True})
    extra = np.tile(labels[train_idx], edits.copies)
    return (joined, np.concatenate([labels, extra]),
            np.concatenate([train_idx, np.arange(n, n + len(added))]))
