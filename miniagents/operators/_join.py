"""``join_messages``: many messages in, one message out that streams while they stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypeVar, overload

from miniagents.arguments import a_class, check_flag
from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise, MessageT
from miniagents.messages.sequence import MessageType, as_message_sequence
from miniagents.operators.errors import OperatorArgumentError
from miniagents.promising.errors import DeadlockError
from miniagents.promising.lowlevel import ReplayCore, core_of, fed_by
from miniagents.promising.streamed_promise import StreamedPromise

__all__ = ["checked_delimiter", "join_messages", "stopped_when_abandoned"]


def checked_delimiter(delimiter: object, operator: str) -> str:
    """``delimiter``, if it is a ``str``.

    Raises:
        OperatorArgumentError: if it is not, naming ``operator`` and an example.
    """
    if not isinstance(delimiter, str):
        raise OperatorArgumentError(
            f"{operator}() needs its delimiter as a str, e.g. delimiter='\\n\\n'; got "
            f"{a_class(type(delimiter))} ({delimiter!r:.60})."
        )
    return delimiter


def checked_message_class(message_class: object, operator: str) -> type[Message]:
    """``message_class``, if it is ``Message`` or a subclass of it.

    Raises:
        OperatorArgumentError: if it is not, naming ``operator`` and what to give.
    """
    if not (isinstance(message_class, type) and issubclass(message_class, Message)):
        raise OperatorArgumentError(
            f"{operator}() needs message_class as Message or a subclass of it (class "
            f"Row(Message): ...); got {a_class(type(message_class))} ({message_class!r:.60})."
        )
    return message_class


@overload
def join_messages(
    messages: MessageType,
    delimiter: str = ...,
    *,
    strip_leading_newlines: bool = ...,
    message_class: type[MessageT],
    **metadata: object,
) -> MessagePromise[MessageT]: ...


@overload
def join_messages(
    messages: MessageType,
    delimiter: str = ...,
    *,
    strip_leading_newlines: bool = ...,
    message_class: type[Message] = ...,
    **metadata: object,
) -> MessagePromise: ...


# A ``**metadata`` spread is checked against every keyword above (mypy cannot tell that it
# holds no ``strip_leading_newlines`` or ``message_class``): one of plain values
# (``dict[str, str]``) matches only below, typed exactly (as MessagePromise's constructors).
@overload
def join_messages(
    messages: MessageType,
    delimiter: str = ...,
    *,
    message_class: type[MessageT],
    **metadata: str | int | float | bool,
) -> MessagePromise[MessageT]: ...


@overload
def join_messages(
    messages: MessageType, delimiter: str = ..., **metadata: str | int | float | bool
) -> MessagePromise: ...


def join_messages(
    messages: MessageType,
    delimiter: str = "\n\n",
    *,
    strip_leading_newlines: Any = False,  # a bool (Any: the overloads' **metadata may name it)
    message_class: Any = Message,  # a type[Message] (Any: the same)
    **metadata: object,
) -> MessagePromise:
    r"""Join messages into one message that streams while they stream.

    Each message's tokens are passed on as they come, ``delimiter`` between two messages; an
    error in the input (a message's tokens or the sequence) ends the joined message with it,
    after the tokens before it. A message of typed fields alone (no text, no tokens) joins as
    its fields, the JSON ``str()`` gives. Given up on by every consumer (e.g. a timeout), the
    joined message stops reading its input, which is given up on in turn, as an agent's
    reply is.

    .. marble::
        :alt: join_messages (tokens)

        --"Hel"--"lo"--|  --"World"--|       two messages
        [         join_messages()         ]
        --"Hel"--"lo"--"\n\n"--"World"--|    one message: "Hello\n\nWorld"

    Args:
        messages: The messages to join, any ``MessageType``.
        delimiter: Put between two messages.
        strip_leading_newlines: Drop newlines at the start of each message.
        message_class: The class of the joined message (``Message`` by default), which
            the result's type says: ``MessagePromise[message_class]``.
        **metadata: Metadata of the joined message.

    Raises:
        OperatorArgumentError: if ``delimiter`` is not a ``str``, ``strip_leading_newlines``
            not a ``bool``, or ``message_class`` not ``Message`` or a subclass of it.
        MessageTypeError: if a synchronous part of ``messages`` is not a ``MessageType``.
    """
    checked_delimiter(delimiter, "join_messages")
    check_flag(
        strip_leading_newlines,
        "strip_leading_newlines",
        owner="join_messages()",
        fix="E.g. strip_leading_newlines=True.",
        error=OperatorArgumentError,
    )
    message_class = checked_message_class(message_class, "join_messages")
    sequence = as_message_sequence(messages)
    reading = _Reading()

    async def tokens() -> AsyncIterator[str]:
        first = True
        own = reading.own
        async for promise in sequence:
            core = core_of(promise)
            if core is own:  # (read, it would stream itself into itself)
                raise _joined_into_itself()
            if fed_by(core, own):  # (it feeds that message: each would grow the other)
                raise _joined_in_a_cycle()
            if not first:
                yield delimiter
            first = False
            leading = strip_leading_newlines
            streamed = False
            reading.follow(core)
            async for token in promise:
                streamed = True
                if leading:
                    token = token.lstrip("\n")
                    if not token:
                        continue
                    leading = False
                yield token
            reading.following = None
            if not streamed:  # a message of fields alone joins as its fields (its JSON)
                message = await promise
                if message.text is None and (fields := str(message)) != "{}":
                    yield fields

    joined = MessagePromise.from_async_iterable(tokens(), message_class=message_class, **metadata)
    reading.own = core_of(joined)
    return stopped_when_abandoned(joined)


class _Reading:
    """What a joined message reads now, named as its producer for the deadlock watch.

    While it reads a message, the joined message's next token comes from that message: so
    :func:`~miniagents.promising.lowlevel.fed_by` (and the watch) can walk from a joined
    message into what it joins, as they cannot through its task alone.
    """

    __slots__ = ("following", "own", "task")

    def __init__(self) -> None:
        self.own: ReplayCore[Any] | None = None  # the joined message's core, once made
        self.task: asyncio.Task[Any] | None = None  # the task that reads for it
        self.following: ReplayCore[Any] | None = None  # the message read now, if any

    def follow(self, core: ReplayCore[Any]) -> None:
        """Read ``core`` now: name it (and the task) as who makes the next token."""
        own = self.own
        if own is not None and own.producer is not self:
            self.task = asyncio.current_task()
            own.producer = self
        self.following = core

    def producers(self) -> tuple[object, ...]:
        """The task that reads for the joined message, and the message it reads now."""
        return (self.task,) if self.following is None else (self.task, self.following)


def _joined_into_itself() -> DeadlockError:
    """The error of a joined message found among the messages it joins."""
    return DeadlockError(
        "join_messages() was given a sequence that holds the joined message itself: it would "
        "join its own tokens into itself without end. Join a sequence that does not hold the "
        "result (append the joined message to another sequence)."
    )


def _joined_in_a_cycle() -> DeadlockError:
    """The error of a joined message given a message that it feeds itself."""
    return DeadlockError(
        "join_messages() was given a message that the joined message feeds itself (e.g. "
        "j1 = join_messages(a) and j2 = join_messages(b), where a holds j2 and b holds j1, "
        "directly or through other joins): each would join the other's tokens without end. "
        "Break the cycle: give one of them the messages the other joins (not the joined "
        "message), or join them once, in one join_messages()."
    )


StreamT = TypeVar("StreamT", bound=StreamedPromise[Any, Any])


def stopped_when_abandoned(stream: StreamT) -> StreamT:
    """``stream`` (an operator's own), cancelled once every consumer of it gives up.

    Its source then stops reading the input, which is given up on in turn if nobody else
    reads it (an agent's replies: the agent stops).
    """
    core = core_of(stream)
    if not core.done:
        core.on_abandoned = core.cancel
    return stream
