"""Training methods: small modules whose forward returns a dict holding ``"loss"``."""

from graftlab.methods.erm import ERM

__all__ = ["ERM"]
