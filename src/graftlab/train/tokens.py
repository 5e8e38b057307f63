"""Token classification's pieces for the engine: words -> their first sub-token, tags -> token
labels, and back.

A sentence's words are joined by single spaces and tokenised exactly as the text encoder
tokenises any text (``backbone.prepare``), so the cached activations of a frozen prefix serve
tagging too. Each word is labelled at its first sub-token; the other sub-tokens, the special
tokens and the padding get -100 (not scored), as Hugging Face's token classification does.
The first sub-tokens are found from the fast tokenizer's character offsets; for whitespace-
split words that is the first position of each word in ``word_ids()`` with
``is_split_into_words=True`` (tested). A word the tokenizer drops (a control character) or cuts
off (past ``max_length``) has no position (negative: -1 cut, -2 dropped from a sentence that
fits): it is not trained on and is predicted ``O``.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Sequence

import numpy as np
import torch

from graftlab.errors import ConfigError, DataError
from graftlab.methods.tokens import IGNORE

OUTSIDE = "O"
log = logging.getLogger(__name__)


def check_tokenizer(backbone) -> None:
    """A text backbone with a fast (offset-giving) tokenizer that pads on the right."""
    tokenizer = getattr(backbone, "tokenizer", None)
    if backbone.modality != "text" or tokenizer is None or not tokenizer.is_fast:
        raise ConfigError(f"token classification needs a text encoder with a fast Hugging Face "
                          f"tokenizer; backbone {backbone.name!r} has none.",
                          hint="use minilm_l6 or hf:PATH with a tokenizer.json.")
    if tokenizer.padding_side != "right":
        raise ConfigError(f"backbone {backbone.name!r} pads on the left; token positions "
                          "assume padding on the right.",
                          hint="save its tokenizer with padding_side='right'.")


def first_subtokens(tokenizer, sentences: Sequence[Sequence[str]], max_length: int
                    ) -> list[np.ndarray]:
    """For each sentence, the position (in its token ids, special tokens included) of each
    word's first sub-token; -1 for a word without one (cut off at ``max_length``, or dropped by
    the tokenizer in a sentence that was cut), -2 for one the tokenizer dropped (a zero-width
    or control character) in a sentence that fits."""
    texts = [" ".join(words) for words in sentences]
    enc = tokenizer(texts, truncation=True, max_length=max_length,
                    return_offsets_mapping=True)
    out = []
    for words, offsets, ids in zip(sentences, enc["offset_mapping"], enc["input_ids"],
                                   strict=True):
        starts = np.cumsum([0, *[len(w) + 1 for w in words[:-1]]]).tolist()
        first = np.full(len(words), -1, dtype=np.int64)
        for position, (begin, end) in enumerate(offsets):
            if end > begin:  # special tokens have empty spans
                word = bisect_right(starts, begin) - 1
                if first[word] < 0:
                    first[word] = position
        if len(ids) < max_length:  # nothing was cut: a word without a token was dropped
            first[first < 0] = -2
        out.append(first)
    return out


def unread_words(positions: np.ndarray) -> int:
    """Words at the end of a sentence that no kept token starts because the sentence was cut
    at max_length (-1); words the tokenizer dropped from one that fits (-2) are not."""
    positions = np.asarray(positions)
    read = np.flatnonzero(positions >= 0)
    tail = positions[read[-1] + 1:] if len(read) else positions
    return int((tail == -1).sum())


def warn_unread(positions: Sequence[np.ndarray], max_length: int, doing: str) -> list[int]:
    """Each sentence's unread words; a warning naming how many sentences ran past
    ``max_length`` tokens and what that means for ``doing`` ("tagged O", "not trained on")."""
    counts = [unread_words(p) for p in positions]
    cut = [c for c in counts if c]
    if cut:
        log.warning("%d of %d sentences are longer than the model's %d tokens: their last %d "
                    "word(s) at most were not read and are %s (split long texts into "
                    "sentences, or raise max_length)", len(cut), len(counts), max_length,
                    max(cut), doing)
    return counts


def token_labels(positions: Sequence[np.ndarray], tag_ids: Sequence[np.ndarray]
                 ) -> torch.Tensor:
    """(N, longest) labels: each word's tag id at its first sub-token, -100 elsewhere."""
    width = max((int(p.max()) + 1 for p in positions if len(p) and p.max() >= 0), default=1)
    labels = torch.full((len(positions), width), IGNORE, dtype=torch.long)
    for row, (pos, ids) in enumerate(zip(positions, tag_ids, strict=True)):
        kept = pos >= 0
        labels[row, torch.from_numpy(pos[kept])] = torch.from_numpy(np.asarray(ids)[kept])
    return labels


def decode(logits: np.ndarray, positions: np.ndarray, classes: Sequence[str]) -> list[str]:
    """One sentence's tags from its (T, C) logits: the class at each word's first sub-token
    (``O`` for a word without one)."""
    best = logits.argmax(-1)
    return [classes[best[p]] if p >= 0 else OUTSIDE for p in positions]


class TagTargets:
    """The tag vocabulary (sorted, as scikit-learn sorts classes): encodes tag sequences to ids
    and says what a saved model must remember. ``O`` must be among them (undecodable words
    are predicted ``O``)."""

    def __init__(self, classes: Sequence[str] | None = None) -> None:
        self.classes = None if classes is None else list(classes)

    @property
    def num_outputs(self) -> int:
        return len(self.classes)

    def fit(self, tags: Sequence[Sequence[str]]) -> list[np.ndarray]:
        self.classes = sorted({t for sentence in tags for t in sentence} | {OUTSIDE})
        return self.encode(tags)

    def encode(self, tags: Sequence[Sequence[str]]) -> list[np.ndarray]:
        index = {t: i for i, t in enumerate(self.classes)}
        unseen = sorted({t for sentence in tags for t in sentence} - set(index))
        if unseen:
            raise DataError(f"tags {unseen} never occur in the training tags; the model cannot "
                            "predict them.", hint="add training sentences with those tags, or "
                            "drop them from validation.")
        return [np.array([index[t] for t in sentence], dtype=np.int64) for sentence in tags]

    def config(self) -> dict:
        return {"classes": list(self.classes), "task": "tokens"}

    @classmethod
    def from_config(cls, config: dict) -> TagTargets:
        return cls(config["classes"])
