"""graftlab: graft a pretrained model (the rootstock) onto your task, offline."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Grafter", "GrafterRegressor", "TokenTagger", "__version__"]


def __getattr__(name: str) -> Any:  # lazy: `import graftlab` stays light for the CLI
    if name == "Grafter":
        from graftlab.grafter import Grafter

        return Grafter
    if name == "GrafterRegressor":
        from graftlab.regressor import GrafterRegressor

        return GrafterRegressor
    if name == "TokenTagger":
        from graftlab.tagger import TokenTagger

        return TokenTagger
    raise AttributeError(f"module 'graftlab' has no attribute {name!r}")
