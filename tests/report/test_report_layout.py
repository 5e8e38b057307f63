"""Report layout: the adapt results table keeps short row names (so it fits), and the browser
check fails on anything wider than the page, wherever it is."""

from __future__ import annotations

import subprocess
import sys

import pytest
from _adapt_results import adapt_results
from _browser import ROOT, layout_check

from graftlab.report.adapt import row_notes, tables, write_report
from graftlab.report.compare import WIDE_CLASSES, _recall_rows


def test_kept_model_rows_have_short_names_and_the_long_form_goes_under_the_table(tmp_path):
    results = adapt_results()
    _, rows = tables(results)["results"]
    assert [row[0][2] for row in rows[-2:]] == ["average", "refined"]
    assert max(len(row[0][2]) for row in rows) <= len("source_only")
    notes = row_notes(results)
    assert notes == ["average: the average of coral, dann, mcc, cdan (their mean probabilities).",
                     "refined: dann self-trained (seed 0) on the consensus of coral, dann, mcc, "
                     "cdan."]
    write_report(tmp_path, results, None)
    md, page = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    assert f"- {notes[1]}" in md and notes[1] in page
    assert row_notes(adapt_results(refined=False, average=False)) == []


def test_per_class_recall_turns_to_a_row_per_class_when_classes_are_many():
    def results(k):
        return {"classes": [f"class {i}" for i in range(k)],
                "summary": [{"strategy": s, "per_class_recall": [0.5] * k}
                            for s in ("linear_probe", "full")]}

    head, rows = _recall_rows(results(3))
    assert head == ["strategy", "class 0", "class 1", "class 2"] and len(rows) == 2
    head, rows = _recall_rows(results(WIDE_CLASSES + 1))
    assert head == ["class", "linear_probe", "full"] and len(rows) == WIDE_CLASSES + 1
    assert rows[0] == ["class 0", "50.0", "50.0"]


@pytest.mark.parametrize("width", [1200, 700])
def test_the_adapt_report_fits_the_page_in_chromium(tmp_path, width):
    check = layout_check()
    write_report(tmp_path, adapt_results(), None)
    result = check(tmp_path / "report.html", width=width)
    assert result["problems"] == [] and result["page"] == width


PAGES = {
    "a table in a scroll box": ('<div class="scroll" style="overflow-x:auto"><table '
                                'style="width:3000px"><tr><td>x</td></tr></table></div>',
                                'div.scroll "x" cuts off or scrolls its content sideways'),
    "a long word in a paragraph": ("<p>" + "x" * 600 + "</p>", "spills its content past"),
    "a wide image": ('<img style="width:2000px;height:10px" alt="">',
                     "img ends at 2008px of 1200px (wider than the page)"),
    "a box that hides its overflow": ('<div id="cut" style="overflow:hidden"><div '
                                      'style="width:2500px">y</div></div>',
                                      'div#cut "y" cuts off or scrolls its content sideways'),
}


@pytest.mark.parametrize("what", list(PAGES))
def test_the_check_names_any_element_wider_than_the_page(tmp_path, what):
    check = layout_check()
    html, problem = PAGES[what]
    page = tmp_path / "wide.html"
    page.write_text(f"<html><body><main>{html}</main></body></html>")
    result = check(page, width=1200)
    assert any(problem in p for p in result["problems"]), result["problems"]


def test_the_check_script_exits_1_and_lists_the_problem(tmp_path):
    layout_check()
    page = tmp_path / "wide.html"
    page.write_text("<html><body><section><p>fits</p><table style='width:3000px'><tr><td>x"
                    "</td></tr></table></section></body></html>")
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_report.py"), str(page)],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 1, out.stdout + out.stderr
    assert 'table \\"x\\" ends at 3008px of 1200px (wider than the page)' in out.stdout
