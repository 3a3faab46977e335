"""Where the streams and the agents start their tasks, so that none is lost or left behind."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

from miniagents.promising.errors import NoRunningLoopError

__all__ = [
    "TASK_NAME_PREFIX",
    "cancel_task",
    "cancelled_error",
    "forget_task",
    "no_loop_error",
    "running_tasks",
    "spawn",
    "start_owned",
    "task_owner",
]

TASK_NAME_PREFIX = "miniagents:"

_tasks: dict[asyncio.Task[None], set[asyncio.Task[None]] | None] = {}
"""Every running task that :func:`spawn` started, with the set of its owner (if any) to leave
when done."""

task_owner: contextvars.ContextVar[set[asyncio.Task[None]] | None] = contextvars.ContextVar(
    "miniagents_task_owner", default=None
)
"""The set :func:`spawn` adds a task to when no owner is given (nor one of :func:`start_owned`).

A ``MiniAgents`` block sets it, so that the tasks of the streams made in it (a message of an
async generator, pulled in a task) are its own: its exit after an error cancels them.
"""

_cancel_messages: weakref.WeakKeyDictionary[asyncio.Task[Any], str] = weakref.WeakKeyDictionary()
"""The message of the first cancel of each task cancelled by :func:`cancel_task` with one."""


class _Owning(threading.local):
    """What :func:`spawn` gives the tasks it starts in this thread.

    An owner to those started without one (see start_owned); an empty context to their done
    callbacks, which need none (it spares a copy per task): one per thread, since only one
    thread at a time may enter a context.
    """

    owner: set[asyncio.Task[None]] | None = None

    def __init__(self) -> None:
        self.no_context = contextvars.Context()


_owning = _Owning()


def spawn(
    coroutine: Coroutine[Any, Any, None],
    what: str,
    owner: set[asyncio.Task[None]] | None = None,
) -> asyncio.Task[None]:
    """Start ``coroutine`` as a task on the running loop and keep it referenced until it ends.

    Args:
        coroutine: The coroutine to run.
        what: A short description used in the task's name and in error messages.
        owner: A set the task is added to while it runs (e.g. a context's tasks); by
            default, the one :func:`start_owned` gives around the call, else
            :data:`task_owner`'s, if any.

    Raises:
        NoRunningLoopError: if no asyncio event loop is running in this thread.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        coroutine.close()
        raise no_loop_error(what) from None
    if owner is None:
        owner = _owning.owner  # (None but inside start_owned)
        if owner is None:
            owner = task_owner.get()
    task = loop.create_task(coroutine, name=TASK_NAME_PREFIX + what)
    if task.done():  # an eager task factory (Python 3.12's) ran it to its end right here
        return task
    _tasks[task] = owner
    if owner is not None:
        owner.add(task)
    task.add_done_callback(_forget, context=_owning.no_context)
    return task


def start_owned(start: Callable[[], None], owner: set[asyncio.Task[None]]) -> None:
    """Call ``start()``; the tasks it starts with :func:`spawn` (and no owner) go to ``owner``.

    A ``MiniAgents`` context starts the messages its agents reply with so: the task that
    pulls a message's tokens from its source is then one of the context's, which waits for
    it on exit, also once the message was given up on (the source's cleanup, after its
    cancellation), and cancels it after an error. (Only the tasks started inside the call:
    not those they start later, which do not see the owner.)
    """
    former = _owning.owner
    _owning.owner = owner
    try:
        start()
    finally:
        _owning.owner = former


def _forget(task: asyncio.Task[None]) -> None:
    owner = _tasks.pop(task, None)
    if owner is not None:
        owner.discard(task)


def forget_task(task: asyncio.Task[None]) -> None:
    """Forget ``task`` now: its coroutine calls this, with its own task, as its last step.

    The task leaves :func:`running_tasks` and its owner's set at once, and its done callback
    (which would do the same a loop turn later, through a ``Handle`` scheduled and run) is
    removed. Nothing may run in the task after this (it ends in the same step, so nobody
    sees it running and unlisted). A task cancelled before its first step never runs its
    coroutine's body, so never calls this: its done callback, left in place, forgets it.
    """
    task.remove_done_callback(_forget)
    owner = _tasks.pop(task, None)
    if owner is not None:
        owner.discard(task)


def cancel_task(task: asyncio.Task[Any], message: str | None = None) -> bool:
    """Cancel ``task`` with ``message``, and keep the message for the task's own code to read.

    asyncio hands a cancel's message only to the ``CancelledError`` it raises in the task; a
    task that catches that error and goes on (a source that gives one more piece) ends
    cancelled later with :func:`cancelled_error`, which says the same message. The first
    message given stays (the first cancel is the one that stopped the task).

    Returns:
        Whether the task was asked to cancel (``False`` if it had ended).
    """
    if message is not None and not task.done():
        _cancel_messages.setdefault(task, message)
    return task.cancel(message)


def cancelled_error(task: asyncio.Task[Any]) -> asyncio.CancelledError:
    """The error ``task`` ends with once it was asked to cancel: with the cancel's message if
    :func:`cancel_task` was given one (what a stream the task fed says, see ``CancelReason``)."""
    message = _cancel_messages.get(task)
    return asyncio.CancelledError() if message is None else asyncio.CancelledError(message)


def no_loop_error(what: str) -> NoRunningLoopError:
    """The error for starting ``what``, which needs a task, outside a running event loop."""
    return NoRunningLoopError(
        f"Starting {what} needs a running asyncio event loop, and there is none in "
        "this thread. Consume the stream from async code, e.g. inside `asyncio.run(main())`."
    )


def running_tasks() -> frozenset[asyncio.Task[None]]:
    """Return the tasks started by :func:`spawn` that have not finished yet."""
    return frozenset(task for task in _tasks if not task.done())
