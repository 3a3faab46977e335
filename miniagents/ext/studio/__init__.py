"""The studio: record a program's runs, see them in the browser as they run, fork them.

- **Record** (:mod:`~miniagents.ext.studio.recorder`): ``record_runs()`` in the program,
  or ``miniagents run program.py`` (the program unchanged), records each run into a SQLite
  file (``miniagents_runs.sqlite``, or ``MINIAGENTS_STUDIO``; stdlib ``sqlite3``, written
  in batches by a thread): the tree of agent calls, every message and token with its time,
  tool calls, approvals, errors, tokens and cost, and each model call's full request.
- **See** (:mod:`~miniagents.ext.studio.app`, the ``web`` extra): ``miniagents studio``
  serves a page that lists the runs and shows one as a tree, live while it runs; ``miniagents
  studio show`` prints it (:mod:`~miniagents.ext.studio.tree`).
- **Fork** (:mod:`~miniagents.ext.studio.fork`): edit the reply (or prompt) of any model
  call of a run and run the program again from there: every call before it is replayed
  from the recording, the rest runs live; :mod:`~miniagents.ext.studio.diff` says what
  differs between the two runs.

Importing this package needs nothing beyond MiniAgents; the studio's page needs
``pip install "miniagents[web]"``.
"""

from miniagents.ext.studio.diff import NodeDiff as NodeDiff
from miniagents.ext.studio.diff import diff_runs as diff_runs
from miniagents.ext.studio.fork import Fork as Fork
from miniagents.ext.studio.fork import ForkResult as ForkResult
from miniagents.ext.studio.fork import afork as afork
from miniagents.ext.studio.fork import plan_fork as plan_fork
from miniagents.ext.studio.recorder import Recorder as Recorder
from miniagents.ext.studio.recorder import record_runs as record_runs
from miniagents.ext.studio.store import RunInfo as RunInfo
from miniagents.ext.studio.store import RunStore as RunStore
from miniagents.ext.studio.tree import RunTree as RunTree

__all__ = [
    "Fork",
    "ForkResult",
    "NodeDiff",
    "Recorder",
    "RunInfo",
    "RunStore",
    "RunTree",
    "afork",
    "diff_runs",
    "plan_fork",
    "record_runs",
]
