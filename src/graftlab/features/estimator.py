"""A scikit-learn transformer over any backbone, so feature extraction fits in a Pipeline:

    Pipeline([("features", FeatureExtractor(backbone="minilm_l6")),
              ("clf", LogisticRegression())])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from graftlab.backbones import create_backbone
from graftlab.errors import DataError, NotFittedError
from graftlab.features.extract import as_domain, extract_features


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
        """Load the backbone and check the layer and pooling (nothing is learned). ``X``, when
        given, is checked to be the backbone's kind of input; ``y`` is ignored."""
        backbone = create_backbone(self.backbone, **(self.backbone_options or {})).eval()
        if X is not None:
            _check_inputs(X, backbone.modality)
        self.backbone_ = backbone
        (self.layer_,) = self.backbone_.check_layers(self.layer)
        self.pooling_ = self.backbone_.check_pooling(self.pooling)
        # The chosen layer's width (not the backbone's last): one dummy sample through it.
        with torch.inference_mode():
            batch = self.backbone_.probe_batch()
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
        _check_inputs(X, self.backbone_.modality)
        feats = extract_features(self.backbone_, X, layer=self.layer_, pooling=self.pooling_,
                                 batch_size=self.batch_size, cache=self.cache,
                                 cache_dir=self.cache_dir)
        return np.asarray(feats)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        self._check_fitted()
        return np.array([f"{self.layer_}_{i}" for i in range(self.n_features_out_)], dtype=object)


def _check_inputs(X: Any, modality: str) -> None:
    """Refuse what the backbone does not take, saying what it takes (sparse or complex tables,
    numbers or one bare string for a text backbone, the other modality, no samples); the data
    layer checks image shapes and dtypes in detail."""
    takes = ("uint8 images (N, H, W, 3)" if modality == "image" else "a list of texts")
    if sp.issparse(X):
        raise DataError(f"FeatureExtractor got a sparse matrix ({type(X).__name__}); sparse "
                        f"input is not supported: the backbone takes {takes}.")
    dtype = getattr(X, "dtype", None)  # arrays only: a list of texts is not copied to look
    if dtype is not None and np.issubdtype(dtype, np.complexfloating):
        raise DataError(f"Complex data not supported: the backbone takes {takes}.")
    if modality == "text" and (isinstance(X, str) or (dtype is not None and dtype.kind not in
                                                      "USO")):
        got = "one string" if isinstance(X, str) else f"a {dtype} array of shape {X.shape}"
        raise DataError(f"the text backbone takes a list of texts, got {got}.",
                        hint="wrap one text in a list: [text].")
    as_domain(X, modality)
