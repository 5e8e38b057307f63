"""export --quantize: an int8 graph in the same folder contract, checked by prediction agreement
with fp32 (not parity), kept by ``auto`` only where it is faster; every refusal says why."""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest
from conftest import TEXTS, squares
from PIL import Image
from typer.testing import CliRunner

from graftlab import integrity
from graftlab.cli import app
from graftlab.deploy import quantize
from graftlab.deploy.export import export
from graftlab.deploy.predictor import Predictor
from graftlab.deploy.quantize import Agreement, QuantizeError, decide, paired_times
from graftlab.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """36 labelled-by-position PNGs: the image models' calibration data."""
    root = tmp_path_factory.mktemp("calibration")
    x, _ = squares(36)
    for i, img in enumerate(x):
        Image.fromarray(img).save(root / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def int8(models, digits, tmp_path_factory):
    """The image model exported int8 (calibrated on ``digits``), and the text model."""
    root = tmp_path_factory.mktemp("int8")
    return {"image": export(models["image"], root / "image", quantize="int8",
                            calibration=str(digits), min_agreement=0.0),
            "text": export(models["text"], root / "text", quantize="int8",
                           min_agreement=0.0)}


def _ops(folder):
    return {node.op_type for node in onnx.load(folder / "model.onnx").graph.node}


def _contract(folder):
    return json.loads((folder / "contract.json").read_text())


# ---------------------------------------------------------------------- what is written
def test_an_image_model_becomes_static_qdq_calibrated_on_its_data(int8, exported, digits):
    done = int8["image"]
    assert {"QuantizeLinear", "DequantizeLinear"} <= _ops(done.folder)
    c, fp32 = _contract(done.folder), _contract(exported["image"])
    assert {k: v for k, v in c.items() if k not in ("quantize", "quantized", "parity",
                                                     "source", "card")} == {
        k: v for k, v in fp32.items() if k not in ("parity", "source", "card")}  # the same
    # the card says what its readers (serve's /info) get: int8, and how far it was checked
    assert {k: v for k, v in c["card"].items() if k in fp32["card"]} == fp32["card"]
    assert c["card"]["precision"] == "int8"
    assert c["card"]["int8_agreement_with_fp32"] == c["quantize"]["check"][
        "prediction_agreement"]
    assert c["card"]["metrics_measured_in"] == "fp32, before quantisation"
    q = c["quantized"]
    assert q["scheme"].startswith("int8 static QDQ: weights per channel")
    assert q["calibration"] == {"data": f"{digits} (first 36)", "samples": 36}
    assert q["fp32_bytes"] == (exported["image"] / "model.onnx").stat().st_size
    assert done.bytes < q["fp32_bytes"] / 3  # int8 weights
    check = c["quantize"]["check"]
    assert check["sample"] == f"{digits} (first 36; the first 36 calibrated)"
    assert check["samples"] == 36 and 0 <= check["prediction_agreement"] <= 1
    # 36 inputs that also calibrated it: the check says so rather than flatter
    assert check["caveat"].startswith("checked on 36 inputs only")
    assert (c["quantize"]["asked"], c["quantize"]["kept"]) == ("int8", "int8")
    assert c["parity"]["max_abs_diff"] <= 1e-4  # the fp32 graph's parity, before int8
    integrity.verify_manifest(done.folder)


def test_a_text_model_becomes_dynamic_int8_without_calibration(int8):
    done = int8["text"]
    assert "DynamicQuantizeLinear" in _ops(done.folder) and "MatMulInteger" in _ops(done.folder)
    c = _contract(done.folder)
    assert c["quantized"]["scheme"].startswith("int8 dynamic: MatMul/Gemm weights int8 per channel")
    assert c["quantized"]["calibration"] == {"data": None, "samples": 0}
    assert c["quantize"]["check"]["sample"].startswith("synthetic")
    assert c["quantize"]["check"]["caveat"].startswith("checked on 8 synthetic inputs")
    assert sorted(p.name for p in done.folder.iterdir()) == [
        "contract.json", "manifest.json", "model.onnx", "tokenizer"]  # no leftovers


@pytest.mark.parametrize("name", ["image", "text"])
def test_an_int8_export_loads_and_predicts_like_any_export(int8, exported, name):
    inputs = list(squares(9)[0]) if name == "image" else TEXTS
    small, big = Predictor.load(int8[name].folder), Predictor.load(exported[name])
    assert (small.kind, small.labels, small.modality) == ("exported", big.labels, big.modality)
    probs = small.predict_proba(inputs)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    agree = (small.predict(inputs) == big.predict(inputs)).mean()
    assert agree >= 0.5  # int8 is close to fp32, not equal (the contract records how close)


def test_the_check_runs_on_the_sample_data_when_given(models, digits, tmp_path):
    table = tmp_path / "sample.csv"
    table.write_text("text\n" + "\n".join(TEXTS) + "\n")
    done = export(models["text"], tmp_path / "t", quantize="int8", sample=str(table),
                  min_agreement=0.0)
    assert done.quantize["check"]["sample"] == f"{table} (first 10)"
    assert done.sample == f"{table} (first 10)"  # parity: the same data's first inputs
    done = export(models["image"], tmp_path / "i", quantize="int8", sample=str(digits),
                  min_agreement=0.0)  # no --calibration: the sample calibrates
    assert _contract(done.folder)["quantized"]["calibration"]["samples"] == 36
    assert done.samples == 32  # parity reads its usual 32 of them


# ---------------------------------------------------------------------- refusals
def test_too_little_agreement_is_refused_and_nothing_is_written(models, digits, tmp_path):
    with pytest.raises(QuantizeError, match=(
            r"^the int8 model predicts the class fp32 predicts on only \d+\.\d% of 36 inputs of "
            r".*calibration\d* \(first 36; the first 36 calibrated\) \(at least 101% needed; "
            r"max \|difference\| [\d.e+-]+\); nothing was written\.\nHINT: calibrate on more "
            r"inputs like those the model will see \(--calibration\), or export fp32")):
        export(models["image"], tmp_path / "out", quantize="int8", calibration=str(digits),
               min_agreement=1.01)
    assert list(tmp_path.iterdir()) == []


def test_an_image_model_needs_calibration_data(models, tmp_path):
    with pytest.raises(ConfigError, match=r"^--quantize on an image model needs calibration "
                                          r"data: static int8 sets each activation's range from "
                                          r"real inputs\.\nHINT: give --calibration FOLDER"):
        export(models["image"], tmp_path / "out", quantize="int8")


def test_calibration_data_of_the_other_modality_is_refused(models, digits, tmp_path):
    table = tmp_path / "texts.csv"
    table.write_text("text\nhello\n")
    with pytest.raises(DataError, match=r"^--calibration: '.*texts\.csv' is a table of texts, "
                                        r"but the model takes images\.\nHINT: give a folder"):
        export(models["image"], tmp_path / "out", quantize="int8", calibration=str(table))
    with pytest.raises(DataError, match=r"^--calibration: '.*calibration\d*' is a folder \(of "
                                        r"images\?\), but the model takes texts\."):
        export(models["text"], tmp_path / "out", quantize="int8", calibration=str(digits))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"^--calibration: image folder '.*empty' holds no "
                                        r"images \(\.png/"):
        export(models["image"], tmp_path / "out", quantize="auto",
               calibration=str(tmp_path / "empty"))
    assert not (tmp_path / "out").exists()


def test_bad_quantize_options(models, digits, tmp_path):
    with pytest.raises(ConfigError, match=r"^--quantize must be one of none, int8, auto; got "
                                          r"'int4'\."):
        export(models["text"], tmp_path / "out", quantize="int4")
    with pytest.raises(ConfigError, match=r"^--calibration is only used with --quantize int8 or "
                                          r"auto\.\nHINT: add --quantize int8"):
        export(models["image"], tmp_path / "out", calibration=str(digits))
    with pytest.raises(ConfigError, match=r"^--quantize: a regression model is not quantised "
                                          r"\(the int8 check compares predicted classes"):
        export(models["regressor"], tmp_path / "out", quantize="int8")


def test_a_quantiser_failure_is_named(models, tmp_path, monkeypatch):
    import onnxruntime.quantization as ortq

    def broken(*args, **kwargs):
        raise RuntimeError("Unsupported op Foo\nlong trace")

    monkeypatch.setattr(ortq, "quantize_dynamic", broken)
    with pytest.raises(QuantizeError, match=r"^ONNX Runtime could not quantise the model to int8 "
                                            r"\(RuntimeError: Unsupported op Foo\); nothing was "
                                            r"written\.\nHINT: export without --quantize"):
        export(models["text"], tmp_path / "out", quantize="int8")
    assert list(tmp_path.iterdir()) == []
    done = export(models["text"], tmp_path / "auto", quantize="auto")  # auto keeps fp32
    assert done.quantize == {"asked": "auto", "kept": "fp32", "reason": (
        "ONNX Runtime could not quantise the model to int8 (RuntimeError: Unsupported op Foo); "
        "nothing was written.")}
    assert "quantized" not in _contract(done.folder)


# ---------------------------------------------------------------------- auto
def _timings(fp32_1, int8_1, fp32_32, int8_32):
    return {1: {"fp32": fp32_1, "int8": int8_1}, 32: {"fp32": fp32_32, "int8": int8_32}}


def _agreement(value):
    return Agreement(100, "data", value, 0.5, 0.95)


def test_auto_keeps_int8_only_when_faster_at_every_batch_and_agreeing():
    assert decide(_agreement(0.99), _timings(10, 8, 300, 200)) == ("int8", (
        "int8 is faster on this CPU (batch 1: int8 8.00 ms vs fp32 10.00 ms, batch 32: int8 "
        "200.00 ms vs fp32 300.00 ms) and agrees with fp32 on 99.0% of 100 inputs"))
    assert decide(_agreement(0.99), _timings(10, 12, 300, 200)) == ("fp32", (
        "int8 is not faster on this CPU at batch 1 (batch 1: int8 12.00 ms vs fp32 10.00 ms, "
        "batch 32: int8 200.00 ms vs fp32 300.00 ms)"))
    assert decide(_agreement(0.99), _timings(10, 10, 300, 400))[1].startswith(
        "int8 is not faster on this CPU at batch 1 and batch 32")  # a tie is not faster
    assert decide(_agreement(0.9), _timings(10, 1, 300, 1)) == ("fp32", (
        "int8 predicts the fp32 class on only 90.0% of 100 inputs (at least 95% needed)"))


@pytest.mark.parametrize("faster", [True, False])
def test_auto_measures_writes_what_it_measured_and_says_what_it_kept(
        models, tmp_path, monkeypatch, faster):
    seen = {}

    def timed(fp32, int8, modality, feeds, **kwargs):
        seen.update(modality=modality, shapes={b: f["input_ids"].shape[0]
                                               for b, f in feeds.items()})
        return _timings(10, 5 if faster else 20, 300, 200)

    monkeypatch.setattr(quantize, "measure", timed)
    result = CliRunner().invoke(app, ["export", str(models["text"]), "--out",
                                      str(tmp_path / "out"), "--quantize", "auto"])
    assert result.exit_code == 0, result.output
    assert seen == {"modality": "text", "shapes": {1: 1, 32: 32}}
    c = _contract(tmp_path / "out")
    assert c["quantize"]["latency_ms"] == {"1": {"fp32": 10, "int8": 5 if faster else 20},
                                           "32": {"fp32": 300, "int8": 200}}
    assert c["quantize"]["kept"] == ("int8" if faster else "fp32")
    assert ("quantized" in c) == faster and ("MatMulInteger" in _ops(tmp_path / "out")) == faster
    text = " ".join(result.output.split())
    if faster:
        assert "kept int8: int8 is faster on this CPU (batch 1: int8 5.00 ms vs fp32 10.00 ms" \
            in text
    else:
        assert "kept fp32: int8 is not faster on this CPU at batch 1 (batch 1: int8 20.00 ms" \
            in text
    assert "; int8 predicts the fp32 class on 100.0% of 8 inputs of synthetic" in text


def test_auto_keeps_fp32_without_timing_when_int8_agrees_too_little(models, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setattr(quantize, "measure", lambda *a, **k: pytest.fail("timed"))
    done = export(models["text"], tmp_path / "out", quantize="auto", min_agreement=1.01)
    assert (done.quantize["kept"], done.quantize["latency_ms"]) == ("fp32", {})
    assert done.quantize["reason"] == ("int8 predicts the fp32 class on only 100.0% of 8 "
                                       "inputs (at least 101% needed)")
    assert "MatMulInteger" not in _ops(done.folder)


def test_paired_times_interleaves_and_drops_the_warmup():
    calls = []
    times = paired_times({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                         rounds=3, warmup=2)
    assert calls == ["a", "b"] * 5
    assert [len(t) for t in times.values()] == [3, 3]


def test_the_cli_exports_int8(models, digits, tmp_path):
    result = CliRunner().invoke(app, ["export", str(models["image"]), "--out",
                                      str(tmp_path / "out"), "--quantize", "int8",
                                      "--calibration", str(digits)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert re.search(r"kept int8: asked for \(--quantize int8\); int8 predicts the fp32 class "
                     r"on 9\d\.\d% of 36 inputs of .*calibration\d* \(first 36; the first 36 "
                     r"calibrated\) \(max \|difference\| [\d.]+\)\.", text), text
    assert Predictor.load(tmp_path / "out").predict(list(squares(3)[0])).shape == (3,)
    result = CliRunner().invoke(app, ["export", str(models["image"]), "--out",
                                      str(tmp_path / "again"), "--quantize", "int8"])
    assert result.exit_code == 2 and "needs calibration data" in result.output


# ---------------------------------------------------------------------- real backbones
@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "minilm_l6"])
def test_real_backbones_quantize(backbone, tmp_path):
    from graftlab import Grafter

    if backbone == "minilm_l6":
        inputs, labels, options = TEXTS, ["pos"] * 5 + ["neg"] * 5, {"max_length": 32}
    else:
        x, labels = squares(24, size=64)
        inputs, options = x, {"image_size": 64}
        (tmp_path / "pngs").mkdir()
        for i, img in enumerate(x):
            Image.fromarray(img).save(tmp_path / "pngs" / f"{i}.png")
    Grafter(backbone=backbone, strategy="head_only", epochs=3, batch_size=8,
            backbone_options=options).fit(inputs, labels).save(tmp_path / "model")
    calibration = str(tmp_path / "pngs") if backbone != "minilm_l6" else None
    done = export(tmp_path / "model", tmp_path / "out", quantize="int8",
                  calibration=calibration, min_agreement=0.0)
    fp32 = export(tmp_path / "model", tmp_path / "fp32")
    assert done.bytes < fp32.bytes * (0.35 if calibration else 0.8)
    check = done.quantize["check"]
    assert check["prediction_agreement"] >= 0.9, check
    assert Predictor.load(done.folder).predict(list(inputs)[:4]).shape == (4,)


def test_the_check_names_what_makes_its_agreement_a_rough_guess():
    from graftlab.deploy.quantize import Int8Data, check_caveat

    real = [0] * 150
    assert check_caveat(Int8Data(real[:128], "imgs (first 128)", real, "held (first 150)")) \
        is None
    flattered = Int8Data(real[:128], "imgs (first 128)", real,
                         "imgs (first 150; the first 128 calibrated)")
    assert "also calibrated the graph" in check_caveat(flattered)
    assert "inputs only" in check_caveat(Int8Data(None, None, real[:40], "t.csv (first 40)"))
    measured = Agreement(150, "t.csv (first 150)", 0.9, 0.3, 0.95)
    assert "nothing to calibrate" in quantize.refuse(measured, "text").hint
    assert "--calibration" in quantize.refuse(measured, "image").hint


def test_calibration_images_are_drawn_at_random_from_every_class(models, tmp_path):
    """A folder of class folders read in order would calibrate on its first classes only."""
    from graftlab.deploy.export import _read
    from graftlab.deploy.predictor import Predictor

    for label in range(6):
        (tmp_path / "classes" / str(label)).mkdir(parents=True)
        for i in range(10):
            pixels = np.full((16, 16, 3), 40 * label, np.uint8)
            Image.fromarray(pixels).save(tmp_path / "classes" / str(label) / f"{i}.png")
    items, how = _read(Predictor.load(models["image"]), str(tmp_path / "classes"), "--sample",
                       "text", 24)
    assert how == "24 of 60 at random" and len(items) == 24
    assert {int(x[0, 0, 0]) // 40 for x in items} == set(range(6))  # every class drawn
