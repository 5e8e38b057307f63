"""Domain adaptation: labelled source, unlabelled target, the one trainer."""

from graftlab.adapt.adapter import Adapter
from graftlab.adapt.regressor import AdapterRegressor

__all__ = ["Adapter", "AdapterRegressor"]
