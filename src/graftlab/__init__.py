"""graftlab: graft a pretrained model (the rootstock) onto your task, offline."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Grafter", "GrafterRegressor", "__version__", "advise"]


def __getattr__(name: str) -> Any:  # lazy: `import graftlab` stays light for the CLI
    if name == "Grafter":
        from graftlab.grafter import Grafter

        return Grafter
    if name == "GrafterRegressor":
        from graftlab.regressor import GrafterRegressor

        return GrafterRegressor
    if name == "advise":
        from graftlab.workflows.advise import advise

        return advise
    raise AttributeError(f"module 'graftlab' has no attribute {name!r}")
