"""Backbone.for_inference: EfficientNet-Lite's copy for frozen extraction (padding moved into
the convs, channels-last activations) computes what the backbone computes, and only that."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from efficientnet_lite_pytorch.utils import Conv2dStaticSamePadding
from torch import nn

from graftlab.backbones.efficientnet import _tight_conv
from graftlab.errors import ConfigError, DataError


@pytest.mark.parametrize("kernel,stride,size", [
    (3, 1, 8), (3, 2, 8), (3, 2, 7), (5, 2, 8), (5, 2, 9), (5, 1, 6), (1, 1, 5),  # all taps
    (5, 1, 1), (5, 1, 2), (3, 1, 1), (5, 2, 2), (5, 2, 1), (3, 2, 1), (5, 2, 3)])  # fewer
def test_the_tight_conv_gives_the_same_numbers(kernel, stride, size):
    """Even paddings and TF's one-more-after (stride 2 on even sizes), and maps smaller than
    the kernel (taps that only meet padding dropped): bit for bit without a bias, as
    EfficientNet's convs are (with one, the bias may be added in another rounding step)."""
    torch.manual_seed(kernel * 10 + size)
    x = torch.randn(2, 6, size, size)
    for bias in (False, True):
        conv = Conv2dStaticSamePadding(6, 6, kernel, stride, image_size=size, groups=6,
                                       bias=bias)
        tight = _tight_conv(conv, (size, size))
        assert type(tight) is nn.Conv2d
        with torch.no_grad():
            expected = conv(x)
            if not bias:
                assert torch.equal(tight(x), expected)
            torch.testing.assert_close(tight(x), expected, rtol=1e-6, atol=1e-6)
            channels_last = tight(x.contiguous(memory_format=torch.channels_last))
            torch.testing.assert_close(channels_last, expected, rtol=1e-6, atol=1e-6)


def test_convs_of_other_kinds_are_left_alone():
    assert _tight_conv(nn.Conv2d(3, 3, 3, padding="same"), (8, 8)) is None
    assert _tight_conv(nn.Sequential(nn.Conv2d(3, 3, 1)), (8, 8)) is None  # a LoRA wrapper


def test_small_maps_keep_only_the_taps_that_reach_them():
    conv = Conv2dStaticSamePadding(4, 4, 5, 1, image_size=1, groups=4)
    assert _tight_conv(conv, (1, 1)).kernel_size == (1, 1)  # a 1x1 map meets the centre only
    assert _tight_conv(conv, (2, 2)).kernel_size == (3, 3)


def test_the_copy_gives_the_backbones_outputs_at_every_layer(lite0, images):
    batch = lite0.preprocess(images(4, size=28, seed=1))
    fast = lite0.for_inference()
    layers = lite0.layer_names()
    with torch.inference_mode():
        expected = lite0.forward_layers(batch, layers)
        got = fast.forward_layers(fast.preprocess(images(4, size=28, seed=1)), layers)
        fast.channels_last = False  # the padding move alone: exact
        nchw = fast.forward_layers(batch, layers)
    for layer in layers:
        assert torch.equal(nchw[layer], expected[layer]), layer
        assert got[layer].is_contiguous(memory_format=torch.channels_last), layer
        # channels-last sums in another order: rounding, as a change of batch size gives
        scale = float(expected[layer].abs().max())
        torch.testing.assert_close(got[layer], expected[layer], rtol=1e-5, atol=1e-5 * scale)
    pooled = fast.pool(got["head"], "avg", batch).numpy()
    np.testing.assert_allclose(pooled, lite0.pool(expected["head"], "avg", batch).numpy(),
                               rtol=1e-5, atol=1e-5)


def test_the_copy_is_as_accurate_as_the_backbone(lite0, images):
    """Against the same network in float64, the copy errs no more than twice the backbone."""
    data = images(6, size=28, seed=2)
    exact = copy.deepcopy(lite0).double()
    with torch.inference_mode():
        truth = exact.features({"pixel_values": lite0.preprocess(data)["pixel_values"].double()})
        own = (lite0.features(lite0.preprocess(data)).double() - truth).abs().max()
        fast = lite0.for_inference()
        err = (fast.features(fast.preprocess(data)).double() - truth).abs().max()
    assert 0 < err <= 2 * own + 1e-6


def test_the_backbone_itself_is_left_as_it_was(lite0):
    lite0.train()
    try:
        fast = lite0.for_inference()
        assert lite0.training and not fast.training
        assert type(lite0.stem[0]) is Conv2dStaticSamePadding and not lite0.channels_last
        assert type(fast.stem[0]) is nn.Conv2d and fast.stem[0].kernel_size == (4, 4)
        assert fast.stem[0].weight.data_ptr() != lite0.stem[0].weight.data_ptr()
    finally:
        lite0.eval()


def test_a_wrapped_conv_is_kept_and_the_rest_still_moves(lite0, images):
    model = copy.deepcopy(lite0)
    block = model.blocks_[1]
    block._expand_conv = nn.Sequential(block._expand_conv)  # what the copy does not know
    fast = model.for_inference()
    assert isinstance(fast.blocks_[1]._expand_conv, nn.Sequential)
    assert type(fast.blocks_[1]._depthwise_conv) is nn.Conv2d
    batch = model.preprocess(images(2, size=32))
    with torch.inference_mode():
        fast.channels_last = False
        assert torch.equal(fast.features(batch), model.features(batch))


def test_the_copy_refuses_to_train(lite0):
    fast = lite0.for_inference()
    with pytest.raises(ConfigError, match=(
            r"^this efficientnet_lite0 is an inference copy \(for_inference\): its convs hold "
            r"only the taps that reach its maps, and zero taps in place of padding, which "
            r"training would move\.\n"
            r"HINT: train the backbone it was copied from, and copy it again afterwards\.$")):
        fast.train()
    assert not fast.training
    fast.eval()  # eval stays allowed


def test_other_backbones_are_their_own_inference_copy(tiny_backbone):
    assert tiny_backbone.for_inference() is tiny_backbone


def test_the_copy_refuses_maps_of_another_size(lite0):
    fast = lite0.for_inference()
    with pytest.raises(DataError, match=(
            r"^this efficientnet_lite0 inference copy was made for 32x32 maps as its input, got "
            r"64x64\.\nHINT: its convs keep only the taps that reach maps of that size: run the "
            r"backbone itself on other sizes \(preprocess resizes to image_size\)\.$")):
        fast.forward_layers({"pixel_values": torch.zeros(1, 3, 64, 64)}, ["stem"])
    with pytest.raises(DataError, match=r"made for 4x4 maps as blocks\.4's output, got 8x8"):
        fast.forward_from("blocks.4", torch.zeros(1, 40, 8, 8), ["head"])
    with torch.inference_mode():  # the right sizes go through
        acts = fast.forward_layers(fast.preprocess(np.zeros((1, 32, 32, 3), np.uint8)),
                                   ["blocks.4"])
        assert fast.forward_from("blocks.4", acts["blocks.4"], ["head"])["head"].shape == (
            1, 1280, 1, 1)
