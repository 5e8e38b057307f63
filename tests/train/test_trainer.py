"""The one trainer: repeatable, resumable to the same result, loud about divergence."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from graftlab.errors import ConfigError
from graftlab.methods import ERM
from graftlab.train.callbacks import Callback, EarlyStopping
from graftlab.train.trainer import Trainer, TrainingDivergedError, config_hash


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


def _run(tmp_path=None, epochs=4, callbacks=(), lr=0.05, n_val=0, net=None, **trainer_kw):
    x, y = _data()
    net = net or _Net()
    method = ERM(net, num_classes=3)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)

    def collate(idx):
        return {"inputs": {"x": x[idx]}, "labels": y[idx]}

    trainer = Trainer(epochs=epochs, batch_size=16, seed=3, callbacks=list(callbacks),
                      checkpoint_dir=tmp_path, **trainer_kw)
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
    assert trainer.record["resumed_from"] == {"file": str(tmp_path / "checkpoint.pt"),
                                              "epoch": 1, "finished": False}
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
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
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


# ---------------------------------------------------------------- resuming: loud and safe

class _Count(Callback):
    """Counts the training steps actually run."""

    def __init__(self):
        self.steps = 0

    def on_batch_end(self, trainer, step, total, loss):
        self.steps += 1


def _interrupted(tmp_path, epoch=2, **kw):
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, callbacks=[_Interrupt(epoch)], **kw)


def test_resume_says_which_file_and_epoch_at_warning_level(tmp_path, caplog):
    _interrupted(tmp_path)
    counter = _Count()
    with caplog.at_level(logging.WARNING, logger="graftlab.train.trainer"):
        _, history, _ = _run(tmp_path, callbacks=[counter])
    path = tmp_path / "checkpoint.pt"
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"resuming from checkpoint {path} after epoch 2 of 4"]
    assert counter.steps == 2 * 6 and len(history) == 4  # epochs 3 and 4, 96 / 16 steps each


def test_a_checkpoint_loads_without_unpickling(tmp_path):
    _run(tmp_path, epochs=2, callbacks=[EarlyStopping(patience=3)], n_val=96,
         config_hash="abc123")
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["config_hash"] == "abc123" and state["epoch"] == 1 and state["finished"]
    assert state["settings"] == {"epochs": 2, "batch_size": 16, "seed": 3, "max_grad_norm": 1.0,
                                 "freeze_bn_stats": False, "length_grouped": False}
    assert state["callbacks"][0]["best_state"].keys() == state["model"].keys()


_UNPICKLED = []


def _ran(note):
    _UNPICKLED.append(note)


class _Payload:
    def __reduce__(self):
        return (_ran, ("code ran",))


def test_a_checkpoint_holding_objects_is_refused_without_running_them(tmp_path):
    _interrupted(tmp_path)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    state["record"]["payload"] = _Payload()
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(ConfigError, match=r"cannot resume from checkpoint .*checkpoint.pt: it "
                                          r"holds objects other than tensors and plain values "
                                          r"\(\S*test_trainer._ran\), and graftlab never "
                                          r"unpickles code(.|\n)*HINT: delete "):
        _run(tmp_path)
    assert _UNPICKLED == []


def test_a_checkpoint_of_another_configuration_is_refused(tmp_path):
    _interrupted(tmp_path, config_hash="aaaa")
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(ConfigError, match=(
            rf"cannot resume from checkpoint {path}: it was written by another configuration "
            r"or other data \(config hash aaaa\); this run's config hash is bbbb\.\nHINT: "
            rf"delete {path} to train this run from the start \(in Python, another "
            r"checkpoint_dir")):
        _run(tmp_path, config_hash="bbbb")
    _, history, trainer = _run(tmp_path, config_hash="aaaa")  # the same configuration resumes
    assert trainer.record["resumed_from"]["epoch"] == 1 and len(history) == 4


def test_a_checkpoint_without_a_hash_is_not_matched_to_a_run_with_one(tmp_path):
    _interrupted(tmp_path)
    with pytest.raises(ConfigError, match=r"written by a run that recorded no configuration hash"
                                          r".*this run's config hash is bbbb"):
        _run(tmp_path, config_hash="bbbb")


def test_a_checkpoint_of_other_trainer_settings_is_refused(tmp_path):
    _interrupted(tmp_path)
    with pytest.raises(ConfigError, match=r"it was written with other trainer settings \(epochs=4 "
                                          r"there, 6 here\)"):
        _run(tmp_path, epochs=6)


def test_a_checkpoint_of_another_model_is_explained_in_one_line(tmp_path):
    _interrupted(tmp_path)
    other = _Net()
    other.head[1] = nn.Linear(16, 5)
    with pytest.raises(ConfigError) as info:
        _run(tmp_path, net=other)
    message = str(info.value)
    assert message.startswith(f"cannot resume from checkpoint {tmp_path / 'checkpoint.pt'}: its "
                              "weights or optimizer state do not fit this model (")
    assert len(message.splitlines()) == 2 and "HINT: delete" in message


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_checkpoint_is_explained(tmp_path, damage):
    _interrupted(tmp_path)
    path = tmp_path / "checkpoint.pt"
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2] if damage == "truncate" else b"not a checkpoint")
    with pytest.raises(ConfigError, match=r"the file cannot be read \(truncated or corrupt: "):
        _run(tmp_path)


def test_a_finished_run_says_so_and_restores_its_result(tmp_path, caplog):
    first, history, _ = _run(tmp_path)
    counter = _Count()
    with caplog.at_level(logging.WARNING, logger="graftlab.train.trainer"):
        again, again_history, trainer = _run(tmp_path, callbacks=[counter])
    assert counter.steps == 0 and again_history == history
    assert trainer.record["resumed_from"]["finished"] is True
    assert f"checkpoint {tmp_path / 'checkpoint.pt'} holds a finished run (it stopped after " \
           "epoch 4 of 4): its result is restored and nothing is trained; delete it or use " \
           "another checkpoint_dir to train again" in caplog.text
    for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_an_early_stopped_run_is_finished_not_continued(tmp_path):
    stopper = EarlyStopping(monitor="val_loss", patience=2)
    _, history, first = _run(tmp_path, epochs=30, callbacks=[stopper], lr=0.5, n_val=96)
    assert len(history) < 30
    counter = _Count()
    again = EarlyStopping(monitor="val_loss", patience=2)
    _, again_history, trainer = _run(tmp_path, epochs=30, callbacks=[again, counter], lr=0.5,
                                     n_val=96)
    assert counter.steps == 0 and again_history == history
    assert trainer.record["best_epoch"] == first.record["best_epoch"]


def test_config_hash_is_stable_and_refuses_objects():
    params = {"backbone": "tiny", "lr": 0.1, "dir": Path("/tmp/x"), "k": np.int64(2)}
    assert config_hash(params, "data123") == config_hash(dict(reversed(params.items())),
                                                         "data123")
    assert config_hash(params, "data123") != config_hash(params, "data124")
    assert len(config_hash(params)) == 16
    with pytest.raises(TypeError, match="config_hash takes plain values, got a _Net"):
        config_hash({"model": _Net()})


@pytest.mark.parametrize("change,message", [
    (lambda state: {"a": 1}, r"it is not a graftlab training checkpoint\."),
    (lambda state: {**state, "format": "graftlab.checkpoint/1"},
     r"it was written in another checkpoint format \('graftlab.checkpoint/1'; this "
     r"graftlab reads "
     r"'graftlab.checkpoint/2'\)"),
])
def test_a_checkpoint_that_is_not_this_graftlabs_is_refused(tmp_path, change, message):
    _interrupted(tmp_path)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    torch.save(change(state), tmp_path / "checkpoint.pt")
    with pytest.raises(ConfigError, match=r"cannot resume from checkpoint .*checkpoint.pt: "
                                          + message):
        _run(tmp_path)
