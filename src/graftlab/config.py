"""Fit configuration: a YAML file, dotted overrides on the command line, unknown keys refused.

    data:  {path: vader:movies, test_size: 0.2}
    model: {backbone: minilm_l6, head: linear}
    train: {strategy: lora, epochs: 3}

    graftlab fit fit.yaml train.epochs=5 model.head=mlp
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from graftlab.errors import ConfigError, closest


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Section):
    path: str
    text_column: str = "text"
    label_column: str = "label"
    test_size: float = 0.2
    skip_corrupt: bool = False


class ModelConfig(_Section):
    backbone: str = "efficientnet_lite0"
    head: str = "linear"
    head_options: dict[str, Any] = {}
    layer: str | None = None
    pooling: str | None = None
    image_size: int | None = None
    max_length: int | None = None


class TrainConfig(_Section):
    strategy: str = "head_only"
    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-3
    lr_backbone: float | None = None
    weight_decay: float = 0.01
    k: int = 2
    lr_decay: float = 0.7
    lora_r: int = 8
    lora_alpha: int = 16
    label_smoothing: float = 0.0
    mixup: float = 0.0
    l2sp: float = 0.0
    augment: bool | None = None
    early_stopping: int | None = None
    validation_fraction: float = 0.0
    seed: int = 0
    pretrained: bool = True
    freeze_bn_stats: bool | None = None


class FitConfig(_Section):
    data: DataConfig
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    runs_dir: str = "runs"


def _fields(model: type[BaseModel], path: list[str]) -> list[str]:
    """The valid keys at ``path`` (for 'did you mean' hints)."""
    for key in path:
        annotation = model.model_fields[key].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _unknown_key(path: list[str]) -> ConfigError:
    known = _fields(FitConfig, path[:-1])
    dotted = ".".join(path)
    guess = closest(path[-1], known)
    where = ".".join(path[:-1]) or "the top level"
    return ConfigError(
        f"config key {dotted!r} does not exist. Valid keys in {where}: {', '.join(known)}."
        + (f" Did you mean {'.'.join([*path[:-1], guess])!r}?" if guess else ""))


def apply_override(raw: dict, override: str) -> None:
    """``a.b=value`` (value parsed as YAML) into the nested dict ``raw``."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} is not KEY=VALUE.",
                          hint="write e.g. train.epochs=3 or model.backbone=minilm_l6.")
    key, value = override.split("=", 1)
    path = key.strip().split(".")
    node = raw
    for depth, part in enumerate(path[:-1]):
        if part not in _fields(FitConfig, path[:depth]):
            raise _unknown_key(path[:depth + 1])
        node = node.setdefault(part, {})
    if path[-1] not in _fields(FitConfig, path[:-1]):
        raise _unknown_key(path)
    node[path[-1]] = yaml.safe_load(value) if value else None


def load_config(path: str | Path | None, overrides: list[str] = ()) -> FitConfig:
    """Read YAML (if given), apply overrides, validate; errors name the key and the fix."""
    raw: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist.",
                              hint="write one (see `graftlab fit --help`) or pass overrides "
                              "only, e.g. data.path=vader:movies.")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {path} must hold a mapping (sections data, model, "
                              "train).")
    for override in overrides:
        apply_override(raw, override)
    try:
        return FitConfig.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(p) for p in error["loc"]]
        if error["type"] == "extra_forbidden":
            raise _unknown_key(loc) from None
        if error["type"] == "missing":
            raise ConfigError(f"config key {'.'.join(loc)!r} is required.",
                              hint=f"add it, e.g. {'.'.join(loc)}=vader:movies.") from None
        raise ConfigError(f"config key {'.'.join(loc)!r}: {error['msg']} "
                          f"(got {error.get('input')!r}).") from None
