"""The one place where the library starts asyncio tasks, so that none is lost or left behind."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from miniagents.promising.errors import NoRunningLoopError

__all__ = ["TASK_NAME_PREFIX", "no_loop_error", "running_tasks", "spawn"]

TASK_NAME_PREFIX = "miniagents:"

_tasks: set[asyncio.Task[None]] = set()


def spawn(coroutine: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
    """Start ``coroutine`` as a task on the running loop and keep it referenced until it ends.

    Args:
        coroutine: The coroutine to run.
        what: A short description used in the task's name and in error messages.

    Raises:
        NoRunningLoopError: if no asyncio event loop is running in this thread.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        coroutine.close()
        raise no_loop_error(what) from None
    task = loop.create_task(coroutine, name=TASK_NAME_PREFIX + what)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task


def no_loop_error(what: str) -> NoRunningLoopError:
    """The error for starting ``what``, which needs a task, outside a running event loop."""
    return NoRunningLoopError(
        f"Starting {what} needs a running asyncio event loop, and there is none in "
        "this thread. Consume the stream from async code, e.g. inside `asyncio.run(main())`."
    )


def running_tasks() -> frozenset[asyncio.Task[None]]:
    """Return the tasks started by the library that have not finished yet."""
    return frozenset(task for task in _tasks if not task.done())
