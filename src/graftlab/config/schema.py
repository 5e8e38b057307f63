"""The core commands' schemas (fit, probe, compare, adapt, extract's parts) and the types
that name every allowed range once."""


from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


# the allowed ranges, named once (0 never silently means "the default")
Positive = Annotated[int, Field(ge=1)]
Fraction = Annotated[float, Field(gt=0, lt=1)]
Rate = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Limit = Annotated[int, Field(ge=2)]
Task = Literal["auto", "classification", "regression"]
CompareTask = Literal["auto", "classification", "regression", "tokens"]
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
    column: int | None = None  # tagged sentences: the tag's column in multi-column CoNLL files


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
    target_text_column: str | None = None  # the target table's, where it differs (default: ^)
    target_label_column: str | None = None
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
class Training(_Section):
    """What every trained model takes (fit's and tag's train sections): the strategy, the
    optimisation and its regularisation."""

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
    l2sp: NonNegative = 0.0
    early_stopping: Positive | None = None
    validation_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.0
    seed: int = 0


class TrainConfig(Training):
    mixup: NonNegative = 0.0
    augment: bool | str | None = None  # a preset of graftlab.augment, e.g. 'expand'
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
    augment: str | None = None  # a preset of graftlab.augment for every method's batches

    _split = field_validator("methods", mode="before")(_comma_list)


class SelectSection(_Section):
    """Source selection (``graftlab select``; ``--select`` on adapt): a registered selector,
    the fraction of the pool to keep (checked with the selector's own message: in (0, 1]),
    the selector's options, the seed of the evaluation curve's models, and (fit, compare) the
    target data to select for (default: their explicit test data)."""

    selector: str | None = None
    keep_fraction: float | None = None  # None: the default, half the pool (DEFAULT_FRACTION)
    selector_options: dict[str, Any] = {}
    seed: int = 0
    target: str | None = None  # fit, compare: what to select for (default: the test data)

    @property
    def fraction(self) -> float:
        """The share kept: as given, else half the pool."""
        return DEFAULT_FRACTION if self.keep_fraction is None else self.keep_fraction


DEFAULT_FRACTION = 0.5  # a selector keeps half the pool unless told otherwise


class SelectChoice(SelectSection):
    """``graftlab select``'s section: a selector always runs (knn unless named)."""

    selector: str = "knn"


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
    task: CompareTask = "auto"  # tokens: tagged sentences (auto for wnut16, .conll/.bio files)
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


