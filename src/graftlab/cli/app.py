"""The ``graftlab`` command: thin — it parses, calls the Python API, and prints."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from graftlab.errors import GraftlabError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
app = typer.Typer(help="graftlab: graft a pretrained model onto your task, offline.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
cache_app = typer.Typer(help="Inspect or clear the on-disk feature cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
console = Console()
Track = Annotated[str | None, typer.Option(
    help="Track the run with tensorboard or mlflow, in the run folder (params, metrics per "
    "epoch, one nested run per model trained, report and model as artifacts).")]
Augment = Annotated[str | None, typer.Option(
    help="An augmentation preset (graftlab.augment): images expand, light, mix, mixup, cutmix, "
    "expand_mix, domain_mix; text token_edits; cached features feature_mixup, "
    "feature_domain_mix (the ones that fit the backbone's modality).")]
SkipCorrupt = Annotated[bool, typer.Option(
    "--skip-corrupt", help="Image folders: leave out files that cannot be read (listed in a "
    "warning) instead of stopping.")]
err = Console(stderr=True)
# source selection on fit, compare and adapt (see `graftlab select`)
SelectOption = Annotated[str | None, typer.Option(
    "--select", help="Train on what this source selector keeps for the target (knn, "
    "mmd_herding, domain_classifier, kliep; task_similarity on adapt's pools; see "
    "`graftlab select`).")]
KeepFraction = Annotated[float, typer.Option(
    help="With --select: the share of the data kept, in (0, 1].")]
SelectTarget = Annotated[str | None, typer.Option(
    help="With --select: the data to select for (default: --test-data).")]
PLAIN_EVERY_S = 10.0  # off a terminal: a progress line at most this often
SELECT_KEYS = {"select": "select.selector", "select_target": "select.target"}


@contextmanager
def _errors():
    """Turn graftlab's errors into a clear message and exit code 2, not a traceback."""
    try:
        yield
    except GraftlabError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
        raise typer.Exit(2) from None
    except BrokenPipeError:  # `graftlab predict ... | head`: the reader has what it wanted
        with contextlib.suppress(OSError, ValueError):  # no flush error at exit either
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(128 + signal.SIGPIPE) from None  # as a process SIGPIPE ended
    except OSError as exc:  # a disk, a permission: say which file, not a traceback
        where = f" ({exc.filename})" if exc.filename else ""
        err.print(f"[bold red]error:[/] {exc.strerror or exc}{where}.", highlight=False,
                  markup=True, soft_wrap=True)
        raise typer.Exit(2) from None


@contextmanager
def _progress():
    """A rich progress bar on a terminal; elsewhere (a log file, a pipe, a job scheduler) a
    plain line on stderr every ``PLAIN_EVERY_S`` seconds, so a long run is never silent.
    Yields ``update(task, done, total)``."""
    if not err.is_terminal:
        yield _plain_progress()
        return
    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=err)
    tasks: dict[str, int] = {}

    def update(name: str, done: int, total: int) -> None:
        if name not in tasks:
            tasks[name] = bars.add_task(name, total=total)
        bars.update(tasks[name], completed=done, total=total)

    with bars:
        yield update


def _plain_progress(clock=time.monotonic, interval: float = PLAIN_EVERY_S):
    """``update(task, done, total)`` for a log: the first update at once, then at most one line
    each ``interval`` seconds, the latest task's count, with the time since the start; and the
    end of any task a line has shown (so a log never stops at ``0/500``)."""
    start, last, shown = clock(), None, set()

    def update(name: str, done: int, total: int | None) -> None:
        nonlocal last
        now = clock()
        finished = name in shown and done == total  # a task shown before: its end too
        if last is not None and now - last < interval and not finished:
            return
        last = now
        shown.add(name)
        if finished:
            shown.discard(name)
        count = f"{done}/{total}" if total is not None else f"{done}"  # None: a stream
        err.print(f"[{_elapsed(now - start)}] {name}: {count}", highlight=False, markup=False,
                  soft_wrap=True)

    return update


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Terminated(KeyboardInterrupt):
    """A SIGTERM (``timeout``, ``kill``, a job scheduler ending a job), taken as a Ctrl-C so the
    run stops the same clean way: its folder says "interrupted" and keeps its report."""


TERMINATED: list[int] = []  # the SIGTERMs taken: the command then exits 143, not Ctrl-C's 130


def _terminate(signum: int, _frame) -> None:
    TERMINATED.append(signum)
    raise Terminated(f"stopped by signal {signum} (SIGTERM)")


def main() -> None:
    """The ``graftlab`` entry point: the Typer app, exiting 143 (128 + SIGTERM) when a SIGTERM
    stopped the command, as a process killed by it would."""
    try:
        app(prog_name="graftlab")
    except SystemExit as exc:
        if TERMINATED and exc.code == 130:
            raise SystemExit(128 + signal.SIGTERM) from None
        raise


@app.callback()
def _main(ctx: typer.Context,
          verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details.")] = False):
    TERMINATED.clear()
    # for the command's duration; a handler set outside Python (getsignal: None) is left as is
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) is not None:
        previous = signal.signal(signal.SIGTERM, _terminate)
        ctx.call_on_close(lambda: signal.signal(signal.SIGTERM, previous))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _print_table(table) -> None:
    """A results table whole: a pipe or a log gets 80 columns from rich, which would cut the
    numbers; a terminal keeps its own width."""
    (console if console.is_terminal else Console(width=160)).print(table)
