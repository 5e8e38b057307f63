"""Pretrained backbones behind one small contract (see :mod:`graftlab.backbones.base`)."""

from graftlab.backbones.base import Backbone
from graftlab.backbones.custom import ModuleBackbone, wrap_module
from graftlab.backbones.registry import (
    BackboneSpec,
    create_backbone,
    get_spec,
    list_backbones,
    register_backbone,
)

# the families register themselves (after the registry they register with)
from graftlab.backbones import efficientnet, hf_text  # noqa: E402, F401, I001

__all__ = ["Backbone", "BackboneSpec", "ModuleBackbone", "create_backbone", "get_spec",
           "list_backbones", "register_backbone", "wrap_module"]
