"""Run folders: every job writes its config, metrics and a readable summary to one folder.

A run folder is never overwritten: a name that exists gets a numbered sibling.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

from graftlab import __version__, _atomic


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


def write_run(folder: Path, *, config: dict, metrics: dict, summary: str) -> None:
    """config.json, metrics.json and summary.md, each written atomically."""
    _atomic.write_json(folder / "config.json", {**config, "environment": environment()})
    _atomic.write_json(folder / "metrics.json", metrics)
    _atomic.write_text(folder / "summary.md", summary)
