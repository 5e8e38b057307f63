"""Training methods: small modules whose forward returns a dict holding ``"loss"``.

``ERM`` for labelled data; the domain-adaptation methods (one file each: dann, dan, coral,
cdan, mcc, pada, vat, vada, and the source_only baseline) for labelled source + unlabelled
target.
"""

from graftlab.methods import cdan, coral, dan, dann, mcc, pada, vat  # noqa: F401  (register)
from graftlab.methods.adaptation import METHODS, Adaptation, create_method, list_methods
from graftlab.methods.erm import ERM
from graftlab.methods.tokens import TokenERM, token_loss

__all__ = ["ERM", "METHODS", "TokenERM", "token_loss", "Adaptation", "create_method", "list_methods"]
