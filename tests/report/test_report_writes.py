"""Reports and BENCHMARKS.md sections are written atomically: an interrupted write leaves the
previous complete file (or none), never half of one; a Ctrl-C while a report is written waits
for the whole set, then interrupts."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from _adapt_results import adapt_results

from graftlab import _atomic
from graftlab.report.adapt import write_report
from graftlab.report.run import interrupt_deferred, write_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _ctrl_c_delivered():
    """Python's own SIGINT handler for each test: a run started with SIGINT ignored (nohup, a
    background job of a script) would never see the Ctrl-C these tests send themselves."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def _names(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_ctrl_c_while_the_report_is_written_waits_until_every_file_is_there(tmp_path,
                                                                               monkeypatch):
    real, written = _atomic.write_text, []

    def write_then_interrupt(path, text):
        if not written:  # Ctrl-C right after the first file of the set
            os.kill(os.getpid(), signal.SIGINT)
        real(path, text)
        written.append(Path(path).name)

    monkeypatch.setattr(_atomic, "write_text", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_report(tmp_path, adapt_results(), None)
    assert written == ["report.html", "report.md"]
    assert (tmp_path / "report.html").read_text().rstrip().endswith("</html>")
    assert "## Setup" in (tmp_path / "report.md").read_text()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_a_sigterm_while_the_report_is_written_waits_too(tmp_path, monkeypatch):
    """The command line takes SIGTERM as a Ctrl-C (``cli.app._terminate``); a report being
    written finishes its set first."""
    from graftlab.cli.app import Terminated, _terminate

    real, written = _atomic.write_text, []

    def write_then_terminate(path, text):
        if not written:
            os.kill(os.getpid(), signal.SIGTERM)
        real(path, text)
        written.append(Path(path).name)

    monkeypatch.setattr(_atomic, "write_text", write_then_terminate)
    before = signal.signal(signal.SIGTERM, _terminate)
    try:
        with pytest.raises(Terminated):
            write_report(tmp_path, adapt_results(), None)
        assert signal.getsignal(signal.SIGTERM) is _terminate  # handler restored
    finally:
        signal.signal(signal.SIGTERM, before)
    assert written == ["report.html", "report.md"]


def test_an_interrupt_inside_a_write_keeps_the_previous_complete_report(tmp_path, monkeypatch):
    write_report(tmp_path, adapt_results(refined=False), None)
    before = (tmp_path / "report.html").read_text()

    def interrupted(_fd):
        raise KeyboardInterrupt  # e.g. a second Ctrl-C, or a kill, mid-write

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_report(tmp_path, adapt_results(refined=True), None)
    assert (tmp_path / "report.html").read_text() == before  # old and whole, not half new
    assert _names(tmp_path) == ["report.html", "report.md"]  # no temp file left


def test_without_a_ctrl_c_nothing_is_raised_and_the_handler_is_put_back():
    with interrupt_deferred():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_write_run_defers_a_ctrl_c_too(tmp_path, monkeypatch):
    real = _atomic.write_json

    def interrupt_on_config(path, obj):
        if Path(path).name == "config.json":
            os.kill(os.getpid(), signal.SIGINT)
        real(path, obj)

    monkeypatch.setattr(_atomic, "write_json", interrupt_on_config)
    with pytest.raises(KeyboardInterrupt):
        write_run(tmp_path, config={"a": 1}, metrics={"acc": 0.5}, summary="# done\n")
    assert _names(tmp_path) == ["config.json", "metrics.json", "summary.md"]


# ------------------------------------------------------------------ BENCHMARKS.md sections
def _write_section():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from extraction import write_section

    return write_section


def test_write_section_replaces_its_own_section_and_keeps_the_others(tmp_path):
    write_section, path = _write_section(), tmp_path / "BENCHMARKS.md"
    write_section("a", "A", "first", path)
    write_section("b", "B", "other", path)
    write_section("a", "A", "second", path)
    text = path.read_text()
    assert text.startswith("# Benchmarks") and "second" in text and "first" not in text
    assert text.index("<!-- a:start -->") < text.index("<!-- b:start -->")
    assert text.count("<!-- a:end -->") == 1 and "other" in text


def test_an_interrupted_section_write_leaves_the_previous_file(tmp_path, monkeypatch):
    write_section, path = _write_section(), tmp_path / "BENCHMARKS.md"
    write_section("a", "A", "first", path)
    before = path.read_text()

    def interrupted(_fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_section("a", "A", "second " * 10_000, path)
    assert path.read_text() == before and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_section_without_its_end_marker_is_refused_not_guessed(tmp_path):
    write_section, path = _write_section(), tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n<!-- a:start -->\n## A\n\nold, end marker lost\n\nmore\n")
    with pytest.raises(SystemExit, match="section 'a' has <!-- a:start --> but no "
                                         "<!-- a:end -->"):
        write_section("a", "A", "new", path)
    assert "more" in path.read_text()


def test_the_report_scores_the_held_out_target_part_beside_the_part_adapted_to(tmp_path):
    from graftlab.report.adapt import tables, verdict

    results = adapt_results()
    results["target"]["held_out"] = 0.2
    for part in (*results["runs"], *results["average"], *results["refined"]):
        part["heldout_target_accuracy"] = part["target_accuracy"] - 0.1
    head, rows = tables(results)["results"]
    assert head[1:4] == ["source accuracy %", "target adapted to %",
                         "held-out target accuracy %"]
    refined = next(r for r in rows if r[0][1] == "refined")
    assert refined[3][2] == "62.0"  # 0.72 - 0.1
    text = verdict(results)
    assert "Target accuracy on the 20% of the target held out of training" in text
    assert "refined 62.0%" in text
    # a run without a held-out part keeps the one target column and says nothing of it
    plain = adapt_results()
    assert tables(plain)["results"][0][2] == "target accuracy %"
    assert "held out of training" not in verdict(plain)
