"""``Grafter``: fine-tune a pretrained backbone on your data, scikit-learn style.

    Grafter(backbone="minilm_l6", strategy="lora").fit(texts, labels).predict(new_texts)

It builds backbone + head, applies the strategy (what trains, at which learning rate), and runs
the one :class:`~graftlab.train.trainer.Trainer` on the :class:`~graftlab.methods.ERM` method.
Fitted models save to a folder (safetensors weights + a JSON config; never pickle).
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._available_if import available_if

from graftlab._fitted import restores_on_failure
from graftlab.distill import Teaching, teaching
from graftlab.errors import ConfigError, DataError, NotFittedError
from graftlab.features.extract import as_domain
from graftlab.methods import ERM
from graftlab.train.build import (backbone_modality, build_model, check_numbers, make_plan,
                                  strategy_from)
from graftlab.train.callbacks import Callback
from graftlab.saving import load_grafter, save_grafter
from graftlab.select.base import check_weights
from graftlab.train.fit import Fitted, FitSettings, fit_method, run_hash
from graftlab.train.solve import holdout, join_validation, solve_linear_head
from graftlab.train.model import GraftedModel
from graftlab.train.routes import INPUTS, Route, choose_route
from graftlab.train.strategies import Plan, Strategy
from graftlab.train.targets import ClassTargets

if TYPE_CHECKING:
    from graftlab.augment import Augmenting


class Grafter(ClassifierMixin, BaseEstimator):
    """Fine-tune ``backbone`` with ``strategy`` and a ``head`` on labelled inputs.

    The learning rates are ``lr`` for the head and ``lr_backbone`` for whatever the strategy
    unfreezes (default: the backbone family's, 3e-4 for EfficientNet, 5e-5 for text encoders),
    AdamW with warm-up and cosine decay. A strategy reads the options it declares from ``k``,
    ``lr_decay``, ``lora_r``, ``lora_alpha``, or from ``strategy_options``.
    Text batches hold texts of similar length (``group_by_length``), so they pad little.
    ``freeze_bn_stats`` (default: on for pretrained weights) keeps every BatchNorm's running
    statistics while its scale and shift train: with small data sets and momentum 0.01 the
    running statistics otherwise end up between ImageNet's and the new data's, and the model
    scores far worse in eval mode than it trained (MNIST, 1,000 images, full fine-tuning: 70%
    vs 96%). ``pretrained=False`` re-draws every weight: the from-scratch baseline that makes
    negative transfer visible. Caches are used only with pretrained weights.

    ``distill_from`` (a fitted Grafter, the folder of a saved one, or a ``graftlab fit`` run
    folder) makes this a student of that teacher: the loss becomes ``(1 - distill_weight)`` times
    the task loss plus ``distill_weight * T^2 * KL(teacher || student)`` at temperature
    ``distill_temperature`` (:mod:`graftlab.methods.distill`; :mod:`graftlab.distill` says where
    the teacher's outputs come from). A saved student holds only its own weights and records
    the teacher's backbone and weights sha256.

    ``augment``: None (the strategy's default), True (a random affine on images), False, or a
    preset of :mod:`graftlab.augment` (``"expand"``, ``"mix"``, ``"light"``... for images,
    ``"token_edits"`` for texts, ``"feature_mixup"`` for any backbone, on cached features too);
    a preset for another modality is refused, naming those that fit.
    """

    def __init__(self, *, backbone: str = "efficientnet_lite0", strategy: str = "head_only",
                 head: str = "linear", head_options: dict | None = None,
                 layer: str | None = None, pooling: str | None = None, epochs: int = 5,
                 batch_size: int = 32, lr: float = 1e-3, lr_backbone: float | None = None,
                 weight_decay: float = 0.01, k: int = 2, lr_decay: float = 0.7, lora_r: int = 8,
                 lora_alpha: int = 16, strategy_options: dict | None = None,
                 label_smoothing: float = 0.0, mixup: float = 0.0,
                 l2sp: float = 0.0, augment: bool | str | None = None,
                 early_stopping: int | None = None,
                 validation_fraction: float = 0.0, seed: int = 0,
                 backbone_options: dict | None = None, checkpoint_dir: str | None = None,
                 cache_activations: bool | None = None, pretrained: bool = True,
                 freeze_bn_stats: bool | None = None, group_by_length: bool = True,
                 distill_from: Any = None, distill_temperature: float = 4.0,
                 distill_weight: float = 0.9, callbacks: list[Callback] | None = None) -> None:
        self.backbone, self.strategy, self.head, self.head_options = (backbone, strategy, head,
                                                                       head_options)
        self.layer, self.pooling, self.epochs, self.batch_size = layer, pooling, epochs, batch_size
        self.lr, self.lr_backbone, self.weight_decay = lr, lr_backbone, weight_decay
        self.k, self.lr_decay, self.lora_r, self.lora_alpha = k, lr_decay, lora_r, lora_alpha
        self.strategy_options = strategy_options
        self.label_smoothing, self.mixup, self.l2sp = label_smoothing, mixup, l2sp
        self.augment, self.early_stopping = augment, early_stopping
        self.validation_fraction, self.seed = validation_fraction, seed
        self.backbone_options, self.checkpoint_dir = backbone_options, checkpoint_dir
        self.cache_activations = cache_activations
        self.pretrained, self.freeze_bn_stats = pretrained, freeze_bn_stats
        self.group_by_length, self.callbacks = group_by_length, callbacks
        self.distill_from, self.distill_temperature = distill_from, distill_temperature
        self.distill_weight = distill_weight

    # ------------------------------------------------------------------ building
    def build(self, num_outputs: int) -> tuple[GraftedModel, Plan, Strategy]:
        """The initial model (seeded), the strategy, and its plan for the model."""
        strategy = strategy_from(self.strategy, self.get_params(), self.strategy_options)
        model = build_model(self.backbone, head=self.head, head_options=self.head_options,
                            layer=self.layer, pooling=self.pooling, num_outputs=num_outputs,
                            pretrained=self.pretrained, seed=self.seed,
                            backbone_options=self.backbone_options)
        plan = make_plan(model, strategy, lr_head=self.lr, lr_backbone=self.lr_backbone,
                         weight_decay=self.weight_decay)
        return model, plan, strategy

    def _preset(self, modality: str) -> Augmenting | None:
        """The augmentation preset named by ``augment``, built for ``modality`` (or None)."""
        if not isinstance(self.augment, str):
            return None
        from graftlab.augment import build_preset

        preset = build_preset(self.augment, modality)
        if preset.mix is not None and self.distill_from is not None:
            raise ConfigError(f"augment={self.augment!r} mixes samples, and a teacher's outputs "
                              "are for unmixed ones: distillation cannot follow the mix.",
                              hint="use an expansion preset (expand, light) or none with "
                              "distill_from.")
        return preset

    def _augments(self, modality: str, strategy: Strategy) -> bool:
        """Whether training augments its inputs (images only; ``augment`` or the strategy's
        default)."""
        if isinstance(self.augment, str):
            return self._preset(modality).changes_inputs
        use = self.augment if self.augment is not None else strategy.augments_by_default
        return bool(use) and modality == "image"

    def _augmenter(self, modality: str, strategy: Strategy, backbone: Any = None):
        if not self._augments(modality, strategy):
            return None
        preset = self._preset(modality)
        if preset is not None:
            from graftlab.augment import ImageAugmenter

            return ImageAugmenter(preset.inputs, backbone) if preset.inputs else None
        import kornia.augmentation as K

        return K.RandomAffine(degrees=10.0, translate=(0.08, 0.08), scale=(0.9, 1.1), p=0.8)

    def _settings(self, progress, *data, teacher: dict | None = None) -> FitSettings:
        """The loop's settings; a checkpoint names the run by the parameters (a teacher by the
        sha256 of its weights) and the data."""
        freeze_bn = self.pretrained if self.freeze_bn_stats is None else self.freeze_bn_stats
        params = self.get_params(deep=False)
        if teacher is not None:
            params["distill_from"] = teacher["weights_sha256"]
        return FitSettings(epochs=self.epochs, batch_size=self.batch_size, seed=self.seed,
                           callbacks=list(self.callbacks or []),
                           checkpoint_dir=self.checkpoint_dir, freeze_bn_stats=freeze_bn,
                           early_stopping=self.early_stopping, progress=progress,
                           group_by_length=self.group_by_length,
                           config_hash=run_hash(params, *data) if self.checkpoint_dir else None)

    # ------------------------------------------------------------------ fit / predict
    @restores_on_failure
    def fit(self, X: Any, y: Any, *, validation_data: tuple[Any, Any] | None = None,
            progress=None, sample_weight: Any = None) -> Grafter:
        """Train on inputs ``X`` (uint8 images (N, H, W, 3), a list of texts, or a Domain).

        ``validation_data=(X_val, y_val)`` is scored every epoch (and drives early stopping);
        without it, ``validation_fraction`` of ``X`` is held out when early stopping is on.
        ``sample_weight`` (one finite weight >= 0 per input, e.g. a source selection's): samples
        of weight 0 are left out, the others weigh the loss (a weighted mean, not a weighted
        sampler: every kept sample is seen once per epoch, the seeded order and resuming stay
        as they are, and a subset costs only its own size).
        """
        t0 = time.perf_counter()
        check_numbers(self.get_params(deep=False))
        backbone_modality_ = backbone_modality(self.backbone, self.backbone_options)
        preset = self._preset(backbone_modality_)  # a preset that does not fit fails here
        check_solved(self, preset)  # before any data is read or teacher run
        domain = as_domain(X, backbone_modality_)
        targets = self._targets()
        y = np.asarray(y if y is not None else targets.of(domain))
        if len(y) != len(domain):
            raise DataError(f"{len(domain)} inputs but {len(y)} labels; give one per input.")
        labels = self._set_targets(targets, targets.fit(y))
        fraction = 0.0 if validation_data is not None else \
            self.validation_fraction or (0.1 if self.early_stopping else 0.0)
        train_idx, val_idx = holdout(labels, fraction, self.seed,
                                     stratify=bool(targets.loss_classes),
                                     names=getattr(targets, "classes", None))
        weights = None if sample_weight is None else check_weights(sample_weight, len(domain))
        if validation_data is not None:
            domain, labels, train_idx, val_idx = join_validation(
                domain, labels, validation_data, backbone_modality_, targets.encode)
        train_idx, val_idx, weights = _weighted(weights, len(domain), train_idx, val_idx)
        model, plan, strategy = self.build(targets.num_outputs)
        if preset is not None and preset.texts is not None:
            from graftlab.augment import with_edited_texts

            kept = train_idx
            domain, labels, train_idx = with_edited_texts(preset.texts, domain, labels, train_idx,
                                                     model.backbone, self.seed)
            if weights is not None:  # each edited copy weighs as its original
                copies = (len(train_idx) - len(kept)) // max(1, len(kept))
                weights = torch.cat([weights, weights[kept].repeat(copies)])
        labels_t = torch.as_tensor(labels, dtype=targets.dtype)
        augment = self._augmenter(model.backbone.modality, strategy, model.backbone)
        route = self.training_route(model, strategy)
        if strategy.solved and model.head.input_kind != "pooled":
            raise ConfigError(f"{self.strategy} trains on pooled features; head {self.head!r} "
                              f"takes {model.head.input_kind} input.", hint="use head='linear'.")
        teacher = teaching(self, domain, targets, model, load=Grafter.load,
                           per_step=self._changes_images(model.backbone.modality, strategy))
        pick = route.picker(model, domain)
        if strategy.solved and model.head.linear:
            fitted = solve_linear_head(model, plan, pick, labels_t, train_idx, val_idx,
                                       targets, self.seed,
                                       None if weights is None else weights[train_idx].numpy())
            return self.set_fitted(model, fitted, t0, {"feature_cache": self.pretrained})
        method = ERM(route.net(model), num_classes=targets.loss_classes,
                     label_smoothing=self.label_smoothing, mixup=self.mixup, l2sp=self.l2sp,
                     augment=augment, distill=teacher.term if teacher else None,
                     mix=preset.mix if preset is not None else None)
        method.anchor_pretrained()
        settings = self._settings(progress, domain, labels, train_idx, val_idx,
                                  *([] if weights is None else [weights]),
                                  teacher=teacher.identity if teacher else None)
        fitted = fit_method(method, model, plan, _collate(pick, labels_t, teacher, weights),
                            train_idx, val_idx, settings, lengths=pick.lengths)
        return self.set_fitted(model, fitted, t0, {**route.record(model, pick(train_idx[:1])),
                                                   **(teacher.record() if teacher else {})})

    def _changes_images(self, modality: str, strategy: Strategy) -> bool:
        """Whether the images a step trains on differ from the inputs (augmentation, mixup)."""
        return modality == "image" and (self._augments(modality, strategy) or bool(self.mixup))

    def training_route(self, model: GraftedModel, strategy: Strategy) -> Route:
        """Where :meth:`fit` reads its inputs from for ``model`` and ``strategy`` (as
        :meth:`build` returns them): cached pooled features or a frozen prefix's cached output
        when nothing changes the inputs per step (augmentation, mixup), else the inputs."""
        return choose_route(model, strategy, pretrained=self.pretrained,
                            cache=self.cache_activations,
                            augmenting=self._augments(model.backbone.modality, strategy)
                            or bool(self.mixup))

    def set_fitted(self, model: GraftedModel, fitted: Fitted, t0: float | None = None,
                   record: dict | None = None, targets: ClassTargets | None = None
                   ) -> Grafter:
        """Hold ``model``, trained through the engine, as this estimator's fitted model (the
        domain-adaptation estimator trains with its own method, then hands its model and
        ``targets`` here to predict and save as a Grafter)."""
        if targets is not None:
            self._set_targets(targets, np.zeros(0))
        self.model_ = model.eval()
        self.history_, self.trainable_params_ = fitted.history, fitted.trainable_params
        self.total_params_ = fitted.total_params
        self.record_ = {**fitted.record, **(record or {})}
        self.distilled_from_ = self.record_.get("distillation")  # the teacher's identity
        if t0 is not None:
            self.record_["fit_seconds"] = time.perf_counter() - t0
        return self

    # ------------------------------------------------------------------ targets
    _targets = ClassTargets

    def _set_targets(self, targets: ClassTargets, encoded: np.ndarray) -> np.ndarray:
        self.targets_, self.classes_ = targets, targets.classes
        return encoded

    def _check(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("this Grafter is not fitted yet; call fit(X, y) first.")

    def decision_function(self, X: Any, batch_size: int = 64) -> np.ndarray:
        """Raw outputs (logits). A split of a data set (a Domain with an ``origin``) goes through
        the feature cache when the trained part sits above a frozen pretrained prefix."""
        return self._run(X, batch_size, features=False)

    @torch.no_grad()
    def _run(self, X: Any, batch_size: int, *, features: bool) -> np.ndarray:
        """Logits, or the pooled features a pooled head sees. A split of a data set (a Domain
        with an ``origin``) reads cached outputs where the trained part allows it (the route
        the strategy allows without augmentation); other inputs run the whole model."""
        self._check()
        m = self.model_.eval()
        domain = as_domain(X, m.backbone.modality)
        route = self.prediction_route() if domain.origin is not None else INPUTS
        pick, net = route.picker(m, domain), route.net(m)
        run = net.features if features else net
        return np.concatenate([run(pick(idx)).float().numpy()
                               for idx in _batches(len(domain), batch_size)])

    def prediction_route(self) -> Route:
        """Where predictions on a data set's split start: cached pooled features when only the
        head trained, the frozen prefix's cached output for last_k, else the inputs."""
        self._check()
        strategy = strategy_from(self.strategy, self.get_params(), self.strategy_options)
        return choose_route(self.model_, strategy, pretrained=self.pretrained,
                            cache=self.cache_activations)

    def transform(self, X: Any, batch_size: int = 64) -> np.ndarray:
        """The fine-tuned model's pooled features at its layer (what a pooled head sees):
        for maps and for comparing them with the frozen backbone's."""
        return self._run(X, batch_size, features=True)

    @available_if(lambda est: est._targets is ClassTargets)  # a regressor has none
    def predict_proba(self, X: Any) -> np.ndarray:
        return torch.softmax(torch.from_numpy(self.decision_function(X)), -1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)  # raises the not-fitted error first
        return self.classes_[scores.argmax(-1)]

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Mean accuracy on ``X``; ``y`` None takes a Domain's own label ids, as ``fit(domain,
        None)`` does."""
        if y is None:
            y = self._targets().of(X)  # label ids; a model fitted on names gets the names
            if getattr(X, "classes", None) and not np.isin(y, self.classes_).all():
                y = np.asarray(X.classes)[y]
        return super().score(X, y, sample_weight=sample_weight)

    def __sklearn_clone__(self) -> Grafter:
        """scikit-learn's clone, except that a teacher estimator (``distill_from``) is handed on
        as it is: it is the fitted model the student learns from, and a clone of it would be
        unfitted (scikit-learn's FrozenEstimator keeps a prefit estimator the same way)."""
        from sklearn.base import _clone_parametrized

        if not hasattr(self.distill_from, "get_params"):
            return _clone_parametrized(self)
        shallow = copy.copy(self)
        shallow.distill_from = None
        twin = _clone_parametrized(shallow)
        twin.distill_from = self.distill_from
        return twin

    # ------------------------------------------------------------------ save / load
    def save(self, folder: str | Path) -> Path:
        """``model.safetensors`` + ``config.json`` + a checksum manifest in ``folder``. A
        distilled student saves only itself: ``config.json`` names its teacher
        (``distilled_from``: backbone, weights sha256, folder) but does not hold it."""
        self._check()
        return save_grafter(self, folder, {**self.targets_.config(),
                                           "distilled_from": getattr(self, "distilled_from_",
                                                                     None)})

    @classmethod
    def load(cls, folder: str | Path) -> Grafter:
        """A saved Grafter (or GrafterRegressor), verified against its checksums."""
        return load_grafter(cls, folder)

    def restore(self, model: GraftedModel, config: dict) -> None:
        """Hold a loaded model and the targets its folder remembers (used by ``load``)."""
        self._set_targets(self._targets.from_config(config), np.zeros(0))
        self.model_ = model.eval()
        self.history_ = config.get("history", [])
        self.trainable_params_ = config.get("trainable_params")
        self.distilled_from_ = config.get("distilled_from")


def check_solved(est: Any, preset: Any = None) -> None:
    """Refuse, naming them, the settings a closed-form head cannot apply (only SGD can):
    ``linear_probe`` with a linear head solves a tuned logistic regression once."""
    from graftlab.heads.heads import HEADS
    from graftlab.train.strategies import STRATEGIES

    if not (STRATEGIES.get(est.strategy).solved and HEADS.get(est.head).linear):
        return
    trained = [name for name, on in (
        ("label_smoothing", est.label_smoothing), ("mixup", est.mixup),
        ("distill_from", est.distill_from is not None),
        (f"augment={est.augment!r}", preset is not None and (
            preset.mix is not None or preset.changes_inputs))) if on]
    if trained:
        raise ConfigError(f"{est.strategy} solves its head in closed form (a tuned logistic "
                          f"regression), which takes no {', '.join(trained)}.",
                          hint="use strategy='head_only' (--strategy head_only), which trains "
                          "the same head by SGD and takes them.")


def _weighted(weights: np.ndarray | None, n: int, train_idx: np.ndarray, val_idx: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, torch.Tensor | None]:
    """Positions of weight > 0 (explicit validation samples, appended after the weighted
    ones, weigh 1) and the weights as a tensor of mean 1 over the training positions."""
    if weights is None:
        return train_idx, val_idx, None
    weights = np.concatenate([weights, np.ones(n - len(weights))])
    train_idx, val_idx = train_idx[weights[train_idx] > 0], val_idx[weights[val_idx] > 0]
    if not len(train_idx):
        raise DataError("every sample of weight > 0 was held out for validation; none is "
                        "left to train on.", hint="give more samples weight.")
    return train_idx, val_idx, torch.as_tensor(weights / weights[train_idx].mean(),
                                               dtype=torch.float32)


def _collate(pick, labels: torch.Tensor, teacher: Teaching | None,
             weights: torch.Tensor | None = None):
    """``collate(split)(positions) -> batch`` for fit_method: inputs, labels, per-sample
    weights when given and, when the teacher's outputs are cached, theirs."""
    def collate(which: np.ndarray):
        def fn(pos: np.ndarray) -> dict:
            idx = which[pos]
            return {"inputs": pick(idx), "labels": labels[idx],
                    **({} if weights is None else {"weights": weights[idx]}),
                    **(teacher.batch(idx) if teacher else {})}
        return fn
    return collate


def _batches(n: int, batch_size: int) -> list[np.ndarray]:
    return np.array_split(np.arange(n), max(1, math.ceil(n / batch_size)))
