"""Length-grouped batches: seeded like random batches, every sample once, far less padding;
the engine groups text (the route knows each text's tokens) and never images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from graftlab.errors import ConfigError
from graftlab.methods import ERM
from graftlab.train.batches import LengthGroupedBatches
from graftlab.train.callbacks import Callback
from graftlab.train.trainer import Trainer


def _lengths(n=1000, seed=0):
    # varied like short reviews: mostly short, a long tail
    return np.random.default_rng(seed).lognormal(3.0, 0.8, n).astype(np.int64) + 2


def _padding(lengths, batches):
    padded = sum(len(b) * lengths[b].max() for b in batches)
    return 1 - lengths.sum() / padded


def test_same_seed_same_batches_other_seed_other_batches():
    lengths = _lengths()
    a = LengthGroupedBatches(lengths, 32, seed=7).batches()
    assert a == LengthGroupedBatches(lengths, 32, seed=7).batches()
    assert a != LengthGroupedBatches(lengths, 32, seed=8).batches()


@pytest.mark.parametrize("n", [1000, 31, 32, 1601])
def test_every_sample_once_per_epoch_one_short_batch_at_most(n):
    batches = LengthGroupedBatches(_lengths(n), 32, seed=1).batches()
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(n))
    assert len(batches) == len(LengthGroupedBatches(_lengths(n), 32)) == -(-n // 32)
    assert sum(len(b) < 32 for b in batches) <= 1


def test_grouping_pads_far_less_than_random_batches():
    lengths = _lengths()
    grouped = _padding(lengths, LengthGroupedBatches(lengths, 32, seed=0).batches())
    order = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(0)).numpy()
    random = _padding(lengths, [order[i:i + 32] for i in range(0, len(order), 32)])
    assert random > 0.4
    assert grouped < random / 4


def test_batches_are_shuffled_not_sorted():
    lengths = _lengths()
    longest = [lengths[b].max() for b in LengthGroupedBatches(lengths, 32, seed=0).batches()]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)


def test_validation_order_is_sorted_and_unshuffled():
    lengths = _lengths(100)
    batches = LengthGroupedBatches(lengths, 32, shuffle=False).batches()
    flat = [i for b in batches for i in b]
    assert list(lengths[flat]) == sorted(lengths, reverse=True)


# ---------------------------------------------------------------------- through the trainer
class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))

    def forward(self, inputs):
        return self.head(inputs["x"])


class _Interrupt(Callback):
    def on_epoch_start(self, trainer, epoch):
        if epoch == 2:
            raise KeyboardInterrupt("simulated Ctrl-C")


def _run(tmp_path=None, lengths="auto", callbacks=(), seen=None):
    rng = np.random.default_rng(0)
    n = 90
    y = torch.from_numpy(rng.integers(0, 3, n))
    x = torch.from_numpy(rng.normal(size=(n, 6)).astype(np.float32))
    x[torch.arange(n), y] += 2.5
    net = _Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)

    def collate(idx):
        if seen is not None:
            seen.append(idx.tolist())
        return {"inputs": {"x": x[idx]}, "labels": y[idx]}

    trainer = Trainer(epochs=4, batch_size=8, seed=3, checkpoint_dir=tmp_path,
                      callbacks=list(callbacks))
    history = trainer.fit(ERM(net, num_classes=3), n_train=n, collate=collate, optimizer=opt,
                          lengths=_lengths(n) if isinstance(lengths, str) else lengths)
    return net, history, trainer


def test_trainer_feeds_the_grouped_batches_of_each_epoch():
    seen: list = []
    _run(seen=seen)
    for epoch in range(4):
        expected = LengthGroupedBatches(_lengths(90), 8, seed=3 * 1000 + epoch).batches()
        assert seen[epoch * len(expected):(epoch + 1) * len(expected)] == expected


def test_grouped_resume_reproduces_the_uninterrupted_run(tmp_path):
    straight, history, _ = _run()
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, callbacks=[_Interrupt()])
    resumed, resumed_history, trainer = _run(tmp_path)
    assert trainer.record["resumed_from_epoch"] == 1
    assert [h["train_loss"] for h in resumed_history] == [h["train_loss"] for h in history]
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_resume_refuses_a_checkpoint_batched_the_other_way(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, callbacks=[_Interrupt()])
    with pytest.raises(ConfigError, match="length_grouped=True there, False here"):
        _run(tmp_path, lengths=None)


def test_lengths_of_the_wrong_size_are_refused():
    with pytest.raises(ConfigError, match="lengths has 5 entries for 90 samples") as err:
        _run(lengths=np.ones(5))
    assert "one length per sample" in err.value.hint


# ---------------------------------------------------------------------- the engine
def test_fit_method_groups_when_given_lengths_and_can_be_turned_off(tiny_backbone, images):
    from graftlab.train.build import build_model, make_plan, strategy_from
    from graftlab.train.fit import FitSettings, fit_method

    x = tiny_backbone.preprocess(images(40))
    y = torch.arange(40) % 2
    model = build_model(tiny_backbone, num_outputs=2)
    plan = make_plan(model, strategy_from("full", {}), lr_head=1e-2, lr_backbone=1e-3,
                     weight_decay=0.0)

    def collate(which):
        return lambda pos: {"inputs": {k: v[which[pos]] for k, v in x.items()},
                            "labels": y[which[pos]]}

    train, val = np.arange(30), np.arange(30, 40)
    lengths = _lengths(40)
    for group, expected in ((True, True), (False, False)):
        fitted = fit_method(ERM(model, num_classes=2), model, plan, collate, train, val,
                            FitSettings(epochs=1, batch_size=8, group_by_length=group),
                            lengths=lengths)
        assert fitted.record["length_grouped"] is expected
    fitted = fit_method(ERM(model, num_classes=2), model, plan, collate, train, val,
                        FitSettings(epochs=1, batch_size=8))
    assert fitted.record["length_grouped"] is False


def test_text_inputs_route_tokenises_once_and_knows_lengths(minilm):
    from graftlab.features.extract import as_domain
    from graftlab.heads import create_head
    from graftlab.train.model import GraftedModel
    from graftlab.train.routes import INPUTS

    texts = ["short", "a somewhat longer text here", "mid length one", "x " * 40]
    model = GraftedModel(minilm, create_head("linear", in_features=384, num_outputs=2))
    pick = INPUTS.picker(model, as_domain(texts, "text"))
    np.testing.assert_array_equal(pick.lengths, minilm.sequence_lengths(texts))
    for idx in ([0, 1], [3, 0, 2], [2]):
        want = minilm.preprocess([texts[i] for i in idx])
        got = pick(np.asarray(idx))
        assert got.keys() == want.keys()
        for key in want:
            assert torch.equal(got[key], want[key])


def test_image_routes_have_no_lengths(tiny_backbone, images):
    from graftlab.features.extract import as_domain
    from graftlab.heads import create_head
    from graftlab.train.model import GraftedModel
    from graftlab.train.routes import INPUTS

    model = GraftedModel(tiny_backbone, create_head("linear", in_features=16, num_outputs=2))
    assert INPUTS.picker(model, as_domain(images(4), "image")).lengths is None


def test_grafter_groups_text_batches_by_length_unless_told_not_to():
    import numpy as np

    from graftlab import Grafter

    texts = ["a", "a much longer review that goes on and on about the film", "fine",
             "dull", "I would watch it again and again with friends", "ok"] * 2
    y = np.array([0, 1] * 6)
    kw = {"backbone": "minilm_l6", "strategy": "last_k", "k": 1, "epochs": 1,
          "batch_size": 4, "backbone_options": {"max_length": 16}}
    assert Grafter(**kw).fit(texts, y).record_["length_grouped"] is True
    assert Grafter(**kw, group_by_length=False).fit(texts, y).record_["length_grouped"] is False
    images = np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    g = Grafter(strategy="last_k", epochs=1, batch_size=4, augment=False,
                backbone_options={"image_size": 32}).fit(images, y[:8])
    assert g.record_["length_grouped"] is False  # images have no length to group by
