"""Hyper-parameter search over a Grafter: search spaces in YAML, Optuna TPE with pruning,
k-fold CV on cached features, studies in memory, SQLite or PostgreSQL (several workers)."""

from graftlab.tune.space import Param, SearchSpace, load_space
from graftlab.tune.tuner import Tuner

__all__ = ["Param", "SearchSpace", "Tuner", "load_space"]
