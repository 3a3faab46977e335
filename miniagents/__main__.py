"""``python -m miniagents``: the command line (``python -m miniagents chat``, ``eval``, ``--help``).

The same as the ``miniagents`` command; see :mod:`miniagents.cli`.
"""

import sys

from miniagents.cli import command

if __name__ == "__main__":
    sys.exit(command(prog="python -m miniagents"))
