"""Trains a tiny model with the graftlab Trainer and saves its weights (run by test_accelerate:
once as a plain process, once under `accelerate launch --num_processes 2`)."""

import sys

import numpy as np
import torch
from torch import nn

from graftlab.methods import ERM
from graftlab.train.trainer import Trainer


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, inputs):
        return self.body(inputs["x"])


rng = np.random.default_rng(0)
y = torch.from_numpy(rng.integers(0, 3, 64))
x = torch.from_numpy(rng.normal(size=(64, 6)).astype(np.float32))
net = Net()
trainer = Trainer(epochs=3, batch_size=16, seed=0, max_grad_norm=None)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
trainer.fit(ERM(net, num_classes=3), n_train=64, optimizer=opt,
            collate=lambda idx: {"inputs": {"x": x[idx]}, "labels": y[idx]})
if trainer.accelerator.is_main_process:
    torch.save({k: v.detach() for k, v in trainer.unwrapped.model.state_dict().items()},
               sys.argv[1])
print("processes", trainer.accelerator.num_processes)
# Leave the process group cleanly: without this, gloo's threads can still be running when the
# interpreter exits, and rank 0 aborts ("terminate called without an active exception").
trainer.accelerator.wait_for_everyone()
trainer.accelerator.end_training()
if torch.distributed.is_initialized():
    torch.distributed.destroy_process_group()
