"""graftlab: graft a pretrained model (the rootstock) onto your task, offline."""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it; imported on first use, so that `import graftlab`
# stays light for the CLI
_LAZY = {
    "Grafter": "graftlab.grafter",
    "GrafterRegressor": "graftlab.regressor",
    "TokenTagger": "graftlab.tagger",
    "advise": "graftlab.workflows.advise",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'graftlab' has no attribute {name!r}")
