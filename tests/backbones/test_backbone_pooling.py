"""Pooling a layer output into one vector per sample (images and mask-aware text)."""

from __future__ import annotations

import torch

from graftlab.backbones import Backbone


class _Image(Backbone):
    modality = "image"


class _Text(Backbone):
    modality = "text"
    default_pooling = "mean"


def test_image_avg_and_max():
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)
    torch.testing.assert_close(_Image().pool(x, "avg", {}), x.flatten(2).mean(-1))
    torch.testing.assert_close(_Image().pool(x, "max", {}), x.flatten(2).amax(-1))


def test_two_d_outputs_pass_through():
    x = torch.randn(4, 7)
    assert _Image().pool(x, "avg", {}) is x


def test_text_pooling_ignores_padding():
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]],
                      [[5.0, -6.0], [7.0, 8.0], [-1.0, 9.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    batch = {"attention_mask": mask}
    text = _Text()
    torch.testing.assert_close(text.pool(x, "mean", batch),
                               torch.tensor([[2.0, 3.0], [11 / 3, 11 / 3]]))
    torch.testing.assert_close(text.pool(x, "max", batch), torch.tensor([[3.0, 4.0], [7.0, 9.0]]))
    torch.testing.assert_close(text.pool(x, "cls", batch), x[:, 0])


def test_text_pooling_without_a_mask_uses_every_token():
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(_Text().pool(x, "mean", {}), x.mean(1))
    torch.testing.assert_close(_Text().pool(x, "max", {}), x.amax(1))
