"""Command configurations: a YAML file, options and dotted overrides, unknown keys refused.

One pydantic model per command (fit, probe, compare, adapt, extract, tune) is the one validation
layer: every number has its allowed range, checked before any work starts. ::

    data:  {path: vader:movies, test_size: 0.2}
    model: {backbone: minilm_l6, head: linear}
    train: {strategy: lora, epochs: 3}

    graftlab fit fit.yaml train.epochs=5 model.head=mlp
    graftlab compare compare.yaml train.epochs=2 --limit 200
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from graftlab.errors import ConfigError, closest

# the allowed ranges, named once (0 never silently means "the default")
Positive = Annotated[int, Field(ge=1)]
Fraction = Annotated[float, Field(gt=0, lt=1)]
Rate = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Limit = Annotated[int, Field(ge=2)]
Task = Literal["auto", "classification", "regression"]
METHODS = ["dann", "dan", "coral", "cdan", "mcc"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _comma_list(value: Any) -> Any:
    """``"a,b"`` (an option, or YAML) -> ``["a", "b"]``."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


# ----------------------------------------------------------------------------- data sections
class DataConfig(_Section):
    """fit's data: the labelled set, and an explicit held-out set or a seeded random split."""

    path: str
    text_column: str = "text"
    label_column: str = "label"
    test_size: Fraction = 0.2
    test_data: str | None = None
    skip_corrupt: bool = False


class ProbeData(DataConfig):
    target_column: str | None = None


class CompareData(ProbeData):
    limit: Limit | None = None


class ExtractData(_Section):
    path: str
    text_column: str = "text"
    label_column: str | None = None
    skip_corrupt: bool = False


class AdaptData(_Section):
    source: str
    target: str
    text_column: str = "text"
    label_column: str = "label"
    limit: Limit | None = None
    skip_corrupt: bool = False
    label_map: str | dict[str, str] | None = None
    grayscale: bool = False
    target_holdout: Annotated[float, Field(ge=0, lt=1)] = 0.2


# ---------------------------------------------------------------------------- model sections
class BackboneConfig(_Section):
    backbone: str = "efficientnet_lite0"
    image_size: Positive | None = None
    max_length: Positive | None = None


class FeaturesConfig(BackboneConfig):
    layer: str | None = None
    pooling: str | None = None


class ModelConfig(FeaturesConfig):
    head: str = "linear"
    head_options: dict[str, Any] = {}


class ExtractModel(BackboneConfig):
    layers: list[str] | None = None
    pooling: str | None = None
    batch_size: Positive | None = None

    _split = field_validator("layers", mode="before")(_comma_list)


class AdaptModel(BackboneConfig):
    strategy: str = "last_k"
    k: Positive = 2
    head: str = "linear"
    bottleneck: Positive = 256


# ---------------------------------------------------------------------------- train sections
class TrainConfig(_Section):
    strategy: str = "head_only"
    epochs: Positive = 5
    batch_size: Positive = 32
    lr: Rate = 1e-3
    lr_backbone: Rate | None = None
    weight_decay: NonNegative = 0.01
    k: Positive = 2
    lr_decay: Annotated[float, Field(gt=0, le=1)] = 0.7
    lora_r: Positive = 8
    lora_alpha: Positive = 16
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0
    mixup: NonNegative = 0.0
    l2sp: NonNegative = 0.0
    augment: bool | str | None = None  # a preset of graftlab.augment, e.g. 'expand'
    early_stopping: Positive | None = None
    validation_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.0
    seed: int = 0
    pretrained: bool = True
    freeze_bn_stats: bool | None = None
    group_by_length: bool = True
    distill_from: str | None = None  # a saved model or `graftlab fit` run folder: the teacher
    distill_temperature: Rate = 4.0
    distill_weight: Annotated[float, Field(ge=0, le=1)] = 0.9


class CompareTrain(_Section):
    strategies: list[str] | None = None
    scratch: bool = True
    seeds: Positive = 3
    epochs: Positive = 5
    batch_size: Positive = 32
    lr: Rate | None = None
    lr_backbone: Rate | None = None

    _split = field_validator("strategies", mode="before")(_comma_list)


class AdaptTrain(_Section):
    methods: list[str] = METHODS
    epochs: Positive = 5
    batch_size: Positive = 32
    lr: Rate = 1e-3
    transfer_weight: NonNegative = 1.0
    seeds: Positive = 1
    guard: bool = True
    keep: Literal["auto", "refined", "average", "selected"] = "auto"
    pseudo_fraction: Annotated[float, Field(gt=0, le=1)] = 0.5
    select_epoch: Literal["entropy", "info_max", "snd"] | None = None

    _split = field_validator("methods", mode="before")(_comma_list)


class SelectSection(_Section):
    """Source selection (``graftlab select``; ``--select`` on adapt): a registered selector,
    the fraction of the pool to keep (checked with the selector's own message: in (0, 1]),
    the selector's options, the seed of the evaluation curve's models, and (fit, compare) the
    target data to select for (default: their explicit test data)."""

    selector: str | None = None
    keep_fraction: float = 1.0
    selector_options: dict[str, Any] = {}
    seed: int = 0
    target: str | None = None  # fit, compare: what to select for (default: the test data)


# -------------------------------------------------------------------------- command configs
class FitConfig(_Section):
    data: DataConfig
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    select: SelectSection = SelectSection()
    runs_dir: str = "runs"
    track: str | None = None  # tensorboard or mlflow: graftlab.track, in the run folder


class ProbeConfig(_Section):
    data: ProbeData
    model: FeaturesConfig = FeaturesConfig()
    task: Task = "auto"
    seed: int = 0
    runs_dir: str = "runs"


class CompareConfig(_Section):
    data: CompareData
    model: BackboneConfig = BackboneConfig()
    train: CompareTrain = CompareTrain()
    task: Task = "auto"
    feature_map: bool = True
    select: SelectSection = SelectSection()
    runs_dir: str = "runs"
    out: str | None = None
    overwrite: bool = False
    track: str | None = None


class AdaptConfig(_Section):
    data: AdaptData
    model: AdaptModel = AdaptModel()
    train: AdaptTrain = AdaptTrain()
    select: SelectSection = SelectSection()
    feature_map: bool = True
    runs_dir: str = "runs"
    out: str | None = None
    overwrite: bool = False
    track: str | None = None


class AdviseData(_Section):
    path: str
    text_column: str = "text"
    label_column: str = "label"
    target_column: str | None = None
    limit: Limit | None = None
    skip_corrupt: bool = False


class AdviseModel(_Section):
    backbones: list[str] | None = None
    layers: list[str] | None = None
    poolings: list[str] | None = None
    image_size: Positive | None = None
    max_length: Positive | None = None

    _split = field_validator("backbones", "layers", "poolings", mode="before")(_comma_list)


class AdviseConfig(_Section):
    data: AdviseData
    model: AdviseModel = AdviseModel()
    scores: list[str] | None = None
    task: Task = "auto"
    seed: int = 0
    runs_dir: str = "runs"
    out: str | None = None
    overwrite: bool = False

    _split = field_validator("scores", mode="before")(_comma_list)


class SelectData(_Section):
    pool: str
    target: str
    text_column: str = "text"
    label_column: str = "label"
    source_column: str = "source"
    skip_corrupt: bool = False


class SelectConfig(_Section):
    data: SelectData
    model: BackboneConfig = BackboneConfig()
    select: SelectSection = SelectSection(selector="knn", keep_fraction=0.5)
    runs_dir: str = "runs"
    out: str | None = None
    overwrite: bool = False


class TuneData(_Section):
    path: str
    text_column: str = "text"
    label_column: str = "label"
    limit: Limit | None = None
    skip_corrupt: bool = False


class TuneSearch(_Section):
    space: str  # the search space, a YAML file (graftlab.tune.space)
    trials: Positive = 20  # the study's total of finished trials
    cv: Limit = 3
    sampler: Literal["tpe", "random"] = "tpe"
    pruner: Literal["median", "hyperband", "none"] = "median"
    storage: str | None = None  # None: in memory; a file path (SQLite) or SQLAlchemy URL
    study: str | None = None
    seed: int = 0


class TuneConfig(_Section):
    data: TuneData
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()  # every trial's settings, but for the space's
    tune: TuneSearch
    runs_dir: str = "runs"
    track: str | None = None  # each trial a nested run


class ExtractConfig(_Section):
    data: ExtractData
    model: ExtractModel = ExtractModel()
    out: str | None = None
    cache: bool = True


class MultiTaskTaskConfig(_Section):
    """A task of ``graftlab multitask``: name, type, and the data (set, folder, CSV/JSONL; a
    ``tokens`` task: a CoNLL-style file or a bundled tagged set, e.g. wnut16:train)."""

    name: str
    type: str
    data: str
    text_column: str = "text"
    label_column: str | None = None  # classification (default "label")
    target_column: str | None = None  # regression
    head: str | None = None
    head_options: dict[str, Any] = {}


class MultiTaskModel(BackboneConfig):
    backbone: str = "minilm_l6"
    strategy: str = "head_only"
    k: Positive = 2
    shared: Positive | None = 256
    weighting: list[str] = ["equal"]  # several: one multi-task model each, side by side

    _split = field_validator("weighting", mode="before")(_comma_list)


class MultiTaskTrain(_Section):
    epochs: Positive = 10
    batch_size: Positive = 32
    lr: Rate = 1e-3
    lr_backbone: Rate | None = None
    test_size: Fraction = 0.2
    seed: int = 0
    seeds: Positive = 1
    single_task: bool = False  # also one single-task model per task (the comparison)


class MultiTaskConfig(_Section):
    tasks: list[MultiTaskTaskConfig]
    model: MultiTaskModel = MultiTaskModel()
    train: MultiTaskTrain = MultiTaskTrain()
    runs_dir: str = "runs"
    out: str | None = None
    overwrite: bool = False


# ---------------------------------------------------------------------------------- loading
class TagData(_Section):
    path: str  # a CoNLL-style file, or a bundled tagged set ("wnut16:train")
    test_data: str | None = None  # default: wnut16:test for wnut16:train, else held out
    test_size: Fraction = 0.2
    column: int | None = None  # the tag's column in multi-column CoNLL files (-1: the last)


class TagModel(_Section):
    backbone: str = "minilm_l6"
    head: str = "token"
    head_options: dict[str, Any] = Field(default_factory=dict)
    layer: str | None = None
    max_length: Positive | None = None


class TagTrain(_Section):
    # defaults: the best of benchmarks/ner.py --design (wnut16:train only, not its test split)
    strategy: str = "last_k"
    epochs: Positive = 5
    batch_size: Positive = 32
    lr: Rate = 3e-3
    lr_backbone: Rate | None = 3e-4
    weight_decay: NonNegative = 0.01
    k: Positive = 2
    lr_decay: Annotated[float, Field(gt=0, le=1)] = 0.7
    lora_r: Positive = 8
    lora_alpha: Positive = 16
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0
    l2sp: NonNegative = 0.0
    early_stopping: Positive | None = None
    validation_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.0
    seed: int = 0


class TagConfig(_Section):
    """``graftlab tag``: token classification (NER) on tagged sentences."""

    data: TagData
    model: TagModel = TagModel()
    train: TagTrain = TagTrain()
    runs_dir: str = "runs"


def _section(model: type[BaseModel], key: str) -> type[BaseModel] | None:
    annotation = model.model_fields[key].annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) \
        else None


def _fields(model: type[BaseModel], path: list[str]) -> list[str]:
    """The valid keys at ``path`` (for 'did you mean' hints)."""
    for key in path:
        sub = _section(model, key) if key in model.model_fields else None
        if sub is None:
            return []
        model = sub
    return list(model.model_fields)


def _field(model: type[BaseModel], path: list[str]):
    for key in path[:-1]:
        model = _section(model, key)
    return model.model_fields[path[-1]]


def _unknown_key(path: list[str], schema: type[BaseModel] = FitConfig) -> ConfigError:
    known = _fields(schema, path[:-1])
    dotted = ".".join(path)
    guess = closest(path[-1], known)
    where = ".".join(path[:-1]) or "the top level"
    return ConfigError(
        f"config key {dotted!r} does not exist. Valid keys in {where}: {', '.join(known)}."
        + (f" Did you mean {'.'.join([*path[:-1], guess])!r}?" if guess else ""))


def _set(raw: dict, key: str, value: Any, schema: type[BaseModel]) -> None:
    path = key.strip().split(".")
    node = raw
    for depth, part in enumerate(path[:-1]):
        if part not in _fields(schema, path[:depth]):
            raise _unknown_key(path[:depth + 1], schema)
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"config key {'.'.join(path[:depth + 1])!r} is a section; "
                              "give it a mapping, not a value.")
    if path[-1] not in _fields(schema, path[:-1]):
        raise _unknown_key(path, schema)
    node[path[-1]] = value


def apply_override(raw: dict, override: str, schema: type[BaseModel] = FitConfig) -> None:
    """``a.b=value`` (value parsed as YAML) into the nested dict ``raw``."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} is not KEY=VALUE.",
                          hint="write e.g. train.epochs=3 or model.backbone=minilm_l6.")
    key, value = override.split("=", 1)
    _set(raw, key, yaml.safe_load(value) if value else None, schema)


def _constraints(field) -> list:
    """The constraint objects of a field, also inside ``X | None``."""
    found = list(field.metadata)
    for arg in get_args(field.annotation):
        for meta in getattr(arg, "__metadata__", ()):
            found += list(getattr(meta, "metadata", [meta]))
    return found


def _bounds(field) -> str:
    """A field's allowed range in words: 'an integer >= 1', 'a number > 0 and < 1'."""
    parts = []
    for item in _constraints(field):
        for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            if getattr(item, attr, None) is not None:
                parts.append(f"{sign} {getattr(item, attr)}")
    kind = "an integer" if "int" in str(field.annotation) else "a number"
    return f"{kind} {' and '.join(parts)}" if parts else kind


def _read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist.",
                          hint="write one (see the command's --help) or pass options and "
                          "overrides only, e.g. data.path=vader:movies.")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping (sections data, model, "
                          "train).")
    return raw


def load_config(path: str | Path | None, overrides: list[str] = (), *,
                schema: type[BaseModel] = FitConfig, options: dict[str, Any] | None = None,
                flags: dict[str, str] | None = None) -> Any:
    """Read YAML (if given), then ``options`` (dotted key -> value: the command-line options
    given), then ``overrides`` (``key=value``), and validate against ``schema``. Errors name
    the key (and ``flags[key]``, the option that set it), what is allowed, and the fix."""
    raw: dict = _read_yaml(path) if path is not None else {}
    given: set[str] = set()
    for key, value in (options or {}).items():
        _set(raw, key, value, schema)
        given.add(key)
    for override in overrides:
        apply_override(raw, override, schema)
        given.discard(override.split("=", 1)[0].strip())
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(p) for p in error["loc"] if not isinstance(p, int)]
        if error["type"] == "extra_forbidden":
            raise _unknown_key(loc, schema) from None
        while len(loc) > 1 and loc[-1] not in _fields(schema, loc[:-1]):
            loc.pop()  # a union's member name, not a key
        dotted = ".".join(loc)
        flag = (flags or {}).get(dotted) if dotted in given else None
        name = f"{flag} ({dotted})" if flag else f"config key {dotted!r}"
        if error["type"] == "missing":
            section = dotted if _fields(schema, loc) else None
            while _fields(schema, loc):  # a whole section: name its first required key
                model = schema
                for key in loc:
                    model = _section(model, key)
                loc = [*loc, next(k for k, f in model.model_fields.items() if f.is_required())]
            dotted = ".".join(loc)
            flag = (flags or {}).get(dotted)
            raise ConfigError((f"config section {section!r} is required, with at least "
                               if section else "") + f"config key {dotted!r}"
                              + ("." if section else " is required."),
                              hint=(f"give {flag}, or " if flag else "") +
                              f"add it to the config or as an override, e.g. {dotted}=mnist."
                              ) from None
        if error["type"] in ("greater_than", "greater_than_equal", "less_than",
                             "less_than_equal"):
            raise ConfigError(f"{name} must be {_bounds(_field(schema, loc))}, got "
                              f"{error.get('input')!r}.") from None
        guess = None
        if error["type"] == "literal_error" and isinstance(error.get("input"), str):
            guess = closest(error["input"], re.findall(r"'([^']*)'", error["ctx"]["expected"]))
        raise ConfigError(f"{name}: {error['msg']} (got {error.get('input')!r})."
                          + (f" Did you mean {guess!r}?" if guess else "")) from None
