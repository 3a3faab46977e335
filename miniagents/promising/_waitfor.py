"""The wait-for graph: which tasks can end a wait on the library's own streams.

Every wait of a task on the library (see :mod:`miniagents.promising._deadlock`) says what
it waits *on*, and each kind of thing waited on knows who can end the wait:

* **a piece of a stream** (a :class:`~miniagents.promising._replay.ReplayCore`): its
  *producer* (``core.producer``): a task, another core it follows (whose producer is
  then the one), or a :class:`Producer` that names them (an agent's reply appender names
  its task, or, while its replies follow another agent's replies in their place, the
  producer of those; a flattening names the part it follows);
* **room in a stream** (:class:`Room`): the consumers that hold the room back (see
  ``Flow.holders``): the slowest ``async for`` readers (their tasks), the streams it
  forwards into (room there), and a flattening that holds it *queued*, to read it from
  its first piece once the part it follows now has ended (so: the producer of that part);
* **anything else** (a slot of a concurrency limit, the end of some tasks): a
  :class:`Producer` naming them.

A task that is not waiting on the library (running, ready, sleeping, waiting for I/O or a
thread), a wait already woken, and anything the library cannot see (``None``: a source
outside the library, a stream that nobody has started reading, a producer that is not a
task) are *live*: they may still act. A wait is **stuck** when no live node can be reached
from it; then nothing but the library can ever end it::

    src  waits for room in    shared        (its slowest reader is B's input)
    B    waits for room in    B's replies   (queued behind A's replies, nobody reads them)
    A    waits for a piece of shared        (whose producer is src)
    ->   src -> B -> A -> src: no live node, the three are stuck

A stuck set with a wait for room is an artificial deadlock of bounded buffers (more room
ends it); one without is a wait cycle. The search stops at the first live node, so a
flowing stream answers in a step or two.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from typing import Any, Protocol, TypeGuard

__all__ = ["EndOf", "Producer", "Room", "Search", "fed_by"]


class Producer(Protocol):
    """Something that names who can produce the next piece of a stream (or end a wait)."""

    def producers(self) -> Iterable[object]:
        """The tasks, cores, rooms or producers that can, and ``None`` for one it cannot name."""
        ...


class _Paced(Protocol):
    """What the search reads of a core's flow (a :class:`~miniagents.promising._flow.Flow`)."""

    unpaced: bool

    def holders(self, core: Any) -> Iterable[object] | None: ...


class Room:
    """A wait for room in the stream of ``core`` (what a producer waits on): one per stream
    (its flow's ``room``), so that every wait for it is one node of the graph."""

    __slots__ = ("core",)

    def __init__(self, core: Any) -> None:
        self.core = core


class EndOf:
    """A wait for the end of some tasks (what a context or a scope waits on at its exit)."""

    __slots__ = ("tasks",)

    def __init__(self, tasks: Iterable[asyncio.Task[Any]]) -> None:
        self.tasks = tuple(tasks)

    def producers(self) -> Iterable[object]:
        """The tasks not ended yet."""
        return [task for task in self.tasks if not task.done()] or [None]


def fed_by(core: object, sink: object) -> bool:
    """Whether ``sink`` feeds ``core``, through the streams that feed it.

    It walks who makes ``core``'s next piece (a core's ``producer``; a :class:`Producer`'s
    ``producers()``: the part a flattening follows, the message a join reads) until it finds
    ``sink``, or only tasks and what it cannot name are left: ``sink`` reading ``core``
    would close a cycle, each feeding the other without end.
    """
    seen: set[int] = set()
    stack: list[object] = [core]
    while stack:
        node = stack.pop()
        if node is sink:
            return True
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        producers = getattr(node, "producers", None)
        if producers is not None:
            stack.extend(producers())
        elif hasattr(node, "producer") and not node.done:  # type: ignore[attr-defined]
            stack.append(node.producer)  # a core not ended: who makes its next piece
    return False


Entry = tuple[Any, Any, Any, object]
"""A parked task's wait, as the deadlock watch keeps it: what it waits for (a sentence), the
future it waits for (``None`` if not ours), what relieves it, and what it waits on."""


class Search:
    """One look at the parked tasks of a loop: which of them are stuck.

    ``parked`` maps each parked task to its :data:`Entry`. With ``shared``, what is found
    is kept for the whole look, so that several roots share their common parts.
    """

    __slots__ = ("live", "live_end", "parked", "shared", "stuck")

    def __init__(self, parked: dict[asyncio.Task[Any], Entry], shared: bool = True) -> None:
        self.parked = parked
        self.shared = shared
        # nodes known to reach a live node, each with the live task it reaches (None: what
        # the library cannot see), so that a root found live through one keeps that task
        self.live: dict[object, asyncio.Task[Any] | None] = {}
        self.stuck: set[object] = set()  # nodes known to reach none
        # the live task a search last ended at (running, or woken), if it was a task: the
        # root may be stuck once it ends (see _Watch.watch_end)
        self.live_end: asyncio.Task[Any] | None = None

    def stuck_from(self, root: asyncio.Task[Any]) -> list[asyncio.Task[Any]] | None:
        """The tasks stuck with ``root`` (``root`` first), or ``None`` if ``root`` is live.

        (A root stuck only with tasks found stuck before, from another root, gives an empty
        list: that set is being acted on already.)
        """
        live = self.live
        if root in live:
            self.live_end = live[root]
            return None
        if root in self.stuck:
            return []
        seen: dict[object, None] = {root: None}
        path: list[object] = [root]
        wakers = self._wakers(root)
        if wakers is None:
            self._mark_live(path, _task_or_none(root))
            return None
        stack: list[Iterator[object]] = [iter(wakers)]
        earlier = False
        while stack:
            step = next(stack[-1], _END)
            if step is _END:
                stack.pop()
                path.pop()
                continue
            if step is None:
                self._mark_live(path, None)  # (what the library cannot see)
                return None
            if step in live:
                self._mark_live(path, live[step])  # (a cached answer: the same live task)
                return None
            if step in seen:
                continue
            if step in self.stuck:
                earlier = True  # stuck with a set found before (and acted on): not new
                continue
            seen[step] = None
            path.append(step)
            wakers = self._wakers(step)
            if wakers is None:
                self._mark_live(path, _task_or_none(step))
                return None
            stack.append(iter(wakers))
        self.stuck.update(seen)
        if earlier:
            return []
        return [node for node in seen if _is_task(node)]

    def _mark_live(self, path: list[object], end: asyncio.Task[Any] | None) -> None:
        """Note ``path`` as live, reaching the live task ``end`` (``None``: not a task)."""
        self.live_end = end
        if self.shared:
            live = self.live
            for node in path:
                live[node] = end

    def _wakers(self, node: object) -> Iterable[object] | None:
        """Who can move ``node`` on, or ``None`` if it is live."""
        try:
            if _is_task(node):
                return self._task_wakers(node)
            if type(node) is Room:
                core = node.core
                flow: _Paced | None = core.flow
                if core.done or flow is None or flow.unpaced:
                    return None
                return flow.holders(core)
            producers = getattr(node, "producers", None)
            if producers is not None:
                found: Iterable[object] = producers()
                return found
            if hasattr(node, "producer"):  # a core: who makes its next piece
                if node.done or not node.started:  # type: ignore[attr-defined]
                    return None  # ended, or its wait starts it
                return (node.producer,)
        except Exception:  # a node that cannot tell may act: never a false deadlock
            return None
        return None

    def _task_wakers(self, task: asyncio.Task[Any]) -> Iterable[object] | None:
        if task.done():
            return None  # (a producer that ended but not its stream: it cannot be told)
        entry = self.parked.get(task)
        if entry is None:
            return _awaited_tasks(task)
        waiter, on = entry[1], entry[3]
        if (waiter is not None and waiter.done()) or on is None:
            return None  # woken (it runs soon), or a wait on what the library cannot see
        return (on,)


def _is_task(node: object) -> TypeGuard[asyncio.Task[Any]]:
    """Whether ``node`` is a task: asyncio's own, or another loop's or factory's (pure
    Python tasks, as an eager task factory may make, are no ``asyncio.Task``)."""
    return type(node) is asyncio.Task or (asyncio.isfuture(node) and hasattr(node, "get_coro"))


def _task_or_none(node: object) -> asyncio.Task[Any] | None:
    """``node`` if it is a task, else ``None``."""
    return node if _is_task(node) else None


def _awaited_tasks(task: asyncio.Task[Any]) -> Iterable[object] | None:
    """What a task that is not parked awaits, if it awaits other tasks only (``await task``,
    a gathering of tasks: they may be parked); ``None`` for anything else (it is live)."""
    awaited = getattr(task, "_fut_waiter", None)
    if awaited is None:
        return None
    if _is_task(awaited):
        return (awaited,)
    children = getattr(awaited, "_children", None)
    if children is None:
        return None
    # a gathering ends when all its children have, so it is stuck if one of them is: any
    # of them answers live more often than that (never a deadlock that is not one)
    return [child for child in children if not child.done()] or None


class _End:
    """The end of one node's wakers."""

    __slots__ = ()


_END = _End()
