"""Eager tasks on every Python: ``asyncio.eager_task_factory``, or a stand-in before 3.12.

Python 3.12's ``loop.set_task_factory(asyncio.eager_task_factory)`` runs a new task's first
step inside ``create_task``, with the new task current, and schedules the task only if that
step suspends. Applications set it for speed, so the library must work under it: a task's
starter may find the task already finished, and a run starts before its starter has handed
it its task. The CI machine runs Python 3.11, so this module also holds a stand-in with the
same semantics, made of asyncio's pure-Python ``Task`` (slower, and only for tests).

``pytest --eager-tasks`` runs any tests under it (``tests/conftest.py``);
``tests/miniagents/test_eager_tasks.py`` tests it; the cases that once failed under it run
both ways in their own module (the ``lazy_and_eager_tasks`` fixture, ``tests/fakes/fixtures.py``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from asyncio import tasks as _asyncio_tasks
from collections.abc import Callable, Coroutine, Generator, Iterator
from contextlib import contextmanager
from contextvars import Context
from typing import Any

__all__ = ["EagerTaskPolicy", "eager_task_factory", "eager_tasks"]


def _stand_in(
    loop: asyncio.AbstractEventLoop,
    coro: Generator[Any, None, Any] | Coroutine[Any, Any, Any],
    *,
    name: str | None = None,
    context: Context | None = None,
) -> asyncio.Task[Any]:
    """Python 3.12's eager task factory, for Python 3.11.

    As on 3.12, a task starts eagerly only on a running loop, and anyio's task groups start
    theirs lazily (see :func:`_anyio_child`).
    """
    if not loop.is_running() or _anyio_child(coro):
        lazy: Any = asyncio.Task  # (typeshed's Task of 3.11 takes no context)
        return lazy(coro, loop=loop, name=name, context=context)  # type: ignore[no-any-return]
    task_class: Any = _asyncio_tasks._PyTask  # type: ignore[attr-defined]  # (pure Python)
    scheduled: list[tuple[Callable[..., object], Context]] = []
    shadowed = loop.__dict__.get("call_soon")  # (an outer stand-in's hold, if any)
    call_soon = loop.call_soon

    def hold(
        callback: Callable[..., object], *args: object, context: Context | None = None
    ) -> asyncio.Handle | None:
        step_of = getattr(getattr(callback, "__self__", None), "_coro", None)
        if context is not None and step_of is coro and not scheduled:
            scheduled.append((callback, context))  # the new task's first step
            return None  # (run below instead; the task's __init__ drops the handle)
        # anything else scheduled meanwhile (a finalizer the garbage collector runs while
        # the task is made, a task made by it) goes to the loop as ever
        return call_soon(callback, *args, context=context)

    loop.call_soon = hold  # type: ignore[method-assign,assignment]  # (the task's __init__)
    try:
        task: asyncio.Task[Any] = task_class(coro, loop=loop, name=name, context=context)
    finally:
        if shadowed is None:
            del loop.call_soon
        else:
            loop.call_soon = shadowed  # type: ignore[method-assign]
    ((step, step_context),) = scheduled
    caller = asyncio.current_task(loop)
    if caller is not None:  # the new task is current during its first step (as 3.12 does)
        _asyncio_tasks._leave_task(loop, caller)
    try:
        step_context.run(step)
    finally:
        if caller is not None:
            _asyncio_tasks._enter_task(loop, caller)
    return task


def _anyio_child(coro: object) -> bool:
    """Whether ``coro`` runs a child of an anyio task group.

    Under Python 3.12's own ``eager_task_factory`` (which anyio recognizes), anyio starts
    those tasks lazily all the same: its task state for the child is set after
    ``create_task`` returns, and the child's first step needs it. So does the stand-in.
    """
    code = getattr(coro, "cr_code", None)
    return code is not None and _ANYIO in code.co_filename


_ANYIO = f"{os.sep}anyio{os.sep}"  # (a string test: pathlib would intern every file's parts)


if sys.version_info >= (3, 12):
    eager_task_factory: Any = asyncio.eager_task_factory
    """``asyncio.eager_task_factory`` on Python 3.12 and later; the stand-in before."""
else:
    eager_task_factory = _stand_in


class EagerTaskPolicy(asyncio.DefaultEventLoopPolicy):
    """An event loop policy whose every new loop starts its tasks eagerly."""

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        """A new loop with the eager task factory set."""
        loop = super().new_event_loop()
        loop.set_task_factory(eager_task_factory)
        return loop


@contextmanager
def eager_tasks() -> Iterator[None]:
    """Start the running loop's tasks eagerly inside the block (from async code)."""
    loop = asyncio.get_running_loop()
    before = loop.get_task_factory()
    loop.set_task_factory(eager_task_factory)
    try:
        yield
    finally:
        loop.set_task_factory(before)
