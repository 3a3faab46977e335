"""``ChatHistory``: where a conversation's messages are kept, to be replayed to a model."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from miniagents.arguments import a_class, refused_argument
from miniagents.ext.history.errors import ChatHistoryOptionError
from miniagents.messages.errors import MessageTypeError
from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise
from miniagents.messages.sequence import MessageSequencePromise, MessageTuple

__all__ = ["ChatHistory"]


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

    def check_message(self, message: object, *, taken_by: str = ".append()") -> Message:
        """``message``, if it is a ``Message``: for :meth:`append` to check its argument.

        Args:
            message: What was given.
            taken_by: What it was given to, named in the error after the class's name
                (``"()"``: the class itself).

        Raises:
            MessageTypeError: if ``message`` is not a ``Message`` (a ``TypeError`` too).
        """
        if isinstance(message, MessagePromise | MessageSequencePromise):
            raise MessageTypeError(
                f"{type(self).__name__}{taken_by} takes a Message, but got {a_class(type(message))}"
                f" (one still to come): await it first, e.g. {_awaited(message, taken_by)}."
            )
        if not isinstance(message, Message):
            raise MessageTypeError(
                f"{type(self).__name__}{taken_by} takes a Message, but got "
                f"{a_class(type(message))} ({message!r:.60}). Wrap text in a message first, e.g. "
                'UserMessage(text="...") from miniagents.ext.llm.messages.'
            )
        return message

    @staticmethod
    def check_argument(value: object, *, taken_by: str, bind: str) -> ChatHistory:
        """``value``, if it is a ``ChatHistory``: for an agent to check its ``chat_history``.

        Args:
            value: What was given as ``chat_history``.
            taken_by: Who takes it, named in the error (``"history_agent"``).
            bind: How to give it, named in the error (``"history_agent.fork"``).

        Raises:
            ChatHistoryOptionError: if ``value`` is not a ``ChatHistory`` (e.g. a file's path).
        """
        if not isinstance(value, ChatHistory):
            raise refused_argument(
                value,
                "chat_history",
                "a ChatHistory",
                owner=taken_by,
                fix=f"Give one, e.g. {bind}(chat_history=ChatHistoryMD(path)) for a markdown "
                "file, or InMemoryChatHistory().",
                error=ChatHistoryOptionError,
            )
        return value

    async def store(self, messages: Iterable[Message]) -> MessageTuple:
        """Append ``messages`` in order, then return the whole history.

        Every message is checked before the first is appended, so a wrong one leaves the
        history as it was.

        Raises:
            MessageTypeError: if ``messages`` is not an iterable of ``Message``s (one
                message, a str), or holds something else; nothing is appended then.
        """
        given: object = messages  # (typed an iterable of messages; may be one, or a str)
        if isinstance(given, MessageSequencePromise):
            raise MessageTypeError(
                f"{type(self).__name__}.store() takes an iterable of Messages (e.g. a list), "
                f"but got a MessageSequencePromise (messages still to come, such as an agent's "
                "reply): await it first, e.g. store(await reply), which stores its messages "
                "once all are complete."
            )
        if isinstance(given, str | bytes | Message) or not isinstance(given, Iterable):
            raise MessageTypeError(
                f"{type(self).__name__}.store() takes an iterable of Messages (e.g. a list), "
                f"but got {a_class(type(given))}. Pass a list, e.g. store([message]) for "
                'one message, or store([UserMessage(text="...")]) for a text (UserMessage '
                "from miniagents.ext.llm.messages)."
            )
        checked = [self.check_message(message, taken_by=".store()") for message in messages]
        for message in checked:
            await self.append(message)
        return await self.load()


def _awaited(promise: object, taken_by: str) -> str:
    """How to give what ``promise`` will be to ``taken_by`` (``".append()"``, ``"()"``)."""
    if isinstance(promise, MessageSequencePromise):  # a reply: its messages, stored
        return "store(await reply) for an agent's reply"
    if taken_by == ".store()":
        return "store([await promise])"
    if taken_by == ".append()":
        return "append(await promise)"
    return "await promise, then give the message"
