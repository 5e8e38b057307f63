"""A tiny trainer fit for the tracking tests; run as a script, the socket-guarded run of both
backends (see test_track_offline.py)."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

EPOCHS = 3


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, inputs: dict) -> torch.Tensor:
        return self.linear(inputs["x"])


def tiny_fit(callbacks: list, epochs: int = EPOCHS) -> list[dict]:
    """ERM on 48 separable 4-d points, validated on them: the per-epoch metrics."""
    from graftlab.methods import ERM
    from graftlab.train.trainer import Trainer

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    y = torch.from_numpy(rng.integers(0, 2, 48))
    x = torch.from_numpy(rng.normal(size=(48, 4)).astype(np.float32))
    x[torch.arange(48), y] += 2.0
    net = _Net()
    collate = lambda idx: {"inputs": {"x": x[idx]}, "labels": y[idx]}  # noqa: E731
    trainer = Trainer(epochs=epochs, batch_size=16, callbacks=callbacks)
    return trainer.fit(ERM(net, num_classes=2), n_train=48, collate=collate,
                       optimizer=torch.optim.SGD(net.parameters(), lr=0.1), n_val=48)


def _guard(log: Path) -> None:
    """Every socket connection (and name look-up) is written to ``log`` and refused."""
    def refuse(what: str):
        def call(*args, **kwargs):
            with log.open("a") as handle:
                handle.write(json.dumps([what, repr(args[1:] if what == "connect" else args)])
                             + "\n")
            raise OSError(f"network access attempted ({what})")
        return call

    socket.socket.connect = refuse("connect")
    socket.socket.connect_ex = refuse("connect")
    socket.create_connection = refuse("create_connection")
    socket.getaddrinfo = refuse("getaddrinfo")


if __name__ == "__main__":  # python _tiny_fit.py OUT: both backends, a tiny fit, guarded
    out = Path(sys.argv[1])
    _guard(out / "connections.jsonl")
    from graftlab.track import open_tracker

    for kind in ("mlflow", "tensorboard"):
        (out / kind).mkdir()
        with open_tracker(kind, out / kind, run_name="guarded") as tracker:
            tracker.log_params({"what": "offline check"})
            with tracker.nested("fit") as run:
                tiny_fit([run.callback()])
            (out / kind / "report.md").write_text("# report\n")
            tracker.log_outputs(out / kind)
