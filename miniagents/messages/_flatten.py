"""Flattening ``MessageType`` values, in order, into one stream of ``MessagePromise`` s.

Synchronous parts (strings, dicts, messages, lists, finished streams) are flattened at
once by :func:`collect`, so bad input fails where it is given. Asynchronous parts (async
iterables, observables, streams still running) are flattened by the
:func:`flatten_messages` operator, which keeps the order and streams each part as soon as
it can: a slow later part never delays an earlier one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterable, Callable, Iterable, Mapping, MutableSequence
from typing import TYPE_CHECKING, Any, Union

from pydantic import BaseModel
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from miniagents.messages.errors import MessageTypeError
from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise
from miniagents.promising._replay_observable import ReplayObservable
from miniagents.promising._sources import from_async_iterable
from miniagents.promising.streamed_promise import StreamedPromise

if TYPE_CHECKING:
    from miniagents.messages.sequence import MessageType

__all__ = ["MESSAGES", "Flattener", "Segment", "collect", "flatten_messages"]

MESSAGES = object()
"""Marks the replay cores of message sequences: their pieces are flat already."""

Segment = Union[MessagePromise, BaseException, "Observable[MessageType]"]
"""A piece of flattened input: a ready message, an error, or an async part still to flatten."""

_ACCEPTED = (
    "str, dict, Message, a pydantic model, MessagePromise, MessageSequencePromise, "
    "an exception, or an (async) iterable or Observable of these"
)


def collect(item: object, out: MutableSequence[Segment]) -> None:
    """Append the segments of ``item`` to ``out``, flattening synchronous parts at once.

    Raises:
        MessageTypeError: if ``item`` (or something nested in a synchronous part) is not
            a ``MessageType``.
    """
    if isinstance(item, MessagePromise):
        out.append(item)
    elif isinstance(item, Message):
        out.append(MessagePromise(prefill_message=item))
    elif isinstance(item, str):
        out.append(MessagePromise.of_text(item))
    elif isinstance(item, Mapping):
        out.append(MessagePromise(prefill_message=_message_from_mapping(item)))
    elif isinstance(item, BaseModel):
        out.append(MessagePromise(prefill_message=Message.model_validate(dict(item))))
    elif isinstance(item, BaseException):
        out.append(item)
    elif isinstance(item, StreamedPromise):
        _collect_stream(item, out)
    elif isinstance(item, Observable):
        out.append(item)
    elif isinstance(item, AsyncIterable):
        out.append(from_async_iterable(item, "message sequence"))
    elif isinstance(item, (bytes, bytearray)):
        raise MessageTypeError(
            f"Got {type(item).__name__} where messages were expected; "
            "decode it to str first, e.g. data.decode('utf-8')."
        )
    elif isinstance(item, Iterable):
        for sub_item in item:
            collect(sub_item, out)
    else:
        raise MessageTypeError(
            f"Got a value of type {type(item).__name__} ({item!r:.80}) "
            "where messages were expected. "
            f"Pass {_ACCEPTED}."
        )


def _message_from_mapping(data: Mapping[Any, object]) -> Message:
    bad_keys = [key for key in data if not isinstance(key, str)]
    if bad_keys:
        raise MessageTypeError(
            f"A dict given as a message must have str keys (its fields), but it has "
            f"{bad_keys[0]!r}. Use field names as keys, e.g. {{'text': 'Hi', 'role': 'user'}}."
        )
    return Message.model_validate(dict(data))


def _collect_stream(stream: StreamedPromise[Any, Any], out: MutableSequence[Segment]) -> None:
    if not stream.done:
        out.append(stream.as_observable())
        return
    core = stream._core  # a finished stream is flattened without waiting
    for piece in core.pieces:
        collect(piece, out)
    if core.error is not None:
        out.append(core.error)


def flatten_messages(source: Observable[MessageType]) -> Observable[MessagePromise]:
    """Flatten every item of ``source``, in order, into a stream of message promises.

    Items are ``MessageType`` values; nested async parts are subscribed one after the
    other (the later ones are already running when they are replayable streams), and
    an error, from an item or from ``source``, ends the result at its position.

    Marble::

        source:   --"a"--[B1 B2]--S------------|   (S: a sequence streaming x, y)
        S:                        ---x----y--|
        result:   --a----(B1B2)------x----y--|
    """

    def subscribe(
        observer: abc.ObserverBase[MessagePromise], _scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        flattener = Flattener(observer)
        flattener.outer = source.subscribe(
            flattener.on_next, flattener.on_outer_error, flattener.on_outer_completed
        )
        return Disposable(flattener.dispose)

    return Observable(subscribe)


class Flattener:
    """The state of one flattening: of a subscription to :func:`flatten_messages`, or of
    an appender that code pushes ``MessageType`` items into."""

    __slots__ = (
        "draining",
        "inner",
        "inner_active",
        "observer",
        "on_message",
        "outer",
        "outer_done",
        "pending",
        "stopped",
    )

    def __init__(
        self,
        observer: abc.ObserverBase[MessagePromise],
        on_message: Callable[[MessagePromise], None] | None = None,
    ) -> None:
        self.observer = observer
        self.on_message = on_message
        self.pending: deque[Segment] | None = None  # made when something has to wait
        self.outer: abc.DisposableBase | None = None
        self.inner: abc.DisposableBase | None = None
        self.inner_active = False
        self.outer_done = False
        self.stopped = False
        self.draining = False

    def _queue(self) -> deque[Segment]:
        if self.pending is None:
            self.pending = deque()
        return self.pending

    def emit(self, promise: MessagePromise) -> None:
        """Pass one message promise on (telling ``on_message`` first, if there is one)."""
        if self.on_message is not None:
            self.on_message(promise)
        self.observer.on_next(promise)

    def on_next(self, item: MessageType) -> None:
        if self.stopped:
            return
        if isinstance(item, MessagePromise) and not self.pending and not self.inner_active:
            self.emit(item)  # the fast path: nothing is waiting before it
            return
        try:
            collect(item, self._queue())
        except Exception as error:  # bad input, or an iterable item that failed
            self._queue().append(error)
        self.drain()

    def push(self, segments: list[Segment]) -> None:
        """Pass on segments :func:`collect` made (the input is checked already)."""
        if self.stopped:
            return
        if (
            len(segments) == 1
            and isinstance(segments[0], MessagePromise)
            and not self.pending
            and not self.inner_active
        ):
            self.emit(segments[0])
            return
        self._queue().extend(segments)
        self.drain()

    def on_outer_error(self, error: BaseException) -> None:
        self._queue().append(error)  # after everything the source produced before it
        self.outer_done = True
        self.drain()

    def on_outer_completed(self) -> None:
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
                if isinstance(segment, MessagePromise):
                    self.emit(segment)
                elif isinstance(segment, BaseException):
                    self.dispose()
                    self.observer.on_error(segment)  # type: ignore[arg-type]
                else:
                    self.inner_active = True
                    inner = self._subscribe_inner(segment)
                    if self.inner_active:
                        self.inner = inner
            if not self.stopped and self.outer_done and not self.inner_active and not self.pending:
                self.stopped = True
                self.observer.on_completed()
        finally:
            self.draining = False

    def _subscribe_inner(self, segment: Observable[MessageType]) -> abc.DisposableBase:
        if isinstance(segment, ReplayObservable) and segment.core.kind is MESSAGES:
            # a message sequence: its pieces are flat already, take them directly
            return Disposable(
                segment.core.add_observer(self.emit, self.on_inner_error, self.on_inner_completed)
            )
        return segment.pipe(flatten_messages).subscribe(
            self.emit, self.on_inner_error, self.on_inner_completed
        )

    def dispose(self) -> None:
        self.stopped = True
        for subscription in (self.outer, self.inner):
            if subscription is not None:
                subscription.dispose()
        self.outer = self.inner = None
