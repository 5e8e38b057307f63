"""Predictor: one interface over every saved form of a model, the same numbers as the
estimators, and loading errors that name the file and the fix."""

from __future__ import annotations

import io
import json
import logging
import shutil

import numpy as np
import pytest
from conftest import LABELS, TEXTS, squares
from PIL import Image

from graftlab import Grafter, GrafterRegressor, integrity
from graftlab.adapt.average import AveragedModel
from graftlab.deploy.predictor import Predictor
from graftlab.errors import ConfigError, DataError


def test_a_saved_grafter_predicts_as_the_grafter(models):
    p, g = Predictor.load(models["text"]), Grafter.load(models["text"])
    assert (p.modality, p.task, p.kind, p.output, p.labels) == (
        "text", "classification", "grafter", "logits", ["neg", "pos"])
    np.testing.assert_allclose(p.predict_proba(TEXTS), g.predict_proba(TEXTS), atol=1e-6)
    assert p.predict(TEXTS).tolist() == g.predict(TEXTS).tolist()
    assert (p.predict(TEXTS) == np.asarray(LABELS)).mean() >= 0.8  # it learnt something


def test_images_resize_one_by_one_as_the_grafter_does(models):
    p, g = Predictor.load(models["image"]), Grafter.load(models["image"])
    x, _ = squares(6)
    other = np.random.default_rng(1).integers(0, 256, (2, 45, 27, 3), dtype=np.uint8)
    mixed = [x[0], other[0], x[1], other[1]]
    expected = np.concatenate([g.predict_proba(img[None]) for img in mixed])
    np.testing.assert_allclose(p.predict_proba(mixed), expected, atol=1e-6)
    np.testing.assert_allclose(p.predict_proba(x), g.predict_proba(x), atol=1e-6)  # (N, H, W, 3)
    assert p.labels == ["br", "tl", "tr"] and p.modality == "image"


def test_image_inputs_paths_bytes_and_modes_decode_alike(models, tmp_path):
    p = Predictor.load(models["image"])
    rgb = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    grey = rgb[..., 0]
    rgba = np.dstack([rgb, np.full((20, 30), 255, np.uint8)])
    out = p.predict_proba([rgb, str(tmp_path / "a.png"), tmp_path / "a.png", buffer.getvalue(),
                           rgba, grey, grey[..., None], Image.fromarray(rgb),
                           Image.fromarray(grey)])  # PIL images too, as the Grafter takes them
    np.testing.assert_allclose(out[1:5], np.repeat(out[:1], 4, axis=0), atol=1e-6)
    np.testing.assert_allclose(out[5], out[6], atol=1e-6)  # grey as (H, W) or (H, W, 1)
    np.testing.assert_allclose(out[7], out[0], atol=1e-6)
    np.testing.assert_allclose(out[8], out[5], atol=1e-6)
    np.testing.assert_allclose(p.predict_proba([np.dstack([grey] * 3)]), out[5:6], atol=1e-5)


def test_an_average_predicts_as_the_averaged_model(models):
    p, avg = Predictor.load(models["average"]), AveragedModel.load(models["average"])
    assert (p.kind, p.output) == ("average", "probabilities")
    np.testing.assert_allclose(p.predict_proba(TEXTS), avg.predict_proba(TEXTS), atol=1e-6)
    assert p.card["strategy"] == "average"
    assert p.card["members"] == {"lora1": "lora", "lora2": "lora"}


def test_a_regressor_predicts_values_and_has_no_probabilities(models):
    p, r = Predictor.load(models["regressor"]), GrafterRegressor.load(models["regressor"])
    assert (p.task, p.labels, p.output) == ("regression", None, "standardised")
    np.testing.assert_allclose(p.predict(TEXTS), r.predict(TEXTS), rtol=1e-5)
    with pytest.raises(ConfigError, match=r"this model predicts a number \(regression\): it has "
                                          r"no class probabilities\.\nHINT: use predict"):
        p.predict_proba(TEXTS)


def test_batches_and_empty_input(models):
    p = Predictor.load(models["text"], batch_size=3)
    np.testing.assert_allclose(p.predict_proba(TEXTS),
                               Predictor.load(models["text"]).predict_proba(TEXTS), atol=1e-6)
    assert p.predict_proba([]).shape == (0, 2) and p.predict([]).shape == (0,)
    with pytest.raises(ConfigError, match=r"batch_size must be an integer >= 1, got 0"):
        Predictor.load(models["text"], batch_size=0)


def test_the_card_says_what_the_model_is(models):
    card = Predictor.load(models["text"]).card
    assert card["backbone"].startswith("hf:") and card["strategy"] == "full"
    assert card["head"] == "linear" and card["labels"] == ["neg", "pos"]
    assert card["task"] == "classification" and card["graftlab"] == "0.1.0"
    assert card["data"] is None and card["metrics"] is None  # a bare folder records none


# ---------------------------------------------------------------------- run folders
def _run(tmp_path, models, name="text", **records):
    run = tmp_path / "run"
    shutil.copytree(models[name], run / "model")
    for file, record in records.items():
        (run / file).write_text(json.dumps(record))
    return run


def test_a_fit_run_folder_loads_its_model_with_data_and_metrics(models, tmp_path):
    run = _run(tmp_path, models, **{
        "config.json": {"data": {"path": "reviews.csv"}},
        "metrics.json": {"accuracy": 0.9, "macro_f1": 0.85, "test": 20, "history": []}})
    p = Predictor.load(run)
    assert p.card["run"] == "fit" and p.card["data"] == {"path": "reviews.csv"}
    assert p.card["metrics"] == {"accuracy": 0.9, "macro_f1": 0.85, "test": 20}


def test_a_compare_run_folder_reports_the_saved_strategy(models, tmp_path):
    run = _run(tmp_path, models, **{"results.json": {
        "format": "graftlab.compare/1", "model": {"strategy": "full"},
        "config": {"data": {"name": "reviews", "modality": "text", "size": 10, "classes": []}},
        "summary": [{"strategy": "lora", "accuracy_mean": 0.5},
                    {"strategy": "full", "seeds": 3, "accuracy_mean": 0.8, "accuracy_std": 0.1,
                     "trainable_params": 9}]}})
    card = Predictor.load(run).card
    assert card["data"] == {"name": "reviews", "modality": "text", "size": 10}
    assert card["metrics"]["accuracy_mean"] == 0.8 and card["metrics"]["seeds"] == 3
    assert "trainable_params" not in card["metrics"]


def test_an_adapt_run_folder_reports_the_kept_model(models, tmp_path):
    run = _run(tmp_path, models, "average", **{"results.json": {
        "format": "graftlab.adapt/1", "model": {"method": "average"},
        "source": {"name": "movies", "size": 100}, "target": {"name": "tweets", "size": 50},
        "runs": [], "average": [{"source_accuracy": 0.8, "target_accuracy": 0.6},
                                {"source_accuracy": 0.9, "target_accuracy": 0.7}]}})
    card = Predictor.load(run).card
    assert card["run"] == "adapt" and card["data"]["target"] == {"name": "tweets", "size": 50}
    assert card["metrics"]["target_accuracy_mean"] == pytest.approx(0.65)
    assert card["metrics"]["seeds"] == 2


def test_an_unreadable_run_record_leaves_the_card_short_not_the_model(models, tmp_path, caplog):
    run = _run(tmp_path, models)
    (run / "results.json").write_text("{not json")
    with caplog.at_level(logging.WARNING):
        p = Predictor.load(run)
    assert p.card["metrics"] is None and "its run record cannot be read" in caplog.text
    assert p.predict(TEXTS[:1]).shape == (1,)


# ---------------------------------------------------------------------- input errors
@pytest.mark.parametrize("name,inputs,message", [
    ("text", [np.zeros((8, 8, 3), np.uint8)], r"input 0 is an array of shape \(8, 8, 3\) \(an "
                                              r"image\?\), but this is a text model"),
    ("text", ["fine", b"\x89PNG"], r"input 1 is bytes \(an image\?\), but this is a text model"),
    ("text", "one review", r"the model takes a list of inputs, got one string(.|\n)*HINT: wrap"),
    ("image", ["a great film"], r"input 0: 'a great film' is not an image file \(no such file\); "
                                r"this is an image model"),
    ("image", [b"not an image"], r"input 0: its bytes are not an image that can be read"),
    ("image", [np.zeros((8, 8, 3))], r"input 0 is a float64 array; images are uint8"),
    ("image", [np.zeros((8, 8, 2), np.uint8)], r"input 0 has shape \(8, 8, 2\); an image is "
                                               r"\(H, W, 3\)"),
    ("image", [3], r"input 0 is a int; this image model takes RGB uint8 arrays"),
])
def test_inputs_of_the_wrong_kind_are_named(models, name, inputs, message):
    with pytest.raises(DataError, match=message):
        Predictor.load(models[name]).predict(inputs)


def test_an_unreadable_image_file_is_named(models, tmp_path):
    (tmp_path / "bad.png").write_text("not a png")
    with pytest.raises(DataError, match=r"input 0: .*bad\.png cannot be read as an image \(not "
                                        r"an image Pillow can identify\)(.|\n)*--skip-corrupt"):
        Predictor.load(models["image"]).predict([tmp_path / "bad.png"])


# ---------------------------------------------------------------------- folder errors
def test_loading_what_is_not_a_model(tmp_path, models):
    with pytest.raises(ConfigError, match=r"absent does not exist\.\nHINT: give a saved model "
                                          r"folder \(config.json \+ model.safetensors"):
        Predictor.load(tmp_path / "absent")
    with pytest.raises(ConfigError, match=r"config.json is a file; a model is a folder"):
        Predictor.load(models["text"] / "config.json")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hi")
    with pytest.raises(ConfigError, match=r"is not a model graftlab can load: it holds none of "
                                          r"contract.json, average.json"):
        Predictor.load(tmp_path / "other")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"is a graftlab run folder without a saved model: "
                                          r".*model is missing"):
        Predictor.load(tmp_path / "run")


@pytest.mark.parametrize("kind,missing", [("models", "model.safetensors"),
                                          ("models", "config.json"),
                                          ("exported", "model.onnx"),
                                          ("exported", "manifest.json")])
def test_a_missing_file_is_named_with_the_fix(request, tmp_path, kind, missing):
    folder = tmp_path / "copy"
    shutil.copytree(request.getfixturevalue(kind)["text"], folder)
    (folder / missing).unlink()
    with pytest.raises(ConfigError, match=rf"copy/{missing} is missing: .* is not a complete "
                                          r"copy of (a saved|an exported) model\.\nHINT: copy "
                                          r"the whole folder again"):
        Predictor.load(folder)


def _reformat(folder, name, fmt):
    record = json.loads((folder / name).read_text())
    record["format"] = fmt
    (folder / name).write_text(json.dumps(record))
    files = json.loads((folder / "manifest.json").read_text())["files"]
    integrity.write_manifest(folder, list(files))  # as another version would have saved it


@pytest.mark.parametrize("kind,name,fmt", [("models", "config.json", "graftlab.grafter/2"),
                                           ("exported", "contract.json", "graftlab.export/2")])
def test_a_folder_of_another_format_is_named(request, tmp_path, kind, name, fmt):
    folder = tmp_path / "copy"
    shutil.copytree(request.getfixturevalue(kind)["text"], folder)
    _reformat(folder, name, fmt)
    with pytest.raises(ConfigError, match=rf"copy/{name} has format '{fmt}', not "
                                          r"'graftlab\.(grafter|export)/1': another graftlab "
                                          r"version saved it\.\nHINT: load it with the graftlab "
                                          r"version that saved it"):
        Predictor.load(folder)
    if kind == "models":  # the estimator's own load refuses it too
        with pytest.raises(ConfigError, match=rf"has format '{fmt}'"):
            Grafter.load(folder)


def test_an_average_of_another_format_is_named(models, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(models["average"], folder)
    (folder / "average.json").write_text(json.dumps({"format": "graftlab.average/2",
                                                     "members": ["lora1", "lora2"]}))
    with pytest.raises(ConfigError, match=r"average.json has format 'graftlab.average/2'"):
        Predictor.load(folder)
    with pytest.raises(ConfigError, match=r"average.json has format 'graftlab.average/2', not "
                       "'graftlab.average/1': another graftlab version saved it"):
        AveragedModel.load(folder)  # the estimator's own load, by the same check
    (folder / "average.json").write_text('{"format": ')
    with pytest.raises(ConfigError, match=r"average.json is not valid JSON \(line 1"):
        AveragedModel.load(folder)


def test_an_export_runs_on_the_threads_asked_without_spinning(exported):
    x, _ = squares(4)
    one = Predictor.load(exported["image"], threads=1)
    options = one._engine.session.get_session_options()
    assert options.intra_op_num_threads == 1
    # idle threads sleep: a server's decoding and answering keep the CPU
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    np.testing.assert_allclose(one.predict_proba(x),
                               Predictor.load(exported["image"]).predict_proba(x), atol=1e-6)
    with pytest.raises(ConfigError, match="threads must be an integer >= 1, got 0"):
        Predictor.load(exported["image"], threads=0)


def test_texts_run_in_groups_of_similar_length_and_come_back_in_order(models):
    from graftlab.deploy.predictor import length_groups

    texts = ["a" * n for n in (40, 3, 200, 5, 41, 4, 190, 60)]
    groups = length_groups(texts)
    assert sorted(np.concatenate(groups).tolist()) == list(range(len(texts)))
    assert len(groups) > 1  # one padded batch would make the short texts pay for the long
    for rows in groups:  # padding to a group's longest wastes at most 25% more characters
        lengths = [len(texts[r]) for r in rows]
        assert len(rows) == 1 or len(rows) * max(lengths) <= 1.25 * sum(lengths)
    p = Predictor.load(models["text"])
    mixed = [TEXTS[0] * 6, *TEXTS, TEXTS[1][:3]]
    one_by_one = np.concatenate([p.predict_proba([t]) for t in mixed])
    np.testing.assert_allclose(p.predict_proba(mixed), one_by_one, atol=1e-5)
