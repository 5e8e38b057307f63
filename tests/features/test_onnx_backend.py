"""The ONNX Runtime backend: the same features as eager PyTorch, and loud when it cannot run."""

from __future__ import annotations

import logging
import sys
import warnings

import numpy as np
import pytest
import torch

from graftlab.features import extract_features, extract_layers
from graftlab.features.extract import ONNX_MIN_SAMPLES
from graftlab.features.onnx_backend import (OnnxBackendError, OnnxFallbackWarning, OnnxRunner,
                                            fall_back)

TEXTS = ["a short one", "a somewhat longer sentence about a film that went on for too long",
         "fine", "the acting was wooden, the plot thin, and the music far too loud throughout",
         "loved it", "not my kind of thing at all, though the photography was lovely"]


def _extracted_with(caplog) -> list[str]:
    """The backend each extraction reports having used ("... (onnx)" / "... (torch)")."""
    return [r.args[-1] for r in caplog.records
            if r.name == "graftlab.features.extract" and r.msg.startswith("extracted")]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["efficientnet_lite0", "minilm_l6"])
def test_onnx_features_match_eager(family, request, images, caplog):
    """Both backbone families through the real extraction path: ONNX Runtime really runs (no
    silent fallback), over batches of different sizes (and token lengths), for two layers."""
    if family == "efficientnet_lite0":
        backbone, data, layers = request.getfixturevalue("lite0"), images(6, size=32), [
            "blocks.3", "head"]
    else:
        backbone, data, layers = request.getfixturevalue("minilm"), TEXTS, ["layer.2", "layer.5"]
    with caplog.at_level(logging.INFO, logger="graftlab.features.extract"), \
            warnings.catch_warnings():
        warnings.simplefilter("error", OnnxFallbackWarning)
        onnx = extract_layers(backbone, data, layers=layers, batch_size=4, cache=False,
                              backend="onnx")
        eager = extract_layers(backbone, data, layers=layers, batch_size=4, cache=False,
                               backend="torch")
    assert _extracted_with(caplog) == ["onnx", "torch"]
    for layer in layers:
        assert onnx[layer].shape == eager[layer].shape == (len(data), onnx[layer].shape[1])
        scale = float(np.abs(eager[layer]).max())
        np.testing.assert_allclose(onnx[layer], eager[layer], rtol=1e-4, atol=1e-4 * scale)


def test_fall_back_raises_when_onnx_was_asked_for():
    cause = RuntimeError("Exporting the operator 'aten::foo' to ONNX opset 17 is not supported\n"
                         "(a long traceback follows)")
    with pytest.raises(OnnxBackendError, match=(
            r"^backend='onnx' was asked for, but ONNX Runtime cannot run backbone 'tiny': "
            r"RuntimeError: Exporting the operator 'aten::foo' to ONNX opset 17 is not "
            r"supported\.\nHINT: use backend='torch' \(the same features, slower\), or "
            r"backend='auto', which falls back to PyTorch with a warning\.$")) as info:
        fall_back("tiny", cause, explicit=True)
    assert info.value.__cause__ is cause
    assert isinstance(info.value, RuntimeError)


def test_fall_back_warns_visibly_when_onnx_was_chosen_automatically(caplog):
    with caplog.at_level(logging.WARNING), pytest.warns(OnnxFallbackWarning, match=(
            r"ONNX Runtime cannot run backbone 'tiny' \(ValueError: bad graph\); extracting "
            r"with eager PyTorch instead \(the same features, slower\)\.")):
        fall_back("tiny", ValueError("bad graph"), explicit=False)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "extracting with eager PyTorch instead" in caplog.text


def _reason(exc_info) -> str:
    with pytest.raises(OnnxBackendError) as raised:
        fall_back("tiny", exc_info.value, explicit=True)
    return str(raised.value)


def test_each_stage_says_what_failed(tiny_backbone, images, tmp_path, monkeypatch):
    batch = tiny_backbone.preprocess(images(2))
    runner = OnnxRunner(tiny_backbone, ["output"], batch, folder=tmp_path)  # works as is
    out = runner(batch)["output"]
    np.testing.assert_allclose(out, tiny_backbone.forward_layers(batch, ["output"])["output"]
                               .detach(), rtol=1e-4, atol=1e-5)

    mismatch = OnnxRunner(tiny_backbone, ["output"], batch, folder=tmp_path, tolerance=-1.0)
    with pytest.raises(RuntimeError) as info:
        mismatch(batch)
    assert "its output at layer 'output' differs from eager PyTorch by " in _reason(info)
    assert "(relative; the tolerance is -1e+00)" in _reason(info)

    broken = tmp_path / "broken"
    broken.mkdir()
    OnnxRunner(tiny_backbone, ["output"], batch, folder=broken)
    for graph in broken.glob("*.onnx"):
        graph.write_bytes(b"not an onnx graph")
    with pytest.raises(RuntimeError) as info:
        OnnxRunner(tiny_backbone, ["output"], batch, folder=broken)
    assert "ONNX Runtime cannot load the exported graph " in _reason(info)
    assert "delete it to export it again" in _reason(info)

    def refuse(*args, **kwargs):
        raise torch.onnx.errors.UnsupportedOperatorError("aten::foo", 17, None)

    monkeypatch.setattr(torch.onnx, "export", refuse)
    with pytest.raises(RuntimeError) as info:
        OnnxRunner(tiny_backbone, ["output"], batch, folder=tmp_path / "fresh")
    assert "exporting its trunk to ONNX failed: UnsupportedOperatorError: " in _reason(info)

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(RuntimeError) as info:
        OnnxRunner(tiny_backbone, ["output"], batch, folder=tmp_path)
    assert "onnxruntime is not installed (pip install onnxruntime)" in _reason(info)


def _break_export(monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(torch.onnx, "export", refuse)


def test_explicit_onnx_fails_loudly(tiny_backbone, images, monkeypatch):
    _break_export(monkeypatch)
    with pytest.raises(OnnxBackendError, match="backend='onnx' was asked for, but ONNX Runtime "
                                               "cannot run backbone 'tiny'"):
        extract_features(tiny_backbone, images(4), cache=False, backend="onnx")


def test_automatic_onnx_falls_back_with_a_visible_warning(tiny_backbone, images, monkeypatch):
    _break_export(monkeypatch)
    data = images(ONNX_MIN_SAMPLES, size=8)
    with pytest.warns(OnnxFallbackWarning, match="ONNX Runtime cannot run backbone 'tiny'"):
        feats = extract_features(tiny_backbone, data, cache=False, backend="auto")
    np.testing.assert_allclose(feats, extract_features(tiny_backbone, data, cache=False,
                                                       backend="torch"), rtol=1e-6)


def test_onnx_runs_the_backbone_itself_not_its_inference_copy(tiny_backbone, images,
                                                               monkeypatch):
    """The ONNX trunk is exported from, and checked against, the backbone as it is."""
    monkeypatch.setattr(tiny_backbone, "for_inference",
                        lambda: pytest.fail("the ONNX path made an inference copy"))
    feats = extract_features(tiny_backbone, images(4), cache=False, backend="onnx")
    assert feats.shape[0] == 4


def test_a_fallback_to_eager_runs_the_inference_copy(tiny_backbone, images, monkeypatch):
    _break_export(monkeypatch)
    made = []
    monkeypatch.setattr(tiny_backbone, "for_inference", lambda: made.append(1) or tiny_backbone)
    with pytest.warns(OnnxFallbackWarning):
        extract_features(tiny_backbone, images(ONNX_MIN_SAMPLES, size=8), cache=False)
    assert made == [1]
