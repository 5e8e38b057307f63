"""A scikit-learn transformer over any backbone, so feature extraction fits in a Pipeline:

    Pipeline([("features", FeatureExtractor(backbone="minilm_l6")),
              ("clf", LogisticRegression())])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from graftlab.backbones import create_backbone
from graftlab.errors import NotFittedError
from graftlab.features.extract import extract_features


class FeatureExtractor(TransformerMixin, BaseEstimator):
    """Pooled features of ``layer`` of ``backbone`` (cached on disk unless ``cache=False``)."""

    def __init__(self, *, backbone: str = "efficientnet_lite0", layer: str | None = None,
                 pooling: str | None = None, batch_size: int | None = None, cache: bool = True,
                 cache_dir: str | None = None, backbone_options: dict | None = None) -> None:
        self.backbone = backbone
        self.layer = layer
        self.pooling = pooling
        self.batch_size = batch_size
        self.cache = cache
        self.cache_dir = cache_dir
        self.backbone_options = backbone_options

    def fit(self, X: Any = None, y: Any = None) -> FeatureExtractor:
        """Load the backbone and check the layer and pooling (nothing is learned)."""
        self.backbone_ = create_backbone(self.backbone, **(self.backbone_options or {})).eval()
        (self.layer_,) = self.backbone_.check_layers(self.layer)
        self.pooling_ = self.backbone_.check_pooling(self.pooling)
        # The chosen layer's width (not the backbone's last): one dummy sample through it.
        dummy = np.zeros((1, 32, 32, 3), np.uint8) if self.backbone_.modality == "image" else ["a"]
        with torch.inference_mode():
            batch = self.backbone_.preprocess(dummy)
            self.n_features_out_ = int(self.backbone_.features(batch, self.layer_,
                                                               self.pooling_).shape[1])
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "backbone_"):
            raise NotFittedError(
                "this FeatureExtractor is not fitted yet; call fit() (or fit_transform) first."
            )

    def transform(self, X: Any) -> np.ndarray:
        self._check_fitted()
        feats = extract_features(self.backbone_, X, layer=self.layer_, pooling=self.pooling_,
                                 batch_size=self.batch_size, cache=self.cache,
                                 cache_dir=self.cache_dir)
        return np.asarray(feats)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        self._check_fitted()
        return np.array([f"{self.layer_}_{i}" for i in range(self.n_features_out_)], dtype=object)
