"""export: one ONNX graph + its preprocessing contract, the same numbers as the saved model and
the estimator, checked before anything is written; every refusal says why."""

from __future__ import annotations

import csv
import json
import types

import numpy as np
import pytest
import torch
from conftest import TEXTS, squares
from PIL import Image

from graftlab import Grafter, GrafterRegressor, integrity
from graftlab.adapt.average import AveragedModel
from graftlab.deploy.export import ExportError, export, parity, synthetic_sample
from graftlab.deploy.predictor import Predictor
from graftlab.errors import ConfigError, DataError


def _images():
    x, _ = squares(6)
    other = np.random.default_rng(3).integers(0, 256, (3, 50, 41, 3), dtype=np.uint8)
    return [x[0], other[0], x[1], other[1], x[2], other[2]]


@pytest.mark.parametrize("name", ["text", "image", "average", "regressor"])
def test_the_export_predicts_as_the_saved_model_and_the_estimator(models, exported, name):
    inputs = _images() if name == "image" else TEXTS
    saved, onnx = Predictor.load(models[name]), Predictor.load(exported[name])
    assert onnx.kind == "exported" and onnx.card == saved.card
    assert (onnx.labels, onnx.task, onnx.output) == (saved.labels, saved.task, saved.output)
    np.testing.assert_allclose(onnx.outputs(inputs), saved.outputs(inputs), atol=1e-4)
    if name == "regressor":
        expected = GrafterRegressor.load(models[name]).predict(inputs)
        np.testing.assert_allclose(onnx.predict(inputs), expected, rtol=1e-4)
        return
    if name == "average":
        estimator = AveragedModel.load(models[name])
        expected = estimator.predict_proba(inputs)
    else:
        estimator = Grafter.load(models[name])
        expected = np.concatenate([estimator.predict_proba([x] if name == "text" else x[None])
                                   for x in inputs])  # one by one: images of any size
    np.testing.assert_allclose(onnx.predict_proba(inputs), expected, atol=1e-4)
    if name == "image":  # the Grafter takes one size at a time; the saved Predictor any
        assert onnx.predict(inputs).tolist() == saved.predict(inputs).tolist()
    else:
        assert onnx.predict(inputs).tolist() == [str(c) for c in estimator.predict(inputs)]


def test_the_contract_of_an_image_model(models, exported):
    folder = exported["image"]
    assert sorted(p.name for p in folder.iterdir()) == ["contract.json", "manifest.json",
                                                        "model.onnx"]
    c = json.loads((folder / "contract.json").read_text())
    assert c["format"] == "graftlab.export/1" and c["graftlab"] == "0.1.0"
    assert (c["task"], c["labels"], c["output"]) == ("classification", ["br", "tl", "tr"],
                                                     "logits")
    spec = c["inputs"]
    assert (spec["modality"], spec["image_size"], spec["channel_order"], spec["layout"]) == (
        "image", 32, "RGB", "NCHW")
    assert spec["mean"] == [0.498] * 3 and spec["std"] == [0.502] * 3
    assert "antialiased" in spec["resize"] and spec["inputs"] == ["pixel_values"]
    weights = models["image"] / "model.safetensors"
    assert c["source"]["sha256"] == {"model.safetensors": integrity.sha256_file(weights)}
    parity_ = c["parity"]
    assert parity_["samples"] == 8 and parity_["sample"].startswith("synthetic")
    assert parity_["max_abs_diff"] <= parity_["tolerance"] == 1e-4
    assert c["card"]["backbone"] == "efficientnet_lite0" and c["card"]["strategy"] == "last_k"
    integrity.verify_manifest(folder)  # every file checksummed


def test_the_contract_of_a_text_model_carries_its_tokenizer(models, exported):
    folder = exported["text"]
    c = json.loads((folder / "contract.json").read_text())
    spec = c["inputs"]
    assert spec["modality"] == "text" and spec["max_length"] == 24
    assert spec["inputs"] == ["input_ids", "token_type_ids", "attention_mask"]
    assert spec["tokenizer_files"] and all((folder / "tokenizer" / f).is_file()
                                           for f in spec["tokenizer_files"])
    listed = json.loads((folder / "manifest.json").read_text())["files"]
    assert {f"tokenizer/{f}" for f in spec["tokenizer_files"]} | {"model.onnx",
                                                                  "contract.json"} == set(listed)
    import onnx

    graph = onnx.load(folder / "model.onnx").graph
    assert [o.name for o in graph.output] == ["logits"]
    assert [i.name for i in graph.input] == spec["inputs"]


def test_an_average_is_one_graph_of_probabilities(models, exported):
    c = json.loads((exported["average"] / "contract.json").read_text())
    assert c["output"] == "probabilities"
    assert sorted(c["source"]["sha256"]) == ["members/lora1/model.safetensors",
                                             "members/lora2/model.safetensors"]


def test_a_regressor_exports_its_scale(exported):
    c = json.loads((exported["regressor"] / "contract.json").read_text())
    assert c["output"] == "standardised" and c["labels"] is None
    assert c["target"]["mean"] == pytest.approx(2.75) and c["target"]["std"] > 0


def test_an_adapted_model_exports_without_its_discriminator(models, tmp_path):
    import onnx

    from graftlab.adapt import Adapter

    adapter = Adapter(backbone=f"hf:{models['bert']}", method="dann", strategy="full",
                      epochs=1, batch_size=4).fit(TEXTS, ["pos"] * 5 + ["neg"] * 5,
                                                  target=["good", "dull plot"] * 3)
    adapter.grafter_.save(tmp_path / "adapted")
    done = export(tmp_path / "adapted", tmp_path / "out")
    graph = onnx.load(done.folder / "model.onnx").graph
    in_graph = sum(int(np.prod(t.dims)) for t in graph.initializer)
    in_model = sum(p.numel() for p in adapter.grafter_.model_.parameters())
    assert in_graph <= in_model + 10_000  # the model's weights (plus constants), no more
    assert [o.name for o in graph.output] == ["logits"]


# ---------------------------------------------------------------------- sample data
def test_parity_on_sample_data(models, tmp_path):
    table = tmp_path / "sample.csv"
    with open(table, "w", newline="") as handle:
        csv.writer(handle).writerows([["review"], *[[t] for t in TEXTS]])
    done = export(models["text"], tmp_path / "text", sample=str(table), text_column="review")
    assert done.samples == len(TEXTS) and done.sample == f"{table} (first 10)"
    (tmp_path / "pngs" / "sub").mkdir(parents=True)
    for i, img in enumerate(_images()):
        Image.fromarray(img).save(tmp_path / "pngs" / ("sub" if i % 2 else ".") / f"{i}.png")
    done = export(models["image"], tmp_path / "image", sample=str(tmp_path / "pngs"))
    assert done.samples == 6


def test_sample_data_of_the_other_modality_is_refused(models, tmp_path):
    table = tmp_path / "sample.csv"
    table.write_text("text\nhello\n")
    with pytest.raises(DataError, match=r"sample\.csv' is a table of texts, but the model takes "
                                        r"images"):
        export(models["image"], tmp_path / "out", sample=str(table))
    assert not (tmp_path / "out").exists()


def test_the_synthetic_sample_checks_resizing_and_truncation():
    images = synthetic_sample("image", 32)
    assert len({img.shape for img in images}) == 5 and images[0].shape == (32, 32, 3)
    texts = synthetic_sample("text")
    assert len(texts[-1].split()) == 700 and texts == synthetic_sample("text")  # fixed


# ---------------------------------------------------------------------- refusals
def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_graph_that_differs_is_refused_and_nothing_is_written(models, tmp_path, monkeypatch):
    from graftlab.deploy.engines import OnnxEngine

    run = OnnxEngine.run
    monkeypatch.setattr(OnnxEngine, "run", lambda self, batch: run(self, batch) + 3e-4)
    with pytest.raises(ExportError, match=(
            r"^the exported model does not match the PyTorch model: on sample input \d+, the "
            r"logit of '(neg|pos)' is -?[\d.]+ in PyTorch and -?[\d.]+ in ONNX Runtime "
            r"\(\|difference\| 3\.00e-04 > 1e-04\); nothing was written\.\nHINT: graftlab "
            r"predict works on the saved model without export")):
        export(models["text"], tmp_path / "out")
    assert _leftovers(tmp_path) == []  # neither the folder nor its temporary


def test_a_prediction_that_differs_is_refused():
    def fake(outputs):
        return types.SimpleNamespace(outputs=lambda _: np.asarray(outputs, np.float32),
                                     labels=["a", "b"], output="logits",
                                     task="classification", tasks=None)

    eager = fake([[0.0, 1.5e-4], [0.0, 1.0]])
    with pytest.raises(ExportError, match=r"predicts differently from the PyTorch model on 1 of "
                                          r"2 sample inputs \(first: input 0, 'b' in PyTorch, "
                                          r"'a' in ONNX Runtime\)"):
        parity(eager, fake([[0.9e-4, 0.6e-4], [0.0, 1.0]]), [None, None])
    tie = fake([[0.0, 0.5e-4], [0.0, 1.0]])  # the two best within the tolerance: either agrees
    assert parity(tie, fake([[0.5e-4, 0.0], [0.0, 1.0]]), [None, None]) == pytest.approx(5e-5)


def test_an_operator_onnx_lacks_is_named(models, tmp_path, monkeypatch):
    from graftlab.heads.heads import LinearHead

    forward = LinearHead.forward

    def with_histc(self, x, mask=None):
        return forward(self, x, mask) + 0 * torch.histc(x, bins=4).sum()

    monkeypatch.setattr(LinearHead, "forward", with_histc)
    with pytest.raises(ExportError, match=(
            r"^the model cannot be exported to ONNX: the exporter failed with "
            r"\w+: .*'aten::histc'.*\nHINT: graftlab predict works on the saved model without "
            r"export: graftlab predict .*text DATA\.$")):
        export(models["text"], tmp_path / "out")
    assert _leftovers(tmp_path) == []


def test_a_backbone_that_cannot_state_its_preprocessing(tiny_backbone, tmp_path):
    with pytest.raises(ConfigError, match=r"backbone 'tiny' does not describe its preprocessing "
                                          r"as data, so a model built on it cannot be exported"
                                          r"(.|\n)*HINT: graftlab predict works on the saved "
                                          r"model folder without export"):
        tiny_backbone.input_contract(tmp_path)


def test_where_the_export_goes(models, exported, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(ConfigError, match=r"--out .*full exists and is not an empty folder"):
        export(models["text"], tmp_path / "full")
    with pytest.raises(ConfigError, match=r"the folder .*absent does not exist"):
        export(models["text"], tmp_path / "absent" / "out")
    with pytest.raises(ConfigError, match=r"is an exported model already\.\nHINT: export the "
                                          r"saved model or run folder it came from"):
        export(exported["text"], tmp_path / "again")
    (tmp_path / "empty").mkdir()
    assert export(models["text"], tmp_path / "empty").folder == tmp_path / "empty"
    assert (tmp_path / "empty" / "model.onnx").is_file()


# ---------------------------------------------------------------------- real backbones
@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "minilm_l6"])
def test_real_backbones_export_with_parity(backbone, tmp_path):
    if backbone == "minilm_l6":
        inputs, labels = TEXTS, ["pos"] * 5 + ["neg"] * 5
        options = {"max_length": 32}
    else:
        x, labels = squares(12, size=64)
        inputs, options = list(x), {"image_size": 64}
    g = Grafter(backbone=backbone, strategy="lora", epochs=1, batch_size=4,
                backbone_options=options).fit(np.asarray(inputs) if backbone != "minilm_l6"
                                              else inputs, labels)
    g.save(tmp_path / "model")
    done = export(tmp_path / "model", tmp_path / "out")
    assert done.max_abs_diff <= 1e-4
    onnx = Predictor.load(done.folder)
    probe = inputs[:4] if backbone == "minilm_l6" else [*inputs[:2], *synthetic_sample("image",
                                                                                       64)[4:6]]
    expected = np.concatenate([g.predict_proba([p] if isinstance(p, str) else p[None])
                               for p in probe])
    np.testing.assert_allclose(onnx.predict_proba(probe), expected, atol=1e-5)


def test_export_refuses_the_current_folder_and_names_no_option_it_lacks(models, tmp_path,
                                                                       monkeypatch):
    from graftlab.deploy.export import export
    from graftlab.errors import ConfigError, DataError

    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    with pytest.raises(ConfigError, match=r"--out \. is the folder you are in"):
        export(models["image"], ".")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError) as exc:
        export(models["image"], tmp_path / "out", sample=str(bad))
    assert "--skip-corrupt" not in str(exc.value) and "remove or repair" in str(exc.value)
