"""Every registered head keeps the same contract."""

from __future__ import annotations

import pytest
import torch

from graftlab.errors import ConfigError, NotFoundError
from graftlab.heads.heads import HEADS
from graftlab.heads import create_head, list_heads

INPUTS = {"pooled": (4, 16), "spatial": (4, 16, 5, 5), "tokens": (4, 7, 16)}


def test_registry_lists_the_four_heads():
    assert set(list_heads()) >= {"linear", "mlp", "conv", "sequence"}


@pytest.mark.parametrize("name", list_heads())
@pytest.mark.parametrize("outputs", [1, 3])
def test_shape_and_gradients(name, outputs):
    torch.manual_seed(0)
    head = create_head(name, in_features=16, num_outputs=outputs)
    x = torch.randn(*INPUTS[head.input_kind], requires_grad=True)
    mask = torch.ones(4, 7) if head.input_kind == "tokens" else None
    y = head(x, mask)
    assert y.shape == ((4, 7, outputs) if head.task == "tokens" else (4, outputs))
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in head.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", [n for n in list_heads()  # those with a bottleneck (DA)
                                  if HEADS.get(n).input_kind == "pooled"])
def test_pooled_heads_split_into_embed_and_classify(name):
    torch.manual_seed(0)
    head = create_head(name, in_features=16, num_outputs=3).eval()
    x = torch.randn(*INPUTS["pooled"])
    z = head.embed(x)
    assert z.shape == (4, head.embed_dim)
    assert torch.allclose(head.classify(z), head(x), atol=1e-6)


@pytest.mark.parametrize("kind", ["attention", "gru"])
def test_sequence_head_ignores_padding(kind):
    torch.manual_seed(0)
    head = create_head("sequence", in_features=8, num_outputs=2, kind=kind).eval()
    x = torch.randn(1, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0]])
    padded = x.clone()
    padded[:, 3:] = 100.0  # garbage where the mask is 0
    assert torch.allclose(head(x, mask), head(padded, mask), atol=1e-5)
    assert torch.allclose(head(x[:, :3], None), head(x, mask), atol=1e-5)


@pytest.mark.parametrize("name", list_heads())
def test_wrong_input_rank_is_explained(name):
    head = create_head(name, in_features=16, num_outputs=2)
    wrong = torch.randn(4, 16, 2, 2, 2)
    with pytest.raises(ConfigError, match=f"head '{name}' takes {head.input_kind} input"):
        head(wrong)


def test_unknown_head_suggests_the_closest():
    with pytest.raises(NotFoundError, match="unknown head 'mpl'.*Did you mean 'mlp'"):
        create_head("mpl", in_features=4, num_outputs=2)


def test_bad_head_options_name_the_head():
    with pytest.raises(ConfigError, match="head 'mlp'"):
        create_head("mlp", in_features=4, num_outputs=2, depth=3)
    with pytest.raises(ConfigError, match="norm must be"):
        create_head("mlp", in_features=4, num_outputs=2, norm="group")
    with pytest.raises(ConfigError, match="kind must be"):
        create_head("sequence", in_features=4, num_outputs=2, kind="lstm")
