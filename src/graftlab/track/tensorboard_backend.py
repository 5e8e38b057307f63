"""TensorBoard: event files under ``<run folder>/tensorboard/``, a nested run in a sub-folder
(TensorBoard lists each folder as a run). ``tensorboard --logdir <run folder>/tensorboard``."""

from __future__ import annotations

import re
from pathlib import Path

from graftlab import track
from graftlab.track.base import Tracker


@track.TRACKERS.register("tensorboard")
class TensorBoardTracker(Tracker):
    """Scalars per step; parameters as a Markdown table (text); an artifact as its path
    (text): the files stay where the run wrote them."""

    module = "tensorboard"  # the library it needs

    def __init__(self, run_dir: Path, *, run_name: str | None = None,
                 folder: str = "tensorboard") -> None:
        super().__init__()
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(run_dir) / folder
        self.run_name = run_name
        self.writer = SummaryWriter(log_dir=str(self.log_dir))
        self._step = 0

    def _log_params(self, params: dict[str, str]) -> None:
        rows = "\n".join(f"| {k} | {v} |" for k, v in params.items())
        self.writer.add_text("params", f"| parameter | value |\n|---|---|\n{rows}")

    def _log_metrics(self, metrics: dict[str, float], step: int | None) -> None:
        self._step = self._step if step is None else step
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, global_step=self._step)
        self.writer.flush()

    def _log_artifact(self, path: Path) -> None:
        self.writer.add_text("artifacts", str(path.resolve()))

    def _child(self, name: str) -> Tracker:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "run"
        return TensorBoardTracker(self.log_dir, run_name=name, folder=safe)

    def _close(self, failed: bool) -> None:
        if failed:
            self.writer.add_text("status", "failed")
        self.writer.close()
