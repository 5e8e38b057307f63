"""The headless-Chromium layout check, for the report tests: a missing browser fails the test
(CI must not skip it silently) unless GRAFTLAB_NO_BROWSER=1 says to skip on purpose."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = "apt-get install -y --no-install-recommends chromium"


def layout_check():
    """scripts/check_report.py's ``check``, once a Chromium is known to be there."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from check_report import check, chromium

    if chromium() is None:
        if os.environ.get("GRAFTLAB_NO_BROWSER"):
            pytest.skip("GRAFTLAB_NO_BROWSER is set: the browser layout check is skipped")
        pytest.fail(f"no Chromium on PATH for the report layout check: install it ({INSTALL}), "
                    "or set GRAFTLAB_NO_BROWSER=1 to skip this check on purpose")
    return check
