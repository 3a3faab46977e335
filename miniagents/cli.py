"""The ``miniagents`` command: ``chat``, ``web``, ``eval``, ``run`` and ``studio``.

``pip install miniagents`` installs it (``python -m miniagents`` runs it too). ``chat`` and
``web`` are :mod:`miniagents.ext.console.chat_cli`'s; ``eval`` is
:mod:`miniagents.evals.cli`'s, which the console's layer may not import: this module, at
the top of the layers, gives it to the console's command line, and imports the evals only
when ``eval`` runs; so with ``run`` and ``studio`` (:mod:`miniagents.ext.studio.cli`).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence

from miniagents.ext.console.chat_cli import Command
from miniagents.ext.console.chat_cli import main as console_main

__all__ = ["command", "main"]

_EVAL_HELP = "evaluate an agent on a dataset file (scores, time, cost; against a baseline)"
_RUN_HELP = "run a Python program, recording its run for the studio"
_STUDIO_HELP = "see recorded runs in the browser, live; fork one (or: list, show, fork, diff)"


def _eval(argv: list[str], prog: str) -> int:
    from miniagents.evals.cli import main as eval_main  # (only when it runs)

    return eval_main(argv, prog=prog)


def _run(argv: list[str], prog: str, *, ends_the_process: bool) -> int:
    from miniagents.ext.studio.cli import run_main  # (only when it runs)

    return run_main(argv, prog, ends_the_process=ends_the_process)


def _studio(argv: list[str], prog: str) -> int:
    from miniagents.ext.studio.cli import studio_main  # (only when it runs)

    return studio_main(argv, prog)


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the ``miniagents`` command with ``argv`` (default: ``sys.argv[1:]``); its exit status.

    Called in-process, an error that ``miniagents run``'s program leaves uncaught goes up to
    the caller, and ``sys.excepthook`` is left as it was: only :func:`command`, the console's
    entry point, lets such an error end the process with the program's own traceback.

    Args:
        argv: The arguments after the program's name.
        prog: The program's name in messages (default: ``miniagents``).
    """
    return _main(argv, prog, ends_the_process=False)


def command(*, prog: str | None = None) -> int:
    """The console's entry point: ``main()`` over this process's own command line.

    An error that ``miniagents run``'s program leaves uncaught ends the process, shown by
    ``sys.excepthook`` with the program's frames only, as ``python program.py`` shows it.

    Args:
        prog: The program's name in messages (default: ``miniagents``).
    """
    return _main(None, prog, ends_the_process=True)


def _main(argv: Sequence[str] | None, prog: str | None, *, ends_the_process: bool) -> int:
    commands = {
        "eval": Command(_EVAL_HELP, _eval),
        "run": Command(_RUN_HELP, functools.partial(_run, ends_the_process=ends_the_process)),
        "studio": Command(_STUDIO_HELP, _studio),
    }
    return console_main(argv, prog=prog, commands=commands)


if __name__ == "__main__":  # (python -m miniagents.cli: as python -m miniagents)
    sys.exit(command(prog="python -m miniagents.cli"))
