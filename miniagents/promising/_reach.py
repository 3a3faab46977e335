"""Who can still consume a stream: its handles, and acting on the loop when the last one goes.

A *handle* is an object from which consumption can start (a promise, a view, an
observable). A flow counts its handles: a message sequence and an observable count
themselves and uncount themselves in their finalizer (``__del__``: no extra object per
handle, which matters when thousands of agents are pending); any other promise is counted
through a weak reference (:func:`count_weakly`). When the last handle goes, which may
happen anywhere (in the middle of other code, in another thread, in the garbage
collector), the core is asked to reconsider on its own loop, soon, instead of right there:
it may then release everything past its window and stop pressing its producer (see
:mod:`miniagents.promising._flow`).
"""

from __future__ import annotations

import threading
import weakref
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from miniagents.promising._replay import ReplayCore

__all__ = ["count_weakly", "handle_gone", "schedule_reconsider"]


def schedule_reconsider(core: ReplayCore[Any]) -> None:
    """Have ``core`` reconsider its pressure and release soon, on its loop, from any thread."""
    loop, flow = core.loop, core.flow
    if loop is None or flow is None:
        return  # never started: nobody waits, and the next release will see the change
    try:
        if threading.get_ident() == core.thread:
            loop.call_soon(flow.reconsider, core)
        else:
            loop.call_soon_threadsafe(flow.reconsider, core)
    except RuntimeError:  # the loop is closed: nobody waits any more
        pass


def handle_gone(core: ReplayCore[Any] | None) -> None:
    """Uncount a handle of ``core`` (from a finalizer: it may run anywhere)."""
    flow = None if core is None else core.flow
    if flow is None or flow.handles is None:
        return
    flow.handles -= 1
    if flow.handles <= 0:
        assert core is not None
        schedule_reconsider(core)


def count_weakly(core: ReplayCore[Any], handle: object) -> None:
    """Count ``handle`` until it is garbage-collected (for handles without a finalizer)."""
    flow = core.flow
    assert flow is not None
    flow.handles = (flow.handles or 0) + 1
    if flow.weak_handles is None:
        flow.weak_handles = []
    flow.weak_handles.append(weakref.ref(handle, partial(_weak_gone, weakref.ref(core))))


def _weak_gone(core_ref: weakref.ref[ReplayCore[Any]], ref: weakref.ref[Any]) -> None:
    core = core_ref()
    if core is not None and core.flow is not None and core.flow.weak_handles is not None:
        core.flow.weak_handles.remove(ref)
    handle_gone(core)
