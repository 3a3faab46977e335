"""``python -m miniagents``: the command line (``python -m miniagents chat``, ``--help``).

The same as the ``miniagents`` command; see :mod:`miniagents.ext.console.chat_cli`.
"""

import sys

from miniagents.ext.console.chat_cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m miniagents"))
