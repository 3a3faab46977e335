"""Ray's cancel of the caller's tasks, kept out of the way of Ray's own race with their ends.

Ray's owner of a task takes its reply in two steps: it forgets that the task runs, then,
after letting go of its lock, completes it. A ``ray.cancel`` that comes between the two
takes the task for one that never started and fails it, and the completion that follows
aborts the whole process ("Check failed: ... Tried to complete task that was not pending",
seen with Ray 2.60 on a loaded machine of 2 cores; the kind of ray-project/ray#54798). A
task that is ending anyway needs no cancel: :func:`cancel_running` gives each
``ENDING_GRACE`` seconds to end first, and cancels only those still running then::

    tasks:   a (ends 5 ms later)    b (an LLM call, runs on)
    wait:    |------ ENDING_GRACE ------|
    cancel:                             b

This narrows the race to a task whose reply comes in just as the grace ends; only Ray can
close it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["ENDING_GRACE", "cancel_running"]

ENDING_GRACE = 0.05
"""Seconds a task that is to be cancelled is given to end on its own first."""


def cancel_running(tasks: Sequence[tuple[Any, Any]], grace: float = ENDING_GRACE) -> None:
    """Cancel each task not ended within ``grace`` seconds (waited for once, for all).

    Args:
        tasks: each task's ``ray.cancel`` target (its ref, or its ``ObjectRefGenerator``)
            and the ref that is ready once it has ended (the same ref, or the generator's
            ``completed()``).
        grace: the seconds given to the tasks to end on their own.
    """
    import ray

    if not tasks:
        return
    ends = [end for _, end in tasks]
    ended, _ = ray.wait(ends, num_returns=len(ends), timeout=grace, fetch_local=False)
    for target, end in tasks:
        if end not in ended:
            ray.cancel(target)
