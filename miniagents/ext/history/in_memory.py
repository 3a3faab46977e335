"""``InMemoryChatHistory``: a chat history kept in memory, gone when the program ends."""

from __future__ import annotations

from collections.abc import Iterable

from miniagents.ext.history.base import ChatHistory
from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageTuple

__all__ = ["InMemoryChatHistory"]


class InMemoryChatHistory(ChatHistory):
    """A chat history kept in memory: gone when the program ends.

    Args:
        messages: Messages to start with (e.g. a system prompt).

    Raises:
        MessageTypeError: if one of ``messages`` is not a ``Message`` (a ``TypeError`` too).
    """

    def __init__(self, messages: Iterable[Message] = ()) -> None:
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
