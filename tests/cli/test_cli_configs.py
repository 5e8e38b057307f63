"""Every command takes a YAML config plus dotted overrides, like `fit`; options still work."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.cli.configs import split_words


@pytest.fixture
def colours(tmp_path):
    rng = np.random.default_rng(0)
    for name, colour in [("red", (210, 40, 30)), ("blue", (30, 60, 210))]:
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(10):
            image = np.clip(np.array(colour) + rng.integers(-20, 21, (32, 32, 3)), 0, 255)
            Image.fromarray(image.astype(np.uint8)).save(tmp_path / "imgs" / name / f"{i}.png")
    return tmp_path / "imgs"


def test_split_words_tells_config_overrides_and_data_apart(tmp_path):
    (tmp_path / "odd=name.csv").write_text("text,label\n")
    words = ["probe.yaml", "model.layer=stem", "data/", str(tmp_path / "odd=name.csv")]
    assert split_words(words) == ("probe.yaml", ["model.layer=stem"],
                                  ["data/", str(tmp_path / "odd=name.csv")])


def test_each_option_sets_the_config_key_of_its_name_unless_renamed():
    from graftlab.cli.configs import option_keys
    from graftlab.config import AdaptConfig, CompareConfig

    assert option_keys(CompareConfig, ["epochs", "test_data", "out", "data"],
                       {"data": "data.path"}) == {
        "epochs": "train.epochs", "test_data": "data.test_data", "out": "out",
        "data": "data.path"}
    with pytest.raises(TypeError, match="option 'method' sets no config key of AdaptConfig"):
        option_keys(AdaptConfig, ["method"])


def test_an_option_name_two_sections_share_must_be_renamed():
    from pydantic import BaseModel

    from graftlab.cli.configs import option_keys

    class Section(BaseModel):
        seed: int = 0

    class Twice(BaseModel):
        data: Section = Section()
        train: Section = Section()

    with pytest.raises(TypeError, match="'seed' sets data.seed or train.seed of Twice"):
        option_keys(Twice, ["seed"])
    assert option_keys(Twice, ["seed"], {"seed": "train.seed"}) == {"seed": "train.seed"}


def test_probe_from_yaml_then_options_then_overrides(colours, tmp_path):
    config = tmp_path / "probe.yaml"
    config.write_text(f"data: {{path: {colours}, test_size: 0.5}}\n"
                      f"model: {{image_size: 64}}\nseed: 3\nruns_dir: {tmp_path / 'runs'}\n")
    result = CliRunner().invoke(app, ["probe", str(config), "--image-size", "32", "--seed", "1",
                                      "seed=2"])
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "runs").iterdir()
    saved = json.loads((folder / "config.json").read_text())
    # the file's test_size, the option's image size, the override's seed
    assert (saved["test_size"], saved["image_size"], saved["seed"]) == (0.5, 32, 2)
    assert json.loads((folder / "metrics.json").read_text())["test"] == 10


def test_probe_takes_its_held_out_set_as_an_option(colours, tmp_path):
    result = CliRunner().invoke(app, ["probe", str(colours), "--test-data", str(colours),
                                      "--image-size", "32", "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "r").iterdir()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert (metrics["train"], metrics["test"]) == (20, 20)


def test_compare_and_adapt_read_their_data_from_the_yaml(tmp_path):
    for command, text in [("compare", "data: {path: nowhere-at-all}\n"),
                          ("adapt", "data: {source: nowhere-at-all, target: mnist}\n")]:
        config = tmp_path / f"{command}.yaml"
        config.write_text(text)
        result = CliRunner().invoke(app, [command, str(config), "--out", str(tmp_path / "o")])
        assert result.exit_code == 2
        assert "nowhere-at-all" in result.stderr  # the loader was asked for the file's data
        assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command, words, message", [
    ("compare", [], "config section 'data' is required, with at least config key 'data.path'."),
    ("adapt", ["--source", "mnist"], "config key 'data.target' is required"),
    ("probe", ["a", "b"], "unexpected argument(s) a b"),
    ("compare", ["vader:movies"], "for the data, write `--data vader:movies`."),  # as probe's
    ("adapt", ["mnist"], "for the data, write `--source mnist`."),
    ("compare", ["train.epoch=2", "--data", "x"], "Did you mean 'train.epochs'?"),
    ("adapt", ["model.strategy=last_k", "model.bottelneck=8"], "Did you mean "
     "'model.bottleneck'?"),
])
def test_missing_or_misspelt_configuration_is_explained(command, words, message):
    result = CliRunner().invoke(app, [command, *words])
    assert result.exit_code == 2
    assert message in result.stderr
