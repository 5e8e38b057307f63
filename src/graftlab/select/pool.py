"""One selection of a pool, as data: what was kept (indices), with what weight, and how much
of each named part of the pool survived."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graftlab.select.base import SELECTORS, Selector, check_fraction, check_weights

log = logging.getLogger(__name__)


@dataclass
class Selection:
    """``weights`` has one entry per pool sample: 0 where dropped; over the kept samples it
    is the selector's weight (1 for a subset selector) scaled to mean 1."""

    selector: str
    fraction: float
    kept: np.ndarray
    weights: np.ndarray
    parts: dict[str, dict[str, int]] = field(default_factory=dict)
    emptied: list[str] = field(default_factory=list)
    part_scores: dict[str, float] | None = None

    def record(self) -> dict:
        """Plain values for a run's JSON."""
        return {"selector": self.selector, "keep_fraction": self.fraction,
                "kept": len(self.kept), "pool": len(self.weights), "parts": self.parts,
                "emptied_parts": self.emptied, "part_scores": self.part_scores}


def select_pool(selector: str | Selector, source_features: np.ndarray,
                target_features: np.ndarray, *, fraction: float = 1.0, groups: Any = None,
                source_labels: Any = None, target_labels: Any = None,
                options: dict | None = None, refit: bool = True) -> Selection:
    """Fit ``selector`` (a registered name, or an instance; ``refit=False``: an instance
    already fitted on these features) and keep ``fraction`` of the pool.
    A part of the pool left with no sample is named in a warning (and in ``emptied``): that
    may be the point (an irrelevant part dropped), but it should never be a surprise."""
    fraction = check_fraction(fraction)
    sel = SELECTORS.create(selector, **(options or {})) if isinstance(selector, str) \
        else selector
    if refit:
        sel.fit(source_features, target_features, source_groups=groups,
                source_labels=source_labels, target_labels=target_labels)
    kept = sel.select(fraction)
    weights = np.zeros(len(sel.scores_))
    weights[kept] = sel.weights_[kept] / max(sel.weights_[kept].mean(), 1e-12)
    check_weights(weights, what=f"{sel.name} weights of the kept samples")
    parts, emptied = {}, []
    if groups is not None:
        names = np.asarray(groups)
        for name in dict.fromkeys(names.tolist()):
            rows = names == name
            parts[str(name)] = {"kept": int((weights[rows] > 0).sum()), "total": int(rows.sum())}
            if not parts[str(name)]["kept"]:
                emptied.append(str(name))
        if emptied:
            log.warning("selection %s at keep fraction %.2f left no sample of pool part(s) %s",
                        sel.name, fraction, ", ".join(map(repr, emptied)))
    return Selection(sel.name, fraction, kept, weights, parts, emptied,
                     getattr(sel, "part_scores_", None))
