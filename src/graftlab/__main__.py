"""``python -m graftlab``: the same command line as ``graftlab``."""

from graftlab.cli import app

app(prog_name="graftlab")
