"""``Grafter``: fine-tune a pretrained backbone on your data, scikit-learn style.

    Grafter(backbone="minilm_l6", strategy="lora").fit(texts, labels).predict(new_texts)

It builds backbone + head, applies the strategy (what trains, at which learning rate), and runs
the one :class:`~graftlab.train.trainer.Trainer` on the :class:`~graftlab.methods.ERM` method.
Fitted models save to a folder (safetensors weights + a JSON config; never pickle).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split

from graftlab import _atomic, integrity
from graftlab.data.domain import Domain
from graftlab.errors import ConfigError, DataError, NotFittedError
from graftlab.features.extract import as_domain
from graftlab.methods import ERM
from graftlab.methods.erm import task_loss
from graftlab.train.build import backbone_modality, build_model, make_plan, strategy_from
from graftlab.train.callbacks import Callback
from graftlab.train.fit import Fitted, FitSettings, fit_method, run_hash
from graftlab.train.model import GraftedModel
from graftlab.train.routes import INPUTS, Route, choose_route
from graftlab.train.strategies import Plan, Strategy, trainable_parameters


class Grafter(ClassifierMixin, BaseEstimator):
    """Fine-tune ``backbone`` with ``strategy`` and a ``head`` on labelled inputs.

    The learning rates are ``lr`` for the head and ``lr_backbone`` for whatever the strategy
    unfreezes (default: the backbone family's, 3e-4 for EfficientNet, 5e-5 for text encoders),
    AdamW with warm-up and cosine decay. A strategy reads the options it declares from ``k``,
    ``lr_decay``, ``lora_r``, ``lora_alpha``, or from ``strategy_options``.
    ``freeze_bn_stats`` (default: on for pretrained weights) keeps every BatchNorm's running
    statistics while its scale and shift train: with small data sets and momentum 0.01 the
    running statistics otherwise end up between ImageNet's and the new data's, and the model
    scores far worse in eval mode than it trained (MNIST, 1,000 images, full fine-tuning: 70%
    vs 96%). ``pretrained=False`` re-draws every weight: the from-scratch baseline that makes
    negative transfer visible. Caches are used only with pretrained weights.
    """

    def __init__(self, *, backbone: str = "efficientnet_lite0", strategy: str = "head_only",
                 head: str = "linear", head_options: dict | None = None,
                 layer: str | None = None, pooling: str | None = None, epochs: int = 5,
                 batch_size: int = 32, lr: float = 1e-3, lr_backbone: float | None = None,
                 weight_decay: float = 0.01, k: int = 2, lr_decay: float = 0.7, lora_r: int = 8,
                 lora_alpha: int = 16, strategy_options: dict | None = None,
                 label_smoothing: float = 0.0, mixup: float = 0.0,
                 l2sp: float = 0.0, augment: bool | None = None, early_stopping: int | None = None,
                 validation_fraction: float = 0.0, seed: int = 0,
                 backbone_options: dict | None = None, checkpoint_dir: str | None = None,
                 cache_activations: bool | None = None, pretrained: bool = True,
                 freeze_bn_stats: bool | None = None,
                 callbacks: list[Callback] | None = None) -> None:
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
        self.callbacks = callbacks

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

    def _build(self, num_outputs: int) -> tuple[GraftedModel, Plan]:
        model, plan, _ = self.build(num_outputs)
        return model, plan

    def _augmenter(self, modality: str, strategy: Strategy):
        use = self.augment if self.augment is not None else strategy.augments_by_default
        if not use or modality != "image":
            return None
        import kornia.augmentation as K

        return K.RandomAffine(degrees=10.0, translate=(0.08, 0.08), scale=(0.9, 1.1), p=0.8)

    def _settings(self, progress, *data) -> FitSettings:
        freeze_bn = self.pretrained if self.freeze_bn_stats is None else self.freeze_bn_stats
        return FitSettings(epochs=self.epochs, batch_size=self.batch_size, seed=self.seed,
                           callbacks=list(self.callbacks or []),
                           checkpoint_dir=self.checkpoint_dir, freeze_bn_stats=freeze_bn,
                           early_stopping=self.early_stopping, progress=progress,
                           config_hash=run_hash(self.get_params(), *data)
                           if self.checkpoint_dir else None)

    # ------------------------------------------------------------------ fit / predict
    def fit(self, X: Any, y: Any, *, validation_data: tuple[Any, Any] | None = None,
            progress=None) -> Grafter:
        """Train on inputs ``X`` (uint8 images (N, H, W, 3), a list of texts, or a Domain).

        ``validation_data=(X_val, y_val)`` is scored every epoch (and drives early stopping);
        without it, ``validation_fraction`` of ``X`` is held out when early stopping is on.
        """
        t0 = time.perf_counter()
        backbone_modality_ = backbone_modality(self.backbone, self.backbone_options)
        domain = as_domain(X, backbone_modality_)
        y = np.asarray(y if y is not None else
                       domain.labels if self._loss_classes else domain.targets)
        if len(y) != len(domain):
            raise DataError(f"{len(domain)} inputs but {len(y)} labels; give one per input.")
        labels = self._encode_targets(y)
        train_idx, val_idx = self._split(labels)
        if validation_data is not None:
            domain, labels, train_idx, val_idx = self._join_validation(
                domain, labels, validation_data, backbone_modality_)
        model, plan, strategy = self.build(self._num_outputs)
        labels_t = torch.as_tensor(labels, dtype=self._target_dtype)
        augment = self._augmenter(model.backbone.modality, strategy)
        route = choose_route(model, strategy, pretrained=self.pretrained,
                             cache=self.cache_activations,
                             augmenting=augment is not None or bool(self.mixup))
        if strategy.solved and model.head.input_kind != "pooled":
            raise ConfigError(f"{self.strategy} trains on pooled features; head {self.head!r} "
                              f"takes {model.head.input_kind} input.", hint="use head='linear'.")
        pick = route.picker(model, domain)
        if strategy.solved and self.head == "linear" and not self.label_smoothing:
            return self._solve_linear_probe(model, plan, pick, labels_t, train_idx, val_idx, t0)
        method = ERM(route.net(model), num_classes=self._loss_classes,
                     label_smoothing=self.label_smoothing, mixup=self.mixup, l2sp=self.l2sp,
                     augment=augment)
        method.anchor_pretrained()

        def collate(which: np.ndarray):
            def fn(pos: np.ndarray) -> dict:
                idx = which[pos]
                return {"inputs": pick(idx), "labels": labels_t[idx]}
            return fn

        fitted = fit_method(method, model, plan, collate, train_idx, val_idx,
                            self._settings(progress, domain, labels, train_idx, val_idx))
        return self.set_fitted(model, fitted, t0, route.record(model, pick(train_idx[:1])))

    def set_fitted(self, model: GraftedModel, fitted: Fitted, t0: float | None = None,
                   record: dict | None = None) -> Grafter:
        """Hold ``model``, trained through the engine, as this estimator's fitted model (the
        domain-adaptation estimator trains with its own method and saves as a Grafter)."""
        self.model_ = model.eval()
        self.history_, self.trainable_params_ = fitted.history, fitted.trainable_params
        self.total_params_ = fitted.total_params
        self.record_ = {**fitted.record, **(record or {})}
        if t0 is not None:
            self.record_["fit_seconds"] = time.perf_counter() - t0
        return self

    def _solve_linear_probe(self, model, plan, pick, labels_t, train_idx, val_idx, t0
                            ) -> Grafter:
        """The linear head solved, not trained: graftlab's tuned logistic regression
        (standardised features, ``C`` chosen on held-out data) folded into the head's weights,
        so the probe is the converged optimum rather than a few epochs of SGD."""
        x, y = pick(train_idx)["features"].numpy(), labels_t[train_idx].numpy()
        weight, bias, solver = self._solve_head(x, y)
        with torch.no_grad():
            model.head.fc.weight.copy_(torch.as_tensor(weight))
            model.head.fc.bias.copy_(torch.as_tensor(bias))
        history = {"epoch": 0, **solver}
        if len(val_idx):
            with torch.no_grad():
                out = model.head(pick(val_idx)["features"])
                history["val_loss"] = float(task_loss(out, labels_t[val_idx],
                                                      self._loss_classes))
                if self._loss_classes:
                    history["val_accuracy"] = float(
                        (out.argmax(-1) == labels_t[val_idx]).float().mean())
        fitted = Fitted([history], {**solver, "trainable_params_at_end":
                                    trainable_parameters(model)},
                        plan.num_trainable, sum(p.numel() for p in model.parameters()))
        return self.set_fitted(model, fitted, t0, {"feature_cache": self.pretrained})

    def _solve_head(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
        """graftlab's tuned logistic regression, as the head's weight and bias."""
        from graftlab.probe import LinearProbeClassifier

        probe = LinearProbeClassifier(random_state=self.seed).fit(x, y)
        scaler, clf = probe.model_.named_steps["scale"], probe.model_.named_steps["clf"]
        w = clf.coef_ / scaler.scale_                       # (C or 1, D) on raw features
        b = clf.intercept_ - w @ scaler.mean_
        if w.shape[0] == 1:                                 # binary: logits [0, z]
            w, b = np.vstack([np.zeros_like(w), w]), np.concatenate([[0.0], b])
        weight = np.zeros((len(self.classes_), w.shape[1]))
        bias = np.zeros(len(self.classes_))
        weight[probe.classes_], bias[probe.classes_] = w, b  # a class absent from train: 0
        return weight, bias, {"solver": "LinearProbeClassifier", "C": probe.C_}

    # ------------------------------------------------------------------ targets (classes)
    _target_dtype = torch.long

    @property
    def _num_outputs(self) -> int:
        return len(self.classes_)

    @property
    def _loss_classes(self) -> int:
        return len(self.classes_)

    def _encode_targets(self, y: np.ndarray) -> np.ndarray:
        self.classes_, labels = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise DataError(
                f"labels hold a single class ({self.classes_[0].item()!r}); fine-tuning a "
                "classifier needs at least two.", hint="check the label column.")
        return labels

    def _encode_validation(self, y_val: np.ndarray) -> np.ndarray:
        unseen = sorted(set(y_val.tolist()) - set(self.classes_.tolist()))
        if unseen:
            raise DataError(
                f"validation labels {unseen} never occur in the training labels "
                f"{self.classes_.tolist()}; the model cannot predict them.",
                hint="add training samples of those classes, or drop them from validation.")
        return np.searchsorted(self.classes_, y_val)

    def _targets_config(self) -> dict:
        return {"classes": self.classes_.tolist()}

    def _restore_targets(self, config: dict) -> None:
        self.classes_ = np.asarray(config["classes"])

    def _join_validation(self, domain: Domain, labels: np.ndarray, validation_data: tuple,
                         modality: str) -> tuple[Domain, np.ndarray, np.ndarray, np.ndarray]:
        """Append explicit validation data after the training data; its classes must be known."""
        X_val, y_val = validation_data
        val = as_domain(X_val, modality)
        y_val = np.asarray(y_val)
        if len(y_val) != len(val):
            raise DataError(f"validation: {len(val)} inputs but {len(y_val)} labels.")
        encoded = self._encode_validation(y_val)
        if domain.origin and val.origin and domain.origin[0] is val.origin[0]:
            # two splits of one data set: still a subset of it, so caches of the whole serve it
            joined = domain.origin[0].subset(np.concatenate([domain.origin[1], val.origin[1]]))
        else:
            inputs = (np.concatenate([domain.inputs, val.inputs]) if modality == "image"
                      else [*domain.inputs, *val.inputs])
            joined = Domain(domain.name, modality, inputs)
        all_labels = np.concatenate([labels, encoded])
        n = len(domain)
        return joined, all_labels, np.arange(n), np.arange(n, n + len(val))

    def _split(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = np.arange(len(labels))
        fraction = self.validation_fraction or (0.1 if self.early_stopping else 0.0)
        if not fraction:
            return idx, idx[:0]
        return tuple(train_test_split(idx, test_size=fraction, random_state=self.seed,
                                      stratify=labels if self._loss_classes else None))

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

    def predict_proba(self, X: Any) -> np.ndarray:
        return torch.softmax(torch.from_numpy(self.decision_function(X)), -1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)  # raises the not-fitted error first
        return self.classes_[scores.argmax(-1)]

    # ------------------------------------------------------------------ save / load
    def save(self, folder: str | Path) -> Path:
        """``model.safetensors`` + ``config.json`` in ``folder`` (created; files atomic)."""
        from safetensors.torch import save_model

        self._check()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        params = {k: v for k, v in self.get_params().items() if k != "callbacks"}
        config = {"format": "graftlab.grafter/1", "estimator": type(self).__name__,
                  "params": params, **self._targets_config(),
                  "trainable_params": self.trainable_params_, "history": self.history_}
        integrity.discard_manifest(folder)
        tmp = folder / ".model.safetensors.tmp"
        save_model(self.model_, str(tmp))
        tmp.replace(folder / "model.safetensors")
        _atomic.write_json(folder / "config.json", config)
        integrity.write_manifest(folder, ["model.safetensors", "config.json"])
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Grafter:
        from safetensors.torch import load_model

        folder = Path(folder)
        if (folder / "average.json").is_file():
            raise ConfigError(f"{folder} holds an average of adapted models, not one Grafter.",
                              hint="load it with graftlab.adapt.average.AveragedModel.load.")
        integrity.verify_manifest(folder)
        if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
            raise ConfigError(f"{folder} is not a saved Grafter (needs config.json and "
                              "model.safetensors).", hint="save one with Grafter.save(folder).")
        config = integrity.read_json(folder / "config.json")
        saved_as = config.get("estimator", "Grafter")
        if saved_as != cls.__name__:
            raise ConfigError(f"{folder} holds a {saved_as}; load it with {saved_as}.load.")
        self = cls(**config["params"])
        self._restore_targets(config)
        model, _ = self._build(self._num_outputs)
        try:
            load_model(model, str(folder / "model.safetensors"))
        except Exception as exc:  # shapes that differ, an unreadable file: one line, not 200
            raise integrity.explain_load_error(exc, config, folder=folder) from exc
        self.model_ = model.eval()
        self.history_ = config.get("history", [])
        self.trainable_params_ = config.get("trainable_params")
        return self


class GrafterRegressor(RegressorMixin, Grafter):
    """Fine-tune for a continuous target (mean squared error on the standardised target).

    The same strategies and options as :class:`Grafter`; ``linear_probe`` solves ridge
    regression (``alpha`` by leave-one-out) instead of logistic regression. ``predict`` returns
    values on the original scale.
    """

    _target_dtype = torch.float32
    _num_outputs = 1
    _loss_classes = 0

    def _encode_targets(self, y: np.ndarray) -> np.ndarray:
        try:
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError("regression targets must be numbers; got non-numeric values.",
                            hint="use Grafter (the classifier) for class labels.") from None
        if not np.isfinite(y).all():
            raise DataError("regression targets hold NaN or inf; drop or fill those rows.")
        std = float(y.std())
        if std == 0:
            raise DataError(f"every regression target is {y[0]:g}: there is nothing to learn.")
        self.target_mean_, self.target_std_ = float(y.mean()), std
        return ((y - self.target_mean_) / std).astype(np.float32)

    def _encode_validation(self, y_val: np.ndarray) -> np.ndarray:
        y_val = np.asarray(y_val, dtype=np.float64)
        return ((y_val - self.target_mean_) / self.target_std_).astype(np.float32)

    def _solve_head(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
        from graftlab.probe import LinearProbeRegressor

        probe = LinearProbeRegressor().fit(x, y)
        scaler, ridge = probe.model_.named_steps["scale"], probe.model_.named_steps["ridge"]
        w = np.atleast_2d(ridge.coef_ / scaler.scale_)
        b = np.atleast_1d(ridge.intercept_ - w @ scaler.mean_)
        return w, b, {"solver": "LinearProbeRegressor", "alpha": probe.alpha_}

    def _targets_config(self) -> dict:
        return {"target_mean": self.target_mean_, "target_std": self.target_std_}

    def _restore_targets(self, config: dict) -> None:
        self.target_mean_, self.target_std_ = config["target_mean"], config["target_std"]

    def predict(self, X: Any) -> np.ndarray:
        return self.decision_function(X)[:, 0] * self.target_std_ + self.target_mean_

    def predict_proba(self, X: Any) -> np.ndarray:
        raise AttributeError("a regressor has no predict_proba; use predict.")


def _batches(n: int, batch_size: int) -> list[np.ndarray]:
    return np.array_split(np.arange(n), max(1, math.ceil(n / batch_size)))
