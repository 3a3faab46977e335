"""The pytest-xdist scheduling of our suite: what must share a process shares a group.

The typing tests read one ``mypy`` run (``tests/fakes/typecheck.py``), the pages' blocks and
examples one batch (``tests/fakes/batch.py``), and the Ray tests one local cluster
(``tests/ext/ray/conftest.py``): each is made once, by the worker that runs its group. Any
other test is a unit of its own, sent to whichever worker is free.

pytest-xdist's own ``--dist loadgroup`` names a test's group by appending it to the test's
node id, which pytest 9.2 no longer lets a plugin change (the groups were silently ignored);
grouping by path here needs neither that nor marks. ``tests/conftest.py`` installs it.
"""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

__all__ = ["GroupScheduling", "group_of"]

_TYPECHECKED = {"test_tool_loop_types.py"}  # beside tests/typing/*: read the one mypy run


def group_of(nodeid: str) -> str:
    """Name the unit of work a test is scheduled in (its own node id when it has no group)."""
    path = nodeid.split("::", 1)[0]
    if path.startswith("tests/typing/") or path.rsplit("/", 1)[-1] in _TYPECHECKED:
        return "mypy"
    if path == "tests/test_docs.py":
        return "docs"
    if path.startswith("tests/ext/ray/"):
        return "ray"
    return nodeid


class GroupScheduling(LoadScopeScheduling):
    """pytest-xdist's scope scheduling with :func:`group_of` as the scope."""

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid)
