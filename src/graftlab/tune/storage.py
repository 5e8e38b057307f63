"""Where a study lives: in memory, a SQLite file, or any SQLAlchemy URL (PostgreSQL for
several workers on several machines sharing one study).

A database storage keeps a heartbeat per running trial: a worker killed mid-trial stops
beating, and after ``grace_period`` seconds the next worker to start a trial marks it failed
and enqueues it again (Optuna's ``RetryFailedTrialCallback``), so no trial is lost.
A study remembers its search space and set-up (``study.user_attrs["graftlab"]``); another
run under the same name with a different one is refused rather than mixed in.
"""

from __future__ import annotations

import importlib.util
import logging
import time
import warnings
from pathlib import Path
from typing import Any

from graftlab.errors import ConfigError

logger = logging.getLogger(__name__)
ATTR = "graftlab"  # the study's user attribute that holds its space and set-up


def storage_url(storage: str | Path | None) -> str | None:
    """None (in memory), a SQLAlchemy URL as given, or a file path as a SQLite URL.
    ``postgresql://`` without a driver uses psycopg 3 when psycopg2 is not installed."""
    if storage is None:
        return None
    text = str(storage)
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    scheme, rest = text.split("://", 1)
    if scheme in ("postgresql", "postgres") and importlib.util.find_spec("psycopg2") is None:
        return f"postgresql+psycopg://{rest}"
    return text


def _where(url: str) -> str:
    """``host:port`` (or the SQLite file) of ``url``, for messages; never the password."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite file {parsed.database}"
    host = parsed.host or (parsed.query.get("host") or "the local socket")
    return f"{parsed.get_backend_name()} server at {host}:{parsed.port or 'default port'}"


def check_connects(url: str) -> None:
    """Connect once, so a storage that cannot be reached is named before any work."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError as exc:
        raise ConfigError(f"--storage {url!r} is not a database URL ({exc}).",
                          hint="give e.g. sqlite:///study.db, a file path, or "
                          "postgresql://USER@HOST:5432/DB.") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        folder = Path(parsed.database).parent
        if not folder.is_dir():
            raise ConfigError(f"--storage: the folder {folder} of the SQLite file does not "
                              "exist.", hint=f"create it (mkdir -p {folder}) or give another "
                              "path.")
    try:
        engine = sqlalchemy.create_engine(parsed, connect_args=_timeout(parsed))
        with engine.connect():
            pass
        engine.dispose()
    except sqlalchemy.exc.NoSuchModuleError:
        raise ConfigError(f"--storage: unknown database kind {parsed.drivername!r}.",
                          hint="give sqlite:///FILE (or a file path), "
                          "postgresql://USER@HOST:PORT/DB, or another SQLAlchemy URL.") from None
    except ModuleNotFoundError as exc:
        raise ConfigError(f"--storage {parsed.drivername}: its driver {exc.name!r} is not "
                          "installed.", hint="use postgresql+psycopg://... (psycopg 3 comes "
                          "with graftlab's tune extra) or install the driver.") from None
    except sqlalchemy.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise ConfigError(
            f"--storage: cannot connect to the {_where(url)} ({reason}).",
            hint="start the server, or point --storage at one that runs; a throw-away "
            "PostgreSQL: `initdb -D DIR && pg_ctl -D DIR -o '-p 5432' -l DIR/log start`, then "
            "--storage postgresql://USER@localhost:5432/postgres. One machine needs no "
            "server: --storage study.db (SQLite).") from None


def _timeout(parsed: Any) -> dict:
    """Fail fast (5 s) on a server that does not answer."""
    return {"connect_timeout": 5} if parsed.get_backend_name() == "postgresql" else {}


def open_storage(storage: str | Path | None, *, heartbeat_interval: int = 10,
                 grace_period: int | None = None, max_retry: int = 3) -> Any:
    """None for Optuna's in-memory storage, else an ``RDBStorage`` with a heartbeat whose
    stale trials are failed and retried (up to ``max_retry`` times each)."""
    url = storage_url(storage)
    if url is None:
        return None
    check_connects(url)
    import optuna
    import sqlalchemy
    from optuna.storages import RDBStorage

    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback",  # Optuna >= 4.9
                    optuna.storages.RetryFailedTrialCallback)
    parsed_kwargs = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        parsed_kwargs["connect_args"] = {"timeout": 30}  # two processes on one file wait
    for attempt in range(5):
        try:
            with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna 5
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, engine_kwargs=parsed_kwargs,
                                  heartbeat_interval=heartbeat_interval,
                                  grace_period=grace_period or 3 * heartbeat_interval,
                                  heartbeat_stale_trial_callback=retry(max_retry=max_retry))
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # workers started together on a new database race to create Optuna's tables
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    return None


def open_study(storage: Any, name: str | None, identity: dict, *, sampler: Any,
               pruner: Any) -> Any:
    """Create the study, or load it when ``name`` exists; ``identity`` (the space and the
    set-up) must match the one it was created with."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize",
                                sampler=sampler, pruner=pruner, load_if_exists=True)
    stored = study.user_attrs.get(ATTR)
    if stored is None:
        study.set_user_attr(ATTR, identity)
    elif stored != identity:
        changed = differences(stored, identity)
        raise ConfigError(
            f"study {name!r} already exists with another set-up: {'; '.join(changed[:5])}"
            + (f" (and {len(changed) - 5} more)" if len(changed) > 5 else "") + ".",
            hint="give a new --study name, or the same search space and settings to resume "
            "it.")
    else:
        logger.info("study %r: resuming with %d trials", name, len(study.trials))
    return study


def differences(stored: dict, now: dict, prefix: str = "") -> list[str]:
    """Where two set-ups differ, as ``space.params.lr.low: stored 0.001, now 0.01``."""
    out = []
    for key in sorted({*stored, *now}):
        a, b = stored.get(key), now.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif not prefix and key == "data":  # content hashes: say what they mean
            out.append(f"data: other samples than the study's (content hash {str(a)[:12]} "
                       f"stored, {str(b)[:12]} now: another file, or another --limit)")
        else:
            out.append(f"{prefix}{key}: stored {a!r}, now {b!r}")
    return out
