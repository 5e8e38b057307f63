"""Grafter(augment=PRESET): image presets run on the inputs route, feature mixup keeps the
feature cache, token edits add edited training texts (never validation ones), and a preset
for another modality is refused before any work."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graftlab import Grafter
from graftlab.augment import build_preset, with_edited_texts
from graftlab.errors import ConfigError
from graftlab.methods import ERM

OPTS = {"image_size": 32}


def _images(n=16):
    rng = np.random.default_rng(0)
    y = np.array(["cat", "dog"] * (n // 2))
    x = rng.integers(0, 120, (n, 32, 32, 3), dtype=np.uint8)
    x[y == "dog", 8:24, 8:24] = 250
    return x, y


@pytest.mark.parametrize("preset, cached", [("expand_mix", None), ("feature_mixup", True)])
def test_image_presets_pick_their_route(preset, cached):
    x, y = _images()
    g = Grafter(strategy="head_only", epochs=1, batch_size=8, augment=preset,
                backbone_options=OPTS).fit(x, y)
    assert g.record_.get("feature_cache") is cached  # None: the inputs route, per step
    assert np.isfinite(g.history_[0]["train_loss"])


def test_a_text_preset_on_images_is_refused_naming_the_image_presets():
    x, y = _images()
    with pytest.raises(ConfigError, match=r"preset 'token_edits' is for text inputs, but the "
                       r"backbone takes image\. Presets for image: light, expand, mixup"):
        Grafter(augment="token_edits", backbone_options=OPTS).fit(x, y)


def test_a_mixing_preset_is_refused_with_a_teacher():
    x, y = _images()
    with pytest.raises(ConfigError, match="mixes samples, and a teacher's outputs are for "
                       "unmixed ones"):
        Grafter(augment="feature_mixup", distill_from="somewhere",
                backbone_options=OPTS).fit(x, y)


def test_token_edits_append_edited_training_texts_only():
    from graftlab.data.domain import Domain

    texts = [f"text number {i} is here" for i in range(6)]
    domain = Domain("t", "text", texts)
    labels = np.array([0, 1, 0, 1, 0, 1])
    edits = build_preset("token_edits", "text").texts
    joined, y, train = with_edited_texts(edits, domain, labels, np.array([0, 1, 2, 3]), None, 0)
    assert len(joined) == 10 and joined.inputs[:6] == texts
    assert train.tolist() == [0, 1, 2, 3, 6, 7, 8, 9] and y[6:].tolist() == [0, 1, 0, 1]
    assert "[MASK]" in " ".join(joined.inputs[6:]) or joined.inputs[6:] != texts[:4]


def test_feature_mixup_trains_the_head_on_mixed_features_and_soft_labels():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(4, 3)

        def features(self, inputs):
            return inputs["features"]

        def forward(self, inputs):
            return self.head(inputs["features"])

    torch.manual_seed(0)
    net = Net()
    mix = build_preset("feature_mixup", "text").mix
    method = ERM(net, num_classes=3, mix=mix).train()
    batch = {"inputs": {"features": torch.randn(8, 4)}, "labels": torch.arange(8) % 3}
    torch.manual_seed(1)
    loss = method(batch)["loss"]
    torch.manual_seed(1)
    feats, soft = mix(batch["inputs"]["features"], torch.eye(3)[batch["labels"]])
    expected = -(soft * net.head(feats).log_softmax(-1)).sum(1).mean()
    torch.testing.assert_close(loss, expected)
    method.eval()  # validation scores the plain labels
    plain = method(batch)["loss"]
    torch.testing.assert_close(plain, torch.nn.functional.cross_entropy(
        net(batch["inputs"]), batch["labels"]))


def test_a_fit_config_takes_a_preset_name_or_a_switch():
    from graftlab.config import TrainConfig

    assert TrainConfig(augment="expand").augment == "expand"
    assert TrainConfig(augment=False).augment is False
