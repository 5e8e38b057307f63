"""Saved models carry checksums: every kind of damage is refused with one line saying what."""

from __future__ import annotations

import json
import logging
import re
import shutil

import numpy as np
import pytest

from graftlab import Grafter
from graftlab.errors import ConfigError, DataError
from graftlab.integrity import (MANIFEST, discard_manifest, explain_load_error, read_json,
                                verify_manifest, write_manifest)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One small fitted model (EfficientNet-Lite0 at 32 px, 8 images), saved once; each test
    damages its own copy."""
    root = tmp_path_factory.mktemp("integrity")
    with pytest.MonkeyPatch.context() as mp:  # module scope: its own home and cache
        mp.setenv("GRAFTLAB_HOME", str(root / "home"))
        mp.setenv("GRAFTLAB_CACHE", str(root / "cache"))
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
        grafter = Grafter(strategy="head_only", epochs=1, batch_size=8,
                          backbone_options={"image_size": 32}).fit(x, ["cat", "dog"] * 4)
        folder = grafter.save(root / "model")
    return folder, grafter.decision_function(x), x


@pytest.fixture
def model(saved, tmp_path):
    folder, _, _ = saved
    return shutil.copytree(folder, tmp_path / "model")


def _one_line(exc: Exception) -> str:
    lines = str(exc).splitlines()
    assert len(lines) == 2 and lines[1].startswith("HINT: "), str(exc)
    return lines[0]


def test_save_writes_checksums_and_load_verifies_them(saved, model):
    _, scores, x = saved
    manifest = json.loads((model / MANIFEST).read_text())
    assert manifest["format"] == "graftlab.manifest/1"
    assert set(manifest["files"]) == {"model.safetensors", "config.json"}
    weights = manifest["files"]["model.safetensors"]
    assert weights["bytes"] == (model / "model.safetensors").stat().st_size
    assert len(weights["sha256"]) == 64
    np.testing.assert_allclose(Grafter.load(model).decision_function(x), scores, atol=1e-5)


def _flip_a_bit(folder):
    path = folder / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) * 3 // 4] ^= 0x10
    path.write_bytes(bytes(data))


def _truncate(folder):
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])


def _append(folder):
    with open(folder / "model.safetensors", "ab") as handle:
        handle.write(b"\0" * 10)


def _edit_config(**changes):
    def edit(folder):
        config = json.loads((folder / "config.json").read_text())
        config["params"].update(changes)
        (folder / "config.json").write_text(json.dumps(config))
    return edit


def _break_json(name):
    def edit(folder):
        text = (folder / name).read_text()
        (folder / name).write_text(text.replace('"params": {', '"params": {,', 1)
                                   if name == "config.json" else text[:-20])
    return edit


@pytest.mark.parametrize("damage,error,message", [
    (_flip_a_bit, DataError, r"model.safetensors does not match its checksum \(sha256 "
                             r"[0-9a-f]{12} when saved, [0-9a-f]{12} now\): it changed after "
                             r"saving \(a flipped bit on disk or in a copy\)\.$"),
    (_truncate, DataError, r"model.safetensors is truncated: 1,000 of its [\d,]+ bytes are there "
                           r"\(an interrupted copy or download\?\)\.$"),
    (_append, DataError, r"model.safetensors has [\d,]+ bytes but [\d,]+ were saved: it was "
                         r"written to after saving\.$"),
    (lambda f: (f / "model.safetensors").unlink(), DataError,
     r"model.safetensors is missing \(the folder's manifest.json lists it\)\.$"),
    (_break_json("config.json"), ConfigError, r"config.json is not valid JSON \(line \d+, "
                                              r"column \d+: Expecting property name enclosed "
                                              r"in double quotes\)\.$"),
    (_edit_config(backbone="efficientnet_lite1"), ConfigError,
     r"config.json was edited after saving \(sha256 [0-9a-f]{12} when saved, [0-9a-f]{12} "
     r"now\)\.$"),
    (_edit_config(backbone_options={"image_size": 64}), ConfigError,
     r"config.json was edited after saving"),
    (_break_json(MANIFEST), ConfigError, r"manifest.json is not valid JSON \(line \d+"),
])
def test_each_damage_is_one_line(model, damage, error, message):
    damage(model)
    with pytest.raises(error) as info:
        Grafter.load(model)
    line = _one_line(info.value)
    assert line.startswith(str(model)), line
    assert re.search(message, line), line


def test_the_hints_say_what_to_do(model):
    _flip_a_bit(model)
    with pytest.raises(DataError, match=r"HINT: copy the model folder again from where it was "
                                        r"saved, or save the model again\."):
        verify_manifest(model)
    _edit_config(strategy="full")(model)
    with pytest.raises(ConfigError, match=r"HINT: undo the edit: a saved model's config must "
                                          r"describe its weights\. To change a setting \(backbone, "
                                          r"image size\.\.\.\), fit and save a new model\."):
        verify_manifest(model)
    (model / MANIFEST).write_text('{"format": "graftlab.manifest/9", "files": {}}')
    with pytest.raises(ConfigError, match=r"is not a graftlab manifest of format "
                                          r"'graftlab.manifest/1' \(found 'graftlab.manifest/9'\)"
                                          r"(.|\n)*HINT: load the model with the graftlab version "
                                          r"that saved it"):
        verify_manifest(model)


def test_an_edited_config_is_explained_in_one_line_without_a_manifest(model, caplog):
    """A folder saved before checksums existed: the weight loader's 160-line size-mismatch
    dump becomes one line naming the config and the first differing tensor."""
    (model / MANIFEST).unlink()
    _edit_config(backbone="efficientnet_lite1")(model)
    with caplog.at_level(logging.WARNING, logger="graftlab.integrity"), \
            pytest.raises(ConfigError) as info:
        Grafter.load(model)
    assert _one_line(info.value).startswith(
        f"{model / 'model.safetensors'}: the saved weights do not fit the model its "
        "config.json describes "
        "(backbone 'efficientnet_lite1', backbone_options {'image_size': 32}, strategy "
        "'head_only', head 'linear'): ")
    assert re.search(r": \d+ tensors differ in shape \(first: backbone\.\S+ is "
                                   r"\[[\d, ]+\] saved, \[[\d, ]+\] built\)", str(info.value))
    assert "HINT: config.json was probably edited after saving" in str(info.value)
    assert f"{model} has no manifest.json" in caplog.text


def test_a_truncated_file_without_a_manifest_is_explained(model):
    (model / MANIFEST).unlink()
    _truncate(model)
    with pytest.raises(DataError) as info:
        Grafter.load(model)
    assert re.match(
        rf"{model / 'model.safetensors'}: the saved weights cannot be read \(SafetensorError: "
        r".+\): the file is damaged or truncated\.$", _one_line(info.value))


def test_missing_and_unexpected_tensors_are_counted():
    error = RuntimeError('Error(s) in loading state_dict for GraftedModel:\n    Missing key(s) '
                         'in state_dict: "head.0.weight", "head.0.bias"\n    Unexpected key(s) '
                         'in state_dict: "head.weight"')
    explained = explain_load_error(error, {"params": {"backbone": "minilm_l6", "head": "mlp"}})
    assert isinstance(explained, ConfigError)
    assert _one_line(explained) == ("the saved weights do not fit the model its config.json "
                                    "describes (backbone 'minilm_l6', head 'mlp'): 2 missing "
                                    "tensors; 1 unexpected tensor.")


def test_a_resave_replaces_the_manifest_and_an_interrupted_one_leaves_none(model, tmp_path):
    (model / "notes.txt").write_text("mine")
    write_manifest(model, ["notes.txt"])
    assert set(read_json(model / MANIFEST)["files"]) == {"notes.txt"}
    (model / "notes.txt").write_text("edited")
    with pytest.raises(DataError, match="notes.txt has 6 bytes but 4 were saved"):
        verify_manifest(model)
    discard_manifest(model)
    assert not (model / MANIFEST).exists()
    verify_manifest(model)  # nothing to check: loads unverified (with a warning)
    verify_manifest(tmp_path / "nowhere")  # a folder that is not there: Grafter.load says so


def test_a_config_with_an_unknown_parameter_is_explained(tmp_path):
    import json

    from graftlab import Grafter
    from graftlab.errors import ConfigError

    x = np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    g = Grafter(strategy="head_only", epochs=1, batch_size=4, augment=False,
                backbone_options={"image_size": 32}).fit(x, np.array([0, 1] * 4))
    folder = g.save(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["params"]["learning_rate"] = 0.1
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "manifest.json").unlink()  # an edit by hand, without the checksums
    with pytest.raises(ConfigError, match=r"params \['learning_rate'\] are not Grafter "
                                          r"parameters"):
        Grafter.load(folder)
