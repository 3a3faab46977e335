"""Flattening ``MessageType`` values, in order, into one stream of ``MessagePromise`` s.

A :class:`Flattener` takes the segments :func:`~miniagents.messages._collect.collect` makes
and passes ready messages on at once; each async part (a running message sequence, an
async iterable, an observable) is followed in its place, one after the other, so the order
is kept and a slow later part never delays an earlier one (the later ones already run if
they are replayable streams)::

    input:    --"a"--[B1 B2]--S------------|   (S: a sequence streaming x, y)
    S:                        ---x----y--|
    result:   --a----(B1B2)------x----y--|

**Backpressure.** A flattener feeding a core (its *sink*: a sequence, an agent's replies)
carries that core's pressure to what it follows: an async iterable is pulled only while the
sink has room, and a running sequence it subscribes to sees the sink as the core it
forwards into (see :mod:`miniagents.promising.limits`). The segments it holds but has not
passed on yet count as the sink's backlog, so an agent that replies with a new agent's
replies per input message waits at its next input pull once HWM of them are queued. The
backlog never holds back the part being followed (it is a *feeder* of the sink: see
:mod:`miniagents.promising._flow`): the backlog shrinks only as that part ends.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any, TypeVar

from reactivex import Observable, abc

from miniagents.messages._collect import (
    AsyncPart,
    Segment,
    collect,
    is_message,
)
from miniagents.messages.message_promise import MessagePromise, _ReadyMessagePromise
from miniagents.promising.errors import DeadlockError
from miniagents.promising.lowlevel import (
    DirectSource,
    Observer,
    ReplayCore,
    ReplayObservable,
    core_of,
    fed_by,
    follow_outside,
    paced_core_of,
    pieces_are,
    pull,
)
from miniagents.promising.streamed_promise import StreamedPromise

__all__ = ["FlattenSource", "Flattener", "LoopObservable"]

T_co = TypeVar("T_co", covariant=True)

Callbacks = tuple[
    Callable[[MessagePromise], None], Callable[[BaseException], None], Callable[[], None]
]
"""A flattening's ``emit``, ``on_inner_error`` and ``on_inner_completed``."""


class LoopObservable(Observable[T_co]):
    """An observable of the library's streams, which pushes only on their loop (a message
    observable): a flattening subscribes to it as to a stream of the library's, not as to an
    outside source, which may push from a thread and so keeps the deadlock watch from
    telling a stuck program (a diamond to relieve, a wait cycle) from one waiting for it.
    (A source outside the library that it reads, if any, is counted where it is followed.)
    """

    def follow(
        self,
        on_next: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
    ) -> tuple[abc.DisposableBase, object]:
        """Subscribe; return the subscription, and who makes the next item.

        (For the deadlock watch's wait-for graph: the stream it reads, or ``None`` if it
        cannot tell.)
        """
        return self.subscribe(on_next, on_error, on_completed), None


class FlattenSource(DirectSource[MessagePromise]):
    """Segments to flatten into a core when it starts (the async parts of a sequence)."""

    what = "message sequence"
    needs_loop = False  # an async part starts a task only if a loop runs; see Flattener

    def __init__(self, segments: list[Segment]) -> None:
        super().__init__()
        self.segments = segments

    def attach(self, core: ReplayCore[MessagePromise]) -> Callable[[], None]:
        flattener = Flattener(core, sink=core)
        core.producer = flattener  # (for the deadlock watch: the part it follows)
        flattener.push(self.segments)
        flattener.on_completed()
        return flattener.dispose


class _Inner:
    """What a nested flattening reports to the flattener it stands in: its end.

    Its promises go straight to the parent's ``emit`` (see ``Flattener.forward``).
    """

    __slots__ = ("parent",)

    def __init__(self, parent: Flattener) -> None:
        self.parent = parent

    def on_error(self, error: BaseException) -> None:
        self.parent.on_inner_error(error)

    def on_completed(self) -> None:
        self.parent.on_inner_completed()


class Flattener:
    """One flattening: of a sequence's async parts, or of what code appends to an appender.

    It is the observer of its outer source (``on_next`` / ``on_error`` / ``on_completed``)
    and passes message promises to its own observer (a core, or a parent flattening).
    """

    __slots__ = (
        "callbacks",
        "draining",
        "forward",
        "inner",
        "inner_active",
        "observer",
        "on_message",
        "on_ready",
        "outer",
        "outer_done",
        "pending",
        "queued",
        "sink",
        "source",
        "stopped",
        "to_core",
    )

    def __init__(
        self,
        observer: abc.ObserverBase[MessagePromise] | _Inner,
        sink: ReplayCore[Any] | None = None,
        *,
        nested: bool = False,
    ) -> None:
        self.observer = observer
        self.to_core = isinstance(observer, ReplayCore)  # fed on its loop's thread: accept()
        # where emit passes a promise otherwise: a nested flattening's straight to its
        # parent's emit (its _Inner reports only the end), any other observer's on_next
        self.forward: Callable[[MessagePromise], None] = (
            observer.parent.emit if isinstance(observer, _Inner) else observer.on_next
        )
        # who is told of each message promise passed on into a core (an appender's hooks:
        # see MessageSequenceAppender._hook): ``on_message`` of one still streaming,
        # ``on_ready`` of a ready message's
        self.on_message: Callable[[MessagePromise], None] | None = None
        self.on_ready: Callable[[MessagePromise], None] | None = None
        self.pending: deque[Segment] | None = None  # made when something has to wait
        self.outer: abc.DisposableBase | Callable[[], None] | None = None
        # what stops following the part followed now: a disposer, or the message sequence
        # followed directly with its observer (no disposer made per part)
        self.inner: (
            abc.DisposableBase | Callable[[], None] | tuple[ReplayCore[Any], Observer[Any]] | None
        ) = None
        # this flattening's callbacks as the observer of a message sequence it follows: made
        # at the first one, not per part (dropped when it stops: no cycle left behind)
        self.callbacks: Callbacks | None = None
        self.inner_active = False
        self.outer_done = False
        self.stopped = False
        self.draining = False
        self.sink = sink
        # what feeds its outer source, for the deadlock watch (see producers): a task, a
        # core, or None (an appender's code: the appender names its own task)
        self.source: object = None
        # how many segments were queued since the last drain (not held yet): the last ones
        # pending, as many as are left of them (see _hold_queued)
        self.queued = 0
        if sink is not None and sink.flow is not None and not nested:
            sink.flow.backlog = self  # its pending segments count in the sink's pressure

    def __len__(self) -> int:
        """The segments waiting to be passed on (the sink's backlog)."""
        return len(self.pending) if self.pending else 0

    def producers(self) -> tuple[object, ...]:
        """Who makes its next promise, for the deadlock watch's wait-for graph.

        The part it follows now (its next piece, or its end), else what feeds its outer
        source; ``None`` when it cannot tell (it is passing pending segments on).
        """
        if self.inner_active:
            inner = self.inner
            if isinstance(inner, tuple):
                return (inner[0],)  # a message sequence followed directly
            child = getattr(inner, "__self__", None)  # a nested flattening's dispose
            return (child if isinstance(child, Flattener) else None,)
        if self.pending or self.stopped:
            return (None,)
        return (self.source,)

    def _queue(self) -> deque[Segment]:
        """The pending segments, about to grow: the sink's producer must check its room."""
        sink = self.sink
        if sink is not None and sink.flow is not None and sink.flow.backlog is self:
            sink.flow.credit = 0
        if self.pending is None:
            self.pending = deque()
        return self.pending

    def emit(self, promise: MessagePromise) -> None:
        """Pass one message promise on; into a core, telling ``on_message`` first
        (``on_ready`` for a ready message's promise), if there is one."""
        if not self.to_core:
            self.forward(promise)
            return
        core: ReplayCore[MessagePromise] = self.observer  # type: ignore[assignment]
        if type(promise) is not _ReadyMessagePromise:
            if self.on_message is not None:
                self.on_message(promise)
            _held_by(promise, core)
        elif self.on_ready is not None:  # (a ready message's: complete, nothing to adopt)
            self.on_ready(promise)
        if core.observers:  # it goes further: the nesting is counted
            core.accept_forwarded(promise)
        else:
            core.accept(promise)

    def on_next(self, item: object) -> None:
        """Flatten one item of the outer source."""
        if self.stopped:
            return
        if isinstance(item, MessagePromise):  # the fast paths: no list, no collect()
            self.push_one(item)
            return
        if is_message(item):
            self.push_one(MessagePromise.of_message(item))  # type: ignore[arg-type]
            return
        queue = self._queue()
        before = len(queue)
        try:
            collect(item, queue)
        except Exception as error:  # bad input, or an iterable item that failed
            queue.append(error)
        self.queued += len(queue) - before
        self.drain()

    def push(self, segments: list[Segment]) -> None:
        """Pass on segments :func:`collect` made (the input is checked already).

        (Not one message promise alone: :meth:`push_one` takes that, without a queue.)
        """
        if self.stopped:
            return
        self._queue().extend(segments)
        self.queued += len(segments)
        self.drain()

    def push_one(self, promise: MessagePromise) -> None:
        """Pass on one message promise (after what waits before it)."""
        if self.stopped:
            return
        if self.pending or self.inner_active:
            self._queue().append(promise)
            self.queued += 1
            self.drain()
        else:
            self.emit(promise)

    def on_error(self, error: BaseException) -> None:
        """End the outer source with ``error``, after everything it produced before it."""
        self._queue().append(error)
        self.queued += 1
        self.outer_done = True
        self.drain()

    def on_completed(self) -> None:
        """End the outer source; the flattening ends once every segment is passed on."""
        self.outer_done = True
        self.drain()

    def on_inner_error(self, error: BaseException) -> None:
        self.inner_active = False
        self._queue().appendleft(error)
        self.drain()

    def on_inner_completed(self) -> None:
        self.inner_active = False
        self.inner = None
        self.drain()

    def drain(self) -> None:
        if self.draining:
            return  # an inner part ended synchronously; the running loop goes on
        self.draining = True
        try:
            while not self.stopped and not self.inner_active and self.pending:
                segment = self.pending.popleft()
                # each kind tested once, the most common first (a message, a stream)
                if isinstance(segment, MessagePromise):
                    self.emit(segment)
                    continue
                core: ReplayCore[Any] | None
                if isinstance(segment, StreamedPromise):
                    core = core_of(segment)
                elif isinstance(segment, BaseException):
                    self.dispose()
                    self.observer.on_error(segment)  # type: ignore[arg-type]
                    continue
                elif isinstance(segment, ReplayObservable):  # (an ABC: tested only when needed)
                    core = segment.core
                else:
                    core = None
                if core is not None and core is self.sink:  # a stream in its own pieces
                    self.dispose()
                    self.observer.on_error(_followed_itself())
                    continue
                # a stream fed by its sink (through others): only a sink followed can be
                sink = self.sink
                if core is not None and sink is not None and sink.observers and fed_by(core, sink):
                    self.dispose()
                    self.observer.on_error(_followed_in_a_cycle())
                    continue
                self.inner_active = True
                inner = self._follow(segment, core)
                if self.inner_active:
                    self.inner = inner
            if self.queued and not self.stopped:
                self._hold_queued()
            if not self.stopped and self.outer_done and not self.inner_active and not self.pending:
                self.stopped = True
                # nothing more to tell them (and no cycle with an appender)
                self.on_message = self.on_ready = None
                self.callbacks = None
                self.observer.on_completed()
        finally:
            self.draining = False
        sink = self.sink
        if sink is not None and sink.flow is not None and sink.flow.blocked:
            sink.flow.recheck(sink)  # its backlog shrank

    def _hold_queued(self) -> None:
        """Hold the streams among the segments queued since the last drain (see Flow.hold).

        A stream passed on is a consumer from its first piece: while it waits behind the
        part followed now, its stream keeps every piece for it (a reply passed on twice,
        ``[r, r]``, reads all of ``r`` twice, whatever the replay window), and the deadlock
        watch knows who will read it.

        (They are the last ``queued`` segments, or all of them if fewer are left: the
        segments leave from the front, the ones held first.)
        """
        pending = self.pending
        count, self.queued = self.queued, 0
        if not pending:
            return
        if count == 1:  # (the common case: one part replied behind the one followed)
            segments: Iterable[Segment] = (pending[-1],)
        else:
            size = len(pending)
            # (holding changes no segment: the queue itself is read, not copied)
            segments = pending if count >= size else islice(pending, size - count, size)
        for segment in segments:
            core = paced_core_of(segment)
            if core is not None:
                core.flow.hold(core, self)  # type: ignore[union-attr]

    def _follow(
        self,
        segment: Observable[object] | StreamedPromise[Any, Any] | AsyncPart,
        core: ReplayCore[Any] | None,
    ) -> Callable[[], None] | tuple[ReplayCore[Any], Observer[Any]] | None:
        """Start following an async part; return what stops following it (see ``inner``).

        ``core``: the part's replay core, if it is a stream or a stream's observable (the
        library's). A part that waited in the queue, held (see :meth:`_hold_queued`), needs
        no hold once followed: it is let go (if anyone holds the stream: letting go of a
        stream this flattening does not hold does nothing).
        """
        if core is not None and pieces_are(core, MessagePromise):
            # a message sequence: its pieces are flat already, take them directly
            callbacks = self.callbacks
            if callbacks is None:
                callbacks = self.callbacks = (
                    self.emit,
                    self.on_inner_error,
                    self.on_inner_completed,
                )
            observer = (callbacks[0], callbacks[1], callbacks[2], False, self.sink)
            observing = core.observe(observer)
            flow = core.flow
            if flow is not None and flow.queued:
                flow.let_go(core, self)
            return (core, observer) if observing else None
        child = Flattener(_Inner(self), sink=self.sink, nested=True)
        if isinstance(segment, StreamedPromise):
            segment = segment.as_observable()  # a stream of other pieces: flatten them
        if isinstance(segment, AsyncPart):
            child.outer = stop = pull(
                segment.source, child, "message sequence", self.sink, feeding=True
            )
            child.source = getattr(stop, "task", None)
        elif core is not None:  # the library's (fed on its loop: no hop, no outside source)
            child.source = core
            subscription = segment.subscribe(child.on_next, child.on_error, child.on_completed)
            child.outer = subscription.dispose
            flow = core.flow
            if flow is not None and flow.queued:
                flow.let_go(core, self)
        elif isinstance(segment, LoopObservable):  # the library's too (a message observable)
            subscription, child.source = segment.follow(
                child.on_next, child.on_error, child.on_completed
            )
            child.outer = subscription.dispose
        else:
            child.outer = follow_outside(segment, child)  # (it may push from another thread)
        return child.dispose

    def dispose(self) -> None:
        """Stop following: the part followed now, the outer source, and the parts queued.

        A queued part is given up on as the part followed is: a stream an agent produces
        that nobody else consumes is abandoned (its agent cancelled), so giving up on a
        reply of several agents' replies stops them all, not only the one being read.
        """
        self.stopped = True
        self.on_message = self.on_ready = None
        self.callbacks = None
        outer, inner, self.outer, self.inner = self.outer, self.inner, None, None
        for subscription in (outer, inner):
            if isinstance(subscription, tuple):  # a message sequence followed directly
                subscription[0].stop_observing(subscription[1])
            elif isinstance(subscription, abc.DisposableBase):
                subscription.dispose()
            elif subscription is not None:
                subscription()
        pending, self.pending = self.pending, None
        if pending:
            held = len(pending) - self.queued
            self.queued = 0
            for index in range(max(held, 0)):
                _let_go(pending[index], self)
            _give_up_on(pending, self.sink)


def _let_go(segment: Segment, holder: Flattener) -> None:
    """End ``holder``'s hold on a segment it held queued (see ``Flattener._hold_queued``)."""
    core = paced_core_of(segment)
    if core is not None:
        core.flow.let_go(core, holder)  # type: ignore[union-attr]


def _held_by(promise: MessagePromise, holder: ReplayCore[MessagePromise]) -> None:
    """Count ``holder`` among the sequences of a message still streaming (its ``wanted_by``).

    While one of them is read (an agent reading it as its input, say), the message is not
    given up on when another of its consumers gives up: the sequence's reader will read it.
    (An agent's replies adopt their messages so; any other sequence a message enters, e.g.
    an operator's or an agent's input made of several replies, is counted here: once the
    reply it came from has ended, nothing else links the message to that sequence.)
    """
    core = core_of(promise)
    if not core.done and holder not in core.wanted_by:
        core.wanted_by = (*core.wanted_by, holder)


def _give_up_on(segments: deque[Segment], sink: ReplayCore[Any] | None) -> None:
    """Give up on the streams among ``segments`` that nobody else consumes (see dispose).

    A stream this flattening passed on already, queued again (an agent replying with
    ``[reply, reply]``), is not given up on: its messages are in ``sink``, whose readers,
    present or to come, read them. Nor is a message still streaming that is in ``sink``
    already: one it passed on (a reply that had ended when it was passed on twice is
    queued as its messages, twice: the second copy's are the first's), which ``sink``
    holds (its ``wanted_by``), or one ``sink`` recorded at its start (the ready front of
    a sequence, ``[m, slow, m]``), which is among its pieces.
    """
    passed: set[int] | None = None  # the pieces in the sink (made only when needed)
    for segment in segments:
        if isinstance(segment, StreamedPromise):
            if type(segment) is _ReadyMessagePromise:  # (complete: nothing to stop)
                continue
            core: ReplayCore[Any] = core_of(segment)
            if sink is not None and sink in core.wanted_by:  # (a message in the sink)
                continue
        elif isinstance(segment, ReplayObservable):
            core = segment.core
        else:
            continue
        ended = core.done and core.pieces
        if sink is not None and (ended or isinstance(segment, MessagePromise)):
            if passed is None:
                passed = {id(piece) for piece in sink.pieces}
            if id(segment) in passed:  # (a message the sink recorded at its start)
                continue
            if ended and any(id(piece) in passed for piece in core.pieces):
                continue
        core.check_abandoned()


def _followed_itself() -> DeadlockError:
    """The error of a stream given itself as one of its parts: it would wait for its own end.

    (Followed, it replayed its own pieces into itself without end, on the loop's thread,
    so that no timeout could fire.)
    """
    return DeadlockError(
        "A message sequence was given itself as one of its parts (e.g. appender.append("
        "appender.sequence), or an iterable that yields the sequence it feeds): it would wait "
        "for its own end, and never end. Pass another sequence, or the messages it holds so "
        "far (a list of them)."
    )


def _followed_in_a_cycle() -> DeadlockError:
    """The error of a stream given a part that it feeds itself: each would wait for the other.

    (Followed, the two replayed each other's pieces into each other without end, on the
    loop's thread, so that no timeout could fire.)
    """
    return DeadlockError(
        "A message sequence was given, as one of its parts, a sequence that it feeds itself "
        "(e.g. a.append(b.sequence) and b.append(a.sequence), directly or through other "
        "sequences): each would wait for the other's end, and neither would end. Break the "
        "cycle: pass one of them the messages the other holds so far (a list of them)."
    )
