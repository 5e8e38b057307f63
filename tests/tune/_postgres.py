"""A throw-away PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` in a temporary folder,
on a free port (and a socket in that folder), as an unprivileged user (``nobody`` when the
tests run as root: PostgreSQL refuses to run as root), stopped and deleted afterwards."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

INSTALL = ("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
           "/usr/lib/postgresql/*/bin; install them, e.g. `apt-get install postgresql-15` "
           "(Debian/Ubuntu) or `brew install postgresql@15` (macOS)")


def binaries() -> Path | None:
    """The folder that holds initdb and pg_ctl, or None."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl", path=str(Path(found).parent)):
        return Path(found).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server(bin_dir: Path) -> Iterator[str]:
    """Start a server; yield its SQLAlchemy URL (database ``postgres``, user ``postgres``, no
    password on 127.0.0.1); stop it and remove its folder."""
    user = "nobody" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="graftlab-pg-"))
    if user:
        shutil.chown(root, user)
    data, port = root / "data", free_port()
    run = {"user": user, "check": True, "capture_output": True, "text": True, "cwd": root}
    try:
        subprocess.run([bin_dir / "initdb", "-D", data, "-U", "postgres", "-A", "trust",
                        "--no-sync", "-E", "UTF8"], **run)
        subprocess.run([bin_dir / "pg_ctl", "-D", data, "-l", root / "log", "-w", "-t", "60",
                        "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 "
                        "-c fsync=off -c max_connections=50", "start"], **run)
    except subprocess.CalledProcessError as exc:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{log}") from None
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
                       user=user, capture_output=True, cwd=root)
        shutil.rmtree(root, ignore_errors=True)
