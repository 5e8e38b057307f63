"""Batches that group samples of similar length, so a text batch padded to its longest text
pads little (sentence-transformers' random batches of VADER snippets are ~26% padding)."""

from __future__ import annotations

import numpy as np
import torch


class LengthGroupedBatches(torch.utils.data.Sampler):
    """Batches of positions ``0..len(lengths)-1`` that group similar lengths, as Hugging Face's
    ``group_by_length``: shuffle, cut the order into mega-batches of ``group`` batches, sort
    each by length (longest first), cut it into batches, then shuffle the batches. Every
    sample comes once per epoch (at most one batch is short, as with ``drop_last=False``), and
    the batches depend only on ``seed``. ``shuffle=False`` sorts all positions by
    length instead (validation: no randomness, least padding)."""

    def __init__(self, lengths: np.ndarray, batch_size: int, *, seed: int = 0,
                 shuffle: bool = True, group: int = 50) -> None:
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size, self.seed, self.shuffle, self.group = batch_size, seed, shuffle, group
        self.drop_last = False  # read by accelerate when it shards the batches

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def batches(self) -> list[list[int]]:
        n, size = len(self.lengths), self.batch_size
        if not self.shuffle:
            order = np.argsort(-self.lengths, kind="stable")
            return [order[i:i + size].tolist() for i in range(0, n, size)]
        gen = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(n, generator=gen).numpy()
        mega = size * self.group
        out = []
        for start in range(0, n, mega):
            chunk = order[start:start + mega]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            out += [chunk[i:i + size].tolist() for i in range(0, len(chunk), size)]
        return [out[i] for i in torch.randperm(len(out), generator=gen).tolist()]

    def __iter__(self):
        return iter(self.batches())
