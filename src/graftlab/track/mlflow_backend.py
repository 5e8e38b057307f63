"""MLflow: a SQLite store (``<run folder>/mlflow.db``) and the artifacts beside it
(``<run folder>/mlartifacts/``), written through ``MlflowClient`` (no global active run, so
nested trackers and threads do not mix). A nested run carries ``mlflow.parentRunId``.
``mlflow ui --backend-store-uri sqlite:///<run folder>/mlflow.db``.

The SQLite store needs SQLAlchemy and alembic, which mlflow-skinny does not install. Without
them the tracker says so (a WARNING) and falls back to MLflow's plain-folder store
(``<run folder>/mlruns``), which recent MLflow refuses unless ``MLFLOW_ALLOW_FILE_STORE`` is
set: the tracker sets it for this process. MLflow's usage telemetry is turned off
(``MLFLOW_DISABLE_TELEMETRY``) unless the environment says otherwise: graftlab runs offline.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from pathlib import Path

from graftlab import track
from graftlab.track.base import Tracker

log = logging.getLogger(__name__)
EXPERIMENT = "graftlab"
MAX_PARAM = 6000  # MLflow's longest parameter value


def store_uri(run_dir: Path) -> str:
    """The tracking URI for ``run_dir``: its SQLite store, or (without SQLAlchemy and
    alembic) its plain-folder store, opted into loudly."""
    run_dir = Path(run_dir).resolve()
    if all(importlib.util.find_spec(m) is not None for m in ("sqlalchemy", "alembic")):
        return f"sqlite:///{run_dir / 'mlflow.db'}"
    log.warning("tracking: MLflow's SQLite store needs SQLAlchemy and alembic, which are not "
                "installed; writing MLflow's plain-folder store %s instead (setting "
                "MLFLOW_ALLOW_FILE_STORE=true, which MLflow requires for it). Install "
                "sqlalchemy and alembic for the SQLite store.", run_dir / "mlruns")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    return (run_dir / "mlruns").as_uri()


@track.TRACKERS.register("mlflow")
class MlflowTracker(Tracker):
    """One MLflow run in the run folder's store (experiment ``graftlab``)."""

    module = "mlflow"  # the library it needs

    def __init__(self, run_dir: Path, *, run_name: str | None = None,
                 parent: MlflowTracker | None = None) -> None:
        super().__init__()
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        if parent is None:
            from mlflow.tracking import MlflowClient

            self.uri = store_uri(run_dir)
            logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # table set-up
            self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
            found = self.client.get_experiment_by_name(EXPERIMENT)
            self.experiment_id = found.experiment_id if found is not None else \
                self.client.create_experiment(
                    EXPERIMENT, artifact_location=(Path(run_dir).resolve() /
                                                   "mlartifacts").as_uri())
            tags: dict[str, str] = {}
        else:
            self.uri, self.client = parent.uri, parent.client
            self.experiment_id = parent.experiment_id
            tags = {"mlflow.parentRunId": parent.run_id}
        self.run_id = self.client.create_run(self.experiment_id, run_name=run_name,
                                             tags=tags).info.run_id

    def _log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(self.run_id, params=[Param(k, v[:MAX_PARAM])
                                                   for k, v in params.items()])

    def _log_metrics(self, metrics: dict[str, float], step: int | None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step or 0)
                                                    for k, v in metrics.items()])

    def _log_artifact(self, path: Path) -> None:
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path=path.name)
        else:
            self.client.log_artifact(self.run_id, str(path))

    def _child(self, name: str) -> Tracker:
        return MlflowTracker(Path(), run_name=name, parent=self)

    def _close(self, failed: bool) -> None:
        self.client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")

    def __repr__(self) -> str:  # the run a user looks for
        return f"MlflowTracker(run_id={self.run_id!r}, uri={self.uri!r})"


