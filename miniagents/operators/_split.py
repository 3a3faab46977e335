"""``split_messages``: messages in, their text cut at a delimiter into streaming messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, overload

from miniagents.messages.appender import MessageTokenAppender
from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise, MessageT
from miniagents.messages.sequence import MessageSequencePromise, MessageType
from miniagents.operators._join import (
    checked_delimiter,
    checked_message_class,
    join_messages,
    stopped_when_abandoned,
)
from miniagents.operators.errors import OperatorArgumentError

__all__ = ["split_messages"]


@overload
def split_messages(
    messages: MessageType,
    delimiter: str = ...,
    *,
    message_class: type[MessageT],
    **metadata: object,
) -> MessageSequencePromise[MessageT]: ...


@overload
def split_messages(
    messages: MessageType,
    delimiter: str = ...,
    *,
    message_class: type[Message] = ...,
    **metadata: object,
) -> MessageSequencePromise: ...


# A ``**metadata`` spread of plain values (``dict[str, str]``) without the class named
# matches only here (mypy checks a spread against every keyword, ``message_class`` too).
@overload
def split_messages(
    messages: MessageType, delimiter: str = ..., **metadata: str | int | float | bool
) -> MessageSequencePromise: ...


def split_messages(
    messages: MessageType,
    delimiter: str = "\n\n",
    *,
    message_class: Any = Message,  # a type[Message] (Any: the overloads' **metadata may name it)
    **metadata: object,
) -> MessageSequencePromise:
    r"""Split the text of messages at ``delimiter`` into messages that stream at once.

    Each part starts streaming as soon as its first text arrives and ends when its
    delimiter is seen; empty parts are dropped. The input messages are joined with the
    same delimiter first, so message boundaries split too. Given up on by every consumer
    (e.g. a timeout), the parts stop reading the input, which is given up on in turn.

    .. marble::
        :alt: split_messages (tokens)

        --"a\n"--"\nb"--"c"--|         one message: "a\n\nbc"
        [      split_messages()      ]
        --"a"--|                       part 1
               --"b"--"c"--|           part 2 (starts as soon as "b" arrives)

    Args:
        messages: The messages to split, any ``MessageType``.
        delimiter: Where to cut the text (not kept in the parts).
        message_class: The class of each part (``Message`` by default), which the
            result's type says: ``MessageSequencePromise[message_class]``.
        **metadata: Metadata of each part.

    Raises:
        OperatorArgumentError: if ``delimiter`` is not a ``str``, or is empty, or
            ``message_class`` not ``Message`` or a subclass of it.
        MessageTypeError: if a synchronous part of ``messages`` is not a ``MessageType``.
    """
    if not checked_delimiter(delimiter, "split_messages"):
        raise OperatorArgumentError("split_messages() needs a non-empty delimiter, e.g. '\\n\\n'.")
    message_class = checked_message_class(message_class, "split_messages")
    joined = join_messages(messages, delimiter)

    async def parts() -> AsyncIterator[MessagePromise]:
        splitter = _Splitter(delimiter, message_class, metadata)
        try:
            async for token in joined:
                for part in splitter.feed(token):
                    yield part
            for part in splitter.close():
                yield part
        except BaseException as error:
            splitter.fail(error)
            raise

    return stopped_when_abandoned(MessageSequencePromise(parts()))


class _Splitter:
    """Cuts a stream of text into parts at a delimiter, streaming each part's text."""

    def __init__(
        self, delimiter: str, message_class: type[Message], metadata: dict[str, object]
    ) -> None:
        self.delimiter = delimiter
        self.message_class = message_class
        self.metadata = metadata
        self.buffer = ""
        self.part: MessageTokenAppender | None = None

    def feed(self, token: str) -> list[MessagePromise]:
        started: list[MessagePromise] = []
        text, delimiter = self.buffer + token, self.delimiter
        # read on from each delimiter found, not from a copy of the rest: a token holding
        # many delimiters (a document cut into lines) costs its length, not its square
        start = 0
        while (index := text.find(delimiter, start)) >= 0:
            self._emit(text[start:index], started)
            start = index + len(delimiter)
            if self.part is not None:
                self.part.complete()
                self.part = None
        rest = text[start:] if start else text
        held = _partial_delimiter_length(rest, delimiter)
        self._emit(rest[: len(rest) - held], started)
        self.buffer = rest[len(rest) - held :]
        return started

    def close(self) -> list[MessagePromise]:
        started: list[MessagePromise] = []
        self._emit(self.buffer, started)
        self.buffer = ""
        if self.part is not None:
            self.part.complete()
            self.part = None
        return started

    def fail(self, error: BaseException) -> None:
        if self.part is not None:
            self.part.fail(error)
            self.part = None

    def _emit(self, text: str, started: list[MessagePromise]) -> None:
        if not text:
            return
        if self.part is None:
            self.part = MessageTokenAppender(message_class=self.message_class, **self.metadata)
            started.append(self.part.promise)
        self.part.append(text)


def _partial_delimiter_length(text: str, delimiter: str) -> int:
    """The length of the longest end of ``text`` that may be the start of ``delimiter``."""
    for length in range(min(len(text), len(delimiter) - 1), 0, -1):
        if delimiter.startswith(text[-length:]):
            return length
    return 0
