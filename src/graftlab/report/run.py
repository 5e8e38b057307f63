"""Run folders: every job writes its config, metrics and a readable summary to one folder.

A run folder is never overwritten: a name that exists gets a numbered sibling.
"""

from __future__ import annotations

import json
import platform
import re
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from graftlab import __version__, _atomic
from graftlab.errors import ConfigError

RESULTS = "results.json"
# What graftlab writes as results.json's "format": "graftlab.compare/1", "graftlab.adapt/1"...
_FORMAT = re.compile(r"graftlab\.([a-z_-]+)/(\d+)")


def new_run_folder(root: str | Path = "runs", name: str = "run") -> Path:
    """A fresh folder ``root/name-YYYYmmdd-HHMMSS`` (``-2``, ``-3`` ... if it exists)."""
    root = Path(root)
    stem = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    for i in range(1, 1000):
        folder = root / (stem if i == 1 else f"{stem}-{i}")
        try:
            folder.mkdir(parents=True, exist_ok=False)
            return folder
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run folder under {root}")


def environment() -> dict[str, Any]:
    import torch

    return {"graftlab": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads(), "machine": platform.machine()}


def markdown_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table; floats to 4 significant digits."""
    columns = columns or list(rows[0])

    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


@contextmanager
def interrupt_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) or a SIGTERM until the block is done, then deliver it: the files
    written inside (a report's HTML, Markdown and figures) are written as a set, each
    atomically, so an interrupted run still leaves a complete report. Outside the main thread
    (where Python cannot take signals) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    # a handler set outside Python (getsignal: None) cannot be put back, so it is left alone
    held = [sig for sig in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(sig) is not None]
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum))
                for sig in held}
    try:
        yield
    finally:
        for sig in held:
            signal.signal(sig, previous[sig])
    for sig in dict.fromkeys(caught):  # each signal once, in the order it came
        handler = previous[sig]
        if callable(handler):
            handler(sig, None)  # Python's own SIGINT handler raises KeyboardInterrupt
        elif handler == signal.SIG_DFL and sig == signal.SIGINT:
            raise KeyboardInterrupt
        elif handler == signal.SIG_DFL:
            signal.raise_signal(sig)  # the default: end the process, now that the set is written


def write_run(folder: Path, *, config: dict, metrics: dict, summary: str) -> None:
    """config.json, metrics.json and summary.md, each written atomically, as a set (a Ctrl-C
    while writing waits for the three)."""
    with interrupt_deferred():
        _write_run(folder, config=config, metrics=metrics, summary=summary)


def _write_run(folder: Path, *, config: dict, metrics: dict, summary: str) -> None:
    _atomic.write_json(folder / "config.json", {**config, "environment": environment()})
    _atomic.write_json(folder / "metrics.json", metrics)
    _atomic.write_text(folder / "summary.md", summary)


def _run_format(folder: Path) -> tuple[str | None, str]:
    """``(kind, "")`` for a folder whose results.json graftlab wrote, else ``(None, why)``."""
    path = Path(folder) / RESULTS
    if not path.is_file():
        return None, f"it holds no {RESULTS}"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, f"its {RESULTS} cannot be read as JSON ({type(exc).__name__})"
    found = record.get("format") if isinstance(record, dict) else None
    match = _FORMAT.fullmatch(found) if isinstance(found, str) else None
    if match is None:
        what = f"format {found!r}" if found is not None else "no graftlab \"format\" field"
        return None, f"its {RESULTS} has {what}, so graftlab did not write it"
    return match.group(1), ""


def is_graftlab_run(folder: str | Path, kind: str | None = None) -> bool:
    """True when ``folder`` is a run folder graftlab wrote: its results.json is a JSON object
    whose ``format`` is graftlab's (``graftlab.<kind>/<version>``), of ``kind`` when given
    ("compare", "adapt"). Only such a folder may be replaced by ``--overwrite``."""
    found, _ = _run_format(Path(folder))
    return found is not None and (kind is None or found == kind)


def not_a_run_error(folder: str | Path, kind: str | None = None) -> ConfigError:
    """The error for ``--overwrite`` on a folder :func:`is_graftlab_run` refuses, saying why."""
    folder = Path(folder)
    found, why = _run_format(folder)
    if found is not None and kind is not None and found != kind:
        why = f"it holds a graftlab {found} run, not a {kind} run"
    return ConfigError(
        f"--overwrite refuses {folder}: {why or 'it is not a graftlab run folder'}. "
        "graftlab only replaces a run folder it wrote itself.",
        hint="point --out at an empty or new folder (or drop --out for a fresh dated one); "
        "if this folder is yours to discard, delete it first.")
