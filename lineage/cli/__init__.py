"""The ``lineage`` command line: a parser, one module per group of verbs, text formatting
and progress bars. Verbs call the library and format its answers; they hold no logic.

May import every other package of lineage.
"""

from lineage.cli.app import main

__all__ = ["main"]
