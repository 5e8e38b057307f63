"""One comparison over the tiny data set, shared by the compare tests."""

from __future__ import annotations

import pytest
from _tiny import KW, STRATEGIES, tiny_domain

from graftlab.workflows.compare import run_compare


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRAFTLAB_HOME", str(root / "home"))
        mp.setenv("GRAFTLAB_CACHE", str(root / "cache"))
        events = []
        results = run_compare(tiny_domain(), strategies=STRATEGIES, out=root / "run",
                              progress=lambda *a: events.append(a), **KW)
        from graftlab.features import FeatureCache

        cache = FeatureCache().entries()
    return results, root / "run", cache, events
