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

__all__ = ["Backbone", "BackboneSpec", "ModuleBackbone", "create_backbone", "get_spec",
           "list_backbones", "register_backbone", "wrap_module"]
