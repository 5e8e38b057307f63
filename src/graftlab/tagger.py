"""``TokenTagger``: token classification (NER-style BIO tags) on a pretrained text encoder,
scikit-learn style.

    tagger = TokenTagger(strategy="last_k", k=2).fit(sentences, tags)   # lists of words / tags
    tagger.predict([["Paris", "in", "June"]])          # [['B-geo-loc', 'O', 'O']]
    tagger.evaluate(test_sentences, test_tags)         # EntityReport: micro and per-type F1

The same engine as :class:`~graftlab.grafter.Grafter`: the model is built by name with a head
whose declared task is ``tokens`` (default ``token``), a strategy decides what trains, the one
trainer runs :class:`~graftlab.methods.tokens.TokenERM`, and the route reads the frozen prefix's
cached token outputs where the strategy leaves a prefix frozen (head_only, last_k), the raw
texts otherwise (full, lora, ...). Each word is labelled at its first sub-token
(:mod:`graftlab.train.tokens`). Saved like a Grafter (safetensors + JSON, never pickle).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from graftlab.data.domain import Domain
from graftlab.data.tagged import TaggedSentences, check_words
from graftlab.errors import ConfigError, DataError, NotFittedError
from graftlab.evaluate.entities import EntityReport, entity_scores
from graftlab.methods.tokens import TokenERM
from graftlab.saving import load_grafter, save_grafter
from graftlab.train.build import build_model, make_plan, strategy_from
from graftlab.train.callbacks import Callback
from graftlab.train.fit import FitSettings, fit_method, run_hash
from graftlab.train.model import GraftedModel
from graftlab.train.routes import INPUTS, Pick, choose_route
from graftlab.train.solve import holdout
from graftlab.train.strategies import Plan, Strategy
from graftlab.train.tokens import (TagTargets, check_tokenizer, decode, first_subtokens,
                                   token_labels, unread_words, warn_unread)

log = logging.getLogger(__name__)


class TokenTagger(BaseEstimator):
    """Tag each word of a sentence: ``fit(sentences, tags)`` with sentences as lists of words and
    one tag per word (or a :class:`~graftlab.data.tagged.TaggedSentences` and no tags),
    ``predict(sentences)`` -> a list of tags per sentence. Options mean what they mean for
    :class:`~graftlab.grafter.Grafter`; ``strategy="linear_probe"`` (pooled features) does not
    apply to tokens."""

    _targets = TagTargets

    def __init__(self, *, backbone: str = "minilm_l6", strategy: str = "head_only",
                 head: str = "token", head_options: dict | None = None,
                 layer: str | None = None, epochs: int = 5, batch_size: int = 32,
                 lr: float = 1e-3, lr_backbone: float | None = None, weight_decay: float = 0.01,
                 k: int = 2, lr_decay: float = 0.7, lora_r: int = 8, lora_alpha: int = 16,
                 strategy_options: dict | None = None, label_smoothing: float = 0.0,
                 l2sp: float = 0.0, early_stopping: int | None = None,
                 validation_fraction: float = 0.0, seed: int = 0,
                 backbone_options: dict | None = None, checkpoint_dir: str | None = None,
                 cache_activations: bool | None = None,
                 callbacks: list[Callback] | None = None) -> None:
        self.backbone, self.strategy, self.head, self.head_options = (backbone, strategy, head,
                                                                       head_options)
        self.layer, self.epochs, self.batch_size = layer, epochs, batch_size
        self.lr, self.lr_backbone, self.weight_decay = lr, lr_backbone, weight_decay
        self.k, self.lr_decay, self.lora_r, self.lora_alpha = k, lr_decay, lora_r, lora_alpha
        self.strategy_options, self.label_smoothing, self.l2sp = (strategy_options,
                                                                  label_smoothing, l2sp)
        self.early_stopping, self.validation_fraction = early_stopping, validation_fraction
        self.seed, self.backbone_options = seed, backbone_options
        self.checkpoint_dir, self.cache_activations = checkpoint_dir, cache_activations
        self.callbacks = callbacks

    def build(self, num_outputs: int) -> tuple[GraftedModel, Plan, Strategy]:
        """The initial model (seeded; its head must be a token head), strategy and plan."""
        strategy = strategy_from(self.strategy, self.get_params(), self.strategy_options)
        if strategy.solved:
            raise ConfigError(f"strategy {self.strategy!r} solves a linear head on pooled "
                              "features (one vector per text); tagging needs one per token.",
                              hint="use head_only (the frozen-feature baseline), last_k, full "
                              "or lora.")
        model = build_model(self.backbone, head=self.head, head_options=self.head_options,
                            layer=self.layer, num_outputs=num_outputs, seed=self.seed,
                            backbone_options=self.backbone_options, task="tokens")
        check_tokenizer(model.backbone)
        plan = make_plan(model, strategy, lr_head=self.lr, lr_backbone=self.lr_backbone,
                         weight_decay=self.weight_decay)
        return model, plan, strategy

    def fit(self, X: Any, y: Any = None, *, validation_data: tuple[Any, Any] | None = None,
            progress=None) -> TokenTagger:
        """Train on sentences ``X`` (lists of words) tagged ``y`` (lists of BIO tags).
        ``validation_data=(X_val, y_val)`` is scored every epoch (loss and token accuracy;
        it drives early stopping); without it ``validation_fraction`` of ``X`` is held out
        when early stopping is on."""
        t0 = time.perf_counter()
        data = as_tagged(X, y)
        targets = TagTargets()
        ids = targets.fit(data.tags)
        fraction = self.validation_fraction or (0.1 if self.early_stopping else 0.0)
        train_idx, val_idx = holdout(np.zeros(len(data)), fraction, self.seed, stratify=False)
        if validation_data is not None:
            val = as_tagged(*validation_data)
            ids += targets.encode(val.tags)
            data = TaggedSentences(data.tokens + val.tokens, data.tags + val.tags)
            train_idx, val_idx = np.arange(len(ids) - len(val)), np.arange(len(ids) - len(val),
                                                                           len(ids))
        model, plan, strategy = self.build(targets.num_outputs)
        domain = Domain(name=data.source, modality="text", inputs=data.texts)
        route = choose_route(model, strategy, cache=self.cache_activations)
        pick = route.picker(model, domain)
        backbone = model.backbone
        positions = first_subtokens(backbone.tokenizer, data.tokens, backbone.max_length)
        warn_unread(positions, backbone.max_length, "not trained on")
        labels = token_labels(positions, ids)
        method = TokenERM(route.net(model), num_classes=targets.num_outputs,
                          label_smoothing=self.label_smoothing, l2sp=self.l2sp)
        method.anchor_pretrained()
        params = self.get_params(deep=False)
        settings = FitSettings(epochs=self.epochs, batch_size=self.batch_size, seed=self.seed,
                               callbacks=list(self.callbacks or []),
                               checkpoint_dir=self.checkpoint_dir,
                               early_stopping=self.early_stopping, progress=progress,
                               config_hash=run_hash(params, domain, labels, train_idx, val_idx)
                               if self.checkpoint_dir else None)
        fitted = fit_method(method, model, plan, _collate(pick, labels), train_idx, val_idx,
                            settings, lengths=pick.lengths)
        self.targets_, self.classes_ = targets, list(targets.classes)
        self.model_ = model.eval()
        self.history_, self.trainable_params_ = fitted.history, fitted.trainable_params
        self.record_ = {**fitted.record, **route.record(model, pick(train_idx[:1])),
                        "fit_seconds": time.perf_counter() - t0}
        return self

    def _check(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("this TokenTagger is not fitted yet; call fit(sentences, tags) "
                                 "first.")

    def predict(self, X: Any, batch_size: int = 64) -> list[list[str]]:
        """A list of tags per sentence (one per word)."""
        return self._tagged(X, batch_size)[0]

    @torch.no_grad()
    def _tagged(self, X: Any, batch_size: int = 64) -> tuple[list[list[str]], list[np.ndarray]]:
        """The tags per sentence, and each word's first sub-token position (-1 past
        max_length), which evaluate reads too."""
        self._check()
        sentences = X.tokens if isinstance(X, TaggedSentences) else X
        check_words(sentences, where="predict")
        model, backbone = self.model_.eval(), self.model_.backbone
        texts = [" ".join(words) for words in sentences]
        pick = INPUTS.picker(model, Domain(name="predict", modality="text", inputs=texts))
        positions = first_subtokens(backbone.tokenizer, sentences, backbone.max_length)
        warn_unread(positions, backbone.max_length, "tagged O")
        order = np.argsort(-pick.lengths, kind="stable")  # batches of similar length
        out: list[list[str]] = [[] for _ in sentences]
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            logits = model(pick(idx)).float().numpy()
            for row, i in enumerate(idx):
                out[i] = decode(logits[row], positions[i], self.classes_)
        return out, positions

    def evaluate(self, X: Any, y: Any = None) -> EntityReport:
        """Entity-level precision, recall and F1 (seqeval's default scoring), micro and per
        type, of the predictions for ``X`` against tags ``y``."""
        data = as_tagged(X, y)
        predicted, positions = self._tagged(data.tokens)  # says if sentences ran past it
        missed = entities_unread(data.tags, positions)
        if missed:
            log.warning("%d of the %d entities in the tags lie (at least partly) in words past "
                        "the model's %d tokens: they count as missed (split long sentences, or "
                        "raise max_length)", missed[0], missed[1], self.model_.backbone.max_length)
        known = {c[2:] for c in self.classes_ if c != "O"}
        unseen = sorted({t[2:] for tags in data.tags for t in tags if t != "O"} - known)
        if unseen:
            log.warning("entity type(s) %s occur in these tags but never in training: the "
                        "model cannot predict them, so they count as missed", unseen)
        return entity_scores(data.tags, predicted)

    def score(self, X: Any, y: Any = None) -> float:
        """Entity-level micro F1 (scikit-learn's ``score``: higher is better)."""
        return self.evaluate(X, y).micro.f1

    # ------------------------------------------------------------------ save / load
    def save(self, folder: str | Path) -> Path:
        """``model.safetensors`` + ``config.json`` (the tag vocabulary) + a checksum manifest."""
        self._check()
        return save_grafter(self, folder, self.targets_.config())

    @classmethod
    def load(cls, folder: str | Path) -> TokenTagger:
        """A saved TokenTagger, verified against its checksums."""
        return load_grafter(cls, folder)

    def restore(self, model: GraftedModel, config: dict) -> None:
        """Hold a loaded model and its tag vocabulary (used by ``load``)."""
        self.targets_ = TagTargets.from_config(config)
        self.classes_ = list(self.targets_.classes)
        self.model_ = model.eval()
        self.history_ = config.get("history", [])
        self.trainable_params_ = config.get("trainable_params")


def entities_unread(tags: list[list[str]], positions: list[np.ndarray]) -> tuple[int, ...]:
    """(entities with a word past max_length, all entities) in gold ``tags``; () when none
    is cut."""
    from graftlab.evaluate.entities import entity_spans

    cut = total = 0
    for sentence, where in zip(tags, positions, strict=True):
        spans = entity_spans(sentence)
        total += len(spans)
        unread = unread_words(where)
        cut += sum(last >= len(sentence) - unread for _, _, last in spans) if unread else 0
    return (cut, total) if cut else ()


def as_tagged(X: Any, y: Any = None) -> TaggedSentences:
    """Sentences and their tags (checked: one tag per word, valid BIO) as TaggedSentences."""
    if isinstance(X, TaggedSentences):
        if y is not None:
            raise DataError("tags were given twice: TaggedSentences hold their own tags.",
                            hint="pass the TaggedSentences alone, or words and tags.")
        return X
    if y is None:
        raise DataError("no tags given.", hint="fit(sentences, tags): one tag per word, or "
                        "fit(TaggedSentences) (read_conll, load_tagged).")
    listed = [[s if isinstance(s, str) else list(s) for s in part] for part in (X, y)]
    return TaggedSentences(*listed)


def _collate(pick: Pick, labels: torch.Tensor):
    """``collate(split)(positions) -> batch``: the route's inputs and the token labels at the
    batch's width (its longest text, in tokens): labels end at the last word's first sub-token,
    so the columns after it ([SEP], padding) are filled with -100."""
    def collate(which: np.ndarray):
        def fn(pos: np.ndarray) -> dict:
            idx = which[pos]
            inputs = pick(idx)
            width = inputs["attention_mask"].shape[1]
            batch_labels = labels[idx][:, :width]
            if batch_labels.shape[1] < width:
                pad = torch.full((len(idx), width - batch_labels.shape[1]), -100)
                batch_labels = torch.cat([batch_labels, pad], 1)
            return {"inputs": inputs, "labels": batch_labels}
        return fn
    return collate
