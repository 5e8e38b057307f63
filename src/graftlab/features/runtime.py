"""Process settings that make CPU inference faster, applied only around extraction.

On glibc, PyTorch's large short-lived activation buffers are served by ``mmap`` and handed back
to the kernel on every free, so much CPU time goes to page faults. Raising the mmap and trim
thresholds with ``mallopt`` keeps those buffers in the heap and reuses them (the same effect as
``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``, without restarting the process).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from contextlib import contextmanager

log = logging.getLogger(__name__)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_APPLIED = False


def tune_allocator() -> bool:
    """Apply the glibc thresholds once per process; False where unavailable or opted out."""
    global _APPLIED
    if _APPLIED:
        return True
    if os.environ.get("GRAFTLAB_NO_MALLOPT") or os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 1 << 25) and libc.mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1)
    except (OSError, AttributeError, TypeError) as exc:  # not glibc: only speed is lost
        log.debug("allocator thresholds left as they are (%s: %s)", type(exc).__name__, exc)
        return False
    _APPLIED = bool(ok)
    log.debug("glibc allocator thresholds raised: %s", _APPLIED)
    return _APPLIED


@contextmanager
def fast_allocator():
    """Context for extraction; the thresholds stay raised (they only help later passes)."""
    tune_allocator()
    yield
