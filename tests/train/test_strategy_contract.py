"""Every strategy x head trains exactly the parameters it promises, and nothing else."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graftlab import Grafter
from graftlab.errors import ConfigError
from graftlab.train.strategies import STRATEGIES


def _images(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    y = np.array([0, 1] * (n // 2))
    x[y == 1, :16] = 255  # a learnable difference
    return x, y


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _changed(before, after, prefix):
    return {k for k in before if k.startswith(prefix) and before[k].dtype.is_floating_point
            and not torch.equal(before[k], after[k])}


def _fit(strategy, head, x, y, **kw):
    image = isinstance(x, np.ndarray)
    opts = {"image_size": 32} if image else {"max_length": 16}
    g = Grafter(backbone="efficientnet_lite0" if image else "minilm_l6",
                strategy=strategy, head=head, epochs=2, batch_size=4, lr=1e-2,
                lr_backbone=1e-2, k=2, augment=False, backbone_options=opts, seed=0, **kw)
    model, _ = g._build(2)  # the same initial state fit() starts from (same seed)
    before = _snapshot(model)
    g.fit(x, y)
    return g, before, _snapshot(g.model_)


def _block_prefixes(g, names):
    return tuple(f"backbone.{'blocks_.' if n.startswith('blocks.') else ''}"
                 f"{n.split('.', 1)[1] if n.startswith('blocks.') else n}." for n in names)


@pytest.mark.parametrize("head", ["linear", "mlp", "conv"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_image_strategy_trains_what_it_promises(strategy, head):
    x, y = _images()
    if strategy == "linear_probe" and head != "linear" and head != "mlp":
        with pytest.raises(ConfigError, match="pooled features"):
            _fit(strategy, head, x, y)
        return
    g, before, after = _fit(strategy, head, x, y)
    head_changed = _changed(before, after, "head.")
    assert head_changed, "the head must always train"
    backbone = _changed(before, after, "backbone.")
    blocks = [n for n, _ in g.model_.trunk_blocks()]
    if strategy in ("linear_probe", "head_only"):
        assert backbone == set()
    elif strategy == "last_k":
        allowed = _block_prefixes(g, blocks[-2:])
        assert backbone and all(k.startswith(allowed) for k in backbone), \
            sorted(k for k in backbone if not k.startswith(allowed))
    elif strategy == "gradual_unfreeze":  # 2 epochs: head, then head + the top block
        allowed = _block_prefixes(g, blocks[-1:])
        assert backbone and all(k.startswith(allowed) for k in backbone)
        top = dict(g.model_.trunk_blocks())[blocks[-1]]
        assert g.trainable_params_ == sum(p.numel() for p in g.model_.head.parameters()) + \
            sum(p.numel() for p in top.parameters())
    elif strategy == "bitfit":
        assert backbone and all(k.endswith("bias") for k in backbone)
    elif strategy == "lora":
        assert backbone and all("lora_" in k for k in backbone)
    else:  # full, discriminative_lr: every backbone weight moves
        weights = {k for k in before if k.startswith("backbone.") and k.endswith("weight")}
        assert weights <= backbone
    assert g.trainable_params_ > 0
    if strategy in ("head_only", "linear_probe"):
        assert g.trainable_params_ == sum(p.numel() for p in g.model_.head.parameters())


@pytest.mark.parametrize("strategy", ["head_only", "last_k", "lora", "bitfit"])
@pytest.mark.parametrize("head", ["linear", "sequence"])
def test_text_strategy_trains_what_it_promises(strategy, head):
    texts = ["a great film", "awful and dull", "truly wonderful", "boring mess"] * 2
    y = np.array([1, 0, 1, 0] * 2)
    g, before, after = _fit(strategy, head, texts, y)
    assert _changed(before, after, "head.")
    backbone = _changed(before, after, "backbone.")
    if strategy == "head_only":
        assert backbone == set()
    elif strategy == "last_k":
        assert backbone and all(".layer.4." in k or ".layer.5." in k for k in backbone)
    elif strategy == "lora":
        assert backbone and all("lora_" in k for k in backbone)
    elif strategy == "bitfit":
        assert backbone and all(k.endswith("bias") for k in backbone)


def test_frozen_batchnorm_keeps_its_statistics():
    x, y = _images()
    _, before, after = _fit("head_only", "linear", x, y)
    stats = [k for k in before if "running_mean" in k and k.startswith("backbone.")]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)
    _, before, after = _fit("full", "linear", x, y)  # frozen statistics by default ...
    assert all(torch.equal(before[k], after[k]) for k in stats)
    _, before, after = _fit("full", "linear", x, y, freeze_bn_stats=False)  # ... unless asked
    assert any(not torch.equal(before[k], after[k]) for k in stats)


def test_last_k_larger_than_the_backbone_is_explained():
    x, y = _images()
    with pytest.raises(ConfigError, match="(?s)last_k with k=99.*has 18 blocks.*between 1 and 18"):
        Grafter(strategy="last_k", k=99, backbone_options={"image_size": 32}).fit(x, y)


def test_unknown_strategy_lists_them():
    x, y = _images()
    with pytest.raises(Exception, match="unknown strategy 'ful'.*Did you mean 'full'"):
        Grafter(strategy="ful", backbone_options={"image_size": 32}).fit(x, y)
