"""Open a graftlab report in headless Chromium and check its layout: every table and figure
fits the page (nothing cut off or spilling sideways), every figure drew, and optionally save a
full-page screenshot to look at.

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

# Measured in the browser after layout: elements wider than the page or than their box.
PROBE = """<script>
window.addEventListener('load', () => {
  const page = document.documentElement.clientWidth, problems = [];
  document.querySelectorAll('table, figure, svg, section, .verdict').forEach((el, i) => {
    const r = el.getBoundingClientRect();
    const box = el.closest('.scroll');
    if (r.right > page + 1 && !box) problems.push(`${el.tagName} #${i} ends at ${r.right|0}px of ${page}px`);
    if (el.tagName === 'svg' && (r.width < 50 || r.height < 50)) problems.push(`svg #${i} is ${r.width|0}x${r.height|0}px`);
    if (box && box.scrollWidth > box.clientWidth + 1) problems.push(`table #${i} needs sideways scrolling (${box.scrollWidth}px in ${box.clientWidth}px)`);
  });
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
