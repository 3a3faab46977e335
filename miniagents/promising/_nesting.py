"""Streams fed inside one another: how deep one thread goes before it queues the next step.

A piece or an end reaches a stream's observers synchronously, and an observer that forwards
into another stream (a flattening: an agent's replies that hold another agent's replies)
feeds that one in turn: through a chain of N streams nested in one another, a message goes
with about three Python frames per stream and an end with about six. An agent that hands
its conversation on to a new agent at every turn makes such a chain, one stream per turn;
past about 160 turns an end would exceed Python's recursion limit, and be lost. So past
:data:`NESTED` streams the next step (a forwarded piece, an end) is queued
(:func:`queue_step`), and the outermost step takes the queue, in order, before it returns
(:func:`run_queued`)::

    chain:     S1 -> S2 -> ... -> S16 -> S17 -> ... -> S200   (S2 follows S1, ...)
    S1 ends:   S2 .. S16 end nested in one another, S17's end is queued;
               the outermost then ends S17 .. S32 nested, queues S33's; ... S200
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["NESTED", "Nesting", "Step", "queue_step", "run_queued", "thread_nesting"]

NESTED = 16
"""How many streams one thread feeds inside one another before it queues the next step."""

Step = tuple[Callable[[Any, Any], None], Any, Any]
"""A step queued: ``step(core, argument)``, as three items (no closure made per step)."""


class Nesting(threading.local):
    """This thread's streams fed inside one another: how deep, and the steps queued."""

    depth = 0
    later: deque[Step] | None = None


thread_nesting = Nesting()
"""This thread's nesting (each thread has its own: a ``threading.local``)."""


def queue_step(
    state: Nesting, step: Callable[[Any, Any], None], core: object, argument: object
) -> None:
    """Queue ``step(core, argument)`` for the outermost step of this thread to run."""
    queue = state.later
    if queue is None:
        queue = state.later = deque()
    queue.append((step, core, argument))


def run_queued(state: Nesting, queue: deque[Step]) -> None:
    """Run the queued steps, in order, each chain nested at most as deep as the first."""
    state.depth = 1  # (the steps they queue go to this loop, not to a nested one)
    try:
        while queue:
            step, core, argument = queue.popleft()
            step(core, argument)
    finally:
        state.depth = 0
