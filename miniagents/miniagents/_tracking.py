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


class _Tracked:
    """A stream the context answers for; called when it ends (forgotten if it ended well)."""

    __slots__ = ("core", "label", "tracker")

    def __init__(self, core: ReplayCore[Any], label: str, tracker: StreamTracker) -> None:
        self.core = core
        self.label = label
        self.tracker = tracker

    def __call__(self) -> None:
        tracker = self.tracker
        if self.core.error is None:
            tracker._streams.pop(id(self.core), None)  # (gone already if the context ended)
            return
        tracker._failed += 1  # kept: see StreamTracker._prune
        if tracker._failed > tracker._prune_at:
            tracker._prune()


class StreamTracker:
    """The replay cores a context waits for on exit, with the labels that name them.

    A stream that ends well is forgotten at once (its record goes with its last reader:
    a long-lived context must not keep every reply it ever streamed). One that failed is
    kept until its error is received or reported, as are those still streaming.
    """

    __slots__ = ("_failed", "_prune_at", "_streams", "_unpaced")

    def __init__(self) -> None:
        self._streams: dict[int, _Tracked] = {}  # by the id of the core, in order
        self._failed = 0  # ended with an error: kept (pruned once they are many)
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
        tracked = self._streams[id(core)] = _Tracked(core, label, self)
        if self._unpaced:  # the context is exiting: nothing waits for room any more
            core.unpace()
        core.when_done(tracked)

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
        """Forget the failed streams whose error was received, keeping the rest."""
        self._streams = {
            key: tracked
            for key, tracked in self._streams.items()
            if not tracked.core.done or tracked.core.error_lost
        }
        self._failed = sum(1 for tracked in self._streams.values() if tracked.core.done)
        self._prune_at = max(1024, 2 * self._failed)

    def unpace(self) -> None:
        """Let every tracked stream's producer run freely from now on (and every later one's)."""
        self._unpaced = True
        for tracked in list(self._streams.values()):
            if not tracked.core.done:  # an ended stream has no producer to let go
                tracked.core.unpace()

    async def wait(self) -> bool:
        """Wait for the started streams that have not ended; whether there were any."""
        cores = [tracked.core for tracked in self._streams.values()]
        streaming = [core for core in cores if not core.done and core.started]
        if streaming:
            await asyncio.gather(*(core.await_done() for core in streaming))
        return bool(streaming)

    def cancel(self) -> None:
        """Cancel every tracked stream (after an error in the context)."""
        for tracked in list(self._streams.values()):
            tracked.core.cancel()

    def report_lost_errors(self) -> None:
        """Log the errors that no consumer and no other stream received; forget everything."""
        for tracked in list(self._streams.values()):
            core = tracked.core
            if core.error is not None and core.error_lost:
                label = tracked.label
                what = f"The replies of the agent {label}" if label else "A reply message"
                report_lost_error(core.error, what)
        self._streams.clear()
        self._failed = 0
