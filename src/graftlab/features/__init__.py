"""Feature extraction from any layer, with an on-disk, content-addressed cache."""

from graftlab.features.cache import FeatureCache
from graftlab.features.estimator import FeatureExtractor
from graftlab.features.activations import activation_batch, extract_activations
from graftlab.features.extract import extract_features, extract_layers

__all__ = ["FeatureCache", "FeatureExtractor", "activation_batch", "extract_activations",
           "extract_features", "extract_layers"]
