"""The micro-batcher on its own: requests gathered into one call up to max_batch, never split,
a failure kept to its request, cancelled requests dropped, waiting requests failed on close.
The worker is held on a gate so what is waiting is known before it runs (no timing)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from graftlab.deploy.batcher import MicroBatcher
from graftlab.errors import ConfigError


class Gated:
    """``fn`` for the batcher: doubles numbers, records each call; the first call waits for
    ``release`` (so the requests sent meanwhile queue up); an item "bad" raises."""

    def __init__(self) -> None:
        self.calls: list[list] = []
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self, items: list) -> np.ndarray:
        self.calls.append(list(items))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(30)
        if "bad" in items:
            raise ValueError("a bad item")
        return np.asarray(items, dtype=float) * 2


def _wait(condition, what: str) -> None:
    """Wait (up to 30 s: a limit for a hung test, not a timing assertion) for ``condition``."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.005)


def _held(fn: Gated, batcher: MicroBatcher, requests: list[list]):
    """Submit a first request (the worker takes it and blocks), then ``requests``; returns the
    futures once all of those wait in the queue."""
    first = batcher.submit([0])
    assert fn.entered.wait(30)
    futures = [batcher.submit(r) for r in requests]
    _wait(lambda: batcher.pending == len(requests), "the requests to queue")
    return first, futures


def test_waiting_requests_run_as_one_call_up_to_max_batch():
    fn = Gated()
    batcher = MicroBatcher(fn, max_batch=4, max_wait_ms=0)
    first, futures = _held(fn, batcher, [[1], [2, 3], [4], [5, 6], [7]])
    fn.release.set()
    results = [f.result(30).tolist() for f in futures]
    batcher.close()
    assert first.result().tolist() == [0]
    assert results == [[2], [4, 6], [8], [10, 12], [14]]
    # [1] [2, 3] [4] fill 4; [5, 6] would overflow and goes first into the next batch
    assert fn.calls == [[0], [1, 2, 3, 4], [5, 6, 7]]
    assert (batcher.batches, batcher.items) == (3, 8)


def test_a_request_larger_than_max_batch_runs_alone_and_whole():
    fn = Gated()
    batcher = MicroBatcher(fn, max_batch=2, max_wait_ms=0)
    _, futures = _held(fn, batcher, [[1, 2, 3], [4]])
    fn.release.set()
    assert [f.result(30).tolist() for f in futures] == [[2, 4, 6], [8]]
    batcher.close()
    assert fn.calls[1:] == [[1, 2, 3], [4]]


def test_a_failing_request_fails_alone():
    fn = Gated()
    batcher = MicroBatcher(fn, max_batch=8, max_wait_ms=0)
    _, (good, bad, other) = _held(fn, batcher, [[1], ["bad"], [3]])
    fn.release.set()
    assert good.result(30).tolist() == [2] and other.result(30).tolist() == [6]
    with pytest.raises(ValueError, match="a bad item"):
        bad.result(30)
    batcher.close()
    assert fn.calls[1:] == [[1, "bad", 3], [1], ["bad"], [3]]  # together, then each alone


def test_a_cancelled_request_never_runs():
    fn = Gated()
    batcher = MicroBatcher(fn, max_batch=8, max_wait_ms=0)
    _, (gone, kept) = _held(fn, batcher, [[1], [2]])
    assert gone.cancel()
    fn.release.set()
    assert kept.result(30).tolist() == [4]
    batcher.close()
    assert fn.calls[1:] == [[2]]


def test_close_fails_the_requests_still_waiting():
    fn = Gated()
    batcher = MicroBatcher(fn, max_batch=1, max_wait_ms=0)
    first, (waiting,) = _held(fn, batcher, [[1]])
    closer = threading.Thread(target=batcher.close)
    closer.start()
    _wait(lambda: batcher.pending == 2, "the stop signal")  # queued behind the request
    fn.release.set()
    closer.join(30)
    assert first.result(30).tolist() == [0]
    with pytest.raises(RuntimeError, match="shutting down"):
        waiting.result(30)
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit([1])


def test_a_lone_request_waits_at_most_max_wait_then_runs():
    calls = []
    batcher = MicroBatcher(lambda items: calls.append(items) or np.asarray(items), max_batch=8,
                           max_wait_ms=1)
    assert batcher.submit([5]).result(30).tolist() == [5]
    batcher.close()
    assert calls == [[5]]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_batch": 0}, "--max-batch must be an integer >= 1, got 0"),
    ({"max_wait_ms": -1}, "--max-wait-ms must be >= 0, got -1"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        MicroBatcher(lambda items: items, **kwargs)
