"""The one trainer: repeatable, resumable to the same result, loud about divergence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from graftlab.methods import ERM
from graftlab.train.callbacks import Callback, EarlyStopping
from graftlab.train.trainer import Trainer, TrainingDivergedError


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Sequential(nn.Linear(6, 16), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(16, 3))

    def forward(self, inputs):
        return self.head(self.backbone(inputs["x"]))


def _data(n=96):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    x[np.arange(n), y] += 2.5
    return torch.from_numpy(x), torch.from_numpy(y)


def _run(tmp_path=None, epochs=4, callbacks=(), lr=0.05, n_val=0):
    x, y = _data()
    net = _Net()
    method = ERM(net, num_classes=3)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)

    def collate(idx):
        return {"inputs": {"x": x[idx]}, "labels": y[idx]}

    trainer = Trainer(epochs=epochs, batch_size=16, seed=3, callbacks=list(callbacks),
                      checkpoint_dir=tmp_path)
    history = trainer.fit(method, n_train=len(y), collate=collate, optimizer=opt,
                          n_val=n_val, collate_val=collate)
    return net, history, trainer


def test_training_learns_and_is_repeatable():
    net1, history, _ = _run(n_val=96)
    net2, _, _ = _run()
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_accuracy"] > 0.8
    for a, b in zip(net1.state_dict().values(), net2.state_dict().values(), strict=True):
        assert torch.equal(a, b)


class _Interrupt(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_start(self, trainer, epoch):
        if epoch == self.epoch:
            raise KeyboardInterrupt("simulated Ctrl-C")


def test_resume_gives_the_same_model_as_an_uninterrupted_run(tmp_path):
    straight, history, _ = _run()
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, callbacks=[_Interrupt(2)])
    assert (tmp_path / "checkpoint.pt").exists()
    resumed, resumed_history, trainer = _run(tmp_path)
    assert trainer.record["resumed_from_epoch"] == 1
    assert [h["epoch"] for h in resumed_history] == [0, 1, 2, 3]
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert resumed_history[-1]["train_loss"] == pytest.approx(history[-1]["train_loss"])


class _Poison(Callback):
    """Makes the loss NaN from epoch 2 on, by corrupting a weight."""

    def on_epoch_start(self, trainer, epoch):
        if epoch == 2:
            with torch.no_grad():
                trainer.unwrapped.model.head[1].weight.fill_(float("nan"))


def test_a_nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(tmp_path):
    with pytest.raises(TrainingDivergedError,
                       match=r"loss became nan at epoch 3, step 1; the last good checkpoint"):
        _run(tmp_path, callbacks=[_Poison()])
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_early_stopping_stops_and_restores_the_best_weights():
    stopper = EarlyStopping(monitor="val_loss", patience=2)
    _, history, trainer = _run(epochs=30, callbacks=[stopper], lr=0.5, n_val=96)
    assert len(history) < 30
    best = min(h["val_loss"] for h in history)
    assert stopper.best == pytest.approx(best)
    assert trainer.record["best_epoch"] == stopper.best_epoch


def test_early_stopping_without_validation_is_explained():
    with pytest.raises(Exception, match="early stopping monitors 'val_loss'"):
        _run(callbacks=[EarlyStopping(patience=1)])
