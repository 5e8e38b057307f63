"""graftlab fit's configuration: YAML + dotted overrides, unknown keys named with the fix."""

from __future__ import annotations

import pytest

from graftlab.config import load_config
from graftlab.errors import ConfigError


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "fit.yaml"
    path.write_text("data: {path: vader:movies}\ntrain: {strategy: lora, epochs: 2}\n")
    config = load_config(path, ["train.epochs=4", "model.head=mlp", "train.lr=3e-4"])
    assert (config.train.strategy, config.train.epochs, config.model.head) == ("lora", 4, "mlp")
    assert config.train.lr == pytest.approx(3e-4)


def test_unknown_key_in_the_file_names_the_closest(tmp_path):
    path = tmp_path / "fit.yaml"
    path.write_text("data: {path: x}\ntrain: {epoch: 2}\n")
    with pytest.raises(ConfigError, match="'train.epoch' does not exist.*Did you mean "
                                          "'train.epochs'"):
        load_config(path)


def test_unknown_override_names_the_closest():
    with pytest.raises(ConfigError, match="'modle' does not exist.*Did you mean 'model'"):
        load_config(None, ["data.path=x", "modle.head=mlp"])
    with pytest.raises(ConfigError, match="'train.stratgy' does not exist.*'train.strategy'"):
        load_config(None, ["data.path=x", "train.stratgy=full"])


def test_bad_values_and_missing_keys():
    with pytest.raises(ConfigError, match="'train.epochs'"):
        load_config(None, ["data.path=x", "train.epochs=many"])
    with pytest.raises(ConfigError, match="'data' is required"):
        load_config(None, [])
    with pytest.raises(ConfigError, match="is not KEY=VALUE"):
        load_config(None, ["train.epochs"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/no/such/fit.yaml")


def test_a_section_with_every_key_commented_out_takes_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {path: x.csv}\ntrain:\n  # epochs: 3\nmodel:\n  head_options:\n")
    cfg = load_config(path, ["train.epochs=2", "model.head_options.hidden=[8]"])
    assert cfg.train.epochs == 2 and cfg.model.head_options == {"hidden": [8]}
    assert load_config(path).model.head_options == {}


def test_a_key_given_twice_in_the_file_is_refused_with_its_lines(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  path: train.csv\n  path: test.csv\n")
    with pytest.raises(ConfigError, match=r"key 'path' is given twice \(lines 2 and 3\)"):
        load_config(path)
