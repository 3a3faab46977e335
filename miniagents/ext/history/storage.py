"""Building blocks of chat history stores: message classes known by name, and a serial worker.

For the stores of this library (``ChatHistoryMD`` here, ``ChatHistorySQL`` in
:mod:`miniagents.ext.dbos.history`) and for stores of your own that keep messages outside
of the process:

- :class:`MessageClassRegistry`: the message classes a store writes a message's class
  name for and loads it back as, by that name: the built-in ones
  (:data:`BUILT_IN_MESSAGE_CLASSES`, with those the extensions above this package add,
  :func:`add_built_in_message_classes`) and those a user gives (``message_classes=``). A
  name is looked up, never imported, so a stored name can make nothing run.
- :class:`SerialWorker`: the blocking work of a store (a file written and synced, a
  database's round trip) run off the event loop, one job at a time, in the order asked.

Both are an internal API for those stores: stable within a release, not re-exported by
:mod:`miniagents.ext.history`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TypeVar

from miniagents.ext.history.errors import ChatHistoryOptionError
from miniagents.ext.llm.anthropic import AnthropicMessage
from miniagents.ext.llm.bedrock import BedrockMessage
from miniagents.ext.llm.compatible import CompatibleMessage
from miniagents.ext.llm.gemini import GeminiMessage
from miniagents.ext.llm.messages import (
    AssistantMessage,
    LLMMessage,
    LLMToolApprovalRequest,
    LLMToolCallMessage,
    LLMToolResultMessage,
    SystemMessage,
    UserMessage,
)
from miniagents.ext.llm.offline import OfflineMessage
from miniagents.ext.llm.openai import OpenAIMessage
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.messages.message import Message
from miniagents.miniagents.registering import register

__all__ = [
    "BUILT_IN_MESSAGE_CLASSES",
    "MessageClassRegistry",
    "SerialWorker",
    "add_built_in_message_classes",
    "built_in_message_classes",
]

T = TypeVar("T")

BUILT_IN_MESSAGE_CLASSES: tuple[type[Message], ...] = (
    Message,
    UserMessage,
    AssistantMessage,
    SystemMessage,
    LLMMessage,
    OpenAIMessage,
    AnthropicMessage,
    GeminiMessage,
    BedrockMessage,
    CompatibleMessage,
    OfflineMessage,
    ToolCallMessage,
    ToolResultMessage,
    ToolApprovalRequest,
    LLMToolCallMessage,
    LLMToolResultMessage,
    LLMToolApprovalRequest,
)
"""The message classes of :mod:`miniagents.ext.llm` (its providers' too) and
:mod:`miniagents.ext.tools` that every store knows by name (a store may know more:
``built_in=``). An approval request among them loads back as one, so that a prompt leaves
it out again rather than showing it to the model as the assistant's text."""

_ADDED: list[type[Message]] = []
"""The message classes the extensions above this package added (in the order added)."""


def add_built_in_message_classes(*classes: type[Message]) -> None:
    """Make ``classes`` known by name to every store made from now on, as the built-in ones.

    For the message classes of the library's extensions that this package may not import
    (A2A's need the ``a2a`` extra; the realtime handoff's result): their module adds them
    as it is imported, so a message of one, which only a process that imported it can
    make, loads back as itself (in any process that imported it too, before making the
    store). Adding a class again keeps it once.
    """
    for cls in classes:
        register(_ADDED, cls)


def built_in_message_classes() -> tuple[type[Message], ...]:
    """The classes every store knows, the extensions' imported so far among them.

    :data:`BUILT_IN_MESSAGE_CLASSES`, then those the extensions added
    (:func:`add_built_in_message_classes`).
    """
    return (*BUILT_IN_MESSAGE_CLASSES, *_ADDED)


class MessageClassRegistry:
    """The message classes a store may name, by class name: the built-in ones and the user's.

    The built-in ones are read when the store looks a name up (:attr:`by_name`), not when it
    is made: a store made before an extension was imported (``miniagents.ext.a2a``) knows
    the classes it adds by the time it loads or keeps one of their messages.

    Args:
        extra: The user's own ``Message`` subclasses (a store's ``message_classes=``).
        built_in: The classes the store always knows (``None``: the built-in ones and those
            the extensions imported so far added, :func:`built_in_message_classes`, read
            again whenever an extension has added more).
        store: What the store is, in an error message (``"a history file"``).

    Raises:
        ChatHistoryOptionError: for something in ``extra`` that is not a ``Message``
            subclass, or two classes of one name (an extension imported later that adds a
            class of the name of one of ``extra``: at the store's next look-up).
    """

    def __init__(
        self,
        extra: Iterable[type[Message]] = (),
        *,
        built_in: Iterable[type[Message]] | None = None,
        store: str = "a chat history",
    ) -> None:
        if isinstance(extra, (type, str)) or not isinstance(extra, Iterable):
            raise ChatHistoryOptionError(
                f"message_classes takes a list of Message subclasses, not {extra!r}: pass "
                "e.g. message_classes=[MyMessage]."
            )
        self._extra = tuple(extra)
        for cls in self._extra:
            if not (isinstance(cls, type) and issubclass(cls, Message)):
                raise ChatHistoryOptionError(
                    f"message_classes takes Message subclasses, not {cls!r}: pass the "
                    "classes of the messages to load back as themselves."
                )
        self._built_in = None if built_in is None else tuple(built_in)
        self._store = store
        self._known: dict[str, type[Message]] = {}
        self._added_seen = -1  # how many classes the extensions had added when it was made
        _ = self.by_name  # a clash is refused now, as the store is made

    @property
    def by_name(self) -> dict[str, type[Message]]:
        """Each class known, by its ``__name__`` (made again once an extension added more)."""
        added = len(_ADDED) if self._built_in is None else 0
        if added != self._added_seen:
            classes = built_in_message_classes() if self._built_in is None else self._built_in
            known = {cls.__name__: cls for cls in classes}
            for cls in self._extra:
                other = known.setdefault(cls.__name__, cls)
                if other is not cls:
                    raise ChatHistoryOptionError(
                        f"Two message classes are named {cls.__name__} ({other.__module__} "
                        f"and {cls.__module__}), so {self._store} could not tell them apart. "
                        "Rename one of them."
                    )
            self._known, self._added_seen = known, added
        return self._known


class SerialWorker:
    """Runs blocking jobs in threads, one at a time, in the order they were asked for.

    Each job runs in a thread of the loop's default executor, so the loop goes on while a
    file is written and synced. Jobs run one after another, in the order their callers
    asked (``asyncio.Lock`` wakes its waiters first come, first served). A caller cancelled
    while it waits for its turn gives its job up (it never runs); once a job has started,
    it runs to its end even if its caller is cancelled, and the next job waits for it. So
    each job happens completely or not at all.
    """

    def __init__(self) -> None:
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def arun(self, job: Callable[[], T]) -> T:
        """Run ``job`` in a thread once the jobs asked for before it are done; its result."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:  # a lock serves one loop
            self._lock, self._loop = asyncio.Lock(), loop
        lock = self._lock
        await lock.acquire()  # cancelled here, the job never runs
        try:
            future = loop.run_in_executor(None, job)
        except BaseException:
            lock.release()
            raise
        future.add_done_callback(lambda _: lock.release())  # not before the job has ended
        return await asyncio.shield(future)
