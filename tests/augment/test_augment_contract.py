"""Every registered augmentation through the same checks (declared modality, shape, dtype,
range, determinism under a seed), the label mixing of mixup / CutMix, each op's promise, the
presets and their error message."""

from __future__ import annotations

import pytest
import torch

from graftlab.augment import AUGMENTATIONS, PRESETS, build_preset, presets_for
from graftlab.augment.colour import COLOUR_OPS, invert, posterize, solarize
from graftlab.augment.geometry import affine
from graftlab.augment.mixing import CutMix, Mixup
from graftlab.augment.text import TokenEdits
from graftlab.augment.trivial import OPS
from graftlab.errors import ConfigError, NotFoundError


def _images(n=8, size=16):
    torch.manual_seed(3)
    return torch.rand(n, 3, size, size)


def _run(aug, seed=0):
    if aug.modality == "text":
        return aug(["the film was good fun", "dull and far too long"], seed=seed)
    x = torch.randn(8, 12, generator=torch.Generator().manual_seed(2)) \
        if aug.modality == "features" else _images()
    torch.manual_seed(seed)
    if aug.mixes_labels:
        return aug(x, torch.eye(4)[torch.arange(8) % 4])
    return aug(x)


@pytest.mark.parametrize("name", AUGMENTATIONS.names())
def test_every_augmentation_declares_itself_keeps_its_batch_and_repeats_under_a_seed(name):
    aug = AUGMENTATIONS.create(name)
    assert aug.modality in ("image", "text", "features")
    assert aug.applies_to in ("inputs", "features")
    out, again, other = _run(aug), _run(aug), _run(aug, seed=1)
    if aug.modality == "text":
        assert out == again and len(out) == 2 and all(isinstance(t, str) for t in out)
        return
    x = out[0] if aug.mixes_labels else out
    assert torch.equal(x, (again[0] if aug.mixes_labels else again))
    assert not torch.equal(x, other[0] if aug.mixes_labels else other)  # it is random
    shape = (8, 12) if aug.modality == "features" else (8, 3, 16, 16)
    assert x.shape == shape and x.dtype == torch.float32
    if aug.modality == "image":
        assert float(x.min()) >= 0 and float(x.max()) <= 1
    if aug.mixes_labels:
        y = out[1]
        assert y.shape == (8, 4) and torch.allclose(y.sum(1), torch.ones(8))


@pytest.mark.parametrize("op", sorted(OPS))
def test_each_trivialaugment_op_keeps_range_and_zero_magnitude_keeps_geometry(op):
    x = _images()
    out = OPS[op](x, torch.full((8,), 0.7))
    assert out.shape == x.shape and 0 <= float(out.min()) and float(out.max()) <= 1
    if op in ("rotate", "shear", "translate"):  # magnitude 0 is the identity warp
        torch.testing.assert_close(OPS[op](x, torch.zeros(8)), x, atol=1e-5, rtol=0)


def test_colour_ops_do_what_they_say():
    x = _images()
    assert torch.equal(invert(x, None), 1 - x)
    assert torch.equal(solarize(x, torch.zeros(8)), torch.where(x >= 1, 1 - x, x))
    assert len(torch.unique(posterize(x, torch.ones(8)))) <= 4  # 2 bits
    grey = x.mean(1, keepdim=True).expand_as(x)
    assert torch.allclose(COLOUR_OPS["saturation"](grey, torch.ones(8)), grey, atol=1e-6)


def test_affine_turns_an_image_a_quarter_with_90_degrees():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 0, 2] = 1  # top middle
    out = affine(x, angle=torch.tensor([90.0]))
    assert out[0, 0].argmax() in (10, 14)  # now at the middle of the left or right edge


def test_mixup_mixes_inputs_and_labels_with_the_same_lambda():
    x = torch.arange(4.0).view(4, 1)
    y = torch.eye(4)
    torch.manual_seed(0)
    mx, my = Mixup(alpha=1.0)(x, y)
    # x_i = lam * i + (1 - lam) * j exactly where y_i puts lam on class i, 1 - lam on j
    torch.testing.assert_close(mx.squeeze(1), (my * torch.arange(4.0)).sum(1))
    assert len(torch.unique(my.max(1).values)) == 1  # one lam for the batch


def test_cutmix_label_weight_is_the_pasted_area():
    torch.manual_seed(0)
    x = torch.zeros(4, 1, 10, 10)
    x[torch.arange(4), 0] = torch.arange(1.0, 5.0).view(4, 1, 1)  # image i filled with i + 1
    mx, my = CutMix(alpha=1.0)(x, torch.eye(4))
    kept = (mx == x).float().mean((1, 2, 3))  # the area of each image left as it was
    own = my[torch.arange(4), torch.arange(4)]
    changed = own < 1
    torch.testing.assert_close(own[changed], kept[changed])


def test_token_edits_alter_as_declared_and_keep_what_they_must():
    texts = ["one two three four five six seven eight nine ten"] * 20
    assert TokenEdits(p_delete=0, p_swap=0, p_mask=0)(texts) == texts
    masked = TokenEdits(p_delete=0, p_swap=0, p_mask=0.5, mask_token="[M]")(texts, seed=1)
    assert all(len(t.split()) == 10 for t in masked) and any("[M]" in t for t in masked)
    swapped = TokenEdits(p_delete=0, p_swap=0.5, p_mask=0)(texts, seed=1)
    assert all(sorted(t.split()) == sorted(texts[0].split()) for t in swapped)
    assert any(t != texts[0] for t in swapped)
    deleted = TokenEdits(p_delete=0.9, p_swap=0, p_mask=0)(texts, seed=1)
    assert all(1 <= len(t.split()) < 10 for t in deleted)  # never empty
    assert TokenEdits()(["single"]) == ["single"]
    with pytest.raises(ConfigError, match="p_delete must be in"):
        TokenEdits(p_delete=1.5)


def test_presets_name_registered_augmentations_and_fit_their_modality():
    for name, preset in PRESETS.items():
        for step, _ in preset.steps:
            assert step in AUGMENTATIONS
        assert name in presets_for(preset.modality if preset.modality != "features"
                                   else "image")
    assert "expand" in presets_for("image") and "expand" not in presets_for("text")
    assert presets_for("text") == ["token_edits", "feature_mixup", "feature_domain_mix"]
    built = build_preset("expand_mix", "image")
    assert [a.name for a in built.inputs] == ["trivial", "photo_blend"]
    assert built.mix.name == "mix" and built.changes_inputs
    assert not build_preset("feature_mixup", "text").changes_inputs


def test_a_preset_for_another_modality_is_refused_naming_those_that_fit():
    with pytest.raises(ConfigError, match=r"preset 'expand' is for image inputs, but the "
                       r"backbone takes text\. Presets for text: token_edits, feature_mixup, "):
        build_preset("expand", "text")
    with pytest.raises(ConfigError, match="Presets for image: light, expand"):
        build_preset("token_edits", "image")
    with pytest.raises(NotFoundError, match="Did you mean 'expand'"):
        build_preset("expnad", "image")


def test_photo_blend_is_the_mnist_m_difference_with_a_photo_patch():
    blend = AUGMENTATIONS.create("photo_blend", p=1.0, patch=(16, 16))
    x = _images(2)
    torch.manual_seed(0)
    out = blend(x)
    torch.manual_seed(0)  # the same draws, in the op's order: who, side, photo, top, left
    torch.rand(2), torch.randint(16, 17, ())
    photos = blend.photos()
    which = torch.randint(len(photos), (2,))
    top, left = torch.randint(photos.shape[1] - 15, (2,)), torch.randint(photos.shape[2] - 15, (2,))
    for i in range(2):
        patch = photos[which[i], top[i]:top[i] + 16, left[i]:left[i] + 16].permute(2, 0, 1)
        torch.testing.assert_close(out[i], (patch - x[i]).abs())
