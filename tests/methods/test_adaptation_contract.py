"""Every registered adaptation method through the same checks (a contract over the registry),
plus the properties each loss promises."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from graftlab.errors import ConfigError, NotFoundError
from graftlab.heads import create_head
from graftlab.methods import create_method, list_methods
from graftlab.methods.adaptation import warmup
from graftlab.methods.coral import coral_loss
from graftlab.methods.dan import mk_mmd
from graftlab.methods.dann import reverse_gradient
from graftlab.methods.mcc import mcc_loss


class Tiny(nn.Module):
    """features(inputs) -> (B, 8) and a pooled head, like a grafted model."""

    def __init__(self, head="linear"):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.head = create_head(head, in_features=8, num_outputs=3,
                                **({"hidden": [6]} if head == "mlp" else {}))

    def features(self, inputs):
        return self.backbone(inputs["x"])


def _batch(shift=0.0, n=16):
    g = torch.Generator().manual_seed(1)
    return {"source": {"inputs": {"x": torch.randn(n, 4, generator=g)},
                       "labels": torch.randint(0, 3, (n,), generator=g)},
            "target": {"inputs": {"x": torch.randn(n, 4, generator=g) + shift}}}


def _method(name, head="linear", **kw):
    model = Tiny(head)
    return create_method(name, model, num_classes=3, feature_dim=model.head.embed_dim,
                         total_steps=10, **kw)


@pytest.mark.parametrize("head", ["linear", "mlp"])
@pytest.mark.parametrize("name", list_methods())
def test_every_method_gives_a_finite_loss_that_trains_the_features(name, head):
    method = _method(name, head, schedule="constant").train()
    out = method(_batch(shift=2.0))
    assert torch.isfinite(out["loss"]) and out["loss"].requires_grad
    assert set(out) >= {"loss", "ce", "lambda"}
    out["loss"].backward()
    assert method.model.backbone[0].weight.grad.abs().sum() > 0
    if head == "mlp":  # the bottleneck is what the transfer term shapes
        assert method.model.head.net[0].weight.grad.abs().sum() > 0
    if name == "source_only":
        assert "transfer" not in out and torch.equal(out["loss"].detach(), out["ce"])
    else:  # the transfer term is there and moves the loss
        assert torch.isfinite(out["transfer"])
        assert not torch.allclose(out["loss"].detach(), out["ce"])


@pytest.mark.parametrize("name", list_methods())
def test_warmup_starts_at_zero_and_the_step_counts_only_in_training(name):
    method = _method(name).train()
    first = method(_batch(shift=2.0))
    assert float(first["lambda"]) == 0.0 and torch.allclose(first["loss"].detach(), first["ce"])
    assert int(method.step) == 1
    method.eval()
    method(_batch())
    assert int(method.step) == 1
    assert "step" in method.state_dict()  # checkpointed: a resumed run continues the schedule
    scores = method.evaluate({"inputs": {"x": torch.randn(5, 4)},
                              "labels": torch.tensor([0, 1, 2, 0, 1])})
    assert scores["count"] == 5 and 0 <= scores["accuracy"] <= 5


def test_lambda_schedule_and_bad_options():
    assert warmup(0.0) == 0.0 and warmup(1.0) > 0.99 and 0.4 < warmup(0.1) < 0.5
    m = _method("dann", weight=0.5)
    m.step.fill_(10)
    assert math.isclose(m.lam(), 0.5 * warmup(1.0))
    with pytest.raises(ConfigError, match="lambda must be a finite number"):
        _method("dann", weight=float("nan"))
    with pytest.raises(ConfigError, match="schedule 'linear'"):
        _method("dann", schedule="linear")
    with pytest.raises(NotFoundError, match="Did you mean 'dann'"):
        _method("dan_n")


def test_gradient_reversal_negates_the_gradient_only():
    x = torch.randn(3, 2, requires_grad=True)
    y = reverse_gradient(x)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.equal(x.grad, -torch.ones(3, 2))


def test_coral_and_mmd_are_zero_for_the_same_batch_and_grow_with_the_shift():
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    y = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
    assert coral_loss(x, x) < 1e-6 and mk_mmd(x, x).abs() < 1e-6
    assert coral_loss(x, y + 3) > 10 * coral_loss(x, y)
    assert mk_mmd(x, y + 3) > 10 * mk_mmd(x, y)


def test_mcc_is_low_for_confident_distinct_predictions_and_high_for_confusion():
    confident = torch.eye(4).repeat(4, 1) * 20
    confused = torch.zeros(16, 4)
    assert mcc_loss(confident) < 0.05
    assert mcc_loss(confused) == pytest.approx(3 / 4, abs=1e-5)


def test_cdan_uses_a_random_projection_only_when_the_map_is_large():
    small = _method("cdan")
    assert not small.randomized and small.discriminator[0].in_features == 8 * 3
    big = _method("cdan", max_dim=16)
    assert big.randomized and big.discriminator[0].in_features == 16
