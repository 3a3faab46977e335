"""The flow state of a stream of many pieces: which pieces it keeps, and when its producer waits.

A :class:`Flow` belongs to one replay core (message sequences, agents' replies, plain
``StreamedPromise`` s; a message's tokens and a ``Promise`` have none: they keep everything
and never wait). It follows the rules of :mod:`miniagents.promising.limits`:

**Consumers.** A *cursor* is a live ``async for`` iterator, at the position of the next piece
it will read (the core holds it weakly: an iterator dropped by its loop is gone). A *pin* is
an ``await`` of the whole under way: it needs every piece and reads as fast as they come. An
*observer* (a subscriber) is given every piece at once; one that forwards into another core
(its *sink*: a flattener, a stream fed by this one) carries that core's pressure. A *handle*
is an object from which consumption can still start (a promise, a view, an observable); once
every handle is gone and no consumer is left, the stream is *unreachable*.

**Release.** Nothing is released before the stream has recorded more than ``window`` pieces
or while a pin is under way. After that, the pieces below the *low mark* go: the lowest
cursor position; with no cursor, the number of pieces some consumer was given (``delivered``);
when unreachable, all of them. Release runs when the record grows (in batches, so that each
piece costs O(1)), never inside a delivery.

**Pressure.** The *lag* is the number of pieces recorded but not read by the slowest cursor,
plus the segments a flattener holds for this core and has not recorded yet (``backlog``); with
no cursor and no other consumer, the pieces nobody was given. A producer may add a piece while
the lag is below the high-water mark and every sink has room. A producer that finds no room
waits on a future (:meth:`Flow.wait_room`) and marks the flow *blocked*; whatever may make
room (a cursor advancing or going, a consumer arriving, a sink making room, the stream becoming
unreachable or unpaced, the end) calls :meth:`Flow.recheck`, which wakes the waiters once the
lag is down to the low-water mark (half the high-water mark, so that producer and consumer
alternate in batches, not piece by piece) and then rechecks the cores that feed this one.

**Feeders.** A core that forwards into this one (its *sink*) is a *feeder*; a feeder asks
for room on its own measure (:meth:`Flow.has_room` with ``feeding``): the sink's lag without
its backlog. The backlog is made of the parts queued behind the one being followed, so it
shrinks only when the feeder ends: counting it would make the feeder wait for itself (a
fan-out wider than the high-water mark hung that way). It paces only the producer of the
queued parts. Feeders wait apart (``feed_waiters``) and are woken when the sink has room
on their measure, even while its own producer must still wait.

**Handles.** A message sequence and an observable count themselves as handles and uncount
themselves in their finalizer (no extra object per handle: thousands of agents may be
pending); any other promise is counted through a weak reference (:meth:`Flow.count_weakly`).
When the last handle goes, which may happen anywhere (in another thread, in the garbage
collector), the core reconsiders on its own loop, soon (:meth:`Flow.schedule_reconsider`).

**Never a deadlock by pressure alone.** An unreachable stream exerts none; ``MiniAgents``
unpaces its agents' replies when it exits (:meth:`Flow.unpace`); an ended stream wakes its
producers. A wait cycle made by code is the deadlock watch's (every wait here parks there).

**Between the flow and its core.** The flow owns all of this; it reads its core's record and
has the core drop what it releases (``drop_front``); the core asks it (``has_room``, ...),
but spends its credit itself, piece by piece (see ``ReplayCore.accept``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import weakref
from collections.abc import Sized
from functools import partial
from typing import Any, Protocol

from miniagents.promising._deadlock import park, unpark
from miniagents.promising._shared import one_more
from miniagents.promising._waitfor import Room
from miniagents.promising.errors import ReplayWindowError, StreamOverflowError
from miniagents.promising.limits import Overflow, StreamLimits, checked_overflow

__all__ = ["Flow", "FlowCore", "HasPosition"]

_NEVER = sys.maxsize
_BATCH = 64  # pieces recorded between two releases, at least


class FlowCore(Protocol):
    """What a flow reads of its core (a :class:`~miniagents.promising._replay.ReplayCore`).

    A protocol, so that the flow and the core it controls live in two modules without
    importing each other.
    """

    base: int
    sent: int
    done: bool
    flow: Flow | None
    loop: asyncio.AbstractEventLoop | None
    thread: int | None
    delivering: bool  # it is passing pieces to its observers now
    pieces: list[Any]
    observers: tuple[tuple[Any, ...], ...]

    def fail(self, error: BaseException) -> None: ...

    def drop_front(self, floor: int) -> None: ...

    def adopt_loop(self) -> None: ...

    async def await_done(self) -> None: ...

    def raise_if_failed(self) -> None: ...


class HasPosition(Protocol):
    """A cursor: the position of the next piece it will read, its bound if it has one, and
    the task that last waited in it (the deadlock watch's node for it)."""

    index: int
    until: int | None
    task: asyncio.Task[Any] | None


class Flow:
    """What one core keeps and how far its producer may run (see the module docstring)."""

    __slots__ = (
        "backlog",
        "blocked",
        "check_at",
        "credit",
        "cursors",
        "delivered",
        "feed_credit",
        "feed_waiters",
        "feeders",
        "floor",
        "handles",
        "high_water",
        "low_water",
        "on_demand",
        "overflow",
        "pins",
        "queued",
        "queued_in",
        "room",
        "room_at",
        "room_waiters",
        "skipped",
        "unpaced",
        "weak_handles",
        "what",
        "window",
    )

    def __init__(
        self, limits: StreamLimits, what: str, overflow: Overflow = "buffer", recorded: int = 0
    ) -> None:
        """Follow the limits of a stream named ``what`` that has ``recorded`` pieces so far."""
        self.window = window = limits.replay_window
        self.high_water = high_water = limits.high_water_mark
        self.low_water = (high_water // 2 or 1) if high_water else None
        self.check_at = window if window is not None else _NEVER
        # pieces a producer may add before checking for room again: a new stream's first
        # strict check would find the high-water mark less what is recorded (nothing read
        # or queued yet), and whatever takes room away before it resets the credit (a
        # cursor, a sink, a queued segment), so it starts with that credit (no check, no
        # calls; none left: the first piece checks)
        # (feed_credit: the same for a feeder, measured without the backlog)
        self.credit = self.feed_credit = high_water - recorded if high_water else 0
        self.what = what
        self.overflow: Overflow = overflow if overflow == "buffer" else checked_overflow(overflow)
        self.cursors: list[weakref.ref[HasPosition]] | None = None  # made at the first one
        self.delivered = 0
        # the pieces ``drop_oldest`` skipped while no cursor read the stream (a hot source
        # before its first reader): a reader that comes later skips them too (PieceIterator)
        self.skipped = 0
        self.floor = 0  # pieces released, for good (physically, the record may still hold some)
        self.pins = 0
        # flattenings that hold the stream queued, to read it from its first piece once the
        # part they follow now has ended (see hold): one, or a list of them, and how many
        self.queued = 0
        self.queued_in: object = None
        self.handles: int | None = None  # counted from the first one (see handle_gone)
        self.weak_handles: list[weakref.ref[Any]] | None = None
        self.unpaced = False
        self.blocked = False
        # a cursor's read that leaves it at or below this position cannot make room (see
        # _count_hopeless_reads): it skips the recheck
        self.room_at = 0
        self.room_waiters: list[asyncio.Future[None]] | None = None
        self.room: Room | None = None  # what a wait for room here waits on (see _waitfor)
        self.feed_waiters: list[asyncio.Future[None]] | None = None  # feeders (see has_room)
        # the cores that forward into this one: one, or a list of them (most sinks have
        # one feeder at a time, a flattening's part: no list then)
        self.feeders: FlowCore | list[FlowCore] | None = None
        self.backlog: Sized | None = None
        # a cursor reading on demand has followed this flow: only then do room checks ask
        # the cursors for their bounds (see _demanded); it stays set (a cheap, safe answer)
        self.on_demand = False

    # -- handles and cursors -----------------------------------------------------------

    def unreachable(self, core: FlowCore) -> bool:
        """Whether nobody can consume the stream any more."""
        return (
            self.handles == 0
            and not self.pins
            and not self.queued
            and not core.observers
            and (not self.cursors or self.lowest_cursor() is None)
        )

    def add_cursor(self, cursor: HasPosition) -> None:
        """Follow a new live iterator (it may be the slowest now: no more credit)."""
        if self.cursors is None:
            self.cursors = [weakref.ref(cursor)]
        else:
            self.cursors.append(weakref.ref(cursor))
        self.credit = self.feed_credit = 0
        if cursor.until is not None:
            self.on_demand = True

    def drop_cursor(self, core: FlowCore, cursor: HasPosition, gone: bool = False) -> None:
        """Forget an iterator that is closed or gone; what it read counts as delivered.

        ``gone``: it was garbage-collected, which may happen anywhere: the wake-up is
        scheduled on the loop instead of made here.
        """
        self.delivered = max(self.delivered, cursor.index)
        cursors = self.cursors or []
        for index, ref in enumerate(cursors):  # (a dead one goes at the next look)
            if ref() is cursor:
                del cursors[index]
                break
        if not gone:
            self.recheck(core)
        elif self.blocked or self.handles == 0:
            self.schedule_reconsider(core)

    def lowest_cursor(self) -> int | None:
        """The position of the slowest live iterator, if there is one."""
        low: int | None = None
        dead = False
        for ref in self.cursors or ():
            cursor = ref()
            if cursor is None:
                dead = True
            elif low is None or cursor.index < low:
                low = cursor.index
        if dead:
            self.cursors = [ref for ref in self.cursors or () if ref() is not None]
        return low

    def count_handle(self) -> None:
        """Count one more handle (it uncounts itself with :meth:`handle_gone`)."""
        self.handles = (self.handles or 0) + 1

    def handle_gone(self, core: FlowCore) -> None:
        """Uncount a handle of ``core`` (from a finalizer: it may run anywhere)."""
        if self.handles is None:
            return
        self.handles -= 1
        if self.handles <= 0:
            if core.done and (self.window is None or core.base + len(core.pieces) <= self.window):
                return  # ended within its window: nothing to release, no producer to wake
            if core.loop is None and not self.blocked:
                return  # never started by a consumer, holding no producer back: nobody waits
            self.schedule_reconsider(core)

    def count_weakly(self, core: FlowCore, handle: object) -> None:
        """Count ``handle`` until it is garbage-collected (for handles without a finalizer)."""
        self.count_handle()
        if self.weak_handles is None:
            self.weak_handles = []
        self.weak_handles.append(weakref.ref(handle, partial(_weak_gone, weakref.ref(core))))

    def schedule_reconsider(self, core: FlowCore) -> None:
        """Have ``core`` reconsider its pressure and release soon, on its loop, from any thread."""
        loop = core.loop
        if loop is None:
            # never started by a consumer of its own (a sink fed by a flattening): if it holds
            # back its producers upstream (blocked), they wait on the loop running here (a
            # finalizer on another thread has none: nobody there waits, and the next release
            # will see the change); if not, nobody waits
            if self.blocked:
                with contextlib.suppress(RuntimeError):  # (no running loop here)
                    asyncio.get_running_loop().call_soon(self.reconsider, core)
            return
        try:
            if threading.get_ident() == core.thread:
                loop.call_soon(self.reconsider, core)
            else:
                loop.call_soon_threadsafe(self.reconsider, core)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    def read_on_demand(self, core: FlowCore) -> None:
        """A cursor reads on demand now (it has a bound): room checks ask the cursors."""
        self.on_demand = True
        if self.blocked:
            self.recheck(core)

    def unpin(self, core: FlowCore | None = None) -> list[Any]:
        """End a read of every piece (see :meth:`settle`'s ``pin``); with the ``core`` of an
        ended stream, an ``await`` of its whole: its pieces, which count as given."""
        self.pins -= 1
        if core is None:
            return []
        self.delivered = core.base + len(core.pieces)
        return list(core.pieces)

    def piece_wanted(self) -> str:
        """What a wait for the next piece of the stream waits for, as the deadlock watch says it."""
        return f"a piece of {self.what}"

    # -- feeders: observers that forward into this stream ---------------------------------

    def add_feeder(self, feeder: FlowCore) -> None:
        """Count ``feeder`` among the streams that forward into this one (see :meth:`has_room`'s
        ``feeding``): its producer's credit ends, as this stream's room counts from now on."""
        feeders = self.feeders  # (none: the common case, without a call; W2 measured it)
        self.feeders = feeder if feeders is None else one_more(feeders, feeder)
        if feeder.flow is not None:
            feeder.flow.credit = feeder.flow.feed_credit = 0

    def drop_feeder(self, feeder: FlowCore) -> None:
        """``feeder`` forwards into this stream no more."""
        feeders = self.feeders
        if feeders is feeder:  # the common case (a flattener follows one part at a time)
            self.feeders = None
        elif isinstance(feeders, list):
            self.feeders = [core for core in feeders if core is not feeder] or None

    def ended(self, core: FlowCore) -> None:
        """The stream ended: it feeds no stream, and has no pressure any more (any producer
        waiting is woken, and its backlog, an agent's flattener, let go of at once)."""
        for observer in core.observers:
            sink = observer[4]
            if sink is not None and sink.flow is not None:
                sink.flow.drop_feeder(core)
        self.backlog = None
        if self.room_waiters or self.feed_waiters or self.feeders is not None:
            self.blocked = True  # wake any waiting producer: there is nothing to wait for
            self.recheck(core)

    def hold(self, core: FlowCore, holder: object) -> None:
        """Keep every piece for ``holder``, which will read the stream from its first piece.

        ``holder`` is a flattening that has the stream queued behind the part it follows
        now: it was passed on (``ctx.reply(r)``, ``[r, r]``), so it is a consumer from
        its first piece, though it subscribes only when its turn comes; or an interaction
        whose input it is, which its agent will read (see :meth:`let_go_reader`). For the
        deadlock watch, ``holder.producers()`` names who ends the hold. Until then the
        stream releases nothing (whatever its window), and its producer is paced as by a
        reader at the first piece (a diamond this makes is the deadlock watch's to relieve).
        :meth:`let_go` ends the hold.
        """
        self.queued += 1
        queued_in = self.queued_in  # (none: the common case, without a call; W2 measured it)
        self.queued_in = holder if queued_in is None else one_more(queued_in, holder)
        if core.sent:  # the lag may grow (from the first piece): no credit
            self.credit = self.feed_credit = 0

    def let_go(self, core: FlowCore, holder: object) -> None:
        """End a hold of :meth:`hold` (``holder`` follows the stream now, or gave it up).

        (A holder that holds nothing here, the stream it held having moved to a copy, is
        ignored.)
        """
        queued_in = self.queued_in
        if queued_in is holder:  # (the common case: one holder, no list to look in)
            self.queued_in = None
        elif isinstance(queued_in, list):
            if holder not in queued_in:
                return
            queued_in.remove(holder)
            if len(queued_in) == 1:
                self.queued_in = queued_in[0]
        else:
            return
        self.queued -= 1
        if self.blocked:
            self.recheck(core)

    async def acollect(self, core: FlowCore, gate: object) -> list[Any]:
        """Wait for the end of ``core``'s stream; return every piece or raise its error.

        An await of the whole needs every piece (pinned meanwhile: nothing is released) and
        reads them all at once. ``gate``: see ``ReplayCore.acollect``.

        Raises:
            ReplayWindowError: if the stream has released pieces (past its replay window).
        """
        if self.settle(core, pin=True):
            raise self.released_error(core)
        if gate is not None and self.queued:
            self.let_go_reader(core, gate)
        if self.blocked:
            self.recheck(core)
        try:
            await core.await_done()
            core.raise_if_failed()
        except BaseException:
            self.unpin()
            raise
        return self.unpin(core)

    def let_go_reader(self, core: FlowCore, gate: object) -> None:
        """End the hold of an interaction's input, by the gate of its reader (see ``hold``).

        An agent's input is held from the interaction's start, before the agent reads it:
        the holder names the agent's replies as its ``gate``, which the agent's own
        ``async for`` reader has too; once that reader follows the stream (or the
        interaction ends) the hold is not needed.
        """
        queued_in = self.queued_in
        for holder in queued_in if isinstance(queued_in, list) else (queued_in,):
            if getattr(holder, "gate", None) is gate:
                self.let_go(core, holder)
                return

    def holders(self, core: FlowCore) -> list[object] | None:
        """Who holds a producer of this stream back: for the deadlock watch's wait-for graph.

        While the stream's own lag keeps it at the low-water mark: the slowest ``async for``
        readers (their tasks: the task that last waited in one), the flattenings that hold
        it queued, and the flattening whose backlog counts here (the part it follows must
        end first); a reader on demand whose bound is reached; and each stream it forwards
        into that has no room itself (room there). ``None`` if it cannot tell (nobody reads
        it yet: whoever holds it may, later) or nothing holds it (it is woken soon).
        """
        if self.unpaced or core.done:
            return None
        found: list[object] = []
        limit = self.low_water
        if limit is not None and self._own_room(core, limit) <= 0:
            low = 0 if self.queued else self.lowest_cursor()
            if self.queued:
                queued_in = self.queued_in
                found.extend(queued_in if isinstance(queued_in, list) else (queued_in,))
            for ref in self.cursors or ():
                cursor = ref()
                if cursor is not None and cursor.index == low:
                    found.append(cursor.task)
            backlog = self.backlog
            if backlog is not None and len(backlog):
                found.append(backlog)
            if not found and not self.pins and not core.observers and self.handles != 0:
                return None  # nobody reads it yet: whoever holds it may, later
        if self.on_demand:
            bound = self._demanded()
            if bound is not None and bound <= core.base + len(core.pieces):
                for ref in self.cursors or ():
                    cursor = ref()
                    if cursor is not None and cursor.until is not None and cursor.until <= bound:
                        found.append(cursor.task)
        for observer in core.observers:
            sink = observer[4]
            if sink is not None and _holds_back(sink):
                sink_flow = sink.flow
                assert sink_flow is not None
                room = sink_flow.room
                if room is None:
                    room = sink_flow.room = Room(sink)
                found.append(room)
        return found or None

    def frozen_copy(self) -> Flow:
        """A flow for a finished copy of the record: the same window, no consumers."""
        copy = Flow(StreamLimits(self.window, self.high_water), self.what)
        copy.check_at = _NEVER
        copy.floor = self.floor
        return copy

    # -- release -------------------------------------------------------------------------

    def settle(self, core: FlowCore, pin: bool = False) -> int:
        """Release (logically) what no live consumer needs; return how many pieces are released.

        The result only grows. A consumer that needs pieces below it gets
        :meth:`released_error`; the pieces themselves go at the next :meth:`release`.
        ``pin``: the caller reads every piece from the first one (an ``await`` of the whole,
        or a new observer given the record): if none is released, nothing is from now on
        until it calls :meth:`unpin`.
        """
        count = core.base + len(core.pieces)
        if self.window is not None and count > self.window and not self.pins:
            if core.observers:
                self.delivered = max(self.delivered, core.sent)
            low = 0 if self.queued else self.lowest_cursor() if self.cursors else None
            if low is None:
                low = count if self.unreachable(core) else self.delivered
            self.floor = max(self.floor, min(low, core.sent))
        if pin and not self.floor:
            self.pins += 1
        return self.floor

    def release(self, core: FlowCore) -> int:
        """Release what no live consumer needs; return how many pieces from the first are
        released: the record drops them (in batches: O(1) per piece)."""
        floor = self.settle(core)
        kept = core.base + len(core.pieces) - (floor if floor > core.base else core.base)
        self.check_at = kept + max(_BATCH, self.high_water or 0)
        return floor

    def released_error(self, core: FlowCore) -> ReplayWindowError:
        """The error for a consumer that needs pieces this stream has released."""
        if self.floor <= self.skipped:  # (dropped by the overflow policy, before any reader)
            return ReplayWindowError(
                f"Cannot read {self.what} from its first piece: its overflow policy "
                f"'drop_oldest' dropped the first {self.floor} pieces, which its hot source "
                "emitted while nobody read it. Iterate it (async for) to read the pieces it "
                "kept, or start every consumer before the source emits."
            )
        return ReplayWindowError(
            f"Cannot read {self.what} from its first piece: past its replay window of "
            f"{self.window} pieces, a stream keeps only the pieces its live consumers still "
            f"need, and it has released the first {self.floor}. Start every consumer (iterate "
            "it, await it, pass it on) before the stream passes its window, or keep every "
            "piece with MiniAgents(replay_window=None) (or a larger replay_window)."
        )

    # -- pressure ------------------------------------------------------------------------

    def has_room(
        self, core: FlowCore, strict: bool = True, feeding: bool = False, demand: bool = True
    ) -> bool:
        """Whether a producer may add a piece (``strict``) or may be woken (low water).

        A live iterator that reads on demand (see :meth:`_demanded`) bounds the room too,
        unless ``demand`` is false (a hot source's overflow, which follows the high-water
        mark only).

        A strict check that finds room for several pieces gives the producer that much
        *credit*: the next checks pass at once until it is used up (each recorded piece
        uses one) or something takes room away (a new cursor, a queued segment, a sink).

        ``feeding`` asks for a *feeder*, on its own measure, without the backlog (see the
        module docstring's **Feeders**). A feeder's check gives *feed credit*
        (``feed_credit``), on the same terms but apart from the own producer's.
        """
        if self.unpaced or core.done:
            return True
        demanded = self._demanded() if demand and self.on_demand else None
        if demanded is not None:
            demanded -= core.base + len(core.pieces)
            if demanded <= 0:
                self.blocked = True
                self.room_at = 0
                return False
        limit = self.high_water if strict else self.low_water
        if limit is None:
            return True
        room = self._own_room(core, limit, feeding)
        if room <= 0:
            self.blocked = True
            self.room_at = 0
            return False
        for observer in core.observers:
            sink = observer[4]
            if sink is not None and sink.flow is not None:
                room = 0  # a sink's room changes by other means: no credit
                if not sink.flow.has_room(sink, strict, feeding=True):
                    self.blocked = True
                    self.room_at = 0
                    return False
        if strict:
            credit = room if demanded is None else min(room, demanded)
            if feeding:
                self.feed_credit = credit
            else:
                self.credit = credit
        return True

    def _demanded(self) -> int | None:
        """The fewest pieces in all that a live iterator reading on demand allows, if one does.

        An iterator reads *on demand* once it was given a bound (``until``: see
        ``lowlevel.read_on_demand``): the producer may not run past it, whatever the
        high-water mark.
        """
        bound: int | None = None
        for ref in self.cursors or ():
            cursor = ref()
            until = None if cursor is None else cursor.until
            if until is not None and (bound is None or until < bound):
                bound = until
        return bound

    def _own_room(self, core: FlowCore, limit: int, feeding: bool = False) -> int:
        """How many pieces may be added before the lag reaches ``limit``."""
        count = core.base + len(core.pieces)
        backlog = len(self.backlog) if self.backlog is not None and not feeding else 0
        low = 0 if self.queued else self.lowest_cursor() if self.cursors else None
        if low is not None:
            return limit - (count - low + backlog)
        if self.pins or core.observers:
            return limit  # they read every piece at once (forwarders: their sinks decide)
        if self.handles == 0:
            return limit  # unreachable: nobody will ever read it
        return limit - (count - self.delivered + backlog)

    async def wait_room(self, core: FlowCore, feeding: bool = False) -> None:
        """Wait until a producer (or, ``feeding``, a feeder) may add a piece to ``core``."""
        while not self.has_room(core, feeding=feeding):
            loop = asyncio.get_running_loop()
            if core.loop is None:  # no consumer started it: the loop to wake this wait on,
                core.adopt_loop()  # when its handles go
            waiter = loop.create_future()
            if feeding:
                if self.feed_waiters is None:
                    self.feed_waiters = [waiter]
                else:
                    self.feed_waiters.append(waiter)
            elif self.room_waiters is None:
                self.room_waiters = [waiter]
            else:
                self.room_waiters.append(waiter)
            room = self.room
            if room is None:
                room = self.room = Room(core)
            task = park(
                self._room_for if not feeding else self._feed_room_for,
                waiter,
                partial(self.relieve, core),
                room,
            )
            try:
                await waiter
            finally:
                unpark(task)
                for waiters in (self.room_waiters, self.feed_waiters):
                    if waiters is not None and waiter in waiters:
                        waiters.remove(waiter)

    def relieve(self, core: FlowCore) -> bool:
        """Double the high-water mark of this stream and of the streams it feeds, and wake.

        The deadlock watch calls it when every task waits and some wait for room here
        (an artificial deadlock of bounded buffers: see ``_deadlock``). Returns whether
        there was a limit to raise.
        """
        raised = False
        downstream = self._downstream(core)
        for flow, _owner in downstream:
            if flow.high_water is not None and not flow.unpaced:
                flow.high_water *= 2
                flow.low_water = flow.high_water // 2 or 1  # (as in __init__)
                flow.credit = flow.feed_credit = 0
                flow.blocked = True
                raised = True
                # wake them all: each asks for room again, on the new mark (a recheck asks
                # at the low-water mark, which is the old mark, and may wake nobody)
                _wake(flow.room_waiters)
                _wake(flow.feed_waiters)
                flow.room_waiters = flow.feed_waiters = None
        for flow, owner in downstream:
            flow.recheck(owner)
        return raised

    def _downstream(self, core: FlowCore) -> list[tuple[Flow, FlowCore]]:
        """This flow and the flows of the sinks it forwards into, at any depth."""
        found: list[tuple[Flow, FlowCore]] = [(self, core)]
        index = 0
        while index < len(found):
            _flow, owner = found[index]
            index += 1
            for observer in owner.observers:
                sink = observer[4]
                if (
                    sink is not None
                    and sink.flow is not None
                    and all(flow is not sink.flow for flow, _ in found)
                ):
                    found.append((sink.flow, sink))
        return found

    def _room_for(self) -> str:
        return f"room in {self.what} (its consumers are {self.high_water} pieces behind)"

    def _feed_room_for(self) -> str:
        return f"room in {self.what}, which it feeds (its consumers are behind)"

    def recheck(self, core: FlowCore) -> None:
        """Wake the waiting producers (here and upstream) if room has been made.

        The feeders are woken first, on their own measure (without the backlog): the
        backlog shrinks only as they go on.
        """
        if not self.blocked:
            return
        if self.has_room(core, strict=False):
            self.blocked = False
            _wake(self.room_waiters)
            self.room_waiters = None
        elif not (self.feeders is not None or self.feed_waiters) or not self.has_room(
            core, strict=False, feeding=True
        ):
            self._count_hopeless_reads(core)
            return
        _wake(self.feed_waiters)
        self.feed_waiters = None
        feeders = self.feeders
        for feeder in list(feeders) if isinstance(feeders, list) else (feeders,):
            if feeder is not None and feeder.flow is not None:
                feeder.flow.recheck(feeder)

    def _count_hopeless_reads(self, core: FlowCore) -> None:
        """After a failed recheck: up to which position reads by cursors cannot make room.

        The room at the low-water mark, measured without the backlog (the larger of the two
        measures), is ``low_water - (count - lowest)``: none while the slowest cursor is at
        ``count - low_water`` or below (``room_at``). A cursor that reads a piece and is
        still at or below it leaves the slowest there too, so its read cannot make room, and
        it skips the recheck (``PieceIterator.__anext__``); nothing else that can make room
        waits for a read (a cursor gone, a bound raised, a pin let go, the limit raised, the
        backlog shrinking below this measure): those recheck themselves. A new block
        (``has_room``) starts it at 0 (every read rechecks).
        """
        low = self.lowest_cursor()
        if low is not None and self.low_water is not None and not self.unpaced:
            self.room_at = core.base + len(core.pieces) - self.low_water

    def reconsider(self, core: FlowCore) -> None:
        """Release and wake after a consumer or handle went away (scheduled on the loop)."""
        if self.unreachable(core):
            if not core.delivering:
                floor = self.release(core)
                if floor > core.base:
                    core.drop_front(floor)
            self.blocked = True  # nobody will ever read it: let its producer run
        self.recheck(core)

    def unpace(self, core: FlowCore) -> None:
        """Stop exerting pressure for good (the context is exiting), waking every producer."""
        self.unpaced = True
        self.recheck(core)

    def wake_if_room(self, core: FlowCore) -> None:
        """Wake the producers waiting for room if there is room now (the deadlock watch's
        backstop for a wait whose room came while nothing rechecked the stream)."""
        if not core.done:
            self.blocked = True
            self.recheck(core)

    def overflows(self, core: FlowCore) -> bool:
        """Apply the overflow policy to a piece of a hot source that found no room.

        Returns whether to drop the piece (the policy ``error`` ends the stream, so the
        piece is dropped too).
        """
        if self.overflow == "drop_newest":
            return True
        if self.overflow == "drop_oldest":
            self.skip_oldest(core)
            return False
        core.fail(
            StreamOverflowError(
                f"A hot source outran the consumers of {self.what}: a piece came while "
                f"{self.high_water} pieces were waiting for the slowest one, and the overflow "
                "policy is 'error'. Consume it faster, raise the high_water_mark, or choose "
                "overflow='buffer', 'drop_oldest' or 'drop_newest'."
            )
        )
        return True

    def skip_oldest(self, core: FlowCore) -> None:
        """Make the slowest consumers skip the oldest piece they have not read."""
        low = self.lowest_cursor()
        if low is None:
            self.delivered = self.skipped = min(self.delivered + 1, core.base + len(core.pieces))
            if not self.pins and not self.queued and not core.delivering:
                # dropped for every consumer to come: a late reader starts after them, and
                # the record keeps only the newest pieces, window or not (in batches)
                self.floor = max(self.floor, self.skipped)
                if self.floor - core.base >= _BATCH:
                    core.drop_front(self.floor)
            return
        self.room_at = 0  # a cursor moves without reading: room may come sooner
        for ref in self.cursors or ():
            cursor = ref()
            if cursor is not None and cursor.index == low:
                cursor.index = low + 1


def _holds_back(sink: FlowCore) -> bool:
    """Whether a stream that others forward into holds them back (it, or one it forwards into,
    has no room at its low-water mark on a feeder's measure). It changes nothing."""
    todo = [sink]
    seen: set[int] = set()
    while todo:
        core = todo.pop()
        flow = core.flow
        if id(core) in seen or flow is None or flow.unpaced or core.done:
            continue
        seen.add(id(core))
        mark = flow.low_water
        if mark is not None and flow._own_room(core, mark, feeding=True) <= 0:
            return True
        todo.extend(observer[4] for observer in core.observers if observer[4] is not None)
    return False


def _wake(waiters: list[asyncio.Future[None]] | None) -> None:
    for waiter in waiters or ():
        if not waiter.done():
            waiter.set_result(None)


def _weak_gone(core_ref: weakref.ref[FlowCore], ref: weakref.ref[Any]) -> None:
    """A handle counted weakly went (see :meth:`Flow.count_weakly`)."""
    core = core_ref()
    flow = None if core is None else core.flow
    if core is not None and flow is not None:
        if flow.weak_handles is not None:
            flow.weak_handles.remove(ref)
        flow.handle_gone(core)
