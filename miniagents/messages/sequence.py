"""``MessageSequencePromise``, ``MessageTuple`` and ``MessageType``: streams of messages.

A sequence is made of **segments**, what :func:`~miniagents.messages._collect.collect` sorts
a ``MessageType`` into (ready messages, errors, async parts): the **ready** messages at the
front are recorded at once, the segments after them are **to flatten** (a
:class:`~miniagents.messages._flatten.Flattener` follows each async part in its place), and
a sequence made of one running sequence alone is a **view** of it (it shows that sequence's
core instead of a record of its own).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Generator, Iterable, Mapping
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    Literal,
    Never,
    NoReturn,
    Self,
    SupportsIndex,
    TypeAlias,
    Union,
    overload,
)

from pydantic import BaseModel
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from miniagents.arguments import a_class
from miniagents.messages._collect import AsyncPart, Segment, collect
from miniagents.messages._flatten import FlattenSource, LoopObservable
from miniagents.messages._resolve import messages_in_order
from miniagents.messages.errors import MessageTupleFieldError, SyncReadError
from miniagents.messages.message import Message
from miniagents.messages.message_promise import (
    MessagePromise,
    MessageT_co,
    _refuse_attribute,
    _refuse_sync_read,
)
from miniagents.promising.errors import (
    IncompleteStreamError,
    StreamArgumentError,
    StreamSourceError,
)
from miniagents.promising.limits import Overflow
from miniagents.promising.lowlevel import (
    ReplayCore,
    ReplayObservable,
    core_of,
    pieces_are,
)
from miniagents.promising.sentinels import NO_VALUE, Sentinel
from miniagents.promising.streamed_promise import StreamedPromise, StreamIterator

__all__ = [
    "MessageObservable",
    "MessageSequencePromise",
    "MessageTuple",
    "MessageType",
    "as_message_sequence",
    "cancelling",
]


class MessageTuple(tuple[MessageT_co, ...]):
    """The resolved messages of a sequence: a tuple that prints as their joined text.

    It can be awaited again (giving itself), so code written for either a sequence
    promise or its result works with both: ``print(await reply)`` and
    ``await reply.aresolve_messages()``. The type parameter is the class of the messages
    (``MessageTuple`` alone means ``MessageTuple[Message]``): the replies of
    ``openai_agent`` are typed so, and ``reply[0].model`` needs no cast.
    """

    __slots__ = ()

    def __str__(self) -> str:
        """The texts of the messages, separated by blank lines."""
        return "\n\n".join(str(message) for message in self)

    def __repr__(self) -> str:
        """Show the messages."""
        return f"MessageTuple({tuple.__repr__(self)})"

    if not TYPE_CHECKING:  # (for mypy a tuple of messages has only a tuple's attributes)

        def __getattr__(self, name: str) -> NoReturn:
            """Called only for an attribute it lacks: a message's field, read from the tuple.

            Raises:
                MessageTupleFieldError: for a public name (an ``AttributeError``, so that
                    ``hasattr`` still says no), telling to read it from one message.
                AttributeError: for a private or special one, as without this method.
            """
            _refuse_attribute(
                self,
                name,
                f"A MessageTuple has no attribute {name!r}: it is the tuple of the messages "
                f"(here {len(self)}), not one message. Read it from one of them: "
                f"`messages[0].{name}`; `str(messages)` gives their text, joined.",
                MessageTupleFieldError,
            )

    @overload
    def __getitem__(self, index: SupportsIndex, /) -> MessageT_co: ...

    @overload
    def __getitem__(self, index: slice, /) -> MessageTuple[MessageT_co]: ...

    def __getitem__(
        self, index: SupportsIndex | slice, /
    ) -> MessageT_co | MessageTuple[MessageT_co]:
        """A message, or, for a slice, the messages as a ``MessageTuple`` (joined by ``str``)."""
        if isinstance(index, slice):
            return MessageTuple(tuple.__getitem__(self, index))
        return tuple.__getitem__(self, index)

    def __contains__(self, item: object, /) -> bool:
        """Whether ``item`` is one of the messages; text (a ``str``) is refused.

        (``"yes" in messages`` compared the text with each message, never equal: ``False``.)

        Raises:
            SyncReadError: for a ``str`` (a ``TypeError``), naming ``in str(messages)``.
        """
        if isinstance(item, str):
            raise SyncReadError(
                f"`{item!r:.40} in messages` would compare the text with each message of the "
                "MessageTuple (never equal), not look in their text: write `... in "
                "str(messages)` for their joined text, or `... in messages[0].text`."
            )
        return tuple.__contains__(self, item)

    async def aresolve_messages(self) -> Self:
        """Return this tuple; the messages are resolved already."""
        return self

    def __await__(self) -> Generator[Any, None, Self]:
        """``await messages`` gives the same messages."""
        return self.aresolve_messages().__await__()


class MessageSequencePromise(StreamedPromise[MessagePromise, MessageTuple], Generic[MessageT_co]):
    """A stream of message promises that resolves to a :class:`MessageTuple`.

    The type parameter is the class of the messages: the replies of an agent typed
    ``MiniAgent[P, OpenAIMessage]`` are a ``MessageSequencePromise[OpenAIMessage]``. A
    sequence made of ``MessageType`` items is a ``MessageSequencePromise[Message]`` (what
    ``MessageSequencePromise`` alone means).

    ``async for`` gives each :class:`MessagePromise` as soon as it starts (its tokens
    may still be streaming); ``await`` gives all the messages, complete. A sequence of
    many messages keeps them within its replay window and pulls its async parts no further
    than the high-water mark ahead of its slowest consumer (see
    :mod:`miniagents.promising.limits`).

    Example:
        >>> messages = MessageSequencePromise(
        ...     prefill_pieces=[Message(text="Hello"), Message(text="World")]
        ... )
        >>> # `await messages` gives MessageTuple((Message(text="Hello"), Message(text="World")))
    """

    __slots__ = ()

    if TYPE_CHECKING:  # the same methods, typed by the messages' class (no run-time cost)

        def __aiter__(self) -> StreamIterator[MessagePromise[MessageT_co]]:
            """Each message promise, as soon as it starts."""

        def as_observable(self) -> Observable[MessagePromise[MessageT_co]]:
            """The message promises, as an observable."""

        async def aresolve(self) -> MessageTuple[MessageT_co]:
            """Wait for every message to be complete and return them all."""

        def __await__(self) -> Generator[Any, None, MessageTuple[MessageT_co]]:
            """``await sequence`` gives all the messages."""

    else:  # hidden from mypy, which so keeps refusing `for m in sequence` and `sequence[0]`

        def __getattr__(self, name: str) -> NoReturn:
            """Called only for an attribute it lacks: a message's field, read from the stream.

            Raises:
                UnresolvedMessageError: for a public name (an ``AttributeError``, so that
                    ``hasattr`` still says no), telling to await the sequence first.
                AttributeError: for a private or special one, as without this method.
            """
            _refuse_attribute(
                self,
                name,
                f"A {type(self).__name__} has no attribute {name!r}: it is the stream of the "
                "messages (which may still be coming), not one message. Await it, then read "
                f"it from one of them: `messages = await sequence`, then `messages[0].{name}` "
                "(`str(messages)` gives their text, joined).",
            )

        def __getitem__(self, index: object) -> NoReturn:
            """Refuse a synchronous read: ``for``, ``list()``, ``in`` or an index.

            Python's ``for`` falls back on ``__getitem__`` (an ``__iter__`` would make the
            sequence an ``Iterable`` to ``isinstance`` checks, and to mypy).

            Raises:
                SyncReadError: always, saying to use ``async for`` or ``await``.
            """
            _refuse_sync_read(
                f"A {type(self).__name__} is read asynchronously, as its messages stream",
                each="`async for message in sequence:` for each message as it starts",
                whole="`messages = await sequence` for all of them, complete (a MessageTuple, "
                "which `for`, `len()` and indexes take)",
            )

        def __len__(self) -> NoReturn:
            """Refuse ``len()``: the messages are counted once they have all come.

            Raises:
                SyncReadError: always (a ``TypeError``, as ``len()`` of an unsized object),
                    saying to count the awaited messages.
            """
            _refuse_sync_read(
                f"A {type(self).__name__} has no len(), as its messages may still be coming",
                each="`async for message in sequence:` to count them as they start",
                whole="`len(await sequence)` for the number of them all, complete",
            )

        def __bool__(self) -> bool:
            """Always true, as any object's: without it, ``bool()`` would call ``__len__``."""
            return True

    def __init__(
        self: MessageSequencePromise[Message],
        messages: MessageType | Literal[Sentinel.NO_VALUE] = NO_VALUE,
        *more: Never,
        prefill_pieces: MessageType | Literal[Sentinel.NO_VALUE] = NO_VALUE,
    ) -> None:
        """Create a sequence from any ``MessageType``, flattened in order.

        A sequence made of one running sequence (or its observable) alone is a *view* of
        it: it shares its record instead of copying it.

        Args:
            messages: The messages: strings, dicts, messages, promises, exceptions and
                (async) iterables or observables of these, nested to any depth.
            prefill_pieces: The same as ``messages`` (the name older code uses).
            *more: Nothing: there only to refuse more messages given one by one.

        Raises:
            MessageTypeError: if a synchronous part of the input is not a ``MessageType``
                (asynchronous parts are checked as they stream, and end the stream).
            StreamArgumentError: if both ``messages`` and ``prefill_pieces`` are given, or
                more than one argument positionally.
        """
        if more:
            raise StreamArgumentError(
                f"{type(self).__name__}() takes the messages as one argument, and got "
                f"{len(more) + 1} positionally: put them in a list, e.g. "
                f"{type(self).__name__}([{messages!r:.30}, {more[0]!r:.30}])."
            )
        if prefill_pieces is not NO_VALUE:
            if messages is not NO_VALUE:
                raise StreamArgumentError(
                    "Give the messages either positionally or as prefill_pieces=, not both."
                )
            messages = prefill_pieces
        segments: list[Segment] = []
        if messages is not NO_VALUE:
            collect(messages, segments)
        self._init_segments(segments, "buffer", cancel_when_abandoned=None)

    def _init_segments(
        self,
        segments: list[Segment],
        overflow: Overflow,
        cancel_when_abandoned: bool | None = False,
    ) -> None:
        """Set the sequence up over ``segments`` (a view, if they are one running sequence).

        ``cancel_when_abandoned``: a record of its own is cancelled once every consumer has
        given up (its source unsubscribed from, a stream it follows given up on in turn);
        ``None``: if it pulls an async iterable (closed then, as a reply's producer is).
        """
        count = 0
        size = len(segments)
        while count < size and isinstance(segments[count], MessagePromise):
            count += 1
        ready: list[MessagePromise] = segments[:count]  # type: ignore[assignment]
        to_flatten = segments[count:]
        core: ReplayCore[MessagePromise]
        if not to_flatten:  # every message ready: a finished core, made with three writes
            core = ReplayCore.finished(ready, MessagePromise)
        elif isinstance(to_flatten[0], BaseException):  # the stream ends at an error
            core = ReplayCore(prefill=ready, error=to_flatten[0], piece_type=MessagePromise)
        else:
            viewed = _viewed_core(to_flatten) if not ready else None
            if viewed is not None:
                self._setup(viewed, view=True)  # another sequence, unchanged: share its record
                return
            core = self._flattening(to_flatten, ready, overflow)
            if cancel_when_abandoned or (
                cancel_when_abandoned is None
                and any(isinstance(segment, AsyncPart) for segment in to_flatten)
            ):
                core.on_abandoned = core.cancel  # (not followed, nor pulled, for nobody)
        self._setup(core)

    @staticmethod
    def _flattening(
        to_flatten: list[Segment], ready: list[MessagePromise], overflow: Overflow
    ) -> ReplayCore[MessagePromise]:
        what = "this MessageSequencePromise"
        return ReplayCore(
            FlattenSource(to_flatten),
            ready,
            piece_type=MessagePromise,
            paced=what,
            overflow=overflow,
        )

    _counts_itself = True  # uncounted by __del__: no weak reference per sequence

    def __del__(self) -> None:
        try:
            core = self._core
        except AttributeError:  # never set up (no getattr call for the common case)
            return
        flow = core.flow  # (its flow counted it: see _counts_itself)
        if flow is not None:
            flow.handle_gone(core)

    @classmethod
    def from_observable(
        cls, source: Observable[MessageType], *, overflow: Overflow = "buffer"
    ) -> MessageSequencePromise[Message]:
        """Make a sequence of the items of an observable, each flattened in order.

        The observable of another sequence (``as_observable()``, ``as_message_observable()``,
        an agent's ``as_operator()`` output) gives a view of that sequence: its record is
        shared, and it is pulled with backpressure. A hot observable cannot be slowed: its
        items beyond the high-water mark are handled by ``overflow`` (see
        :data:`~miniagents.promising.limits.Overflow`). Any other observable is unsubscribed
        from once every consumer of the sequence has given up (a wait cancelled, a
        subscription disposed): the sequence then ends with ``StreamCancelledError``.

        Marble::

            source:    --m1--[m2 m3]--|
            sequence:  --m1--(m2m3)---|

        Raises:
            StreamSourceError: if ``source`` is not an ``Observable``.
            StreamLimitError: if ``overflow`` is not an overflow policy.
        """
        if not isinstance(source, Observable):
            raise StreamSourceError(
                f"MessageSequencePromise.from_observable needs an Observable, but got "
                f"{a_class(type(source))} ({source!r:.60}). Pass e.g. "
                "reactivex.of('a', 'b'); "
                "for anything else that holds messages, use MessageSequencePromise(messages)."
            )
        sequence: MessageSequencePromise[Message] = cls.__new__(cls)
        sequence._init_segments([source], overflow, cancel_when_abandoned=True)
        return sequence

    def as_message_observable(self) -> MessageObservable[MessageT_co]:
        """The complete messages, in order, each as soon as it (and those before it) is complete.

        Marble::

            sequence:  --p1--p2------|     (p1 completes at t1, p2 at t2 > t1)
            result:    ----m1---m2---|

        An agent given this observable as input reads this sequence itself (see
        :class:`MessageObservable`).
        """
        return MessageObservable(lambda: self)  # (shared: it runs on for its other readers)

    async def _resolve_whole(self, pieces: tuple[MessagePromise, ...]) -> MessageTuple:
        return MessageTuple([await promise for promise in pieces])

    async def aresolve_messages(self) -> MessageTuple[MessageT_co]:
        """Wait for every message to be complete and return them all."""
        return await self.aresolve()

    def __str__(self) -> str:
        """The joined text of the messages, once every one of them is complete.

        Raises:
            IncompleteStreamError: if the sequence or one of its messages is still streaming.
            ReplayWindowError: if the sequence has released messages (past its window).
        """
        core = self._core
        if not core.done:
            raise IncompleteStreamError(
                "str() was called on a MessageSequencePromise that is still streaming. "
                "Await it first: `messages = await sequence`, then use str(messages)."
            )
        if core.released() and core.flow is not None:
            raise core.flow.released_error(core)
        core.raise_if_failed()
        return "\n\n".join(str(promise) for promise in core.pieces)


class MessageObservable(LoopObservable[MessageT_co]):
    """The complete messages of a message sequence, as an observable that agents read directly.

    Subscribing gives each message, in order, as soon as it (and those before it) is
    complete. An agent given it as input (``agent.inquire(observable)``, or
    ``observable.pipe(agent.as_operator())``) and ``MessageSequencePromise.from_observable``
    read the sequence itself instead: its message promises as they start, pulled with
    backpressure, with no record of their own. ``as_message_observable()`` and
    ``MiniAgent.as_operator()`` make these.
    """

    def __init__(
        self,
        open_sequence: Callable[[], MessageSequencePromise[MessageT_co]],
        *,
        own: bool = False,
    ) -> None:
        """Wrap ``open_sequence``, called once per subscription (or per reading agent).

        Args:
            open_sequence: What opens the sequence read.
            own: Whether each call opens a sequence of its own, which nobody else reads
                (an operator's, an agent's new interaction): disposing a subscription
                then cancels its sequence (and so unsubscribes from the source, or gives
                up on the interaction), as a reactive operator does. Otherwise the
                sequence is shared and runs on.
        """
        super().__init__()
        self._open_sequence = open_sequence
        self._own = own

    @property
    def own(self) -> bool:
        """Whether each subscription (or reading agent) opens a sequence of its own."""
        return self._own

    def open(self) -> MessageSequencePromise[MessageT_co]:
        """The sequence behind this observable (for an agent's operator: a new interaction).

        A sequence of its own (``own``) is its reader's alone: once that reader gives up on
        it (an agent that reads it as its input, given up on), it is cancelled, and gives up
        in turn what it follows, as a subscription's disposal does.
        """
        sequence = self._open_sequence()
        if self._own:
            core = core_of(sequence)
            if not core.done and core.on_abandoned is None:  # (an interaction's has its own)
                core.on_abandoned = core.cancel
        return sequence

    def _subscribe_core(
        self, observer: abc.ObserverBase[MessageT_co], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        sequence = self.open()
        messages = sequence.as_observable().pipe(messages_in_order)
        # the messages of a MessageSequencePromise[MessageT_co] are MessageT_co instances
        subscription = messages.subscribe(observer, scheduler=scheduler)  # type: ignore[arg-type]
        return cancelling(subscription, sequence) if self._own else subscription

    def follow(
        self,
        on_next: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
    ) -> tuple[abc.DisposableBase, object]:
        """Subscribe, as a flattening does; return the subscription and the sequence's core.

        (The core is what makes the next message, for the deadlock watch.)
        """
        sequence = self.open()
        messages = sequence.as_observable().pipe(messages_in_order)
        subscription = messages.subscribe(on_next, on_error, on_completed)
        return (cancelling(subscription, sequence) if self._own else subscription), core_of(
            sequence
        )


def cancelling(subscription: abc.DisposableBase, stream: StreamedPromise[Any, Any]) -> Disposable:
    """``subscription``, whose disposal also cancels ``stream`` (one opened for it alone).

    The stream is cancelled after the subscription is disposed, so its observer is told
    nothing more; a stream that has ended is left as it is.
    """

    def dispose() -> None:
        subscription.dispose()
        stream.cancel()

    return Disposable(dispose)


def _viewed_core(segments: list[Segment]) -> ReplayCore[MessagePromise] | None:
    """The core of the one running sequence that ``segments`` are, if they are just that.

    A sequence made of it alone is a *view* of it (it shows that core).
    """
    if len(segments) != 1:
        return None
    segment = segments[0]
    if isinstance(segment, MessageObservable):
        segment = segment.open()
    core = core_of(segment) if isinstance(segment, StreamedPromise) else None
    if isinstance(segment, ReplayObservable):
        core = segment.core
    if core is None or not pieces_are(core, MessagePromise):
        return None
    return core


def as_message_sequence(messages: MessageType) -> MessageSequencePromise:
    """``messages`` as a sequence: a ``MessageSequencePromise`` as it is, anything else flattened.

    Raises:
        MessageTypeError: if a synchronous part of ``messages`` is not a ``MessageType``.
    """
    if isinstance(messages, MessageSequencePromise):
        return messages
    return MessageSequencePromise(messages)


MessageType: TypeAlias = Union[  # noqa: UP007 - forward references need Union (a string | fails)
    str,
    Mapping[str, object],
    BaseModel,
    Message,
    MessagePromise,
    MessageSequencePromise,
    BaseException,
    Iterable["MessageType"],
    AsyncIterable["MessageType"],
    Observable["MessageType"],
]
"""Everything that may stand where messages are expected, nested to any depth."""
