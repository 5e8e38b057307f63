"""The per-command configurations: YAML, then the options given, then dotted overrides; the
same closest-key errors for every command; ranges named with the option that set them."""

from __future__ import annotations

import pytest

from graftlab.config import (AdaptConfig, CompareConfig, ExtractConfig, FitConfig, ProbeConfig,
                             load_config)
from graftlab.errors import ConfigError


def test_options_win_over_the_file_and_overrides_win_over_both(tmp_path):
    path = tmp_path / "compare.yaml"
    path.write_text("data: {path: mnist, limit: 100}\ntrain: {epochs: 2, seeds: 2}\n")
    cfg = load_config(path, ["train.seeds=4"], schema=CompareConfig,
                      options={"train.epochs": 7, "train.seeds": 3})
    assert (cfg.data.path, cfg.data.limit, cfg.train.epochs, cfg.train.seeds) == \
        ("mnist", 100, 7, 4)


def test_comma_lists_and_a_label_map_from_yaml(tmp_path):
    path = tmp_path / "adapt.yaml"
    path.write_text("data: {source: a, target: b, label_map: {pos: positive}}\n"
                    "train: {methods: 'dann, coral'}\n")
    cfg = load_config(path, schema=AdaptConfig)
    assert cfg.train.methods == ["dann", "coral"] and cfg.data.label_map == {"pos": "positive"}
    cfg = load_config(None, ["data.path=x", "train.strategies=full,lora"], schema=CompareConfig)
    assert cfg.train.strategies == ["full", "lora"]


@pytest.mark.parametrize("schema, override, message", [
    (ProbeConfig, "model.layr=blocks.3", "Did you mean 'model.layer'?"),
    (CompareConfig, "train.epoch=2", "Did you mean 'train.epochs'?"),
    (AdaptConfig, "train.method=dann", "Did you mean 'train.methods'?"),
    (ExtractConfig, "model.layer=stem", "Did you mean 'model.layers'?"),
    (FitConfig, "data.test_dat=x", "Did you mean 'data.test_data'?"),
    (CompareConfig, "limit=5", "Valid keys in the top level: data, model, train"),
    # a key of another section: that key, before a near name where it was put
    (CompareConfig, "limit=5", "Did you mean 'data.limit'?"),
    (FitConfig, "text_column=review", "Did you mean 'data.text_column'?"),
    (FitConfig, "train.backbone=minilm_l6", "Did you mean 'model.backbone'?"),
])
def test_every_command_names_the_closest_key(schema, override, message):
    with pytest.raises(ConfigError, match=r"does not exist(.|\n)*" + message.replace(".", r"\.")
                       .replace("?", r"\?")):
        load_config(None, [override], schema=schema)


@pytest.mark.parametrize("schema, key, value, message", [
    (CompareConfig, "data.limit", 1, "--limit (data.limit) must be an integer >= 2, got 1."),
    (CompareConfig, "data.limit", 0, "--limit (data.limit) must be an integer >= 2, got 0."),
    (CompareConfig, "train.batch_size", 0, "--batch-size (train.batch_size) must be an integer "
     ">= 1, got 0."),
    (ProbeConfig, "data.test_size", 1.0, "--test-size (data.test_size) must be a number > 0 "
     "and < 1, got 1.0."),
    (ProbeConfig, "model.image_size", 0, "--image-size (model.image_size) must be an integer "
     ">= 1, got 0."),
    (AdaptConfig, "train.pseudo_fraction", 1.5, "--pseudo-fraction (train.pseudo_fraction) "
     "must be a number > 0 and <= 1, got 1.5."),
    (ExtractConfig, "model.max_length", -3, "--max-length (model.max_length) must be an "
     "integer >= 1, got -3."),
])
def test_a_value_out_of_range_names_the_option_and_the_range(schema, key, value, message):
    required = {ProbeConfig: {"data.path": "x"}, CompareConfig: {"data.path": "x"},
                ExtractConfig: {"data.path": "x"},
                AdaptConfig: {"data.source": "a", "data.target": "b"}}[schema]
    flag = "--" + key.split(".")[-1].replace("_", "-")
    with pytest.raises(ConfigError) as caught:
        load_config(None, schema=schema, options={**required, key: value}, flags={key: flag})
    assert str(caught.value) == message


def test_a_value_from_the_file_is_named_by_its_key(tmp_path):
    path = tmp_path / "probe.yaml"
    path.write_text("data: {path: x, test_size: 0}\n")
    with pytest.raises(ConfigError, match=r"^config key 'data.test_size' must be a number > 0 "
                                          r"and < 1, got 0\.$"):
        load_config(path, schema=ProbeConfig, flags={"data.test_size": "--test-size"})


def test_a_value_for_a_section_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="'train' is a section"):
        load_config(None, ["data.path=x", "train=3", "train.epochs=2"], schema=CompareConfig)


def test_a_choice_out_of_a_list_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"--select-epoch \(train.select_epoch\): Input should "
                                          r"be 'entropy', 'info_max' or 'snd' \(got 'infomax'\)"
                                          r"\. Did you mean 'info_max'\?"):
        load_config(None, schema=AdaptConfig,
                    options={"data.source": "a", "data.target": "b",
                             "train.select_epoch": "infomax"},
                    flags={"train.select_epoch": "--select-epoch"})


def test_a_dotted_override_reaches_into_a_mapping_setting():
    from graftlab.config import FitConfig
    from graftlab.config.loading import load_config

    config = load_config(None, ["data.path=digits", "model.head=mlp",
                                "model.head_options.hidden=[64]",
                                "model.head_options.dropout=0.2"], schema=FitConfig)
    assert config.model.head_options == {"hidden": [64], "dropout": 0.2}
