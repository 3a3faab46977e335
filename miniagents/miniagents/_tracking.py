"""The streams a ``MiniAgents`` context answers for: it waits for them and reports lost errors.

The context tracks every agent's replies and every message an agent replied with that was
still streaming. On exit it first *unpaces* them (a reply sequence that nobody consumes
must not keep its agent waiting for room: see :mod:`miniagents.promising.limits`), then
waits for those that were started, and finally logs each error that reached no consumer
and no other stream.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from miniagents.messages.message_promise import MessagePromise
from miniagents.promising.errors import StreamCancelledError
from miniagents.promising.lowlevel import ReplayCore, core_of, report_lost_error, start_owned
from miniagents.promising.streamed_promise import StreamedPromise

__all__ = ["StreamTracker"]


class _Tracked:
    """The end callback of a tracked stream: tells the tracker that it ended."""

    __slots__ = ("core", "tracker")

    def __init__(self, core: ReplayCore[Any], tracker: StreamTracker) -> None:
        self.core = core
        self.tracker = tracker

    def __call__(self) -> None:
        self.tracker.ended(self.core)  # (it has ended: forgotten, or kept if it failed)


class StreamTracker:
    """The replay cores a context waits for on exit, with the labels that name them.

    A stream that ends well, or that was given up on (cancelled), is forgotten at once (its
    record goes with its last reader: a long-lived context must not keep every reply it
    ever streamed). One that failed otherwise is kept until its error is received or
    reported, as are those still streaming: each failure looks at the two failed streams
    kept longest and forgets those whose error was received meanwhile (the others go to the
    back), so a run of many failures, each received (a pipeline's failed items), keeps a
    few, not every one with its traceback and the locals of its frames.

    An agent's replies are told to the tracker by the agent's run, at its end
    (:meth:`track_replies`, then :meth:`ended`): no end callback is made per agent. Those
    whose agent never ran (its task cancelled before its first step) are not told: they
    end failed (cancelled), or not at all, and stay until a prune or the context's exit,
    as a failed stream whose error nobody received does. The replies of a lazy agent are
    tracked from its start (:meth:`track_lazy` until then).
    """

    __slots__ = (
        "_exiting",
        "_failed",
        "_failures",
        "_lazy",
        "_prune_at",
        "_streams",
        "adopt_hook",
        "tasks",
    )

    def __init__(self, owner: set[asyncio.Task[None]]) -> None:
        """Track streams for a context whose tasks are ``owner`` (see :meth:`adopt`)."""
        self.tasks = owner
        """The context's tasks (its agents' runs are started into it)."""
        self.adopt_hook: Callable[[MessagePromise], None] = self.adopt
        """:meth:`adopt`, bound once: the hook each agent's replies call (none made per agent)."""
        self._streams: dict[ReplayCore[Any], str] = {}  # each core with its label, in order
        # the replies of lazy agents not started yet, weakly (cancelled after an error)
        self._lazy: weakref.WeakSet[ReplayCore[Any]] | None = None
        self._failed = 0  # ended with an error: kept (pruned once they are many)
        self._failures: deque[ReplayCore[Any]] = deque()  # the failed ones, oldest first
        self._prune_at = 1024
        # what the exit does to a stream tracked once it has begun (unpace, or cancel it)
        self._exiting: Callable[[ReplayCore[Any]], None] | None = None

    def reset(self) -> None:
        """Begin a new use of the context afresh (it is entered again, after an exit).

        The exit unpaced every stream for good and left the lazy replies never started:
        a new use paces its streams again, and its error cancels only its own lazy replies.
        """
        self._exiting = None
        self._lazy = None
        self._prune_at = 1024

    def track(self, stream: StreamedPromise[Any, Any], label: str) -> None:
        """Wait for ``stream`` on exit, and log its error then if no consumer received it.

        Args:
            stream: A stream started by an agent of this context (its replies, a message).
            label: The alias of the agent whose replies ``stream`` is, or "" for a message
                an agent replied with (it names the stream if its error is logged).
        """
        core = core_of(stream)
        self.track_replies(core, label)
        core.when_done(_Tracked(core, self))

    def track_replies(self, core: ReplayCore[Any], label: str) -> None:
        """Track the replies of an agent (``label``: its alias); its run calls :meth:`ended`.

        Unlike :meth:`track`, nothing is called when the stream ends: the run of the agent
        tells the tracker at its end (the replies have ended then, or it registers the
        callback for when they do).
        """
        self._streams[core] = label
        if self._exiting is not None:  # the context is exiting: see unpace and cancel_from_now
            self._exiting(core)

    def ended(self, core: ReplayCore[Any]) -> None:
        """A tracked stream ended, or the agent whose replies it is has finished its run.

        The replies of a finished agent may still stream (what it replied is still being
        flattened into them): they are followed until their end then.
        """
        if not core.done:
            core.when_done(_Tracked(core, self))
        elif core.error is None or isinstance(core.error, StreamCancelledError):
            # (given up on: a cancellation is never reported, so nothing to keep it for)
            self._streams.pop(core, None)  # (gone already if the context ended)
        else:
            self._failed += 1  # kept: see _prune
            self._forget_received()
            self._failures.append(core)
            if self._failed > self._prune_at:
                self._prune()

    def _forget_received(self) -> None:
        """Forget the two failed streams kept longest if their error was received meanwhile.

        One whose error is still unreceived goes to the back: looked at again later, and
        kept for the exit's report if it never is. Two per failure, so the kept ones that
        were received go at least as fast as new failures come.
        """
        failures = self._failures
        for _ in range(min(2, len(failures))):
            core = failures.popleft()
            if core not in self._streams:
                continue  # (pruned, or the context ended)
            if core.error_lost:
                failures.append(core)
            else:
                del self._streams[core]
                self._failed -= 1

    def adopt(self, message: MessagePromise) -> None:
        """Start a message an agent replied with, and track it if it still streams.

        The task that pulls its tokens from their source, if starting it starts one, is
        one of the context's tasks: the context's exit waits for it even once the message
        was given up on (the source's cleanup, after its cancellation), and cancels it
        after an error.
        """
        core = core_of(message)
        if core.done:
            return  # a ready message: the common case
        start_owned(core.start, self.tasks)
        if not core.done:
            if core.on_abandoned is None:  # e.g. a re-streamed message: stop following
                core.on_abandoned = core.cancel
            self.track(message, "")

    def _prune(self) -> None:
        """Forget the failed streams whose error was received, keeping the rest."""
        self._streams = {
            core: label
            for core, label in self._streams.items()
            if not core.done
            or (core.error_lost and not isinstance(core.error, StreamCancelledError))
        }
        self._failures = deque(core for core in self._streams if core.done)
        self._failed = len(self._failures)
        self._prune_at = max(1024, 2 * self._failed)

    def unpace(self) -> None:
        """Let every tracked stream's producer run freely from now on (and every later one's)."""
        self._exiting = _unpace
        for core in list(self._streams):
            if not core.done:  # an ended stream has no producer to let go
                core.unpace()

    async def wait(self) -> bool:
        """Wait for the started streams that have not ended; whether there were any."""
        streaming = [core for core in self._streams if not core.done and core.started]
        if streaming:
            # (as a bystander: a stream whose consumers all give up meanwhile is given up on)
            await asyncio.gather(*(core.await_end() for core in streaming))
        return bool(streaming)

    def track_lazy(self, core: ReplayCore[Any]) -> None:
        """Know the replies of a lazy agent until it starts (:meth:`track_replies` then).

        Only weakly: replies dropped before anyone read them are freed, and their agent
        never runs; those still held are cancelled after an error (:meth:`cancel`).
        """
        if self._lazy is None:
            self._lazy = weakref.WeakSet()
        self._lazy.add(core)

    def cancel(self, reason: str) -> None:
        """Cancel every tracked stream (after an error in the context), lazy ones too.

        Args:
            reason: The text of the :class:`StreamCancelledError` their readers get.
        """
        lazy, self._lazy = self._lazy, None
        for core in [*self._streams, *(lazy or ())]:
            core.cancel(reason)

    def cancel_from_now(self, started: Callable[[], None] | None, reason: str = "") -> None:
        """Cancel each stream tracked from now on as it is tracked (the exit after an error).

        Args:
            started: Called after each such stream is cancelled: the exit wakes to cancel
                the work started with it (the run of the agent whose replies it is).
                ``None``: the exit has ended, track streams as usual again.
            reason: The text of the :class:`StreamCancelledError` their readers get.
        """
        if started is None:
            self._exiting = None
            return

        def cancel(core: ReplayCore[Any]) -> None:
            core.cancel(reason)
            started()

        self._exiting = cancel

    def report_lost_errors(self) -> None:
        """Log the errors that no consumer and no other stream received; forget everything."""
        for core, label in list(self._streams.items()):
            if core.error is not None and core.error_lost:
                what = f"The replies of the agent {label}" if label else "A reply message"
                report_lost_error(core.error, what)
        self._streams.clear()
        self._failures.clear()
        self._failed = 0


def _unpace(core: ReplayCore[Any]) -> None:
    """Let the producer of ``core`` run freely (a stream tracked while its context exits)."""
    core.unpace()
