"""wrap_module: any nn.Module as a backbone (layers by hooks, measured width, honest cache key)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from graftlab.backbones import Backbone, ModuleBackbone, create_backbone, wrap_module


def test_children_become_layers_and_output_is_last(tiny_backbone):
    assert tiny_backbone.layer_names() == ["0", "1", "2", "output"]
    assert [name for name, _ in tiny_backbone.blocks()] == ["0", "1", "2"]
    assert tiny_backbone.default_pooling == "avg" and tiny_backbone.modality == "image"


def test_layers_equal_running_the_module_by_hand(tiny_backbone, images):
    batch = tiny_backbone.preprocess(images(3))
    x = batch["x"]
    assert x.shape == (3, 3, 12, 12) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    net = tiny_backbone.module
    with torch.inference_mode():
        out = tiny_backbone.forward_layers(batch, ["0", "2", "output"])
        torch.testing.assert_close(out["0"], net[0](x))
        torch.testing.assert_close(out["2"], net(x))
        torch.testing.assert_close(out["output"], net(x))
    assert not net[0]._forward_hooks  # hooks are removed after each call


def test_num_features_is_measured_on_first_use(make_net, images):
    backbone = wrap_module(make_net(width=5))
    assert backbone.num_features == 0
    with torch.inference_mode():
        feats = backbone.features(backbone.preprocess(images(2)))
    assert feats.shape == (2, 5) and backbone.num_features == 5
    assert wrap_module(make_net(), num_features=16).num_features == 16


def test_create_backbone_wraps_modules_and_passes_backbones_through(make_net, tiny_backbone):
    wrapped = create_backbone(make_net(), name="mine")
    assert isinstance(wrapped, ModuleBackbone) and wrapped.name == "mine"
    assert create_backbone(tiny_backbone) is tiny_backbone


def test_explicit_and_nested_layers(images):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), nn.Conv2d(4, 6, 3))
    backbone = wrap_module(net, layers=["0.0", "1"])
    assert backbone.layer_names() == ["0.0", "1"] and backbone.default_layer == "1"
    with torch.inference_mode():
        out = backbone.forward_layers(backbone.preprocess(images(2)), ["0.0"])
    assert out["0.0"].shape == (2, 4, 10, 10)


def test_text_module_with_its_own_preprocess():
    vocab = {c: i + 1 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz ")}

    def tokenize(texts):
        ids = [[vocab[c] for c in t] for t in texts]
        width = max(map(len, ids))
        input_ids = torch.tensor([row + [0] * (width - len(row)) for row in ids])
        return {"input_ids": input_ids, "attention_mask": (input_ids > 0).long()}

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(len(vocab) + 1, 8)

        def forward(self, input_ids, attention_mask):
            return self.embed(input_ids)

    torch.manual_seed(0)
    backbone = wrap_module(Encoder(), modality="text", preprocess=tokenize, name="chars")
    texts = ["abc", "hello world"]
    with torch.inference_mode():
        feats = backbone.features(backbone.preprocess(texts))
        alone = backbone.features(backbone.preprocess(["abc"]))
        expected = backbone.module.embed(torch.tensor([1, 2, 3])).mean(0)
    assert backbone.default_pooling == "mean" and feats.shape == (2, 8)
    torch.testing.assert_close(feats[0], expected)  # padding does not leak into the mean
    torch.testing.assert_close(feats[0], alone[0])


class TestCacheKey:
    def test_equal_modules_equal_keys(self, make_net):
        assert wrap_module(make_net(seed=1)).cache_key() == wrap_module(make_net(seed=1)).cache_key()
        assert wrap_module(make_net(seed=1)).cache_key() != wrap_module(make_net(seed=2)).cache_key()

    def test_any_weight_change_changes_the_key(self, make_net):
        net = make_net()
        backbone = wrap_module(net)
        before = backbone.cache_key()
        with torch.no_grad():
            net[2].weight.view(-1)[-1] += 0.5  # far past the first 64 values
        assert backbone.cache_key() != before

    def test_buffers_count_too(self):
        net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        twin = copy.deepcopy(net)
        twin[1].running_mean += 1.0  # same parameters, different normalisation
        assert wrap_module(net).cache_key() != wrap_module(twin).cache_key()

    def test_preprocess_is_part_of_the_key(self, make_net):
        def halve(x):
            return {"x": torch.as_tensor(np.asarray(x)).permute(0, 3, 1, 2).float() / 510.0}

        plain = wrap_module(make_net())
        other = wrap_module(make_net(), preprocess=halve)
        assert plain.cache_key() != other.cache_key()
        assert other.cache_key() == wrap_module(make_net(), preprocess=halve).cache_key()


def test_a_module_is_a_backbone_subclass_instance(tiny_backbone):
    assert isinstance(tiny_backbone, Backbone) and isinstance(tiny_backbone, nn.Module)
    with pytest.raises(NotImplementedError):
        Backbone().layer_names()
