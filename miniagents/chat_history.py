"""Chat history: where a conversation's messages are kept, to be replayed to a model.

:class:`ChatHistory` is the base to extend (a database, a file format of your own): it
loads the messages kept so far and appends one more. :class:`InMemoryChatHistory` keeps
them in memory; ``miniagents.ext.chat_history_md.ChatHistoryMD`` keeps them in a markdown
file. The history agents of ``miniagents.ext.history_agents`` and the console user agent
store what they see in one and reply with the whole conversation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageTuple
from miniagents.promising.errors import MiniAgentsError

__all__ = [
    "ChatHistory",
    "ChatHistoryError",
    "InMemoryChatHistory",
    "MalformedChatHistoryError",
    "TornChatHistoryError",
]


class ChatHistoryError(MiniAgentsError):
    """A chat history could not be read or written."""


class MalformedChatHistoryError(ChatHistoryError, ValueError):
    """A chat history file is not in the expected format (its file and line are named)."""


class TornChatHistoryError(MalformedChatHistoryError):
    """A chat history file's last section was cut short, e.g. by a crash during an append.

    Raised only when the history was asked to (``ChatHistoryMD(..., on_torn_section="raise")``);
    by default the torn section is dropped with a logged warning.
    """


class ChatHistory(ABC):
    """A conversation's messages, in order: load them all, append one more.

    Subclass it and implement :meth:`load` and :meth:`append`; :meth:`store` (append
    several, then load) is built on them. Both are coroutines, so a history may live in
    a database or behind a network call; blocking work (a file, a synchronous driver)
    belongs off the event loop, e.g. in ``asyncio.to_thread``, as ``ChatHistoryMD`` does.

    Example:
        >>> class ListHistory(ChatHistory):
        ...     def __init__(self) -> None:
        ...         self.messages: list[Message] = []
        ...     async def load(self) -> MessageTuple:
        ...         return MessageTuple(self.messages)
        ...     async def append(self, message: Message) -> None:
        ...         self.messages.append(message)
    """

    @abstractmethod
    async def load(self) -> MessageTuple:
        """Every message kept so far, oldest first."""

    @abstractmethod
    async def append(self, message: Message) -> None:
        """Keep one more message, after the others."""

    def check_message(self, message: object) -> Message:
        """``message``, if it is a ``Message``: for :meth:`append` to check its argument.

        Raises:
            TypeError: if ``message`` is not a ``Message``.
        """
        if not isinstance(message, Message):
            raise TypeError(
                f"{type(self).__name__}.append() takes a Message, but got a value of type "
                f"{type(message).__name__}. Wrap text in a message first, e.g. "
                'UserMessage(text="...") from miniagents.ext.llm.messages.'
            )
        return message

    async def store(self, messages: Iterable[Message]) -> MessageTuple:
        """Append ``messages`` in order, then return the whole history."""
        for message in messages:
            await self.append(message)
        return await self.load()


class InMemoryChatHistory(ChatHistory):
    """A chat history kept in memory: gone when the program ends.

    Args:
        messages: Messages to start with (e.g. a system prompt).
    """

    def __init__(self, messages: Iterable[Message] = ()) -> None:
        self._messages: list[Message] = list(messages)

    async def load(self) -> MessageTuple:
        """Every message kept so far, oldest first."""
        return MessageTuple(self._messages)

    async def append(self, message: Message) -> None:
        """Keep one more message, after the others.

        Raises:
            TypeError: if ``message`` is not a ``Message``.
        """
        self._messages.append(self.check_message(message))

    def __len__(self) -> int:
        """How many messages are kept."""
        return len(self._messages)

    def __repr__(self) -> str:
        """The class and the number of messages."""
        return f"<{type(self).__name__} with {len(self._messages)} message(s)>"
