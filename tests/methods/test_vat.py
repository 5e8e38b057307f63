"""VAT and VADA: the adversarial direction raises the KL more than a random one of the same
size, the terms reach the perturbed input's model, and the methods run in the adaptation
contract (tests/methods/test_adaptation_contract.py loops over them too)."""

from __future__ import annotations

import torch
from torch import nn

from graftlab.methods import create_method
from graftlab.methods.vat import _unit, kl_logits, vat_loss


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))


def test_the_adversarial_perturbation_raises_the_kl_more_than_a_random_one():
    net, x = _net(), torch.randn(64, 6, generator=torch.Generator().manual_seed(1)) * 2
    logits = net(x).detach()
    eps = 0.1
    torch.manual_seed(2)
    adversarial = float(vat_loss(net, x, logits, eps=eps).detach())
    scale = x.norm(dim=1, keepdim=True)
    random = [float(kl_logits(logits, net(x + eps * scale * _unit(torch.randn_like(x)))).detach())
              for _ in range(5)]
    assert adversarial > 0 and adversarial > 3 * max(random)


def test_vat_gradient_reaches_the_model_and_not_the_input():
    net = _net()
    x = torch.randn(8, 6, requires_grad=True)
    loss = vat_loss(net, x, net(x))
    loss.backward()
    assert net[0].weight.grad.abs().sum() > 0
    assert x.grad is None  # the perturbation is found with x held fixed


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        from graftlab.heads import create_head

        torch.manual_seed(0)
        self.backbone = nn.Linear(4, 8)
        self.head = create_head("mlp", in_features=8, num_outputs=3, hidden=[6])

    def features(self, inputs):
        return self.backbone(inputs["features"])


def test_vada_adds_vat_and_entropy_to_dann_and_forgets_the_batch():
    batch = {"source": {"inputs": {"features": torch.randn(16, 4)},
                        "labels": torch.randint(0, 3, (16,))},
             "target": {"inputs": {"features": torch.randn(16, 4) + 1}}}
    outs = {}
    for name in ("dann", "vada"):
        model = _Tiny()
        method = create_method(name, model, num_classes=3, feature_dim=6, total_steps=4,
                               schedule="constant").train()
        torch.manual_seed(5)
        outs[name] = method(batch)
        assert getattr(method, "_batch", None) is None
    assert float(outs["vada"]["transfer"]) > float(outs["dann"]["transfer"])
    torch.testing.assert_close(outs["vada"]["ce"], outs["dann"]["ce"])
