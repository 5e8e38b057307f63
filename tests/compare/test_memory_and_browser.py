"""PeakMemory measures the peak of one piece of work; the report renders in a real browser
(no Chromium fails the browser tests, see tests/report/_browser.py, rather than skipping them
silently)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graftlab.report.memory import PeakMemory

pytestmark = pytest.mark.slow  # trains end to end (make test-fast skips it)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "report"))
from _browser import layout_check  # noqa: E402


def test_peak_memory_sees_a_temporary_allocation_and_resets_between_uses():
    with PeakMemory() as big:
        block = np.ones(300 * 2**20 // 8)  # 300 MiB, touched
        del block
    with PeakMemory() as small:
        np.ones(10)
    assert big.rss_mib - small.rss_mib > 200


def test_report_renders_in_headless_chromium_without_overflow(compared, tmp_path):
    check = layout_check()
    _, folder, _, _ = compared
    result = check(folder / "report.html", screenshot=tmp_path / "shot.png")
    assert result["problems"] == [] and result["svgs"] >= 4
    png = (tmp_path / "shot.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000


def test_check_report_script_exits_1_on_a_page_that_overflows(tmp_path):
    layout_check()
    page = tmp_path / "wide.html"
    page.write_text("<html><body><section><table style='width:3000px'><tr><td>x</td></tr>"
                    "</table></section></body></html>")
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_report.py"), str(page)],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 1 and "ends at 3008px of 1200px (wider than the page)" in out.stdout
