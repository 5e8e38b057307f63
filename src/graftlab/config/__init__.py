"""Command configurations: a YAML file, options and dotted overrides, unknown keys refused.

One pydantic model per command (fit, probe, compare, adapt, extract, tune) is the one validation
layer: every number has its allowed range, checked before any work starts. ::

    data:  {path: vader:movies, test_size: 0.2}
    model: {backbone: minilm_l6, head: linear}
    train: {strategy: lora, epochs: 3}

    graftlab fit fit.yaml train.epochs=5 model.head=mlp
    graftlab compare compare.yaml train.epochs=2 --limit 200
"""

from graftlab.config.loading import apply_override, load_config
from graftlab.config.more import (
    AdviseData,
    AdviseModel,
    AdviseConfig,
    SelectData,
    SelectConfig,
    TuneData,
    TuneSearch,
    TuneConfig,
    ExtractConfig,
    MultiTaskTaskConfig,
    MultiTaskModel,
    MultiTaskTrain,
    MultiTaskConfig,
    TagData,
    TagModel,
    TagTrain,
    TagConfig,
)
from graftlab.config.schema import (
    DataConfig,
    ProbeData,
    CompareData,
    ExtractData,
    AdaptData,
    BackboneConfig,
    FeaturesConfig,
    ModelConfig,
    ExtractModel,
    AdaptModel,
    TrainConfig,
    CompareTrain,
    AdaptTrain,
    SelectChoice,
    SelectSection,
    FitConfig,
    ProbeConfig,
    CompareConfig,
    AdaptConfig,
    Positive,
    Fraction,
    Rate,
    NonNegative,
    Limit,
    Task,
    METHODS,
)

__all__ = [
    "apply_override",
    "load_config",
    "AdviseData",
    "AdviseModel",
    "AdviseConfig",
    "SelectData",
    "SelectConfig",
    "TuneData",
    "TuneSearch",
    "TuneConfig",
    "ExtractConfig",
    "MultiTaskTaskConfig",
    "MultiTaskModel",
    "MultiTaskTrain",
    "MultiTaskConfig",
    "TagData",
    "TagModel",
    "TagTrain",
    "TagConfig",
    "DataConfig",
    "ProbeData",
    "CompareData",
    "ExtractData",
    "AdaptData",
    "BackboneConfig",
    "FeaturesConfig",
    "ModelConfig",
    "ExtractModel",
    "AdaptModel",
    "TrainConfig",
    "CompareTrain",
    "AdaptTrain",
    "SelectChoice",
    "SelectSection",
    "FitConfig",
    "ProbeConfig",
    "CompareConfig",
    "AdaptConfig",
    "Positive",
    "Fraction",
    "Rate",
    "NonNegative",
    "Limit",
    "Task",
    "METHODS",
]
