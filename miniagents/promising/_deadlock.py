"""The deadlock watch: a hang on the library's own streams is relieved, or becomes an error.

Every wait of a task on something only the library can end (a piece of a stream, room in a
stream, a slot of a concurrency limit, the end of other agents' tasks) *parks* the task here,
with a sentence saying what it waits for and what it waits *on* (see
:mod:`miniagents.promising._waitfor`, the wait-for graph: who can end each wait).

**At once, from the library's own relations.** While some producer waits for room, every
task that parks is checked soon after (in the loop's next step, whatever else the loop
holds: timers, servers, other tasks, threads, uvloop): if no live node can be reached from
its wait in the wait-for graph, it is *stuck*, with every task it reaches. A stuck set is

* **an artificial deadlock** when one of its tasks waits for room: the bounded buffers of a
  *diamond* (one stream read by two branches that meet again in order, the second needing
  all of it before the first ends) have filled up so that every producer waits for a
  consumer that waits for it. With larger buffers the program would run (as Kahn process
  networks do), so the watch *relieves* it, as Parks' algorithm does: the stuck stream with
  the smallest high-water mark gets twice its mark, and its producer goes on. A diamond
  of N pieces needs about log2(N / HWM) such steps, each taken the moment the buffers fill
  up again, and its memory grows only as far as its shape needs;
* **a wait cycle** when none waits for room (an agent awaiting its own replies, or a call
  that needs the concurrency slot it holds): no buffer can end it. The watch logs one error
  naming every wait of the cycle, and fails each with a :class:`DeadlockError` carrying the
  same text, so that the program ends with a typed error instead of an idle loop forever::

    task A: waits for a piece of "the replies of the agent X"   (X's producer is A)
    task B: waits for a slot of a concurrency limit of 1        ->  DeadlockError in A and B

**Every second of the loop's clock**, while some task waits (:data:`check_interval`), every
parked task is checked so (a wait cycle without any wait for room is found there), and
then the loop as a whole, for what the graph cannot see (a stream that nobody has started
reading, held by code that will read it later; an outside source): when every task of the
loop is parked (or awaits only parked tasks), no callback is ready, no timer is scheduled
and no stream follows a source that may push from outside (an ``Observable`` that is not
the library's: a thread, a socket callback), nothing can ever wake the parked tasks, and
the watch relieves the waits for room, or fails every wait with a :class:`DeadlockError`.

**Where it cannot tell.** That last look reads two private attributes of asyncio's own
event loop (``_ready``, ``_scheduled``). A loop without them (uvloop, say) cannot show a
callback or a timer that would still wake the parked tasks, so there it asks for more:
every task parked at two checks in a row, with the very same waits. Then it relieves
pressure, since more room harms nobody, but it never reports a wait cycle it found only so
(the wait-for graph's own cycles are reported on every loop). Code that calls the library
from a thread or a raw callback (``call_soon_threadsafe``, ``add_reader``) without a task or
an ``Observable`` source is invisible to that last look: a loop whose tasks are all parked
while such code would wake them later is reported as deadlocked. Set the check interval to
``None`` (:func:`set_check_interval`) to turn the watch off.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable
from typing import Any, TypeAlias

from miniagents.arguments import check_seconds
from miniagents.promising._reporting import logger, mark_received
from miniagents.promising._waitfor import Room, Search
from miniagents.promising.errors import DeadlockError, StreamLimitError

__all__ = [
    "check_interval",
    "outside_source",
    "park",
    "park_in",
    "parked",
    "set_check_interval",
    "unpark",
    "unpark_in",
    "watch_of",
]


class _Interval:
    """How often the watch checks a loop while a task waits: one for the process."""

    __slots__ = ("seconds",)

    def __init__(self) -> None:
        self.seconds: float | None = 1.0
        """Seconds (of the loop's clock) between two checks; ``None``: no watch."""


check_interval = _Interval()
"""How often the watch checks a loop (``seconds``; see :func:`set_check_interval`)."""

_SOONER = 20
"""After a relief the next check comes this many times sooner than the interval."""

What: TypeAlias = "str | Callable[[], str]"
"""What a parked task waits for: a sentence, or a function making it (only when reported)."""


_Wait: TypeAlias = "tuple[What, asyncio.Future[Any] | None, Callable[[], bool] | None, object]"
"""What a task waits for, the future it waits on (if ours), what relieves the wait (a wait
for room), and what it waits on (see :mod:`miniagents.promising._waitfor`; ``None``: what
the library cannot see)."""


class _Watch:
    """The parked tasks of one event loop, and the checks that look at them.

    It holds its loop by a weak reference (``loop_ref``), and not the handle of its
    scheduled check (``armed`` says there is one): a loop's watch is kept in a
    ``WeakKeyDictionary`` by that loop, and a strong reference to the loop, or to a handle
    (which has one), would keep every loop that ever had a parked task, closed or not, for
    the life of the process.
    """

    __slots__ = (
        "__weakref__",
        "armed",
        "ends",
        "externals",
        "fresh",
        "loop_ref",
        "parked",
        "pressure",
        "seen",
        "spent",
        "swept",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop_ref = weakref.ref(loop)
        self.parked: dict[asyncio.Task[Any], _Wait] = {}
        self.armed = False  # its check is scheduled (the handle is the loop's, not kept here)
        self.externals = 0
        # how many parked waits are for room: while there are some, each task that parks is
        # checked in the loop's next step (fresh: those parked since the last look, or None
        # when no look is scheduled)
        self.pressure = 0
        self.fresh: list[asyncio.Task[Any]] | None = None
        # the running tasks that waits for room were found to depend on, each with those
        # waits' tasks: when one ends (without parking, which is looked at anyway), they are
        # looked at again (a cycle may have closed by its end)
        self.ends: dict[asyncio.Task[Any], weakref.WeakSet[asyncio.Task[Any]]] = {}
        # the garbage was collected once while only outside sources kept the watch off
        # (one dropped in a reference cycle is released when it is collected): not again
        # until a task runs
        self.swept = False
        # on a loop that hides its callbacks and timers: the waits every task was parked in
        # at the last check, by identity (ids: no reference that would keep a task alive)
        self.seen: dict[int, int] | None = None
        self.spent = False  # those waits were found stuck, and nothing could relieve them

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The watch's loop (it is alive while anything uses the watch)."""
        loop = self.loop_ref()
        assert loop is not None, "a watch is used only while its loop is running"
        return loop

    def arm(self, soon: bool = False) -> None:
        """Schedule the next check: after the check interval, or a twentieth of it if ``soon``."""
        interval = check_interval.seconds
        if not self.armed and interval is not None:
            self.loop.call_later(interval / _SOONER if soon else interval, self.check)
            self.armed = True

    # -- at once: the wait-for graph -------------------------------------------------

    def note(self, task: asyncio.Task[Any]) -> None:
        """Look at ``task``'s wait in the loop's next step (some producer waits for room)."""
        fresh = self.fresh
        if fresh is None:
            if check_interval.seconds is None:
                return
            self.fresh = [task]
            self.loop.call_soon(self.look)
        else:
            fresh.append(task)

    def look(self) -> None:
        """Act on the stuck sets of the tasks parked since the last look."""
        fresh, self.fresh = self.fresh, None
        if fresh and self.parked:
            self.act_on(fresh)

    def act_on(self, roots: list[asyncio.Task[Any]]) -> bool:
        """Relieve or report each stuck set reachable from ``roots``; whether one was found."""
        parked = self.parked
        search = Search(parked, shared=len(roots) > 1)
        found = False
        behind: list[asyncio.Task[Any]] = []  # stuck only through a set acted on before
        for root in roots:
            wait = parked.get(root)
            if wait is None or (wait[1] is not None and wait[1].done()):
                continue  # woken meanwhile
            stuck = search.stuck_from(root)
            if stuck is None:
                end = search.live_end
                if end is not None and wait[2] is not None and end is not root:
                    self.watch_end(end, root)
                elif end is None and isinstance(wait[3], Room):
                    _wake_if_room(wait[3])
            elif stuck:
                found = True
                if self.relieve_one(stuck):
                    # the others are looked at again once the relieved producer has run: a
                    # cycle that the relief did not break gets the next relief then
                    for task in stuck:
                        self.note(task)
                else:
                    self.report(stuck, cycle=True)
            else:
                behind.append(root)
        if found:
            # a root stuck behind a relieved set is not in that set: it is looked at again
            # once the relieved producer has run (it may still be stuck, in a cycle of its own)
            for task in behind:
                self.note(task)
        return found

    def watch_end(self, end: asyncio.Task[Any], root: asyncio.Task[Any]) -> None:
        """Look at ``root``'s wait for room again when ``end``, what it depends on, ends."""
        roots = self.ends.get(end)
        if roots is None:
            if end.done():
                return
            roots = self.ends[end] = weakref.WeakSet()
            end.add_done_callback(self.ended)
        roots.add(root)

    def ended(self, end: asyncio.Task[Any]) -> None:
        """A task some waits for room depended on has ended: look at them again."""
        roots = self.ends.pop(end, None)
        if roots and self.loop_ref() is not None:
            for root in list(roots):
                if root in self.parked:
                    self.note(root)

    def relieve_one(self, stuck: list[asyncio.Task[Any]]) -> bool:
        """Give the stuck stream with the smallest high-water mark more room; whether one had.

        (Parks' rule: the smallest full buffer of the cycle grows; the others stay as they
        are, so memory grows only where the shape needs it.)
        """
        best: tuple[int, Callable[[], bool]] | None = None
        for task in stuck:
            wait = self.parked.get(task)
            if wait is None or wait[2] is None:
                continue
            on = wait[3]
            flow = getattr(on.core, "flow", None) if isinstance(on, Room) else None
            mark = getattr(flow, "high_water", None)
            size = mark if isinstance(mark, int) else 0
            if best is None or size < best[0]:
                best = (size, wait[2])
        return best is not None and best[1]()

    # -- every interval: the graph, then the loop as a whole --------------------------

    def check(self) -> None:
        self.armed = False
        if not self.parked:
            return
        if self.act_on(list(self.parked)):
            self.arm(soon=True)
            return
        if self.deadlocked():
            # A stream held only by garbage in a reference cycle keeps its producer waiting
            # until the collector frees it (which then schedules a wake-up): collect first.
            gc.collect()
            self.loop.call_soon(self.confirm)
        elif self.externals and self.deadlocked(outside_too=False):
            if self.swept:
                self.arm()
            else:  # only outside sources keep it off: a dropped stream's goes with the garbage
                self.swept = True
                gc.collect()
                self.loop.call_soon(self.confirm)
        else:
            self.swept = False
            self.arm()

    def confirm(self) -> None:
        if not (self.parked and self.deadlocked()):
            self.arm()
        elif not self.relieve():
            if self.sees_the_loop():
                self.report(list(self.parked), cycle=False)
            else:  # a timer it cannot see may still wake them: never a DeadlockError
                self.spent = True  # (nor a collection per check while they wait so)
                self.arm()

    def sees_the_loop(self) -> bool:
        """Whether the loop shows its ready callbacks and timers (asyncio's own loop does)."""
        return hasattr(self.loop, "_ready") and hasattr(self.loop, "_scheduled")

    def relieve(self) -> bool:
        """Give the streams that parked producers wait for room in more room; whether any."""
        relieved = False
        for _what, _waiter, relief, _on in list(self.parked.values()):
            if relief is not None and relief():
                relieved = True
        if relieved:  # and check again soon, should the program need more (each relief
            self.arm(soon=True)  # doubles: a diamond of N pieces takes log2(N / HWM) of them)
        return relieved

    def deadlocked(self, outside_too: bool = True) -> bool:
        """Whether every task waits on the library and nothing can wake one.

        Args:
            outside_too: Whether a counted outside source (see :func:`outside_source`)
                counts as something that can wake one.
        """
        if self.externals and outside_too:
            return False
        ready = getattr(self.loop, "_ready", None)
        scheduled = getattr(self.loop, "_scheduled", None)
        if ready is None or scheduled is None:
            return self.stuck()
        if len(ready) or any(not handle.cancelled() for handle in scheduled):
            return False
        return self.all_parked()

    def stuck(self) -> bool:
        """Whether every task stays parked in the same waits as at the last check.

        For a loop that hides its callbacks and timers: the same waits at two checks in a
        row mean that nothing woke any of the tasks in between.
        """
        if not self.all_parked():
            self.seen = None
            return False
        waits = {id(task): id(wait) for task, wait in self.parked.items()}
        if waits == self.seen:
            return not self.spent
        self.seen, self.spent = waits, False  # the first such check: the next one tells
        return False

    def all_parked(self) -> bool:
        """Whether every task of the loop is parked, or awaits only parked tasks."""
        tasks = asyncio.all_tasks(self.loop)
        blocked = {task for task in tasks if task in self.parked}
        waiting = tasks - blocked
        while waiting:  # a task awaiting only blocked tasks (await task, gather) is blocked
            more = {task for task in waiting if _awaits_only(task, blocked)}
            if not more:
                return False
            blocked |= more
            waiting -= more
        return True

    def report(self, tasks: list[asyncio.Task[Any]], cycle: bool) -> None:
        """Log the waits of ``tasks`` and fail each of them with a :class:`DeadlockError`."""
        waits = [
            f"- {task.get_name()} waits for {what if isinstance(what, str) else what()}"
            for task in tasks
            if (wait := self.parked.get(task)) is not None
            for what in (wait[0],)
        ]
        if cycle:
            intro = (
                "Deadlock: these tasks wait on MiniAgents' own streams for each other, in a "
                "cycle that nothing else can end, so they would wait forever:\n"
            )
        else:
            intro = (
                "Deadlock: every task of this event loop waits on MiniAgents' own streams, "
                "and nothing else (no timer, no I/O, no thread) can wake them, so they would "
                "wait forever:\n"
            )
        text = (
            intro
            + "\n".join(waits)
            + "\nThis is a wait cycle: typically an agent that waits for its own replies (or "
            "for a call that needs a concurrency slot it holds itself), or a consumer that "
            "waits for a stream it must read first. Break the cycle (read the streams in the "
            "order they are produced, raise max_concurrency, or await the replies outside "
            "the agent); if no code of yours waits in a cycle, please report it as a bug of "
            "MiniAgents with this text."
        )
        logger.error("%s", text)
        for task in tasks:
            wait = self.parked.get(task)
            waiter = None if wait is None else wait[1]
            if waiter is not None and not waiter.done():
                error = DeadlockError(text)
                mark_received(error)  # logged once above: not again as a lost error
                waiter.set_exception(error)


def _wake_if_room(room: Room) -> None:
    """Wake the producers waiting in ``room``'s stream if it has room now.

    (A wait the search finds live with no task to end it may be one whose room came while
    nothing rechecked the stream: a backstop, so that such a wait is never lost.)
    """
    flow = room.core.flow
    if flow is not None:
        flow.wake_if_room(room.core)


def _awaits_only(task: asyncio.Task[Any], blocked: set[asyncio.Task[Any]]) -> bool:
    """Whether ``task`` awaits a task of ``blocked``, or a gathering of such tasks only.

    It reads what asyncio's own tasks wait on (``_fut_waiter``, and a gathering's
    ``_children``): on other tasks it answers no, so nothing is reported.
    """
    awaited = getattr(task, "_fut_waiter", None)
    if awaited is None:
        return False
    if isinstance(awaited, asyncio.Task):
        return awaited in blocked
    children = getattr(awaited, "_children", None)
    return children is not None and all(child.done() or child in blocked for child in children)


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watch] = weakref.WeakKeyDictionary()


def watch_of(loop: asyncio.AbstractEventLoop) -> _Watch:
    """The watch of a loop, for a caller that waits often on that loop (see :func:`park_in`)."""
    watch = _watches.get(loop)
    if watch is None:
        watch = _watches[loop] = _Watch(loop)
    return watch


def park(
    what: What,
    waiter: asyncio.Future[Any] | None = None,
    relief: Callable[[], bool] | None = None,
    on: object = None,
) -> asyncio.Task[Any] | None:
    """Note that the current task waits on the library (for ``waiter``, if it is ours).

    Args:
        what: What it waits for, as the error names it.
        waiter: The future it awaits, if it is the library's (a deadlock fails it).
        relief: For a wait for room: gives the stream more room (and wakes its producers)
            when the wait is stuck; returns whether it could.
        on: What the wait waits on, for the wait-for graph (see
            :mod:`miniagents.promising._waitfor`): a core (its next piece), a
            :class:`~miniagents.promising._waitfor.Room`, or a
            :class:`~miniagents.promising._waitfor.Producer`; ``None`` if the library
            cannot tell who ends it.

    Returns:
        The task, to give to :func:`unpark` when the wait ends (``None`` outside a task).
    """
    task = asyncio.current_task()
    if task is not None:
        watch = watch_of(task.get_loop())
        former = watch.parked.get(task)
        if former is not None and former[2] is not None:
            watch.pressure -= 1  # (a wait for room that was never unparked)
        watch.parked[task] = (what, waiter, relief, on)
        if relief is not None:
            watch.pressure += 1
            watch.note(task)
        elif watch.pressure:
            watch.note(task)
        if not watch.armed:
            watch.arm()
    return task


def park_in(
    watch: _Watch, what: What, waiter: asyncio.Future[Any], on: object = None
) -> asyncio.Task[Any] | None:
    """:func:`park` in the running loop's ``watch`` (kept by the caller: no look-up per wait).

    The wait ends with :func:`unpark_in` (the same watch).
    """
    task = asyncio.current_task()
    if task is not None:
        watch.parked[task] = (what, waiter, None, on)
        if watch.pressure:
            watch.note(task)
        if not watch.armed:
            watch.arm()
    return task


def unpark_in(watch: _Watch, task: asyncio.Task[Any]) -> None:
    """Note that ``task``'s wait of :func:`park_in` in ``watch`` has ended (it has no relief)."""
    watch.parked.pop(task, None)


def unpark(task: asyncio.Task[Any] | None) -> None:
    """Note that ``task``'s wait (from :func:`park`) has ended."""
    if task is not None:
        watch = _watches.get(task.get_loop())
        if watch is not None:
            wait = watch.parked.pop(task, None)
            if wait is not None and wait[2] is not None:
                watch.pressure -= 1


def parked(loop: asyncio.AbstractEventLoop) -> dict[asyncio.Task[Any], str]:
    """The tasks of ``loop`` waiting on the library now, with what each waits for."""
    watch = _watches.get(loop)
    if watch is None:
        return {}
    return {
        task: what if isinstance(what, str) else what()
        for task, (what, _, _, _) in watch.parked.items()
    }


def set_check_interval(seconds: float | None) -> float | None:
    """Check every ``seconds`` of a loop's clock (``None``: never); return the former value.

    Raises:
        StreamLimitError: if ``seconds`` is not a positive finite number (or ``None``).
    """
    if seconds is not None:
        fix = "Pass e.g. 1.0, or None to turn the watch off."
        check_seconds(seconds, "The deadlock check interval", fix=fix, error=StreamLimitError)
    former, check_interval.seconds = check_interval.seconds, seconds
    return former


def outside_source(owner: object, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Count a source that may push from outside the loop's tasks, until it is released.

    While one is counted the watch never reports (a thread or a callback may still push).
    The count is released by calling the returned function, at the source's end, or when
    ``owner`` (what the source pushes into) is collected: a source that holds no reference
    to it cannot push into it any more, so a stream dropped before its end does not keep
    the watch off for the rest of the loop.
    """
    watch_of(loop).externals += 1
    release = weakref.finalize(owner, _release_outside_source, loop)
    release.atexit = False
    return release


def _release_outside_source(loop: asyncio.AbstractEventLoop) -> None:
    watch = _watches.get(loop)
    if watch is not None:
        watch.externals -= 1
