"""``Adapter``: domain-adaptive fine-tuning, scikit-learn style.

    Adapter(backbone="efficientnet_lite0", method="dann").fit(x_src, y_src, target=x_tgt)
        .predict(x_tgt)

The backbone, head and strategy (what trains) are built exactly as :class:`Grafter` builds
them; the method (``source_only``, ``dann``, ``dan``, ``coral``, ``cdan``, ``mcc``) is a small
module run by the one trainer. When the lower blocks are frozen (``last_k`` on a backbone
that can resume from a layer) both domains' activations there are computed once, through the
feature cache, and the upper blocks train from them; with ``head_only`` (any backbone) both
domains' pooled features are, and the head trains on them: with ``head="mlp"`` its hidden
layers are the bottleneck the method aligns. Target labels are never
taken: ``fit`` has no argument for them.

``augment`` names a preset of :mod:`graftlab.augment`: image ops run on both domains' pixels,
a mixing op on the source (``domain_mix`` / ``feature_domain_mix`` mix target samples into the
source, which keeps its labels; feature presets need ``head_only``'s cached features), and
``token_edits`` adds edited copies of the source texts.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from graftlab._fitted import restores_on_failure
from graftlab.data.domain import Domain
from graftlab.adapt.refine import teacher_pseudo_labels
from graftlab.augment import (augment_pairs, build_preset, check_pairs_route,
                              with_edited_texts)
from graftlab.errors import ConfigError, DataError, NotFittedError
from graftlab.evaluate.epochs import EPOCH_VALIDATORS, epoch_selection
from graftlab.features.extract import as_domain
from graftlab.methods import METHODS, create_method
from graftlab.select.base import check_weights
from graftlab.train.build import backbone_modality, check_numbers
from graftlab.train.callbacks import Callback
from graftlab.train.fit import FitSettings, fit_method, run_hash
from graftlab.train.routes import choose_route
from graftlab.train.targets import ClassTargets


class Adapter(ClassifierMixin, BaseEstimator):
    """Fit on labelled source and unlabelled target inputs; predict on either."""

    _regression = False  # AdapterRegressor: a continuous target (graftlab.adapt.regressor)

    def __init__(self, *, backbone: str = "efficientnet_lite0", method: str = "dann",
                 strategy: str = "last_k", k: int = 2, head: str = "linear",
                 head_options: dict | None = None, epochs: int = 5, batch_size: int = 32,
                 lr: float = 1e-3,
                 lr_backbone: float | None = None, weight_decay: float = 0.01,
                 transfer_weight: float = 1.0, schedule: str = "warmup",
                 method_options: dict | None = None, seed: int = 0,
                 backbone_options: dict | None = None, cache_activations: bool | None = None,
                 checkpoint_dir: str | None = None, select_epoch: str | None = None,
                 pseudo_fraction: float = 0.5, pseudo_weight: float = 1.0,
                 callbacks: list[Callback] | None = None, augment: str | None = None) -> None:
        self.backbone, self.method, self.strategy, self.k, self.head = (backbone, method,
                                                                         strategy, k, head)
        self.head_options = head_options
        self.epochs, self.batch_size, self.lr, self.lr_backbone = (epochs, batch_size, lr,
                                                                   lr_backbone)
        self.weight_decay, self.transfer_weight, self.schedule = (weight_decay,
                                                                  transfer_weight, schedule)
        self.method_options, self.seed = method_options, seed
        self.backbone_options, self.cache_activations = backbone_options, cache_activations
        self.checkpoint_dir, self.callbacks = checkpoint_dir, callbacks
        self.select_epoch = select_epoch
        self.pseudo_fraction, self.pseudo_weight = pseudo_fraction, pseudo_weight
        self.augment = augment  # a preset of graftlab.augment (None: no augmentation)

    def _grafter(self):
        """The Grafter that holds the adapted model: it predicts and saves it (a saved Adapter
        loads with Grafter.load), and builds it exactly as fine-tuning would."""
        from graftlab.grafter import Grafter
        from graftlab.regressor import GrafterRegressor

        cls = GrafterRegressor if self._regression else Grafter
        return cls(backbone=self.backbone, strategy=self.strategy, k=self.k, head=self.head,
                       head_options=self.head_options,
                       epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                       lr_backbone=self.lr_backbone, weight_decay=self.weight_decay,
                       seed=self.seed, backbone_options=self.backbone_options,
                       cache_activations=self.cache_activations, augment=False,
                       checkpoint_dir=self.checkpoint_dir, callbacks=self.callbacks)

    @restores_on_failure
    def fit(self, X: Any, y: Any, *, target: Any, teacher_proba: np.ndarray | None = None,
            progress=None, sample_weight: Any = None) -> Adapter:
        """``X, y``: labelled source inputs; ``target``: unlabelled target inputs (only).
        ``teacher_proba`` (n_target, n_classes, in ``classes_`` order): a teacher's target
        probabilities; per predicted class its most confident ``pseudo_fraction`` become
        pseudo-labels that the model also trains on (self-training, weight ``pseudo_weight``;
        see :mod:`graftlab.adapt.refine`). ``sample_weight``: one weight >= 0 per source input
        (a source selection's); weight 0 leaves a sample out, the others weigh its loss."""
        t0 = time.perf_counter()
        check_numbers(self.get_params(deep=False))
        check_adapter_options(self.select_epoch, self.pseudo_fraction, self.pseudo_weight)
        augmenting = self._augmenting()
        source, tgt, encoded, pseudo = self._inputs(X, y, target, teacher_proba)
        n_train = len(source) if sample_weight is None else int(
            (check_weights(sample_weight, len(source), "source sample weights") > 0).sum())
        grafter = self._grafter()
        model, plan, strategy = grafter.build(self.targets_.num_outputs)
        self._check_setup(model, strategy)
        if augmenting is not None and augmenting.texts is not None:  # offline, on the source
            source, encoded, _ = with_edited_texts(augmenting.texts, source, encoded,
                                                   np.arange(len(source)), model.backbone,
                                                   self.seed)
        route = choose_route(model, strategy, cache=self.cache_activations,
                             augmenting=augmenting is not None and augmenting.changes_inputs)
        net = route.net(model)
        pick = {"source": route.picker(model, source), "target": route.picker(model, tgt)}
        method = create_method(self.method, net, num_classes=self.targets_.loss_classes,
                               feature_dim=model.head.embed_dim,
                               total_steps=self.epochs * math.ceil(n_train / self.batch_size),
                               weight=self.transfer_weight, schedule=self.schedule,
                               pseudo_weight=self.pseudo_weight, **(self.method_options or {}))
        extra = [p for n, p in method.named_parameters() if not n.startswith("model.")]
        train_plan = dataclasses.replace(plan, param_groups=plan.param_groups + (
            [{"params": extra, "lr": self.lr, "name": "method",
              "weight_decay": self.weight_decay}] if extra else []))
        collate = paired_collate(pick, torch.as_tensor(encoded), pseudo, len(tgt), self.seed)
        lengths = pick["source"].lengths
        if sample_weight is not None:  # checked in _inputs; positions now run over the kept
            collate, kept = weighted_collate(collate, sample_weight, len(source))
            lengths = None if lengths is None else np.asarray(lengths)[kept]
        if augmenting is not None:
            check_pairs_route(augmenting, route.kind)
            collate = augment_pairs(collate, augmenting, model.backbone, len(self.classes_))
        callbacks = list(self.callbacks or [])
        if self.select_epoch is not None:
            callbacks += epoch_selection(self.select_epoch, net, pick["target"], len(tgt),
                                         self.epochs)
        settings = FitSettings(epochs=self.epochs, batch_size=self.batch_size, seed=self.seed,
                               callbacks=callbacks, checkpoint_dir=self.checkpoint_dir,
                               freeze_bn_stats=True, progress=progress,
                               config_hash=run_hash(self.get_params(), source, encoded, tgt,
                                                    pseudo, *([] if sample_weight is None else
                                                              [np.asarray(sample_weight)]))
                               if self.checkpoint_dir else None)
        fitted = fit_method(method, model, train_plan, lambda _which: collate,
                            np.arange(n_train), np.arange(0), settings, lengths=lengths)
        fitted.trainable_params = plan.num_trainable  # the model's, not the discriminator's
        self.grafter_ = grafter.set_fitted(model, fitted, t0,
                                           targets=self.targets_)
        self.model_ = self.grafter_.model_
        self.history_, self.trainable_params_ = fitted.history, fitted.trainable_params
        self.method_summary_ = method.summary()  # e.g. PADA's class weights
        self.record_ = {**self.grafter_.record_,
                        "cached_activations": None if route.kind == "inputs" else
                        "pooled" if route.kind == "pooled" else route.start}
        if self.select_epoch is not None:
            self.record_["selected_epoch"] = self.record_.pop("best_epoch", None)
        return self

    def _augmenting(self):
        """The ``augment`` preset built for the backbone's modality (None without one)."""
        if self.augment is None:
            return None
        return build_preset(self.augment, backbone_modality(self.backbone,
                                                            self.backbone_options))

    def _inputs(self, X: Any, y: Any, target: Any, teacher_proba: Any) -> tuple:
        """Source and target domains, the source labels encoded (``classes_`` set), and the
        teacher's pseudo-labels on the target (or None)."""
        modality = backbone_modality(self.backbone, self.backbone_options)
        source, tgt = as_domain(X, modality), _target_domain(target, modality)
        _check_shapes(source, tgt)
        y = np.asarray(y if y is not None else source.labels)
        if len(y) != len(source):
            raise DataError(f"{len(source)} source inputs but {len(y)} labels.")
        targets = ClassTargets()
        try:  # one label per input, no NaN or None, two classes or more
            encoded = targets.fit(y)
        except DataError as exc:
            raise DataError(f"source {exc.message}", hint=exc.hint) from None
        self.classes_, self.targets_ = targets.classes, targets
        pseudo = None if teacher_proba is None else torch.as_tensor(teacher_pseudo_labels(
            teacher_proba, len(tgt), len(self.classes_), self.pseudo_fraction))
        return source, tgt, encoded, pseudo

    def _check_setup(self, model, strategy) -> None:
        """Set-ups where the method has nothing to act on."""
        check_setup(self.method, self.strategy, self.head,
                    moves_backbone=strategy.moves_backbone,
                    input_kind=model.head.input_kind, linear=model.head.linear)

    def _check(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("this Adapter is not fitted yet; call fit(X, y, target=...).")

    def decision_function(self, X: Any) -> np.ndarray:
        self._check()
        return self.grafter_.decision_function(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        return torch.softmax(torch.from_numpy(self.decision_function(X)), -1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)  # raises the not-fitted error first
        return self.classes_[scores.argmax(-1)]

    def save(self, folder: str | Path) -> Path:
        """The adapted model, saved as a Grafter is (``model.safetensors`` + ``config.json`` +
        checksums): ``graftlab.Grafter.load``, ``graftlab predict``, ``export`` and ``serve``
        take it. What the method needed only to train (a discriminator) is not kept."""
        self._check()
        return self.grafter_.save(folder)

    def transform(self, X: Any) -> np.ndarray:
        """The adapted representation, what the method aligned (for maps and domain
        distances): the pooled features, through the head's bottleneck when it has one."""
        self._check()
        feats = torch.from_numpy(self.grafter_.transform(X))
        with torch.no_grad():
            return self.model_.eval().head.embed(feats).numpy()


def check_setup(method: str, strategy: str, head: str, *, moves_backbone: bool | None = None,
                input_kind: str | None = None, linear: bool | None = None) -> None:
    """Refuse a set-up where ``method`` has nothing to act on: a head that does not take pooled
    features, or an aligning method with nothing trainable below a linear classifier. What
    the strategy and head are is read from their registries unless given (a built model's)."""
    from graftlab.heads.heads import HEADS
    from graftlab.train.strategies import STRATEGIES

    head_cls = HEADS.get(head) if input_kind is None or linear is None else None
    input_kind = head_cls.input_kind if input_kind is None else input_kind
    linear = head_cls.linear if linear is None else linear
    if moves_backbone is None:
        moves_backbone = STRATEGIES.get(strategy).moves_backbone
    if input_kind != "pooled":
        raise ConfigError(f"head {head!r} takes {input_kind} input; domain adaptation aligns "
                          "pooled features.", hint="use head='linear' or head='mlp'.")
    if not moves_backbone and linear and METHODS.get(method).aligns:
        raise ConfigError(f"{method} aligns features, but with strategy {strategy!r} and a "
                          "linear head nothing below the classifier trains, so there is "
                          "nothing to align.",
                          hint="add a bottleneck to align: head='mlp' (--head mlp), or "
                          "train blocks: strategy='last_k'.")


def paired_collate(pick: dict, labels: torch.Tensor, pseudo: torch.Tensor | None,
                   n_target: int, seed: int):
    """Batches of source samples, each paired with as many target samples, drawn by a
    generator keyed on the source batch: the same pairs on every run and after a resume."""

    def collate(pos: np.ndarray) -> dict:
        rng = np.random.default_rng([seed, int(pos[0]), len(pos)])
        t_idx = rng.choice(n_target, size=len(pos), replace=n_target < len(pos))
        target_batch = {"inputs": pick["target"](t_idx)}
        if pseudo is not None:
            target_batch["pseudo"] = pseudo[t_idx]
        return {"source": {"inputs": pick["source"](pos), "labels": labels[pos]},
                "target": target_batch}

    return collate


def weighted_collate(collate, sample_weight: Any, n: int) -> tuple:
    """``collate`` over the samples of weight > 0 (positions into them), their weights (mean 1)
    in ``batch["source"]["weights"]``; and those samples' indices."""
    w = check_weights(sample_weight, n, "source sample weights")
    kept = np.flatnonzero(w > 0)
    w_kept = torch.as_tensor(w[kept] / w[kept].mean(), dtype=torch.float32)

    def weighted(pos: np.ndarray) -> dict:
        batch = collate(kept[pos])
        batch["source"]["weights"] = w_kept[pos]
        return batch

    return weighted, kept


def check_adapter_options(select_epoch: str | None, pseudo_fraction: float,
                          pseudo_weight: float) -> None:
    """Options that would otherwise fail only after features were extracted."""
    from graftlab.adapt.refine import check_pseudo

    if select_epoch is not None and select_epoch not in EPOCH_VALIDATORS:
        raise ConfigError(f"select_epoch={select_epoch!r} is not a validator that scores one "
                          f"model alone; choose one of {', '.join(EPOCH_VALIDATORS)}.",
                          hint="or leave it out to keep the last epoch.")
    check_pseudo(pseudo_fraction, pseudo_weight)


def _target_domain(target: Any, modality: str) -> Domain:
    if target is None:
        raise DataError("adaptation needs unlabelled target inputs: fit(X, y, target=...).")
    try:
        tgt = as_domain(target, modality)
    except DataError as exc:  # its own hint, if it has one, says the fix best
        raise DataError(f"target: {exc.message}",
                        hint=exc.hint or "give target inputs of the source's kind.") from None
    if tgt.labels is not None:
        tgt = tgt.unlabelled()  # never trained on, never selected on
    return tgt


def _check_shapes(source: Domain, target: Domain) -> None:
    if source.modality == "image":
        s, t = source.inputs.shape[1:], target.inputs.shape[1:]
        if s != t:
            raise DataError(f"source images are {s[0]}x{s[1]} but target images are "
                            f"{t[0]}x{t[1]}; both domains go through the same network.",
                            hint="resize one domain to the other's size first.")

