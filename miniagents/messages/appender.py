"""Appenders: build a stream from plain code by pushing into it.

A :class:`MessageSequenceAppender` builds a :class:`MessageSequencePromise` from
``MessageType`` items appended one by one (this is how an agent's replies become its reply
sequence); a :class:`MessageTokenAppender` builds a :class:`MessagePromise` from tokens.
Consumers get what was appended as soon as it is appended; the stream ends with
:meth:`complete` (or :meth:`fail`), or when the ``with`` block around the appender ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, overload

from miniagents.arguments import a_class
from miniagents.messages._collect import Segment, collect, is_message, known_message_class
from miniagents.messages._flatten import Flattener
from miniagents.messages.errors import AppenderClosedError, MessageTypeError
from miniagents.messages.message import Message
from miniagents.messages.message_promise import (
    MessagePromise,
    MessageT_co,
    _ReadyMessagePromise,
)
from miniagents.messages.sequence import MessageSequencePromise, MessageType
from miniagents.promising.lowlevel import ReplayCore, core_of, stream_on

# AppenderClosedError lives in miniagents.messages.errors; it is importable from here too.
__all__ = ["AppenderClosedError", "MessageSequenceAppender", "MessageTokenAppender"]

T = TypeVar("T")


class _Appender(Generic[T]):
    """What both appenders share: the open core, its end, and ``with`` support."""

    __slots__ = ()  # (each subclass names its own: no instance dict, no stray attribute)

    _record: ReplayCore[T]

    @property
    def closed(self) -> bool:
        """Whether the stream has ended (nothing more can be appended)."""
        return self._record.done

    @property
    def error(self) -> BaseException | None:
        """The error that ended the stream, if it failed."""
        return self._record.error

    def _check_open(self) -> None:
        if self._record.done:
            raise AppenderClosedError(
                "This stream has ended, so nothing more can be appended to it. "
                "Append everything before calling complete() or leaving the `with` block."
            )

    def complete(self) -> None:
        """End the stream normally (doing it again does nothing)."""
        self._record.complete()

    def fail(self, error: BaseException) -> None:
        """End the stream with ``error``, which every consumer gets after what came before."""
        self._record.fail(error)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            self.complete()
        else:
            self.fail(exc)


class MessageSequenceAppender(_Appender[MessagePromise]):
    """Build a :class:`MessageSequencePromise` by appending ``MessageType`` items.

    Appending never waits; a producer that appends in a loop can wait for room with
    :meth:`wait_for_room` (see :mod:`miniagents.promising.limits`).

    Example:
        >>> with MessageSequenceAppender() as appender:
        ...     appender.append("Hello")
        ...     appender.append(["and", "more"])
        >>> # appender.sequence streams "Hello", "and", "more", then ends.
    """

    __slots__ = (
        "_abandoning",
        "_adopting",
        "_flattener",
        "_on_message",
        "_ready_too",
        "_record",
        "_streaming",
        "_tell_ready",
        "_then",
        "task",
    )

    def __init__(
        self,
        on_message: Callable[[MessagePromise], None] | None = None,
        *,
        name: str = "this message sequence",
        ready_too: bool = True,
    ) -> None:
        """Create an open sequence; it is :attr:`sequence`.

        Args:
            on_message: Called with each message promise as it enters the sequence
                (agents use it to start every message of a reply at once).
            name: How errors name the sequence, e.g. "the replies of the agent ECHO".
            ready_too: Whether ``on_message`` needs the messages that are complete when
                they enter too; ``False`` lets the sequence skip the call for them (once
                :meth:`cancel_when_abandoned` is set).
        """
        core: ReplayCore[MessagePromise] = ReplayCore(
            open_ended=True, piece_type=MessagePromise, paced=name
        )
        core.producer = self  # (for the deadlock watch: see producers)
        self._record = core
        self._on_message = on_message
        self._ready_too = ready_too
        self._adopting = False  # each message entering goes to _adopt
        # who is told of a complete message appended (see append): on_message, unless
        # messages are adopted and on_message wants streaming ones only
        self._tell_ready = on_message
        # made when something must wait (a part still streaming): an agent that replies
        # ready messages only never needs one
        self._flattener: Flattener | None = None
        self._streaming: list[ReplayCore[str]] | None = None
        self._abandoning = False
        self.task: asyncio.Task[None] | None = None
        """The producer's task, once given to :meth:`cancel_when_abandoned` (read it only)."""
        self._then: Callable[[], None] | None = None  # (see cancel_when_abandoned)

    def producers(self) -> tuple[object, ...]:
        """Who makes the next message, for the deadlock watch's wait-for graph.

        The part its flattening follows now, if one streams in its place (another agent's
        replies), else the producer's task (``None`` without one: code it cannot name).
        """
        flattener = self._flattener
        if flattener is not None and flattener.inner_active:
            return (flattener,)
        return (self.task,)

    @property
    def sequence(self) -> MessageSequencePromise:
        """The sequence being built (each access gives a new promise of the same stream)."""
        return stream_on(MessageSequencePromise, self._record)

    def paced(self, messages: MessageSequencePromise) -> MessageSequencePromise:
        """A view of ``messages`` whose iterators take each message only when there is room here.

        This is how an agent whose replies are HWM ahead of their consumers waits at its
        next input pull (see :mod:`miniagents.promising.limits`).
        """
        core = core_of(messages)
        if core.done and not core.pieces and not core.base:
            return messages  # nothing to take: nothing to pace
        return stream_on(MessageSequencePromise, core, gate=self._record)

    async def wait_for_room(self) -> None:
        """Wait until the sequence's consumers are less than the high-water mark behind."""
        await self._record.await_room()

    def start_lazily(self, starter: Callable[[], None]) -> None:
        """Call ``starter`` (which starts the producer) only when the sequence is first consumed.

        Iterating, awaiting or subscribing to the sequence, or a started agent reading it,
        consumes it; until then it stays unstarted.
        """
        self._record.defer(starter)

    def cancel_when_abandoned(
        self, task: asyncio.Task[None], then: Callable[[], None] | None = None
    ) -> None:
        """When every consumer gives up, cancel ``task`` (its producer) and what it streams.

        Every consumer gives up on the sequence (their waits are cancelled, their
        subscriptions disposed), or on a message appended to it while nobody waits for the
        sequence: ``task`` is cancelled, the sequence stops following the streams appended
        to it and ends with ``StreamCancelledError``, and the messages it holds that are
        still streaming and that nobody waits for are cancelled too.

        Args:
            task: The producer's task.
            then: Called once, last, when the sequence is given up: what the producer
                gives up in turn (an agent's interaction gives up its input). Given again,
                it replaces the one given before.
        """
        self.task = task
        if then is not None:
            self._then = then
        # the appender itself (its __call__ gives up): no bound method per agent, which
        # would be one more object for the collector while the agent waits to run
        self._record.on_abandoned = self
        self._adopting = True
        self._tell_ready = self._on_message if self._ready_too else None
        if self._flattener is not None:
            self._hook(self._flattener)

    def _hook(self, flattener: Flattener) -> None:
        """Tell ``flattener`` whom to give each message entering.

        A message still streaming: adopting (see :meth:`cancel_when_abandoned`),
        :meth:`_adopt`; else ``on_message``. A ready message's promise (complete: nothing to
        adopt): whoever :meth:`append` tells of one, ``on_message`` if it wants it.
        """
        flattener.on_message = self._adopt if self._adopting else self._on_message
        flattener.on_ready = self._tell_ready

    def _adopt(self, promise: MessagePromise) -> None:
        """Adopt a message entering the sequence (once ``cancel_when_abandoned`` is set)."""
        # a ready message's promise is complete (no core made just to be asked)
        core = None if type(promise) is _ReadyMessagePromise else core_of(promise)
        if core is not None and not core.done:
            abandoned = core.on_abandoned
            # none, or an operator's own message that only cancels itself (join_messages):
            # giving up on it gives up on this sequence too (_message_abandoned cancels it)
            if abandoned is None or abandoned == core.cancel:
                core.on_abandoned = partial(self._message_abandoned, core)
            # not abandoned while this sequence is consumed (whoever follows it may read it)
            core.wanted_by = (*core.wanted_by, self._record)
            if self._streaming is None:
                self._streaming = [core]
            else:
                if len(self._streaming) >= 32:
                    self._streaming = [kept for kept in self._streaming if not kept.done]
                self._streaming.append(core)
        elif not self._ready_too:
            return  # a complete message: on_message does not need it
        if self._on_message is not None:
            self._on_message(promise)

    def _message_abandoned(self, message: ReplayCore[str]) -> None:
        message.cancel_now()
        if not self._record.consumed():  # (a message given up on: see wanted_by)
            self()  # (the sequence is abandoned too: see __call__)

    def __call__(self) -> None:
        """Give up on the producer: every consumer has (see :meth:`cancel_when_abandoned`).

        This is the ``on_abandoned`` callback of the sequence's core, which calls it once.
        """
        if self._abandoning:
            return
        self._abandoning = True
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self._flattener is not None:
            self._flattener.dispose()
        self._record.cancel_now()
        streaming, self._streaming = self._streaming, None
        for message in streaming or ():
            message.check_abandoned()  # those nobody waits for stop
        then, self._then = self._then, None
        if then is not None:
            then()

    def append(self, messages: MessageType) -> None:
        """Append messages, flattened in order after everything appended before.

        Raises:
            MessageTypeError: if a synchronous part of ``messages`` is not a ``MessageType``.
            AppenderClosedError: if the sequence has ended.
        """
        record = self._record
        # inline: the common cases, a str or a complete message, without _check_open(),
        # is_message(), MessagePromise.of_text / of_message (the promise collect() makes of
        # them, made here) nor _push_one() (nothing to adopt, only on_message to tell if it
        # wants complete messages too): W4 makes 17 % more calls and 13 % more opcodes per
        # message without it (tests/benchmarks/README.md, 'Inlined copies')
        if record.done:
            self._check_open()
        known = known_message_class(type(messages))  # (is_message's answer, if it knows)
        if known:
            promise: MessagePromise = _ReadyMessagePromise(messages)  # type: ignore[arg-type]
        elif type(messages) is str:
            promise = _ReadyMessagePromise(Message(text=messages))
        elif known is None and is_message(messages):
            promise = _ReadyMessagePromise(messages)  # type: ignore[arg-type]
        else:
            segments: list[Segment] = []
            collect(messages, segments)
            if len(segments) == 1 and isinstance(segments[0], MessagePromise):
                self._push_one(segments[0])
            else:
                self._flattening().push(segments)
            return
        if self._flattener is not None:
            self._flattener.push_one(promise)  # after what waits in it
            return
        tell = self._tell_ready  # on_message, if it wants complete messages now
        if tell is not None:
            tell(promise)
        record.accept(promise)

    def _push_one(self, promise: MessagePromise) -> None:
        flattener = self._flattener
        if flattener is not None:
            flattener.push_one(promise)  # after what waits in it
            return
        # inline: nothing waits, so no flattener is made for it (what its emit does, here):
        # W3 (re-streaming agents, K = 5) makes 5 % more calls and opcodes per token without
        # it (tests/benchmarks/README.md, 'Inlined copies')
        if self._adopting:
            self._adopt(promise)
        elif self._on_message is not None:
            self._on_message(promise)
        self._record.accept(promise)

    def _flattening(self) -> Flattener:
        flattener = self._flattener
        if flattener is None:
            core = self._record
            flattener = self._flattener = Flattener(core, sink=core)
            self._hook(flattener)
        return flattener

    def complete(self) -> None:
        """End the sequence after everything appended so far (nested streams included)."""
        if self._flattener is None:
            self._record.complete()  # nothing waits to be passed on
        else:
            self._flattener.on_completed()

    def fail(self, error: BaseException) -> None:
        """End the sequence with ``error``, after everything appended so far."""
        if self._flattener is None:
            self._record.fail(error)
        else:
            self._flattener.on_error(error)


class MessageTokenAppender(_Appender[str], Generic[MessageT_co]):
    """Build a :class:`MessagePromise` token by token.

    Typed by the message's class: ``MessageTokenAppender(message_class=Weather)`` is a
    ``MessageTokenAppender[Weather]``, whose :attr:`promise` is a ``MessagePromise[Weather]``.

    Example:
        >>> with MessageTokenAppender(role="assistant") as appender:
        ...     appender.append("Hel")
        ...     appender.append("lo")
        >>> # appender.promise streams "Hel", "lo" and resolves to Message(text="Hello", ...).
    """

    __slots__ = ("_record", "_task", "promise")

    @overload
    def __init__(self, *, message_class: type[MessageT_co], **metadata: object) -> None: ...

    @overload
    def __init__(
        self: MessageTokenAppender[Message],
        *,
        message_class: type[Message] = ...,
        **metadata: object,
    ) -> None: ...

    @overload
    def __init__(  # a spread of plain values, without the class (see MessagePromise)
        self: MessageTokenAppender[Message], **metadata: str | int | float | bool
    ) -> None: ...

    def __init__(self, *, message_class: Any = Message, **metadata: object) -> None:
        """Create an open message with the given class and metadata; it is :attr:`promise`."""
        self.promise: MessagePromise[MessageT_co] = MessagePromise.__new__(MessagePromise)
        self.promise._init_streamed(None, message_class, metadata)  # tokens come from here
        self._record = core_of(self.promise)
        self._record.producer = self  # (for the deadlock watch: see producers)
        self._task: asyncio.Task[None] | None = None

    def producers(self) -> tuple[object, ...]:
        """Who makes the next token, for the deadlock watch: the producer's task, if known."""
        return (self._task,)

    def cancel_when_abandoned(self, task: asyncio.Task[None]) -> None:
        """When every consumer of the message gives up (or cancels it), cancel ``task``.

        ``task`` is the producer of the tokens; the message then ends with
        ``StreamCancelledError``.
        """
        self._task = task
        # the appender itself (its __call__ gives up): no closure per message (a function,
        # its cells and their tuple), four objects more for the collector while it streams
        self._record.on_abandoned = self

    def __call__(self) -> None:
        """Give up on the producer: every consumer has (see :meth:`cancel_when_abandoned`).

        This is the ``on_abandoned`` callback of the message's core, which calls it once.
        """
        if self._task is not None:
            self._task.cancel()
        self._record.cancel()

    @property
    def appended(self) -> str:
        """The text appended so far: every token, joined (also once the message has ended)."""
        return "".join(self._record.record())

    def append(self, token: str) -> None:
        """Append a token; consumers get it at once.

        Raises:
            MessageTypeError: if ``token`` is not a ``str``.
            AppenderClosedError: if the message has ended.
        """
        self._check_open()
        if type(token) is not str and not isinstance(token, str):
            raise MessageTypeError(
                f"A token must be a str, got {a_class(type(token))}: {token!r:.80}."
            )
        self._record.accept(token)

    def update_metadata(self, **metadata: object) -> None:
        """Add or change metadata of the message before it ends (e.g. a finish reason).

        Raises:
            AppenderClosedError: if the message has ended.
        """
        self._check_open()
        self.promise._add_metadata(metadata)
