"""PADA's class weights: from the target's mean prediction, normalised by the max, and they
down-weight the source classes the target lacks in both the classifier and the discriminator."""

from __future__ import annotations

import torch

from graftlab.methods.erm import task_loss
from tests.methods.test_adaptation_contract import _batch, _method


def test_class_weights_follow_the_target_mean_prediction():
    method = _method("pada", update_every=1).train()
    batch = _batch()
    # a target whose predictions all say class 2: class 2 weighs 1, the others little
    logits_t = torch.tensor([[0.0, 0.0, 8.0]]).repeat(16, 1)
    method.source_weights(batch["source"], logits_t)  # step 0 trains with ones
    method.step += 1
    w = method.source_weights(batch["source"], logits_t)  # step 1: step 0's window
    assert torch.allclose(method.class_weights.max(), torch.tensor(1.0))
    assert method.class_weights.argmax() == 2 and method.class_weights[:2].max() < 0.01
    assert torch.equal(w, method.class_weights[batch["source"]["labels"]])
    # and a selection's per-sample weights multiply in
    batch["source"]["weights"] = torch.full((16,), 0.5)
    assert torch.allclose(method.source_weights(batch["source"], logits_t), w * 0.5)


def test_weights_stay_one_for_the_first_window_then_average_it(monkeypatch):
    """Plain DANN for the first ``update_every`` training steps; from then on, at each window's
    end, the mean over every target prediction in that window (not the latest batch's)."""
    method = _method("pada", update_every=2, schedule="constant").train()
    says = iter([torch.tensor([8.0, 0.0, 0.0]), torch.tensor([0.0, 8.0, 0.0]),
                 torch.tensor([0.0, 8.0, 0.0]), torch.tensor([0.0, 8.0, 0.0])])
    classify = method.model.head.classify
    seen = []

    def fake(f):  # the target's logits (the second call of each step) say one class
        out = classify(f)
        if len(seen) % 2:
            out = next(says).repeat(len(f), 1) + 0 * out
        seen.append(out)
        return out

    monkeypatch.setattr(method.model.head, "classify", fake)
    weights = []
    for _ in range(4):
        method(_batch())
        weights.append(method.class_weights.clone())
    assert torch.equal(weights[0], torch.ones(3)) and torch.equal(weights[1], torch.ones(3))
    # step 2 (the third) uses steps 0-1: half class 0, half class 1
    assert torch.allclose(weights[2][:2], torch.ones(2), atol=1e-3) and weights[2][2] < 0.01
    assert torch.equal(weights[3], weights[2])  # within the second window: unchanged


def test_weights_change_the_losses_and_are_saved():
    method = _method("pada", schedule="constant").train()
    out = method(_batch(shift=2.0))
    assert torch.isfinite(out["loss"]) and "class_weights" in method.state_dict()
    logits = torch.randn(4, 3)
    labels = torch.tensor([0, 1, 2, 0])
    only_first = task_loss(logits, labels, 3, weights=torch.tensor([1.0, 0, 0, 0]))
    assert torch.allclose(only_first, torch.nn.functional.cross_entropy(logits[:1], labels[:1]))


def test_mixed_soft_labels_are_weighted_by_their_class_shares():
    """A mixing augmentation hands PADA soft labels (B, C): each sample weighs its classes'
    weights by their shares (mixup of classes 0 and 2 at 0.25/0.75 -> 0.25 w0 + 0.75 w2)."""
    method = _method("pada", update_every=1).train()
    method.class_weights.copy_(torch.tensor([1.0, 0.5, 0.1]))
    soft = torch.tensor([[0.25, 0.0, 0.75], [0.0, 1.0, 0.0]])
    w = method.source_weights({"labels": soft}, torch.zeros(2, 3))
    assert torch.allclose(w, torch.tensor([0.25 + 0.075, 0.5]))
