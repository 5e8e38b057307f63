"""Search spaces: which estimator parameters a study varies, and over what, read from YAML.

    params:
      strategy: {type: categorical, choices: [linear_probe, head_only]}
      lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
      batch_size: {type: categorical, choices: [16, 32, 64]}
      k: {type: int, low: 1, high: 4}
    fixed:           # optional: estimator parameters every trial shares
      epochs: 5

Unknown keys are errors; each name must be a parameter of the estimator (did-you-mean), each
range non-empty, and each bound or choice a value ``graftlab fit`` would accept
(:class:`~graftlab.config.TrainConfig`'s ranges: ``label_smoothing`` below 1 ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from graftlab.config import TrainConfig
from graftlab.config.loading import read_yaml_file
from graftlab.errors import ConfigError, GraftlabError, closest

# estimator parameters a study may not vary: they are objects or places, not settings
NOT_TUNABLE = ("callbacks", "checkpoint_dir", "distill_from", "backbone")
Value = bool | int | float | str | None
# names people reach for, and the Grafter's for them
ALIASES = {"learning_rate": "lr", "lr_head": "lr", "rank": "lora_r", "lora_rank": "lora_r",
           "wd": "weight_decay", "bs": "batch_size", "smoothing": "label_smoothing"}


class Param(BaseModel):
    """One searched parameter: a float or int range (``log`` scale, ``step``) or choices."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Value] | None = None

    @model_validator(mode="after")
    def _shape(self) -> Param:
        if self.type == "categorical":
            if self.low is not None or self.high is not None or self.log or self.step:
                raise ValueError("a categorical parameter takes choices only (no low/high/log/"
                                 "step)")
            if not self.choices:
                raise ValueError("empty range: a categorical parameter needs at least one "
                                 "choice")
            return self
        if self.choices is not None:
            raise ValueError(f"a {self.type} parameter takes low/high, not choices (or make "
                             "it type: categorical)")
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} parameter needs both low and high")
        if self.low >= self.high:
            raise ValueError(f"empty range: low {self.low:g} is not below high {self.high:g}")
        if self.log and self.low <= 0:
            raise ValueError(f"log: true needs low > 0, got {self.low:g}")
        if self.log and self.step:
            raise ValueError("log and step cannot be combined")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("an int parameter needs whole-number low and high")
        if self.step is not None and (self.step <= 0 or (self.type == "int" and
                                                         self.step != int(self.step))):
            raise ValueError(f"step must be above 0{' and whole' if self.type == 'int' else ''}"
                             f", got {self.step:g}")
        return self

    def values(self) -> list[Value]:
        """The values to check against the estimator's allowed ranges: bounds or choices."""
        if self.type == "categorical":
            return list(self.choices or [])
        cast = int if self.type == "int" else float
        return [cast(self.low), cast(self.high)]

    def suggest(self, trial: Any, name: str) -> Value:
        """Draw this parameter's value for an Optuna ``trial``."""
        if self.type == "categorical":
            return trial.suggest_categorical(name, self.choices)
        if self.type == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)


class SearchSpace(BaseModel):
    """``params``: name -> :class:`Param`; ``fixed``: name -> value for every trial."""

    model_config = ConfigDict(extra="forbid")

    params: dict[str, Param]
    fixed: dict[str, Any] = {}

    @model_validator(mode="after")
    def _something(self) -> SearchSpace:
        if not self.params:
            raise ValueError("params is empty: nothing to search (name at least one "
                             "parameter, e.g. lr: {type: float, low: 1.0e-4, high: 1.0e-1, "
                             "log: true})")
        return self

    def suggest(self, trial: Any) -> dict[str, Value]:
        """One trial's parameters, in the space's order."""
        return {name: p.suggest(trial, name) for name, p in self.params.items()}

    def record(self) -> dict:
        """Plain data that identifies the space (stored with a study to refuse another)."""
        return self.model_dump(mode="json", exclude_defaults=True)

    def check_names(self, allowed: list[str]) -> None:
        """Every name a parameter of the estimator (``allowed``), not varied and fixed at once,
        and every bound or choice a value the estimator accepts."""
        usable = sorted(set(allowed) - set(NOT_TUNABLE))
        for where, names in (("params", self.params), ("fixed", self.fixed)):
            for name in names:
                if name in NOT_TUNABLE and where == "params":
                    raise ConfigError(f"search space: {name!r} cannot be searched.",
                                      hint=f"set it on the estimator (or under fixed:); "
                                      f"searchable: {', '.join(usable)}.")
                if name not in allowed:
                    guess = ALIASES.get(name) or closest(name, usable)
                    raise ConfigError(
                        f"search space: unknown parameter {name!r} in {where}."
                        + (f" Did you mean {guess!r}?" if guess else ""),
                        hint=f"searchable parameters: {', '.join(usable)}.")
        if "backbone" in self.fixed:  # it would quietly replace the command's -b
            raise ConfigError("search space: fixed.backbone would override the estimator's "
                              "backbone.", hint="choose the backbone on the estimator (-b, "
                              "--backbone) and drop it from the space.")
        both = sorted(set(self.params) & set(self.fixed))
        if both:
            raise ConfigError(f"search space: {', '.join(both)} both searched (params) and "
                              "fixed.", hint="keep each name in one of the two sections.")
        for name, param in self.params.items():
            if param.type == "float" and _whole(name):
                raise ConfigError(f"search space: {name!r} takes whole numbers, but its range "
                                  "is type: float.", hint=f"make it type: int (or categorical "
                                  f"choices) for {name!r}.")
            _check_values(name, param.values())
        for name, value in self.fixed.items():
            _check_values(name, [value], what="fixed")


def _whole(name: str) -> bool:
    """Whether the train section takes only whole numbers for ``name`` (batch_size, epochs)."""
    if name not in TrainConfig.model_fields:
        return False
    try:
        TrainConfig.model_validate({name: 1.5})
    except ValidationError as exc:
        return exc.errors()[0]["type"] == "int_from_float"
    return False


def _registered(name: str) -> Any:
    """The registry whose entries a setting names (strategies, heads, methods), or None."""
    if name == "strategy":
        from graftlab.train.strategies import STRATEGIES

        return STRATEGIES
    if name == "head":
        from graftlab.heads.heads import HEADS

        return HEADS
    if name == "method":
        from graftlab.methods import METHODS

        return METHODS
    return None


def _check_values(name: str, values: list[Value], what: str = "params") -> None:
    """Each value as ``graftlab fit``'s train section would take it (where it has the name);
    a strategy, head or method by its registry, before the first trial draws it."""
    registry = _registered(name)
    for value in values if registry is not None else []:
        try:
            registry.get(value)
        except GraftlabError as exc:
            raise ConfigError(f"search space: {what}.{name}: {exc.message}",
                              hint=exc.hint) from None
    if name not in TrainConfig.model_fields:
        return
    for value in values:
        try:
            TrainConfig.model_validate({name: value})
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"]
            raise ConfigError(f"search space: {what}.{name} value {value!r} is out of range "
                              f"({msg}).", hint=f"narrow the range of {name!r}.") from None


def load_space(space: str | Path | dict | SearchSpace) -> SearchSpace:
    """A :class:`SearchSpace` from a YAML file, a mapping, or itself; errors name the key."""
    if isinstance(space, SearchSpace):
        return space
    source = "search space"
    if isinstance(space, str | Path):
        path = Path(space)
        space = read_yaml_file(path, "search space file", "write one: a 'params:' mapping of "
                               "name -> {type, low, high} or {type: categorical, choices: "
                               "[...]}.")
        source = f"search space {path}"
    if not isinstance(space, dict):
        raise ConfigError(f"{source} must be a mapping with a 'params:' section.")
    try:
        return SearchSpace.model_validate(space)
    except ValidationError as exc:
        errors = exc.errors()  # an unknown key first: it often explains a missing one
        error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        where = ".".join(str(p) for p in error["loc"]) or "the top level"
        msg = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            section = error["loc"][:-1]
            known = list(Param.model_fields if section else SearchSpace.model_fields)
            guess = closest(str(error["loc"][-1]), known)
            msg = (f"unknown key; known keys: {', '.join(known)}"
                   + (f". Did you mean {guess!r}?" if guess else ""))
        raise ConfigError(f"{source}: {where}: {msg}.") from None
