"""Peak memory of one piece of work inside a longer process (one strategy of a comparison).

Linux keeps the process's resident high-water mark (``VmHWM``) and lets a process reset it by
writing ``5`` to ``/proc/self/clear_refs``: the peak of each piece of work is then exact and
costs nothing. Elsewhere a background thread samples the resident size every 50 ms. On a GPU
the CUDA allocator's peak is reported too.
"""

from __future__ import annotations

import threading
from pathlib import Path

_STATUS, _CLEAR = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _rss_kib() -> int:
    value = _status_kib("VmRSS")
    if value is not None:
        return value
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # best effort off Linux


class PeakMemory:
    """``with PeakMemory() as peak: ...`` then ``peak.rss_mib`` (and ``peak.cuda_mib``)."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.rss_mib: float = 0.0
        self.cuda_mib: float | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._sampled = 0

    def _reset_high_water_mark(self) -> bool:
        try:
            _CLEAR.write_text("5")
        except OSError:
            return False
        return _status_kib("VmHWM") is not None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._sampled = max(self._sampled, _rss_kib())

    def __enter__(self) -> PeakMemory:
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._exact = self._reset_high_water_mark()
        self._sampled = _rss_kib()
        if not self._exact:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        import torch

        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        peak = _status_kib("VmHWM") if self._exact else None
        self.rss_mib = max(peak or 0, self._sampled, _rss_kib()) / 1024
        if torch.cuda.is_available():
            self.cuda_mib = torch.cuda.max_memory_allocated() / 2**20
