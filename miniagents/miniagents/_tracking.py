"""The streams a ``MiniAgents`` context answers for: it waits for them and reports lost errors.

The context tracks every agent's replies and every message an agent replied with that was
still streaming. On exit it first *unpaces* them (a reply sequence that nobody consumes
must not keep its agent waiting for room: see :mod:`miniagents.promising.limits`), then
waits for those that were started, and finally logs each error that reached no consumer
and no other stream.
"""

from __future__ import annotations

import asyncio
from typing import Any

from miniagents.messages.message_promise import MessagePromise
from miniagents.promising.lowlevel import ReplayCore, core_of, report_lost_error
from miniagents.promising.streamed_promise import StreamedPromise

__all__ = ["StreamTracker"]


class StreamTracker:
    """The replay cores a context waits for on exit, with the labels that name them."""

    __slots__ = ("_prune_at", "_streams", "_unpaced")

    def __init__(self) -> None:
        self._streams: list[tuple[ReplayCore[Any], str]] = []
        self._prune_at = 1024
        self._unpaced = False

    def track(self, stream: StreamedPromise[Any, Any], label: str) -> None:
        """Wait for ``stream`` on exit, and log its error then if no consumer received it.

        Args:
            stream: A stream started by an agent of this context (its replies, a message).
            label: The alias of the agent whose replies ``stream`` is, or "" for a message
                an agent replied with (it names the stream if its error is logged).
        """
        core = core_of(stream)
        self._streams.append((core, label))
        if self._unpaced:  # the context is exiting: nothing waits for room any more
            core.unpace()
        if len(self._streams) > self._prune_at:
            self._prune()

    def adopt(self, message: MessagePromise) -> None:
        """Start a message an agent replied with, and track it if it still streams."""
        core = core_of(message)
        if core.done:
            return  # a ready message: the common case
        core.start()
        if not core.done:
            if core.on_abandoned is None:  # e.g. a re-streamed message: stop following
                core.on_abandoned = core.cancel
            self.track(message, "")

    def _prune(self) -> None:
        """Forget the streams that ended well (or whose error was received), keeping the rest."""
        self._streams = [
            (core, label) for core, label in self._streams if not core.done or core.error_lost
        ]
        self._prune_at = max(1024, 2 * len(self._streams))

    def unpace(self) -> None:
        """Let every tracked stream's producer run freely from now on (and every later one's)."""
        self._unpaced = True
        for core, _label in self._streams:
            if not core.done:  # an ended stream has no producer to let go
                core.unpace()

    async def wait(self) -> bool:
        """Wait for the started streams that have not ended; whether there were any."""
        streaming = [core for core, _label in self._streams if not core.done and core.started]
        if streaming:
            await asyncio.gather(*(core.await_done() for core in streaming))
        return bool(streaming)

    def cancel(self) -> None:
        """Cancel every tracked stream (after an error in the context)."""
        for core, _label in self._streams:
            core.cancel()

    def report_lost_errors(self) -> None:
        """Log the errors that no consumer and no other stream received; forget everything."""
        for core, label in self._streams:
            if core.error is not None and core.error_lost:
                what = f"The replies of the agent {label}" if label else "A reply message"
                report_lost_error(core.error, what)
        self._streams.clear()
