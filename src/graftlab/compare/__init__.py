"""``graftlab compare``: strategies side by side on the same splits, in one report."""

from graftlab.compare.run import CHOICES, DEFAULT_STRATEGIES, CompareInterrupted, run_compare

__all__ = ["CHOICES", "DEFAULT_STRATEGIES", "CompareInterrupted", "run_compare"]
