"""Open a graftlab report in headless Chromium and check its layout: every element fits the
page (nothing wider than the page, cut off, or scrolling sideways), every figure drew, and
optionally save a full-page screenshot to look at.

    python scripts/check_report.py runs/compare-*/report.html --screenshot shot.png

Exit status 0 when the layout is sound, 1 with a list of problems, 3 without a Chromium.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Measured in the browser after layout. A problem is any element (or its content) that reaches
# past the page's right or left edge, any box that cuts its content off or scrolls it sideways,
# a page that scrolls sideways, and a figure that drew nothing. A box past the edge is named at
# its outermost (its children go with it), content spilling out at its innermost box.
PROBE = """<script>
window.addEventListener('load', () => {
  const page = document.documentElement.clientWidth, problems = [], flagged = [];
  const name = (el) => {
    const text = (el.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 40);
    return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (typeof el.className === 'string' && el.className ? '.' + el.className.split(' ')[0] : '') +
      (text ? ` "${text}"` : '');
  };
  const related = (el) => flagged.some((f) => f.contains(el) || el.contains(f));
  const flag = (el, why) => { flagged.push(el); problems.push(`${name(el)} ${why}`); };
  const shown = [...document.body.querySelectorAll('*')].filter((el) => {
    if (el.tagName === 'SCRIPT' || el.tagName === 'STYLE') return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 || r.height > 0;
  });
  const clips = (el) => ['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(el).overflowX);
  // Boxes past the page's edges, or cutting their content off: the outermost one is named.
  shown.forEach((el) => {
    if (flagged.some((f) => f.contains(el))) return;
    const r = el.getBoundingClientRect();
    if (r.right > page + 1) flag(el, `ends at ${r.right|0}px of ${page}px (wider than the page)`);
    else if (r.left < -1) flag(el, `starts at ${r.left|0}px, left of the page`);
    else if (clips(el) && el.scrollWidth > el.clientWidth + 1)
      flag(el, `cuts off or scrolls its content sideways (${el.scrollWidth}px in ${el.clientWidth}px)`);
  });
  // Content (a long word, a wide child) spilling past the page: the innermost box is named.
  shown.reverse().forEach((el) => {
    const r = el.getBoundingClientRect();
    if (!clips(el) && r.left + el.scrollWidth > page + 1 && !related(el))
      flag(el, `spills its content past the page (to ${(r.left + el.scrollWidth)|0}px of ${page}px)`);
  });
  document.querySelectorAll('svg').forEach((el, i) => {
    const r = el.getBoundingClientRect();
    if (r.width < 50 || r.height < 50) problems.push(`svg #${i} is ${r.width|0}x${r.height|0}px`);
  });
  const wide = document.documentElement.scrollWidth;
  if (wide > page + 1) problems.push(`the page scrolls sideways (${wide}px of content in ${page}px)`);
  const out = document.createElement('pre');
  out.id = 'layout-check';
  out.textContent = JSON.stringify({page, problems, svgs: document.querySelectorAll('svg').length,
                                    height: document.documentElement.scrollHeight});
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)


def _run(browser: str, args: list[str]) -> str:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--run-all-compositor-stages-before-draw", "--virtual-time-budget=5000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout


def check(report: Path, *, width: int = 1200, screenshot: Path | None = None) -> dict:
    browser = chromium()
    if browser is None:
        raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.html"
        probe.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
        dom = _run(browser, [f"--window-size={width},1000", "--dump-dom", probe.as_uri()])
    found = re.search(r'<pre id="layout-check">(.*?)</pre>', dom, re.S)
    if not found:
        raise RuntimeError("the browser did not run the layout probe")
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    if screenshot is not None:
        height = min(int(result["height"]) + 40, 16000)
        _run(browser, [f"--window-size={width},{height}", f"--screenshot={screenshot}",
                       report.resolve().as_uri()])
        result["screenshot"] = str(screenshot)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--screenshot", type=Path)
    parser.add_argument("--width", type=int, default=1200)
    args = parser.parse_args()
    try:
        result = check(args.report, width=args.width, screenshot=args.screenshot)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(3) from None
    print(json.dumps(result, indent=1))
    raise SystemExit(1 if result["problems"] else 0)


if __name__ == "__main__":
    main()
