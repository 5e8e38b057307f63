"""Linear probes on frozen features."""

from graftlab.probe.linear import LinearProbeClassifier, LinearProbeRegressor

__all__ = ["LinearProbeClassifier", "LinearProbeRegressor"]
