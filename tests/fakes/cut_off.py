"""Run a program until it ends or a cut-off, without a timer the deadlock watch could see.

A hang of the library's streams is found by its deadlock watch only while the loop is idle
(no other timer pending): a test that bounded its wait with ``asyncio.timeout`` would keep
the watch from ever acting, and so make the hang it looks for. These cut-offs add nothing
to the loop:

- :func:`run_with_cut_off` runs a coroutine on a virtual clock (a
  :class:`~miniagents.testing.virtual_time.VirtualTimeLoop`) and stops it when the clock
  would pass the cut-off: a program that is still running then (its loop idle, jumping
  from timer to timer: the watch's checks, a far-off timer of the program's) hung. It is
  seen at once and deterministically: no wall-clock time passes while the loop is idle.
- :func:`within` bounds a wait in real time, on loops that hide their timers from the
  watch anyway (uvloop): there a timer changes nothing the watch sees. It runs the
  program in the calling task, not in one of its own (a task awaiting another through
  ``asyncio.wait`` is one the watch cannot see as parked: it would never act).

Both raise :class:`Hung`, an ``AssertionError`` (a test fails with it, never blocks).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from miniagents.testing.virtual_time import VirtualTimeLoop

__all__ = ["CLEAN_UP", "Hung", "run_with_cut_off", "within"]

T = TypeVar("T")

CLEAN_UP = 1_000.0
"""Seconds of the clock that cancelling a hung program's tasks may take, after its cut-off."""

REAL_LIMIT = 120.0
"""Real seconds after which a virtual-time run is stopped all the same: a loop idle with no
timer at all (no parked task either) waits for I/O for ever, and its clock never moves."""


class Hung(AssertionError):
    """A program still running at its cut-off (it would have run for ever)."""


def run_with_cut_off(main: Coroutine[Any, Any, T], cut_off: float) -> T:
    """Run ``main`` on a new virtual-time loop; its result, or :class:`Hung` at ``cut_off``.

    The clock starts at 0. When the loop is idle and its next timer lies past ``cut_off``
    (or it has none but the deadlock watch's, which it keeps re-arming), the clock would
    move past it: the loop stops instead, every task still running is cancelled (within
    :data:`CLEAN_UP` more seconds of the clock), and :class:`Hung` is raised. A loop idle
    with no timer at all (whose clock cannot move) is stopped so after :data:`REAL_LIMIT`
    real seconds.

    Raises:
        Hung: if ``main`` had not ended at ``cut_off`` seconds of the clock.
    """
    loop = VirtualTimeLoop()
    clock = loop.clock
    advance = clock.advance
    limit = [cut_off]  # the cut-off, then the end of the clean-up
    why: list[str] = []

    def stop(reason: str) -> None:
        if not why:
            why.append(reason)
        limit[0] = clock.now + CLEAN_UP
        loop.stop()  # (the loop leaves run_until_complete once this step has run)

    def advance_up_to_the_cut_off(seconds: float) -> None:
        if clock.now + seconds > limit[0]:
            stop(
                f"still running at {cut_off:g} s of the virtual clock (idle at {clock.now:g} "
                f"s, its next timer {seconds:g} s later)"
            )
        else:
            advance(seconds)

    clock.advance = advance_up_to_the_cut_off  # type: ignore[method-assign]  # (this loop's)
    watchdog = threading.Timer(
        REAL_LIMIT,
        loop.call_soon_threadsafe,
        (stop, f"still running after {REAL_LIMIT:g} real seconds (idle with no timer at all?)"),
    )
    watchdog.daemon = True
    asyncio.set_event_loop(loop)
    task = loop.create_task(main)
    watchdog.start()
    try:
        try:
            return loop.run_until_complete(task)
        except RuntimeError:  # "Event loop stopped before Future completed."
            if not why or task.done():
                raise
        left = asyncio.all_tasks(loop)
        for each in left:
            each.cancel()
        with contextlib.suppress(RuntimeError):  # (not even cancelled: left, loop closed)
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        raise Hung(why[0])
    finally:
        watchdog.cancel()
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


async def within(main: Coroutine[Any, Any, T], seconds: float) -> T:
    """``await main`` for at most ``seconds`` of the loop's clock; :class:`Hung` after it.

    For loops whose timers the deadlock watch does not see (uvloop): the wait is real time
    there, and its timer hides from the watch as any other. ``main`` runs in the calling
    task itself (a task of its own, awaited, would be a task the watch cannot see as
    parked, which keeps it from acting): at the cut-off that task is cancelled.

    Raises:
        Hung: if ``main`` had not ended after ``seconds``.
    """
    task = asyncio.current_task()
    assert task is not None, "within() runs in a task"
    cut: list[bool] = []

    def cut_off() -> None:
        cut.append(True)
        task.cancel()

    timer = asyncio.get_running_loop().call_later(seconds, cut_off)
    try:
        return await main
    except asyncio.CancelledError:
        if cut and task.cancelling() == 1:
            task.uncancel()
            raise Hung(f"still running after {seconds:g} s") from None
        raise
    finally:
        timer.cancel()
