"""Workflows: what each command does, thin over the estimators and the engine.

``fit``, ``probe``, ``compare``, ``adapt`` and ``demo`` each load data, split or sample it,
train through an estimator, score, and write a run folder; :mod:`.common` holds the plumbing
they share. Nothing below this room imports it; only the CLI (and scripts) sit above.
"""
