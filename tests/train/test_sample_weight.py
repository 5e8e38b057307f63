"""Grafter.fit(sample_weight=...): a selection's weights reach the loss; weight 0 leaves a
sample out; bad weights are named before any work."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graftlab import Grafter
from graftlab.errors import DataError
from graftlab.methods.erm import task_loss


def _data(images, n=32):
    x = images(n, size=12)
    y = np.array([0, 1] * (n // 2))
    x[y == 1, 3:9, 3:9] = 255
    return x, y


def test_zero_weight_samples_are_left_out(tiny_backbone, images):
    x, y = _data(images)
    flipped = np.r_[y[:16], 1 - y[16:]]  # the second half poisoned...
    w = np.r_[np.ones(16), np.zeros(16)]  # ...and dropped by its weights
    kw = dict(backbone=tiny_backbone, strategy="head_only", epochs=3, batch_size=8, seed=0)
    kept = Grafter(**kw).fit(x[:16], y[:16])
    weighted = Grafter(**kw).fit(x, flipped, sample_weight=w)
    for a, b in zip(kept.model_.head.parameters(), weighted.model_.head.parameters(),
                    strict=True):
        assert torch.allclose(a, b, atol=1e-6)  # the same as training on the kept half alone
    uneven = Grafter(**kw).fit(x, y, sample_weight=np.r_[np.ones(16), np.full(16, 3.0)])
    plain = Grafter(**kw).fit(x, y)
    assert not torch.allclose(uneven.model_.head.fc.weight, plain.model_.head.fc.weight)


def test_weighted_loss_is_the_weighted_mean():
    logits, labels = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    w = torch.tensor([2.0, 0.0, 1.0, 1.0])
    per = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    assert torch.allclose(task_loss(logits, labels, 3, weights=w), (per * w).sum() / 4)


@pytest.mark.parametrize(("weights", "message"), [
    (np.zeros(32), "all zero"), (np.r_[np.ones(31), np.nan], "not finite"),
    (np.ones(5), "5 sample weights for 32 samples")])
def test_bad_sample_weights_are_refused(tiny_backbone, images, weights, message):
    x, y = _data(images)
    with pytest.raises(DataError, match=message):
        Grafter(backbone=tiny_backbone, strategy="head_only", epochs=1).fit(
            x, y, sample_weight=weights)


def test_weight_only_on_held_out_samples_is_refused(tiny_backbone, images):
    from graftlab.train.solve import holdout

    x, y = _data(images)
    _, val = holdout(y, 0.5, 0, stratify=True)
    w = np.zeros(32)
    w[val[0]] = 1.0
    with pytest.raises(DataError, match="every sample of weight > 0 was held out"):
        Grafter(backbone=tiny_backbone, strategy="head_only", epochs=1,
                validation_fraction=0.5).fit(x, y, sample_weight=w)


def test_a_linear_probe_stays_solved_with_uneven_weights(tiny_backbone, images):
    """The probe's closed-form solve takes the weights (it used to fall back to a few epochs
    of SGD, unsaid); options only SGD can apply are refused, naming head_only."""
    from graftlab.errors import ConfigError

    x, y = _data(images)
    flipped = np.r_[y[:16], 1 - y[16:]]  # the second half poisoned, and weighed down to ~0
    w = np.r_[np.ones(16), np.full(16, 1e-6)]
    kw = dict(backbone=tiny_backbone, strategy="linear_probe", seed=0)
    weighted = Grafter(**kw).fit(x, flipped, sample_weight=w)
    assert weighted.record_.get("solver") == "LinearProbeClassifier"
    assert (weighted.predict(x) == y).mean() > 0.9  # the poison weighs nothing
    with pytest.raises(ConfigError, match=r"linear_probe solves its head in closed form .* "
                       r"takes no label_smoothing"):
        Grafter(**kw, label_smoothing=0.1).fit(x, y)


def test_edited_text_copies_weigh_as_their_originals(monkeypatch, tiny_tagging_bert):
    """token_edits appends edited copies of the training texts: they take their originals'
    weights (indexing the weights by the new positions raised IndexError)."""
    import graftlab.grafter as grafter_module

    seen = {}
    real = grafter_module._collate

    def spy(pick, labels, teacher, weights=None):
        seen["weights"], seen["labels"] = weights, labels
        return real(pick, labels, teacher, weights)

    monkeypatch.setattr(grafter_module, "_collate", spy)
    texts = ["john lives in paris", "mary visits london", "the city of york",
             "john loves mary"] * 3
    y = np.array([0, 1, 0, 1] * 3)
    w = np.linspace(0.5, 2.0, len(texts))
    Grafter(backbone=tiny_tagging_bert, strategy="head_only", augment="token_edits",
            epochs=1, batch_size=4, seed=0).fit(texts, y, sample_weight=w)
    weights = seen["weights"].numpy()
    assert len(weights) == len(seen["labels"]) > len(texts)  # one per text, copies included
    copies = (len(weights) - len(texts)) // len(texts)
    np.testing.assert_allclose(weights[len(texts):], np.tile(weights[:len(texts)], copies),
                               rtol=1e-6)


def test_validation_images_of_another_size_and_too_few_to_hold_out(tiny_backbone, images):
    x, y = _data(images)
    big = images(8, size=20)
    model = Grafter(backbone=tiny_backbone, strategy="head_only", epochs=1, batch_size=8,
                    early_stopping=1).fit(x, y, validation_data=(big, np.array([0, 1] * 4)))
    assert len(model.history_) == 1  # scored on the resized validation images
    lone = np.r_[y[:-1], 2]  # class 2 has one sample: nothing to hold out of it
    with pytest.raises(DataError, match=r"needs two samples of each class; class\(es\) "
                       r"\['2'\] have one"):
        Grafter(backbone=tiny_backbone, strategy="head_only", epochs=1,
                early_stopping=1).fit(x, lone)


def test_score_takes_a_domains_own_labels_and_settings_are_checked(tiny_backbone, images):
    from graftlab.data import Domain
    from graftlab.errors import ConfigError

    x, y = _data(images)
    domain = Domain("d", "image", x, labels=y, classes=["a", "b"])
    model = Grafter(backbone=tiny_backbone, strategy="linear_probe").fit(domain, None)
    assert model.score(domain) == model.score(domain, domain.labels)
    for bad, words in (({"validation_fraction": 1.0}, "validation_fraction must be"),
                       ({"lr_decay": 5}, "lr_decay must be"),
                       ({"early_stopping": 0}, "early_stopping must be")):
        with pytest.raises(ConfigError, match=words):
            Grafter(backbone=tiny_backbone, **bad).fit(x, y)


def test_a_model_fitted_on_names_scores_a_domain_and_a_solved_head_refuses_early(
        tiny_backbone, images, monkeypatch):
    from graftlab.data import Domain
    from graftlab.errors import ConfigError

    x, y = _data(images)
    domain = Domain("d", "image", x, labels=y, classes=["dark", "bright"])
    named = Grafter(backbone=tiny_backbone, strategy="linear_probe").fit(
        x, np.asarray(domain.classes)[y])
    assert named.score(domain) == named.score(x, np.asarray(domain.classes)[y])
    import graftlab.grafter as grafter_module

    monkeypatch.setattr(grafter_module, "as_domain", lambda *a: pytest.fail("data was read"))
    with pytest.raises(ConfigError, match=r"takes no augment='mix'"):
        Grafter(backbone=tiny_backbone, strategy="linear_probe", augment="mix").fit(x, y)
