"""Interaction scopes: the interactions some code started, to wait until they have stopped.

``inquire`` (and ``initiate_inquiry``, and an ``as_operator`` subscription) adds the task of
the interaction it starts to the scope current where it is called: at once, or, for a lazy
interaction (``start_asap=False``), when its replies are first consumed, possibly long
after. An agent's own code runs outside every scope, so the interactions an agent starts
belong to no scope of its caller::

    with scope:  a.inquire()   b.fork(start_asap=False).inquire()
    tasks:       [a]  ........ [a, b]  (b starts when its replies are first read)
    astopped():  waits for a and b; returns once both have ended
"""

from __future__ import annotations

import asyncio
import contextvars
from types import TracebackType
from typing import Any, Self

from miniagents.promising.lowlevel import EndOf, ReplayCore, park, unpark

__all__ = ["InteractionScope", "current_scope"]

current_scope: contextvars.ContextVar[InteractionScope | None] = contextvars.ContextVar(
    "miniagents_interaction_scope", default=None
)
"""The scope that interactions started here belong to (``None``: none)."""


class InteractionScope:
    """The interactions started by the code inside ``with scope:``, to wait until they stop.

    An interaction belongs to the scope when the code inside the block starts it (or a task
    that code makes); a lazy one from the moment it starts, even after the block. The
    interactions those agents start themselves do not belong to it. A scope may be entered
    again (and nested in another one: the inner one gets what starts inside it).

    Example:
        >>> scope = InteractionScope()
        >>> # with scope:
        >>> #     replies = agent.inquire("Hi")
        >>> # ... give up on the replies (their agent is cancelled) ...
        >>> # await scope.astopped()  # the agent has stopped, its clean-up is done
    """

    __slots__ = ("_idle", "_replies", "_tasks", "_tokens")

    def __init__(self) -> None:
        """An empty scope."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._replies: dict[asyncio.Task[None], ReplayCore[Any]] = {}  # what cancel() gives up
        self._tokens: list[contextvars.Token[InteractionScope | None]] = []
        self._idle: list[asyncio.Future[None]] = []  # one per astopped() waiting: set when empty

    def __enter__(self) -> Self:
        """Make the scope current for the code inside the block."""
        self._tokens.append(current_scope.set(self))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Make the scope that was current before the block current again."""
        current_scope.reset(self._tokens.pop())

    def add(self, task: asyncio.Task[None], replies: ReplayCore[Any] | None = None) -> None:
        """Count ``task`` (the task of an interaction) in the scope until it ends.

        ``replies``: the core of the interaction's replies, which :meth:`cancel` gives up on
        (without it, :meth:`cancel` cancels the task alone).
        """
        if not task.done():
            self._tasks.add(task)
            if replies is not None:
                self._replies[task] = replies
            task.add_done_callback(self._ended)

    def cancel(self) -> None:
        """Give up on every interaction of the scope running now, from plain code.

        Each one's replies are cancelled (their readers get ``StreamCancelledError``), so its
        task is cancelled and its input given up: an interaction whose code has not run yet
        never runs it. A lazy interaction that starts later joins the scope as usual.
        :meth:`astopped` waits until they have stopped.
        """
        for task in list(self._tasks):
            replies = self._replies.get(task)
            if replies is not None:
                replies.cancel()  # (its task with it, and its input: the agent's giving up)
            else:
                task.cancel()

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._replies.pop(task, None)
        if not self._tasks:  # (each waiter's own future: one cancelled leaves the others)
            for idle in self._idle:
                if not idle.done():
                    idle.set_result(None)

    @property
    def running(self) -> int:
        """How many interactions of the scope are running now."""
        return len(self._tasks)

    async def astopped(self) -> None:
        """Wait until every interaction of the scope that has started has ended.

        A lazy interaction that starts while this waits is waited for too; one that has
        not started when this returns is not (it may never start).
        """
        while self._tasks:  # (again only if one started between the last end and the wake-up)
            # one future, set when the last task ends: not a wait on the tasks, new callbacks
            # on each of them, each time one ends while others start (a relay, a retry)
            idle = asyncio.get_running_loop().create_future()
            self._idle.append(idle)
            waiting = park(
                f"the {len(self._tasks)} interaction(s) of an InteractionScope to end",
                on=EndOf(self._tasks),
            )
            try:
                await idle
            finally:
                unpark(waiting)
                self._idle.remove(idle)
