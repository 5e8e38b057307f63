"""The schemas of extract, advise, select, tune, multitask and tag."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from graftlab.config.schema import (BackboneConfig, ExtractData, ExtractModel, Fraction, Limit,
                                    ModelConfig, Positive, Rate, SelectChoice,
                                    Task, TrainConfig, Training, _comma_list, _Section)


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
    select: SelectChoice = SelectChoice()
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
    overwrite: bool = False  # replace an existing --out file
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
    strategy: list[str] = ["head_only"]  # several: compared, each with every weighting
    k: Positive = 2
    shared: Positive | None = 256
    weighting: list[str] = ["equal"]  # several: one multi-task model each, side by side

    _split = field_validator("weighting", "strategy", mode="before")(_comma_list)


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
    # a text two rows of one task label differently (WNUT tags a few repeated tweets twice):
    # "error" names it, "first" keeps the first label
    conflicts: Literal["error", "first"] = "error"
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


class TagTrain(Training):
    # defaults: the best of benchmarks/ner.py --design (wnut16:train only, not its test split)
    strategy: str = "last_k"
    lr: Rate = 3e-3
    lr_backbone: Rate | None = 3e-4


class TagConfig(_Section):
    """``graftlab tag``: token classification (NER) on tagged sentences."""

    data: TagData
    model: TagModel = TagModel()
    train: TagTrain = TagTrain()
    runs_dir: str = "runs"


