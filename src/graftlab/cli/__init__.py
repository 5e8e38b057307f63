"""The command line: thin, parses, calls a workflow, prints. ``graftlab --help`` lists it."""

# each registers its commands; imported in the order --help lists them
from graftlab.cli import info, commands, adapt, tag, multitask, advise, tune, select, deploy  # noqa: F401, I001
from graftlab.cli.app import app

__all__ = ["app"]
