"""Ctrl+C ends a loop: while the loop runs, SIGINT cancels its task instead of the program."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class CtrlC:
    """Whether Ctrl+C was pressed while the loop ran."""

    pressed = False

    def ended(self) -> bool:
        """Whether a cancellation was the one Ctrl+C caused (the task is then uncancelled)."""
        if not self.pressed:
            return False
        task = asyncio.current_task()
        uncancel = getattr(task, "uncancel", None)  # Python 3.11+
        if uncancel is not None:
            uncancel()
        return True


@contextlib.contextmanager
def ctrl_c_ends_the_loop() -> Iterator[CtrlC]:
    """Within this block (in the main thread), Ctrl+C cancels the current task once.

    The previous SIGINT handler comes back at the end of the block, so a second Ctrl+C
    during the program's shutdown interrupts as usual. Elsewhere, or when SIGINT is
    ignored, nothing changes.
    """
    ctrl_c = CtrlC()
    task = asyncio.current_task()
    if task is None or threading.current_thread() is not threading.main_thread():
        yield ctrl_c
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.SIG_IGN, None):
        yield ctrl_c
        return
    loop = asyncio.get_running_loop()

    scheduled: list[asyncio.Handle] = []

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if not ctrl_c.pressed:
            ctrl_c.pressed = True
            scheduled.append(loop.call_soon_threadsafe(task.cancel))

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield ctrl_c
    finally:
        signal.signal(signal.SIGINT, previous)
        for handle in scheduled:  # a Ctrl+C as the loop ended must not cancel what follows
            handle.cancel()
