"""ERM for token classification: cross-entropy over the labelled tokens only.

    L = mean over tokens t with label y_t != -100 of CE(y_t, f(x)_t)

Only each word's first sub-token carries a label (the others, special tokens and padding hold
-100), as in Hugging Face's token classification; labelling every sub-token inflates entity F1
(https://github.com/huggingface/transformers/issues/14043). Logits are (B, T, C), labels (B, T).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from graftlab.methods.erm import ERM

IGNORE = -100  # the label of a token that is not scored (PyTorch's default ignore_index)


def token_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0,
               reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of (B, T, C) logits against (B, T) labels, skipping ``IGNORE``."""
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE,
                           label_smoothing=label_smoothing, reduction=reduction)


class TokenERM(ERM):
    """:class:`~graftlab.methods.erm.ERM` with one label per token (mixup and distillation do
    not apply; L2-SP and label smoothing do). Validation counts labelled tokens."""

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor,
              weights: torch.Tensor | None = None) -> torch.Tensor:
        if weights is None:
            return token_loss(logits, labels, self.label_smoothing)
        # a sentence's weight on each of its labelled tokens; the weighted mean over them
        per = token_loss(logits, labels, self.label_smoothing, "none").view(labels.shape)
        w = weights[:, None].expand_as(labels) * (labels != IGNORE)
        return (per * w).sum() / w.sum().clamp_min(1e-12)

    @torch.no_grad()
    def evaluate(self, batch: dict) -> dict[str, float]:
        logits = self.model(batch["inputs"])
        labels = batch["labels"]
        scored = labels != IGNORE
        return {"loss": float(token_loss(logits, labels, reduction="sum")),
                "accuracy": float((logits.argmax(-1)[scored] == labels[scored]).sum()),
                "count": int(scored.sum())}
