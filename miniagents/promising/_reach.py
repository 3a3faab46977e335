"""Who can still consume a stream: its handles, and acting on the loop when the last one goes.

A *handle* is an object from which consumption can start (a promise, a view, an
observable). A flow counts its handles through weak references; when the last one is
garbage-collected (which may happen anywhere: in the middle of other code, in another
thread, in the garbage collector), the core is asked to reconsider on its own loop, soon,
instead of right there: it may then release everything past its window and stop pressing
its producer (see :mod:`miniagents.promising._flow`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from miniagents.promising._replay import ReplayCore

__all__ = ["handle_watcher", "schedule_reconsider"]


def schedule_reconsider(core: ReplayCore[Any]) -> None:
    """Have ``core`` reconsider its pressure and release soon, on its loop, from any thread."""
    loop = core.loop
    if loop is None:
        return  # never started: nobody waits, and the next release will see the change
    try:
        if threading.get_ident() == core.thread:
            loop.call_soon(core.reconsider)
        else:
            loop.call_soon_threadsafe(core.reconsider)
    except RuntimeError:  # the loop is closed: nobody waits any more
        pass


def handle_watcher(core_ref: weakref.ref[ReplayCore[Any]]) -> Callable[[weakref.ref[Any]], None]:
    """The callback for a gone handle (it holds the core weakly: no reference cycle)."""

    def gone(ref: weakref.ref[Any]) -> None:
        core = core_ref()
        if core is None or core.flow is None or core.flow.handles is None:
            return
        core.flow.handles.discard(ref)
        if not core.flow.handles:
            schedule_reconsider(core)  # it may run anywhere (a dropped reference, the GC)

    return gone
