"""``MessageSequencePromise``, ``MessageTuple`` and ``MessageType``: streams of messages."""

from __future__ import annotations

from collections.abc import AsyncIterable, Generator, Iterable, Mapping
from typing import Any, Literal, TypeAlias, Union

from pydantic import BaseModel
from reactivex import Observable
from reactivex import from_iterable as _rx_from_iterable
from typing_extensions import Self

from miniagents.messages._flatten import MESSAGES, Segment, collect, flatten_messages
from miniagents.messages._resolve import resolve_messages
from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise
from miniagents.promising._replay import ReplayCore
from miniagents.promising.errors import IncompleteStreamError
from miniagents.promising.sentinels import NO_VALUE, Sentinel
from miniagents.promising.streamed_promise import StreamedPromise

__all__ = ["MessageSequencePromise", "MessageTuple", "MessageType"]


class MessageTuple(tuple[Message, ...]):
    """The resolved messages of a sequence: a tuple that prints as their joined text.

    It can be awaited again (giving itself), so code written for either a sequence
    promise or its result works with both: ``print(await reply)`` and
    ``await reply.aresolve_messages()``.
    """

    __slots__ = ()

    def __str__(self) -> str:
        """The texts of the messages, separated by blank lines."""
        return "\n\n".join(str(message) for message in self)

    def __repr__(self) -> str:
        """Show the messages."""
        return f"MessageTuple({tuple.__repr__(self)})"

    async def aresolve_messages(self) -> MessageTuple:
        """Return this tuple; the messages are resolved already."""
        return self

    def __await__(self) -> Generator[Any, None, MessageTuple]:
        """``await messages`` gives the same messages."""
        return self.aresolve_messages().__await__()


class MessageSequencePromise(StreamedPromise[MessagePromise, MessageTuple]):
    """A stream of message promises that resolves to a :class:`MessageTuple`.

    ``async for`` gives each :class:`MessagePromise` as soon as it starts (its tokens
    may still be streaming); ``await`` gives all the messages, complete.

    Example:
        >>> messages = MessageSequencePromise(
        ...     prefill_pieces=[Message(text="Hello"), Message(text="World")]
        ... )
        >>> # `await messages` gives MessageTuple((Message(text="Hello"), Message(text="World")))
    """

    __slots__ = ()

    def __init__(
        self,
        messages: MessageType | Literal[Sentinel.NO_VALUE] = NO_VALUE,
        *,
        prefill_pieces: MessageType | Literal[Sentinel.NO_VALUE] = NO_VALUE,
    ) -> None:
        """Create a sequence from any ``MessageType``, flattened in order.

        Args:
            messages: The messages: strings, dicts, messages, promises, exceptions and
                (async) iterables or observables of these, nested to any depth.
            prefill_pieces: The same as ``messages`` (the name older code uses).

        Raises:
            MessageTypeError: if a synchronous part of the input is not a ``MessageType``
                (asynchronous parts are checked as they stream, and end the stream).
            TypeError: if both ``messages`` and ``prefill_pieces`` are given.
        """
        if prefill_pieces is not NO_VALUE:
            if messages is not NO_VALUE:
                raise TypeError(
                    "Give the messages either positionally or as prefill_pieces=, not both."
                )
            messages = prefill_pieces
        segments: list[Segment] = []
        if messages is not NO_VALUE:
            collect(messages, segments)
        ready = 0
        while ready < len(segments) and isinstance(segments[ready], MessagePromise):
            ready += 1
        prefill: list[MessagePromise] = segments[:ready]  # type: ignore[assignment]
        rest = segments[ready:]
        core: ReplayCore[MessagePromise]
        if not rest:
            core = ReplayCore(prefill=prefill, kind=MESSAGES)
        elif isinstance(rest[0], BaseException):  # the stream ends at an error
            core = ReplayCore(prefill=prefill, error=rest[0], kind=MESSAGES)
        else:
            core = ReplayCore(_concat(rest), prefill, kind=MESSAGES)
        self._setup(core)

    @classmethod
    def _from_core(cls, core: ReplayCore[MessagePromise]) -> Self:
        """Wrap a core whose pieces the caller provides (see ``MessageSequenceAppender``)."""
        sequence = cls.__new__(cls)
        sequence._setup(core)
        return sequence

    @classmethod
    def from_observable(cls, source: Observable[MessageType]) -> Self:
        """Make a sequence of the items of an observable, each flattened in order.

        Marble::

            source:    --m1--[m2 m3]--|
            sequence:  --m1--(m2m3)---|
        """
        return cls(source)

    def as_message_observable(self) -> Observable[Message]:
        """The complete messages, in order, each as soon as it (and those before it) is complete.

        Marble::

            sequence:  --p1--p2------|     (p1 completes at t1, p2 at t2 > t1)
            result:    ----m1---m2---|
        """
        return self.as_observable().pipe(resolve_messages)

    async def _resolve_whole(self, pieces: tuple[MessagePromise, ...]) -> MessageTuple:
        return MessageTuple([await promise for promise in pieces])

    async def aresolve_messages(self) -> MessageTuple:
        """Wait for every message to be complete and return them all."""
        return await self.aresolve()

    def __str__(self) -> str:
        """The joined text of the messages, once every one of them is complete.

        Raises:
            IncompleteStreamError: if the sequence or one of its messages is still streaming.
        """
        core = self._core
        if not core.done:
            raise IncompleteStreamError(
                "str() was called on a MessageSequencePromise that is still streaming. "
                "Await it first: `messages = await sequence`, then use str(messages)."
            )
        core.raise_if_failed()
        return "\n\n".join(str(promise) for promise in core.pieces)


def _concat(segments: list[Segment]) -> Observable[MessagePromise]:
    items: Iterable[MessageType] = segments
    return _rx_from_iterable(items).pipe(flatten_messages)


MessageType: TypeAlias = Union[  # noqa: UP007 - forward references need Union on 3.10
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
