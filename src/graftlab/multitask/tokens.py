"""The ``tokens`` task type: one tag per word (NER-style BIO tags) beside sample-level tasks.

A token task's label for a sample is its list of tags, one per word of the sample's text split
on single spaces (a tagged sentence's text is ``" ".join(words)``, as
:class:`~graftlab.tagger.TokenTagger` makes it and :func:`~graftlab.multitask.join_tasks` joins
a :class:`~graftlab.data.TaggedSentences`); None where the sample has none. Each word is
labelled at its first sub-token (:mod:`graftlab.train.tokens`); every other position, and every
position of a sample without tags, holds -100, so such a sample adds nothing to the task's
loss. Training: token cross-entropy (:func:`~graftlab.methods.tokens.token_loss`); validation:
the mean over sentences of their token accuracy; ``score``: entity-level precision, recall and
F1 (seqeval's default scoring, micro over types).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from graftlab.data.tagged import BIO_HINT, TaggedSentences, bio_problem
from graftlab.errors import ConfigError, DataError
from graftlab.methods.tokens import IGNORE, token_loss
from graftlab.multitask.tasks import TaskType, register_task_type
from graftlab.train.tokens import TagTargets, check_tokenizer, decode, first_subtokens, \
    token_labels


def words_of(texts: Sequence[str]) -> list[list[str]]:
    """Each text's words: the text split on single spaces (the inverse of ``" ".join``)."""
    return [text.split(" ") for text in texts]


def as_texts(X: Any) -> Any:
    """TaggedSentences and lists of word lists as texts (words joined by single spaces, as the
    tagger joins them); other inputs as they are."""
    if isinstance(X, TaggedSentences):
        return X.texts
    if isinstance(X, list | tuple) and X and all(isinstance(x, list | tuple) for x in X):
        return [" ".join(words) for words in X]
    return X


def word_positions(texts: Sequence[str], backbone: Any) -> list[np.ndarray]:
    """Each text's words' first sub-token positions in the backbone's tokens (-1: none)."""
    check_tokenizer(backbone)
    return first_subtokens(backbone.tokenizer, words_of(texts), backbone.max_length)


def at_width(labels: torch.Tensor, width: int) -> torch.Tensor:
    """(B, T') token labels cut or padded (-100) to the batch's width ``width``: labels end at
    the last word's first sub-token, so what is cut holds -100 only."""
    if labels.shape[1] >= width:
        return labels[:, :width]
    pad = torch.full((len(labels), width - labels.shape[1]), IGNORE, dtype=labels.dtype)
    return torch.cat([labels, pad], 1)


@register_task_type("tokens")
class TokensTask(TaskType):
    """Tags per word; token cross-entropy at first sub-tokens; entity F1 in ``score``."""

    head_input = "tokens"
    default_head = "token"
    metric = "accuracy"  # validation: mean over tagged sentences of their token accuracy
    missing_given = "None"
    per_token = True
    _targets = TagTargets
    dtype = torch.long

    def __init__(self, task: str, *, classes: Any = None, **options: Any) -> None:
        from graftlab.heads.heads import HEADS

        super().__init__(task, **options, **({"classes": classes} if classes is not None
                                              else {}))
        if HEADS.get(self.head).task != "tokens":
            fits = [name for name, cls in HEADS.items() if cls.task == "tokens"]
            raise ConfigError(f"task {task!r} (tokens) needs one output per token, but head "
                              f"{self.head!r} gives one per sample.",
                              hint=f"give it head {' or '.join(map(repr, fits))}.")

    # ---- targets
    def _tagged(self, y: np.ndarray) -> tuple[np.ndarray, list[list[str]]]:
        keep = self.present_in(y)
        tags = []
        for row in np.flatnonzero(keep):
            value = y[row]
            if isinstance(value, str) or not all(isinstance(t, str) for t in value):
                raise DataError(f"task {self.task!r}: row {row} is labelled {value!r}; a token "
                                "task's label is a list of tags, one per word.",
                                hint="give e.g. ['B-person', 'O'] (None where a sample has "
                                "no tags).")
            problem = bio_problem(list(value))
            if problem is not None:  # as TokenTagger and read_conll refuse it, before training
                raise DataError(f"task {self.task!r}: row {row}, word {problem[0]}: "
                                f"{problem[1]}", hint=BIO_HINT)
            tags.append(list(value))
        return keep, tags

    def _encoded(self, keep: np.ndarray, ids: list[np.ndarray]) -> np.ndarray:
        out = np.full(len(keep), None, dtype=object)
        for row, value in zip(np.flatnonzero(keep), ids, strict=True):
            out[row] = value
        return out

    def fit(self, y: np.ndarray) -> np.ndarray:
        keep, tags = self._tagged(y)
        return self._encoded(keep, self.targets.fit(tags))

    def encode(self, y: np.ndarray) -> np.ndarray:
        keep, tags = self._tagged(y)
        return self._encoded(keep, self.targets.encode(tags))

    def tensor(self, encoded: np.ndarray, texts: Sequence[str] | None = None,
               backbone: Any = None) -> torch.Tensor:
        """(N, T) labels: each word's tag id at its first sub-token in its text's tokens,
        -100 elsewhere and on every position of a sample without tags."""
        check_tokenizer(backbone)
        words = words_of(texts)
        rows = [i for i, ids in enumerate(encoded) if ids is not None]
        for i in rows:
            if len(encoded[i]) != len(words[i]):
                raise DataError(f"task {self.task!r}: row {i} has {len(encoded[i])} tags for "
                                f"{len(words[i])} words ({texts[i][:60]!r}).",
                                hint="give one tag per word of the text split on single "
                                "spaces (the text of a tagged sentence is ' '.join(words)).")
        found = first_subtokens(backbone.tokenizer, [words[i] for i in rows],
                                backbone.max_length) if rows else []
        positions = [np.zeros(0, dtype=np.int64)] * len(encoded)
        ids = [np.zeros(0, dtype=np.int64)] * len(encoded)
        for i, pos in zip(rows, found, strict=True):
            positions[i], ids[i] = pos, encoded[i]
        return token_labels(positions, ids)

    # ---- training
    def present(self, y: torch.Tensor) -> torch.Tensor:
        return (y != IGNORE).any(-1)

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return token_loss(out, at_width(y, out.shape[1]))

    def metric_sum(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = at_width(y, out.shape[1])
        scored = y != IGNORE
        right = ((out.argmax(-1) == y) & scored).sum(1)
        return (right / scored.sum(1).clamp_min(1)).sum()

    # ---- prediction
    def decode(self, out: Sequence[np.ndarray], positions: Sequence[np.ndarray] = ()
               ) -> list[list[str]]:
        """Tags per word from each sample's (T, C) logits and its words' first sub-tokens."""
        return [decode(logits, pos, self.targets.classes)
                for logits, pos in zip(out, positions, strict=True)]

    def score(self, pred: Sequence[list[str]], y: Sequence[list[str]]) -> dict[str, float]:
        from graftlab.evaluate.entities import entity_scores

        micro = entity_scores([list(t) for t in y], [list(p) for p in pred]).micro
        return {"entity_f1": float(micro.f1), "precision": float(micro.precision),
                "recall": float(micro.recall)}

    def config(self) -> dict:
        config = super().config()
        config.pop("task", None)  # TagTargets' marker; the type says it
        return config
