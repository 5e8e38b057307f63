"""Domain adaptation: labelled source, unlabelled target, the one trainer."""

from graftlab.adapt.adapter import Adapter

__all__ = ["Adapter"]
