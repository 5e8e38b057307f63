"""``python -m graftlab``: the same command line as ``graftlab``."""

from graftlab.cli.app import main

main()
