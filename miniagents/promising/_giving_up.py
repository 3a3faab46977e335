"""The consumers of a stream, and giving up: a running stream nobody will read is stopped.

A stream is *consumed* while someone will still read it: an observer (the record's,
:mod:`miniagents.promising._replay`), a wait for its next piece (its
:class:`~miniagents.promising._waiting.Waits`), or one of its :class:`Audience`: a consumer
of its end only (:func:`watch_end`), an interaction that reads it as its input
(:meth:`Audience.hold_reader`), an ``async for`` reader between two pieces (:func:`add_reader`). A
consumer *gives up* when its wait is cancelled or its subscription disposed; when the last
one has, the stream is *abandoned* and its ``on_abandoned`` callback runs once
(:func:`check_abandoned`): an agent's replies cancel the agent, which gives up in turn what
it reads::

    reader A:  --a--b--(wait: cancelled)
    reader B:  --a--(wait: cancelled)
    stream:    --a--b--X     (its last consumer gave up: on_abandoned, the producer stops)

A stream held as a piece of other streams (a message of replies: its ``wanted_by``) is
not abandoned while one of those will still be read (:func:`_read_on`), nor while an
``async for`` reader of one of them is between two pieces (:func:`_read_between`): such a
reader, or an interaction that holds the stream, has it checked again when it goes, is
closed, or stops. (A core makes its :class:`Audience` at the first of them.)
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable
from typing import Any, Final, Protocol

from miniagents.promising._reporting import report_broken_observer
from miniagents.promising._shared import Shared, core_of
from miniagents.promising.errors import StreamCancelledError

__all__ = [
    "Audience",
    "Consumed",
    "Reader",
    "add_reader",
    "check_abandoned",
    "consumed",
    "move_readers",
    "recheck_closed",
    "recheck_kept",
    "watch_end",
]


class Reader(Protocol):
    """An ``async for`` reader of a stream, as the stream counts it (see :func:`add_reader`)."""

    quit: bool  # its last wait was cancelled (it gave up, unless it reads again), or it was
    # closed or read to the end
    waiting: bool  # it waits for the next piece now (a wait the stream counts by itself)
    index: int  # how many pieces it has taken
    # the streams it keeps from being given up on, each with the loop it was kept in: they
    # are checked again when it goes or is closed (see _watch)
    kept: list[Kept] | None

    def move(self, owner: object, core: Any) -> None:
        """Read ``core`` from now on, if it reads for ``owner`` (a view cancelled on its own)."""
        ...

    def watch_gone(self) -> None:
        """Have ``kept`` checked again when it goes (:func:`recheck_kept`, from a finalizer)."""
        ...


class _Waits(Protocol):
    """What giving up asks of a stream's waits (a :class:`~miniagents.promising._waiting.Waits`)."""

    def consuming(self) -> bool: ...

    def only_needed(self) -> bool: ...


class _Flow(Protocol):
    """What giving up reads of a stream's flow (a :class:`~miniagents.promising._flow.Flow`):
    its awaits of the whole under way."""

    @property
    def pins(self) -> int: ...


class Consumed(Protocol):
    """What giving up reads of a core (a :class:`~miniagents.promising._replay.ReplayCore`).

    A protocol, so that the core (which keeps its audience) and this module do not import
    each other.
    """

    done: bool
    error: BaseException | None
    loop: asyncio.AbstractEventLoop | None
    base: int
    pieces: list[Any]
    observers: tuple[tuple[Any, ...], ...]
    audience: Audience | None
    on_abandoned: Callable[[], None] | None
    reason: str | None

    def get_audience(self) -> Audience:
        """Its audience, made at the first of them (most streams never have one)."""
        ...

    @property
    def flow(self) -> _Flow | None: ...

    @property
    def waits(self) -> _Waits | None: ...

    @property
    def wanted_by(self) -> tuple[Consumed, ...]: ...

    handed_over: bool


class Audience:
    """Who will still read a stream between its waits: what a core's observers and waits
    do not show."""

    __slots__ = ("at_release", "end_watchers", "interactions", "readers")

    def __init__(self) -> None:
        self.end_watchers = 0  # consumers of its end only (see watch_end)
        self.interactions = 0  # interactions that read it as their input (see Audience.hold_reader)
        # its async for readers (weakly), which read on between two pieces (see add_reader)
        # (one, or a list of them: most streams have one reader, no list then)
        self.readers: weakref.ref[Reader] | list[weakref.ref[Reader]] | None = None
        # the streams to check again when the last interaction reading it stops (see
        # Audience.release_reader; an ended stream keeps its audience for them); they go with the
        # stream, as an interaction cancelled before its first step never releases its hold
        self.at_release: list[weakref.ref[Consumed]] | None = None

    def holds(self, core: Consumed, interactions: bool = True) -> bool:
        """Whether one of them will read ``core`` on (a reader between two pieces, say);
        without ``interactions``, one that is not an interaction."""
        return (
            self.end_watchers > 0
            or (interactions and self.interactions > 0)
            or (self.readers is not None and _read_between(self.readers, core))
        )

    def hold_reader(self) -> None:
        """Count a reader for as long as it runs: an interaction whose input the stream is.

        Such a reader is busy between its waits (doing the work a message asks for), yet
        will read on: while it runs the stream is :func:`consumed`, so another consumer
        giving up does not abandon it. :meth:`release_reader` ends the count.
        """
        self.interactions += 1

    def release_reader(self, core: Consumed, gave_up: bool) -> None:
        """End a count of :meth:`hold_reader` of ``core``, whose audience this is;
        ``gave_up``: the reader was given up on.

        A reader given up on (its agent cancelled) gives up on the stream in turn, if nobody
        else consumes it (see :func:`check_abandoned`); one that ended on its own leaves it
        running, as a stream once started runs to its end. (A core that has let go of its
        audience, an ended stream of its own pieces, is only checked: ``core.check_abandoned()``
        if ``gave_up``.)
        """
        self.interactions -= 1
        if gave_up:
            check_abandoned(core)
        blocked, self.at_release = self.at_release, None  # pieces of it that a consumer gave
        for ref in blocked or ():  # up while the reader ran
            piece = ref()
            if piece is core and self.interactions > 0:
                self.check_at_release(core)  # (check_abandoned_at_release: at the last)
            elif piece is not None:
                check_abandoned(piece)

    def check_abandoned_at_release(self, core: Consumed) -> None:
        """:func:`check_abandoned` of ``core``, whose audience this is, now, or, while
        interactions read it, when the last one stops.

        For a stream made for one interaction alone (an agent operator's own record of an
        outside observable), once that interaction is over: an interaction that ends on its
        own leaves the streams it read running (see :meth:`release_reader`), but nobody
        reads this one after it, unless someone else consumes it then.
        """
        if self.interactions > 0:
            self.check_at_release(core)
        else:
            check_abandoned(core)

    def check_at_release(self, blocked: Consumed) -> None:
        """Check ``blocked`` again (:func:`check_abandoned`) when the last interaction reading
        this audience's stream stops (see :meth:`release_reader`)."""
        cores = self.at_release
        if cores is None:
            cores = self.at_release = []
        if not any(ref() is blocked for ref in cores):
            cores.append(weakref.ref(blocked))


_READ_ON_LIMIT: Final = 64
"""How many streams :func:`_read_on` looks through before it takes them as read."""


# -- giving up ---------------------------------------------------------------------------


def check_abandoned(core: Consumed, reason: str | None = None) -> None:
    """Call ``on_abandoned`` if the last consumer of a running stream gave up.

    A consumer gives up when its wait is cancelled or its subscription disposed; the
    stream is abandoned when no consumer is left waiting or subscribed, here or on a
    stream that holds it as a piece (``wanted_by``: a message's sequence, whose consumers
    may read it later), or on a stream that one of those feeds. Only streams with an
    ``on_abandoned`` callback (those an agent produces) react to it. A stream left with
    only its producer's wait (``await_needed``) has its first holder checked instead, and
    the holders that pass it on (an agent that replied with the first one's replies): one
    that nobody reads is abandoned, and in turn what it passes on, then this stream.

    A stream of streams that has ended (a reply whose every message has entered) has
    nothing of its own to give up, but its pieces may still stream: when its last
    consumer gives up, each of them is checked in turn (those nobody else reads stop),
    as they are when a running one is abandoned.

    ``reason``: the consumer that gave up is a stream that follows this one and was
    cancelled for that reason (its canceller's): a stream given up on then keeps it, so
    that its cancellation tells it too (see ``ReplayCore.why_cancelled``).
    """
    if core.done:
        if core.flow is not None and core.pieces and not consumed(core):
            _check_pieces(core, reason)
        return
    if core.on_abandoned is None:
        return
    if consumed(core):
        waits, audience = core.waits, core.audience
        if (
            waits is not None
            and waits.only_needed()
            and not core.observers
            and (audience is None or not audience.holds(core, interactions=False))
        ):  # only the producer of its first holder waits for it: are its holders read?
            # the outermost first: one that passes the first on
            for holder in reversed(core.wanted_by):
                if not holder.done and not consumed(holder):  # (read by nobody: it goes,
                    check_abandoned(holder)  # and gives up what it passes on)
        return
    if core.wanted_by and _read_on(core, core.wanted_by):
        return
    if reason is not None and core.reason is None:
        core.reason = reason
    give_up(core)


def give_up(core: Consumed) -> None:
    """Call ``core``'s ``on_abandoned`` once, if it has one (its errors reported, not raised)."""
    on_abandoned, core.on_abandoned = core.on_abandoned, None
    if on_abandoned is None:
        return
    try:
        on_abandoned()
    except Exception as exc:  # giving up must not fail the consumer that gave up
        report_broken_observer(exc)


def consumed(core: Consumed) -> bool:
    """Whether a consumer is subscribed or waiting for the next piece, or holds it.

    (The holders are the module docstring's: :meth:`Audience.hold_reader`, :func:`add_reader`.) A
    consumer woken by a piece (or the end) counts until its task has run: its wait has
    ended, but it has not given up. A consumer whose wait is cancelled stops counting when
    its task runs the cancellation, so the outcome does not depend on the order in which
    the loop runs the woken consumers: each one cancelled gets ``CancelledError``, each
    other one goes on reading.
    """
    if core.observers:
        return True
    waits = core.waits
    if waits is not None and waits.consuming():
        return True
    audience = core.audience
    return audience is not None and audience.holds(core)


def _check_pieces(core: Consumed, reason: str | None) -> None:
    """Check the pieces of an ended stream that still stream (its last consumer gave up, a
    stream cancelled for ``reason``, if given: see :func:`check_abandoned`)."""
    for piece in list(core.pieces):
        if isinstance(piece, Shared):  # a promise of this library: its core, if running
            piece_core: Consumed = core_of(piece)
            if not piece_core.done:
                check_abandoned(piece_core, reason)


def _read_on(held: Consumed, cores: tuple[Consumed, ...]) -> bool:
    """Whether a consumer will read the pieces of ``cores`` (or of streams fed by them) again.

    Such a consumer awaits a stream's whole (it reads every piece once the stream ends),
    or observes it without forwarding it (an observer with no sink, which may read the
    pieces it was given); an observer that forwards into a sink (a flattening into an
    agent's replies) reads on only if someone reads that sink on. An ``async for`` reader
    waiting for a stream's next piece is not one: it is past the pieces given so far.
    (A stream without a flow cannot tell its kinds of waits apart: any wait counts.) Past
    :data:`_READ_ON_LIMIT` streams the answer is yes (nothing is given up on a guess).
    """
    todo = list(cores)
    seen: set[int] = set()
    while todo:
        core = todo.pop()
        if id(core) in seen:
            continue
        if len(seen) == _READ_ON_LIMIT:
            return True
        seen.add(id(core))
        if core.error is not None and isinstance(
            core.error, (StreamCancelledError, asyncio.CancelledError)
        ):
            continue  # cancelled (given up on): nobody reads on through it
        # (a failed one is read up to its error: a reader before the piece still reads it)
        flow, waits = core.flow, core.waits
        if (flow.pins > 0) if flow is not None else waits is not None and waits.consuming():
            return True  # (pins: awaits of the whole, see acollect)
        audience = core.audience
        if audience is not None:
            if audience.interactions > 0:  # an agent that reads it as its input (see
                audience.check_at_release(held)  # hold_reader): when it stops, ``held`` is
                return True  # checked again
            if audience.readers is not None and _read_between(
                audience.readers, held, _place_of(held, core) if core in cores else None
            ):
                return True  # an async for between two pieces, not past the one held
        for observer in core.observers:
            sink: Consumed | None = observer[4]
            if sink is None:
                return True
            todo.append(sink)
    return False


def _place_of(piece_core: Consumed, holder: Consumed) -> int | None:
    """The place in ``holder``'s record of the piece (a promise) whose core is ``piece_core``."""
    for offset, piece in enumerate(holder.pieces):
        if isinstance(piece, Shared) and core_of(piece) is piece_core:
            return holder.base + offset
    return None


# -- readers between two pieces ------------------------------------------------------------


def add_reader(core: Consumed, reader: Reader) -> None:
    """Count ``reader``, an ``async for`` iterator of ``core``'s stream, as a consumer.

    It counts while it is between two pieces: until its wait is cancelled (it gave up,
    unless it reads again), it is closed or read to the end, or it goes. A giving up it
    kept from taking effect is checked again when it goes or is closed (see
    :func:`_read_between`). Held weakly: a reader dropped unread is not kept.
    """
    audience = core.audience or core.get_audience()
    readers = audience.readers
    if readers is None:
        audience.readers = weakref.ref(reader)
    elif isinstance(readers, list):
        count = len(readers)
        if count >= 8 and count & (count - 1) == 0:  # at 8, 16, 32...: amortized O(1)
            readers[:] = [ref for ref in readers if ref() is not None]
        readers.append(weakref.ref(reader))
    else:
        audience.readers = [readers, weakref.ref(reader)]


def move_readers(core: Consumed, owner: object, copy: object) -> None:
    """Move the ``async for`` readers of ``core`` that read for ``owner`` to ``copy``.

    (A view cancelled on its own moves to a copy of the record: its readers follow it, the
    stream's other readers stay.)
    """
    readers = None if core.audience is None else core.audience.readers
    for ref in readers if isinstance(readers, list) else [readers] if readers else []:
        reader = ref()
        if reader is not None:
            reader.move(owner, copy)


def _read_between(
    readers: weakref.ref[Reader] | list[weakref.ref[Reader]],
    blocked: Consumed,
    before: int | None = None,
) -> bool:
    """Whether one of a stream's ``async for`` readers is between two pieces (it reads on).

    A reader that waits for a piece is not one (the wait counts by itself); neither is one
    that quit. With ``before`` (the place in the stream of a piece it holds, ``blocked``: a
    message in a reply), a reader that has moved past that piece is not one either, unless
    the piece is the last it took (it may be working on it), and one that waits for a piece
    at or before that place is one (woken, it reads on to it). A reader found keeps
    ``blocked`` from being given up on: ``blocked`` is checked again when the reader goes
    or is closed (a ``break`` out of its loop, or a cancellation of its task that unwinds
    the loop).
    """
    for ref in readers if isinstance(readers, list) else (readers,):
        reader = ref()
        if reader is None or reader.quit:
            continue
        if reader.waiting:  # (its wait counts by itself, for this stream)
            if before is None or reader.index > before:
                continue
            # it waits for a piece at or before the one held: it will read that one too
        elif before is not None and reader.index > before + 1:
            continue  # past the piece: it reads it no more through this stream
        _watch(reader, blocked)
        return True
    return False


Kept = tuple["weakref.ref[Consumed]", "weakref.ref[asyncio.AbstractEventLoop]"]
"""A stream a reader keeps from being given up on, with the loop it was kept in (both
weakly: a closed loop is not kept for it)."""


def _watch(reader: Reader, blocked: Consumed) -> None:
    """Check ``blocked`` again (see :func:`check_abandoned`) when ``reader`` goes or is closed."""
    loop = blocked.loop
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # (no loop to check it in: nothing can give it up)
            return
    kept = reader.kept
    if kept is None:
        kept = reader.kept = []
        reader.watch_gone()
    if not any(ref() is blocked for ref, _ in kept):
        kept.append((weakref.ref(blocked), weakref.ref(loop)))


def recheck_kept(kept: list[Kept]) -> None:
    """A reader that kept streams from being given up on went (or was closed): check them.

    (Also from a reader's finalizer, which may run anywhere: each check goes to the loop of
    its stream, with ``call_soon_threadsafe``.)
    """
    for core_ref, loop_ref in kept:
        core, loop = core_ref(), loop_ref()
        if core is None or loop is None or (core.done and core.flow is None):
            continue  # (an ended stream of streams is checked: see check_abandoned)
        with contextlib.suppress(RuntimeError):  # its loop is closed: nothing runs it any more
            loop.call_soon_threadsafe(check_abandoned, core)


def recheck_closed(reader: Reader) -> None:
    """``reader`` was closed: the streams it kept from being given up on are checked again."""
    kept, reader.kept = reader.kept, None
    if kept:
        recheck_kept(kept)


# -- consumers of the end only -------------------------------------------------------------


def watch_end(core: Consumed, count: int = 1, gave_up: bool = False) -> None:
    """Count a consumer of ``core``'s end only (``add_end_observer``), or uncount one
    (``count=-1``: told the end, or, ``gave_up``, disposed before it)."""
    (core.audience or core.get_audience()).end_watchers += count
    if gave_up:
        check_abandoned(core)


class EndWatch:
    """A consumer of a stream's end only (``ReplayCore.add_end_observer``).

    It counts as a consumer of the core (:func:`watch_end`) until it is told the end
    (:meth:`end`, which the core calls when it ends) or disposed before (:meth:`dispose`:
    it gave up).
    """

    __slots__ = ("core", "on_completed", "on_error")

    def __init__(
        self,
        core: Consumed,
        on_error: Callable[[BaseException], None],
        on_completed: Callable[[], None],
    ) -> None:
        self.core: Consumed | None = core
        self.on_error = on_error
        self.on_completed = on_completed
        watch_end(core)

    def end(self) -> None:
        """Tell the end, unless disposed before."""
        core, self.core = self.core, None
        if core is not None:
            watch_end(core, -1)
            tell_end(core, self.on_error, self.on_completed)

    def dispose(self) -> None:
        """Stop watching before the end: the consumer gave up."""
        core, self.core = self.core, None
        if core is not None:
            watch_end(core, -1, gave_up=True)


def tell_end(
    core: Consumed, on_error: Callable[[BaseException], None], on_completed: Callable[[], None]
) -> None:
    """Tell a consumer of its end only how ``core`` ended: its error is handed over to it."""
    error = core.error
    if error is None:
        on_completed()
    else:
        core.handed_over = True
        on_error(error)
