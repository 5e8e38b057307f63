"""Dynamic micro-batching: concurrent requests share one model call.

One worker thread owns the model function (a Predictor is not for concurrent calls: a text
model's fast tokenizer refuses them). Requests :meth:`MicroBatcher.submit` their inputs and get
a :class:`concurrent.futures.Future`; the worker takes the oldest waiting request, then keeps
collecting requests until ``max_batch`` inputs are gathered or ``max_wait_ms`` has passed since
it took the first, runs the function once on all of them and hands each request its rows. A
request is never split: one that would overflow the batch waits for the next (one larger than
``max_batch`` runs alone, and the Predictor batches it itself). If a combined call fails, each
request of it runs again alone, so one request's failure reaches only that request.

A future cancelled while it waits (its client went away) is dropped before the model runs.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from graftlab.errors import ConfigError

log = logging.getLogger(__name__)
_STOP = object()


@dataclass
class _Request:
    items: Sequence
    future: Future = field(default_factory=Future)


class MicroBatcher:
    """Runs ``fn(items) -> array`` (one row per item) in one worker thread, on batches
    gathered across :meth:`submit` calls. ``batches`` and ``items`` count what ran."""

    def __init__(self, fn: Callable[[list], np.ndarray], *, max_batch: int = 32,
                 max_wait_ms: float = 5.0, name: str = "graftlab-batcher") -> None:
        self.check(max_batch, max_wait_ms)
        self.fn, self.max_batch, self.max_wait = fn, max_batch, max_wait_ms / 1000
        self.batches = self.items = 0
        self._queue: queue.Queue = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @staticmethod
    def check(max_batch: int, max_wait_ms: float) -> None:
        """A :class:`ConfigError` for settings the batcher cannot run with."""
        if max_batch < 1:
            raise ConfigError(f"--max-batch must be an integer >= 1, got {max_batch}.")
        if not max_wait_ms >= 0:
            raise ConfigError(f"--max-wait-ms must be >= 0, got {max_wait_ms}.",
                              hint="0 runs what is waiting at once, without waiting for more.")

    def submit(self, items: Sequence) -> Future:
        """A future of ``fn``'s rows for ``items`` (a non-empty list)."""
        if self._closed:
            raise RuntimeError("the micro-batcher is closed")
        request = _Request(list(items))
        self._queue.put(request)
        return request.future

    @property
    def pending(self) -> int:
        """Requests waiting to be batched (not counting the batch running now)."""
        return self._queue.qsize()

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop the worker after the batch it runs; requests still waiting fail."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join(timeout)

    # ------------------------------------------------------------------ the worker
    def _loop(self) -> None:
        carry: deque[_Request] = deque()
        while True:
            first = carry.popleft() if carry else self._queue.get()
            if first is _STOP or self._closed:  # what still waits fails below
                carry.appendleft(first)
                break
            batch, stop = self._gather(first, carry)
            self._run([r for r in batch if r.future.set_running_or_notify_cancel()])
            if stop:
                break
        self._fail_waiting(carry)

    def _gather(self, first: _Request, carry: deque) -> tuple[list[_Request], bool]:
        """``first`` and the requests that join it (the one that would overflow goes to
        ``carry``); True as the second value when the stop signal came meanwhile."""
        batch, size = [first], len(first.items)
        deadline = time.monotonic() + self.max_wait
        while size < self.max_batch:
            try:
                nxt = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if nxt is _STOP:
                return batch, True
            if size + len(nxt.items) > self.max_batch:
                carry.append(nxt)
                break
            batch.append(nxt)
            size += len(nxt.items)
        return batch, False

    def _run(self, batch: list[_Request]) -> None:
        if not batch:
            return
        items = [x for r in batch for x in r.items]
        try:
            rows = self.fn(items)
        except BaseException as exc:  # handed to the requests; the worker lives on
            if len(batch) > 1:
                for request in batch:
                    self._run_alone(request)
                return
            batch[0].future.set_exception(exc)
            return
        self.batches, self.items = self.batches + 1, self.items + len(items)
        start = 0
        for request in batch:
            request.future.set_result(rows[start:start + len(request.items)])
            start += len(request.items)

    def _run_alone(self, request: _Request) -> None:
        try:
            rows = self.fn(list(request.items))
        except BaseException as exc:
            request.future.set_exception(exc)
            return
        self.batches, self.items = self.batches + 1, self.items + len(request.items)
        request.future.set_result(rows)

    def _fail_waiting(self, carry: deque) -> None:
        waiting = list(carry)
        while True:
            try:
                waiting.append(self._queue.get_nowait())
            except queue.Empty:
                break
        for request in waiting:
            if request is not _STOP and request.future.set_running_or_notify_cancel():
                request.future.set_exception(RuntimeError("the server is shutting down"))
