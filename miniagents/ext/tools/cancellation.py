"""Stopping a sync tool cooperatively: the cancellation flag of the call running it.

A sync (plain ``def``) tool function runs in a worker thread (``asyncio.to_thread``). Python
cannot stop a thread from outside: when its call is cancelled (the model's reply given up,
the agent's caller cancelled, ``result.cancel()``), the call stops waiting for the thread
at once, but **the thread runs the function to its end**, its result thrown away. A
function that takes long can stop early by reading its call's flag::

    def crawl(url: str) -> list[str]:  # a tool: tools=[crawl]
        cancellation = tool_cancellation()  # this call's flag (never set outside a tool)
        pages = []
        for page in site_pages(url):
            if cancellation.cancelled:  # the call was cancelled: nobody reads the result
                break
            pages.append(fetch(page))
        return pages

    caller:      inquire ----------- cancel
    tool call:   [thread: crawl ......|..... sees the flag, returns]
    flag:        ---------------------set

``cancellation.wait(seconds)`` sleeps like ``time.sleep`` but wakes up (returning
``True``) as soon as the call is cancelled. Async tools need none of this: their task is
cancelled (``asyncio.CancelledError`` at their next ``await``).
"""

from __future__ import annotations

import threading
from contextvars import ContextVar

from miniagents.arguments import check_seconds

__all__ = ["ToolCancellation", "tool_cancellation"]


class ToolCancellation:
    """The cancellation flag of one call of a sync tool; set when the call is cancelled.

    Read it from the tool function (see :func:`tool_cancellation`); it is safe to read
    from any thread.
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        """A flag not set."""
        self._event = threading.Event()

    @property
    def cancelled(self) -> bool:
        """Whether the call was cancelled: the function should stop, its result is unread."""
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the call is cancelled, or ``timeout`` seconds passed.

        A ``time.sleep(timeout)`` that wakes up at the cancellation; ``None`` (or ``inf``)
        waits for the cancellation alone.

        Returns:
            Whether the call was cancelled.

        Raises:
            ArgumentError: if ``timeout`` is not a number of seconds of at least 0 (NaN, a
                negative number, a str), or ``None``.
        """
        if timeout is None:
            return self._event.wait()
        seconds = check_seconds(
            timeout,
            "timeout",
            zero=True,
            forever=True,
            owner="ToolCancellation.wait",
            fix="Pass e.g. wait(5), or wait() to wait for the cancellation alone.",
        )
        return self._event.wait(None if seconds > threading.TIMEOUT_MAX else seconds)

    def cancel(self) -> None:
        """Set the flag (the tool's runner does, when the call is cancelled)."""
        self._event.set()

    def __repr__(self) -> str:
        """Show whether it is set."""
        return f"<ToolCancellation cancelled={self.cancelled}>"


_CURRENT: ContextVar[ToolCancellation | None] = ContextVar(
    "miniagents_tool_cancellation", default=None
)


def tool_cancellation() -> ToolCancellation:
    """The cancellation flag of the sync tool call running in this thread.

    Outside a tool call (e.g. the function called directly, in a test) it is a flag that
    is never set, so the same function works both ways.
    """
    current = _CURRENT.get()
    return current if current is not None else ToolCancellation()
