"""``InMemoryChatHistory``: a chat history kept in memory, gone when the program ends."""

from __future__ import annotations

from collections.abc import Iterable

from miniagents.ext.history.base import ChatHistory
from miniagents.messages.errors import MessageTypeError
from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageTuple

__all__ = ["InMemoryChatHistory"]


class InMemoryChatHistory(ChatHistory):
    """A chat history kept in memory: gone when the program ends.

    Args:
        messages: Messages to start with (e.g. a system prompt).

    Raises:
        MessageTypeError: if ``messages`` is not an iterable of messages, or one of them is
            not a ``Message`` (a ``TypeError`` too).
    """

    def __init__(self, messages: Iterable[Message] = ()) -> None:
        given: object = messages  # (typed as wanted; given untyped too)
        if isinstance(given, (Message, str)) or not isinstance(given, Iterable):
            raise MessageTypeError(
                f"{type(self).__name__}() takes an iterable of messages (e.g. a list), but "
                f"got {given!r}. Pass e.g. messages=[SystemMessage(text=...)], or nothing "
                "for an empty history."
            )
        self._messages: list[Message] = [
            self.check_message(message, taken_by="()") for message in messages
        ]

    async def load(self) -> MessageTuple:
        """Every message kept so far, oldest first."""
        return MessageTuple(self._messages)

    async def append(self, message: Message) -> None:
        """Keep one more message, after the others.

        Raises:
            MessageTypeError: if ``message`` is not a ``Message`` (a ``TypeError`` too).
        """
        self._messages.append(self.check_message(message))

    def __len__(self) -> int:
        """How many messages are kept."""
        return len(self._messages)

    def __repr__(self) -> str:
        """The class and the number of messages."""
        return f"<{type(self).__name__} with {len(self._messages)} message(s)>"
