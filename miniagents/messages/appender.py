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
from types import TracebackType
from typing import Generic, TypeVar

from typing_extensions import Self

from miniagents.messages._flatten import MESSAGES, Flattener, Segment, collect
from miniagents.messages.errors import MessageTypeError
from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise
from miniagents.messages.sequence import MessageSequencePromise, MessageType
from miniagents.promising._replay import ReplayCore
from miniagents.promising.errors import MiniAgentsError

__all__ = ["AppenderClosedError", "MessageSequenceAppender", "MessageTokenAppender"]

T = TypeVar("T")


class AppenderClosedError(MiniAgentsError, RuntimeError):
    """Something was appended to a stream that had already ended."""


class _Appender(Generic[T]):
    """What both appenders share: the open core, its end, and ``with`` support."""

    _core: ReplayCore[T]

    @property
    def closed(self) -> bool:
        """Whether the stream has ended (nothing more can be appended)."""
        return self._core.done

    def _check_open(self) -> None:
        if self._core.done:
            raise AppenderClosedError(
                "This stream has ended, so nothing more can be appended to it. "
                "Append everything before calling complete() or leaving the `with` block."
            )

    def complete(self) -> None:
        """End the stream normally (doing it again does nothing)."""
        self._core.complete()

    def fail(self, error: BaseException) -> None:
        """End the stream with ``error``, which every consumer gets after what came before."""
        self._core.fail(error)

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

    Example:
        >>> with MessageSequenceAppender() as appender:
        ...     appender.append("Hello")
        ...     appender.append(["and", "more"])
        >>> # appender.sequence streams "Hello", "and", "more", then ends.
    """

    __slots__ = ("_core", "_flattener", "sequence", "task")

    def __init__(self, on_message: Callable[[MessagePromise], None] | None = None) -> None:
        """Create an open sequence; it is :attr:`sequence`.

        Args:
            on_message: Called with each message promise as it enters the sequence
                (agents use it to start every message of a reply at once).
        """
        core: ReplayCore[MessagePromise] = ReplayCore(open_ended=True, kind=MESSAGES)
        self._core = core
        self._flattener = Flattener(core, on_message)
        self.sequence = MessageSequencePromise._from_core(core)
        self.task: asyncio.Task[None] | None = None

    def cancel_when_abandoned(self, task: asyncio.Task[None]) -> None:
        """When every consumer of the sequence gives up, cancel ``task`` (its producer).

        The sequence then also stops following the streams appended to it (which may be
        abandoned in turn) and ends with ``StreamCancelledError``.
        """
        self.task = task
        self._core.on_abandoned = self._abandon

    def _abandon(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
        self._flattener.dispose()
        self._core.cancel()

    def append(self, messages: MessageType) -> None:
        """Append messages, flattened in order after everything appended before.

        Raises:
            MessageTypeError: if a synchronous part of ``messages`` is not a ``MessageType``.
            AppenderClosedError: if the sequence has ended.
        """
        self._check_open()
        segments: list[Segment] = []
        collect(messages, segments)
        self._flattener.push(segments)

    def complete(self) -> None:
        """End the sequence after everything appended so far (nested streams included)."""
        self._flattener.on_outer_completed()

    def fail(self, error: BaseException) -> None:
        """End the sequence with ``error``, after everything appended so far."""
        self._flattener.on_outer_error(error)


class MessageTokenAppender(_Appender[str]):
    """Build a :class:`MessagePromise` token by token.

    Example:
        >>> with MessageTokenAppender(role="assistant") as appender:
        ...     appender.append("Hel")
        ...     appender.append("lo")
        >>> # appender.promise streams "Hel", "lo" and resolves to Message(text="Hello", ...).
    """

    __slots__ = ("_core", "promise")

    def __init__(self, *, message_class: type[Message] = Message, **metadata: object) -> None:
        """Create an open message with the given class and metadata; it is :attr:`promise`."""
        self.promise = MessagePromise.__new__(MessagePromise)
        self.promise._init_streamed(None, message_class, metadata)  # tokens come from here
        self._core = self.promise._core

    def cancel_when_abandoned(self, task: asyncio.Task[None]) -> None:
        """When every consumer of the message gives up (or cancels it), cancel ``task``.

        ``task`` is the producer of the tokens; the message then ends with
        ``StreamCancelledError``.
        """

        def abandon() -> None:
            task.cancel()
            self._core.cancel()

        self._core.on_abandoned = abandon

    def append(self, token: str) -> None:
        """Append a token; consumers get it at once.

        Raises:
            MessageTypeError: if ``token`` is not a ``str``.
            AppenderClosedError: if the message has ended.
        """
        self._check_open()
        if not isinstance(token, str):
            raise MessageTypeError(
                f"A token must be a str, got a {type(token).__name__}: {token!r:.80}."
            )
        self._core.accept(token)

    def update_metadata(self, **metadata: object) -> None:
        """Add or change metadata of the message before it ends (e.g. a finish reason).

        Raises:
            AppenderClosedError: if the message has ended.
        """
        self._check_open()
        self.promise._add_metadata(metadata)
