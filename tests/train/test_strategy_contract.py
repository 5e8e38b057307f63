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
    model, _, _ = g.build(2)  # the same initial state fit() starts from (same seed)
    before = _snapshot(model)
    g.fit(x, y)
    return g, before, _snapshot(g.model_)


def _planned(g):
    """Names of the parameters in the strategy's optimiser groups, and the strategy."""
    model, plan, strategy = g.build(2)
    ids = {id(p) for group in plan.param_groups for p in group["params"]}
    return {n for n, p in model.named_parameters() if id(p) in ids}, model, strategy


def _block_prefixes(g, names):
    return tuple(f"backbone.{'blocks_.' if n.startswith('blocks.') else ''}"
                 f"{n.split('.', 1)[1] if n.startswith('blocks.') else n}." for n in names)


@pytest.mark.parametrize("head", ["linear", "mlp", "conv"])
@pytest.mark.parametrize("strategy", STRATEGIES.names())
def test_image_strategy_trains_what_it_declares(strategy, head):
    """Read from each strategy's declarations, never its name: only what its plan holds
    changes; the head always trains; the backbone moves exactly when it says so; nothing at
    or below its frozen prefix is in its plan."""
    x, y = _images()
    declared = STRATEGIES.get(strategy)
    if declared.solved and head == "conv":
        with pytest.raises(ConfigError, match="pooled features"):
            _fit(strategy, head, x, y)
        return
    g, before, after = _fit(strategy, head, x, y)
    planned, model, chosen = _planned(g)
    changed = {k for k in before if before[k].dtype.is_floating_point
               and not torch.equal(before[k], after[k])}
    running = {k for k in changed if "running_" in k}  # BatchNorm statistics are not parameters
    assert changed - running <= planned, sorted(changed - running - planned)[:5]
    assert _changed(before, after, "head."), "the head must always train"
    assert bool(_changed(before, after, "backbone.") - running) == declared.moves_backbone
    prefix = chosen.frozen_prefix(model)
    if prefix is not None:
        names = [n for n, _ in model.trunk_blocks()]
        frozen = _block_prefixes(g, names[:names.index(prefix) + 1]) if prefix in names else ()
        assert not any(n.startswith(frozen) for n in planned if frozen)
    assert g.trainable_params_ > 0
    if not declared.moves_backbone:
        assert g.trainable_params_ == sum(p.numel() for p in g.model_.head.parameters())


@pytest.mark.parametrize("strategy,blocks", [("last_k", slice(-2, None)),
                                             ("surgical", slice(0, 2))])
def test_block_strategies_train_the_blocks_they_name(strategy, blocks):
    """last_k trains the top k blocks, surgical fine-tuning the first k (Lee et al. 2023)."""
    x, y = _images()
    g, before, after = _fit(strategy, "linear", x, y)
    names = [n for n, _ in g.model_.trunk_blocks()]
    allowed = _block_prefixes(g, names[blocks])
    backbone = _changed(before, after, "backbone.")
    assert backbone and all(k.startswith(allowed) for k in backbone), \
        sorted(k for k in backbone if not k.startswith(allowed))
    assert {k.split(".")[1] if not k.startswith("backbone.blocks_") else k.split(".")[2]
            for k in backbone} >= {n.split(".")[-1] for n in names[blocks]}


def test_gradual_unfreeze_counts_what_its_schedule_unfroze():
    x, y = _images()
    g, before, after = _fit("gradual_unfreeze", "linear", x, y)  # 2 epochs: head + top block
    blocks = [n for n, _ in g.model_.trunk_blocks()]
    assert all(k.startswith(_block_prefixes(g, blocks[-1:]))
               for k in _changed(before, after, "backbone."))
    top = dict(g.model_.trunk_blocks())[blocks[-1]]
    assert g.trainable_params_ == sum(p.numel() for p in g.model_.head.parameters()) + \
        sum(p.numel() for p in top.parameters())


def test_strategy_options_are_declared_and_unknown_ones_refused():
    x, y = _images()
    g = Grafter(strategy="surgical", strategy_options={"k": 1}, epochs=1, batch_size=4,
                augment=False, backbone_options={"image_size": 32}).fit(x, y)
    first = g.model_.trunk_blocks()[0][1]
    assert all(p.requires_grad for p in first.parameters())
    assert not any(p.requires_grad for p in g.model_.trunk_blocks()[1][1].parameters())
    with pytest.raises(ConfigError, match="(?s)'last_k' has no option 'lora_r'.*options: k"):
        Grafter(strategy="last_k", strategy_options={"lora_r": 4},
                backbone_options={"image_size": 32}).fit(x, y)


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
