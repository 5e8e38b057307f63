"""Search spaces: the YAML schema and its error messages (each names the parameter)."""

from __future__ import annotations

import pytest

from graftlab import Grafter
from graftlab.errors import ConfigError
from graftlab.tune import load_space

NAMES = list(Grafter().get_params(deep=False))


def _space(**params):
    return {"params": params}


def test_a_yaml_space_loads_and_draws_values(tmp_path):
    import optuna

    path = tmp_path / "space.yaml"
    path.write_text("params:\n  lr: {type: float, low: 1.0e-4, high: 0.1, log: true}\n"
                    "  k: {type: int, low: 1, high: 4}\n"
                    "  strategy: {type: categorical, choices: [lora, last_k]}\n"
                    "fixed: {epochs: 2}\n")
    space = load_space(path)
    space.check_names(NAMES)
    trial = optuna.create_study().ask()
    drawn = space.suggest(trial)
    assert 1e-4 <= drawn["lr"] <= 0.1 and drawn["k"] in range(1, 5)
    assert drawn["strategy"] in ("lora", "last_k") and space.fixed == {"epochs": 2}


@pytest.mark.parametrize("space, words", [
    (_space(lr={"type": "float", "low": 0.1, "high": 0.01}),
     ["params.lr", "empty range", "low 0.1 is not below high 0.01"]),
    (_space(strategy={"type": "categorical", "choices": []}),
     ["params.strategy", "empty range"]),
    (_space(lr={"type": "float", "low": 0, "high": 1, "log": True}),
     ["params.lr", "log: true needs low > 0"]),
    (_space(lr={"type": "float", "low": 0.1}), ["params.lr", "needs both low and high"]),
    (_space(lr={"type": "float", "low": 0.1, "high": 1, "choices": [1]}),
     ["params.lr", "takes low/high, not choices"]),
    (_space(lr={"type": "flaot", "low": 0.1, "high": 1}), ["params.lr.type", "'float'"]),
    (_space(lr={"type": "float", "low": 0.1, "hihg": 1}),
     ["params.lr.hihg", "unknown key", "Did you mean 'high'?"]),
    ({"parms": {}}, ["parms", "unknown key", "Did you mean 'params'?"]),
    ({"params": {}}, ["params is empty: nothing to search"]),
    (_space(lr={"type": "float", "low": 0.1, "high": 1, "step": -0.01}),
     ["params.lr", "step must be above 0, got -0.01"]),
    (_space(k={"type": "int", "low": 1, "high": 4, "step": 0.5}),
     ["params.k", "step must be above 0 and whole, got 0.5"]),
    ([1, 2], ["must be a mapping"]),
])
def test_a_malformed_space_is_named(space, words):
    with pytest.raises(ConfigError) as exc:
        load_space(space)
    for word in words:
        assert word in str(exc.value)


@pytest.mark.parametrize("space, words", [
    (_space(learning_rate={"type": "float", "low": 0.1, "high": 1}),
     ["unknown parameter 'learning_rate' in params", "searchable parameters:", "lr"]),
    (_space(lora_rank={"type": "int", "low": 2, "high": 8}),
     ["unknown parameter 'lora_rank'", "Did you mean 'lora_r'?"]),
    ({"params": {"lr": {"type": "float", "low": 0.1, "high": 1}}, "fixed": {"epoch": 3}},
     ["'epoch' in fixed", "Did you mean 'epochs'?"]),
    (_space(batch_size={"type": "float", "low": 8, "high": 64}),
     ["'batch_size' takes whole numbers", "type: int"]),
    (_space(strategy={"type": "categorical", "choices": ["linear_probe", "head_onyl"]}),
     ["params.strategy", "head_onyl", "head_only"]),
    ({"params": {"lr": {"type": "float", "low": 0.1, "high": 1}},
      "fixed": {"backbone": "minilm_l6"}}, ["fixed.backbone would override"]),
    (_space(backbone={"type": "categorical", "choices": ["minilm_l6"]}),
     ["'backbone' cannot be searched"]),
    (_space(label_smoothing={"type": "float", "low": 0.0, "high": 1.0}),
     ["params.label_smoothing value 1.0 is out of range", "less than 1"]),
    (_space(batch_size={"type": "categorical", "choices": [16, 0]}),
     ["params.batch_size value 0 is out of range"]),
    ({"params": {"lr": {"type": "float", "low": 0.1, "high": 1}}, "fixed": {"lr": 0.1}},
     ["lr both searched (params) and fixed"]),
])
def test_names_and_values_are_checked_against_the_estimator(space, words):
    with pytest.raises(ConfigError) as exc:
        load_space(space).check_names(NAMES)
    for word in words:
        assert word in str(exc.value)


def test_a_missing_space_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="space.yaml does not exist"):
        load_space(tmp_path / "space.yaml")
