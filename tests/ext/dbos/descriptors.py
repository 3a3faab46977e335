"""How many descriptors this process keeps open on a file (the engines' pooled connections)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path


def open_files(path: Path) -> int:
    """How many file descriptors of this process are open on ``path`` (Linux's /proc)."""
    opened = 0
    for descriptor in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):  # (one closed meanwhile)
            opened += descriptor.readlink() == path
    return opened


async def akept_until_let_go(paths: Sequence[Path], use: Callable[[int], Awaitable[None]]) -> int:
    """How many of the SQLite files ``paths`` a process keeps open, used in order by ``use``.

    Each file is used (``use(index)``) until the first one's descriptor is closed (its
    engine let go of): the index of that use is the number kept. Found so, through what a
    user sees, the tests need not read the package's private constant.
    """
    await use(0)
    assert open_files(paths[0]) == 1  # its pool keeps its connection
    for index in range(1, len(paths)):
        await use(index)
        if open_files(paths[0]) == 0:
            return index
    raise AssertionError(f"{len(paths)} databases used, and the first is still kept open.")
