"""The message handlers of a ``MiniAgents`` context, and what "persisted once" means.

A context passes a complete message (one of its own, or of a context nested in it) to its
``on_persist_message`` handlers unless the same content was passed to them lately: within
the last :data:`PERSIST_WINDOW` distinct messages they were passed. Each context remembers
this for its own handlers, afresh each time it is entered, so the handlers of an inner
context get content that those of the outer one had already (and a handler given to both
gets it once, from the outer one).
Content is compared by ``hash_key``, which agrees with ``==``; a message whose ``hash_key``
cannot be computed is compared by object instead. So the memory behind "once" is bounded
(a window of keys, not a set of every key ever seen), and a message awaited many times, or
sent again while it is recent, is persisted once.
"""

from __future__ import annotations

import inspect
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

from miniagents.frozen.model import Frozen
from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise
from miniagents.miniagents.errors import ContextArgumentError
from miniagents.promising.errors import HashKeyError

__all__ = [
    "PERSIST_WINDOW",
    "MessageEvents",
    "MessageHandler",
    "PersistMemory",
    "Persisting",
    "messages_in",
]

MessageHandler = Callable[[MessagePromise, Message], Awaitable[None]]
"""``async def handler(promise, message) -> None``, called when a message is complete.

Any callable that returns an awaitable is one: an ``async def`` function, an object whose
``__call__`` is ``async def``, a ``functools.partial`` of either, or a plain function that
returns an awaitable (a lambda calling an async function). ``MiniAgents`` refuses one that
surely returns none (a plain function annotated ``-> None``) when it is given
(``ContextArgumentError``); any other one that returns no awaitable fails at its first
call, with the same error, logged as every handler's error is."""

PERSIST_WINDOW = 10_000
"""How many distinct persisted messages a context remembers (about 2 MB of keys at most)."""

_logger = logging.getLogger("miniagents")

Start = Callable[[Coroutine[Any, Any, None], str], object]
"""``start(coroutine, what)``: run a handler's coroutine in a task its context waits for."""


class _ByObject:
    """A message without a ``hash_key``, remembered by identity (and kept alive meanwhile)."""

    __slots__ = ("message",)

    def __init__(self, message: Message) -> None:
        self.message = message

    def __hash__(self) -> int:
        return id(self.message)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ByObject) and other.message is self.message


class PersistMemory:
    """The messages persisted lately: the keys of the last ``window`` distinct ones.

    Args:
        window: How many distinct messages to remember; the least recently seen is
            forgotten first.
    """

    __slots__ = ("_recent", "window")

    def __init__(self, window: int = PERSIST_WINDOW) -> None:
        """Start with nothing remembered."""
        self.window = window
        self._recent: OrderedDict[object, None] = OrderedDict()

    def __len__(self) -> int:
        """How many distinct messages are remembered."""
        return len(self._recent)

    def first_time(self, message: Message) -> bool:
        """Remember ``message``; whether it (or equal content) was not remembered yet."""
        try:
            key: object = message.hash_key
        except HashKeyError:
            key = _ByObject(message)
        recent = self._recent
        if key in recent:
            recent.move_to_end(key)
            return False
        recent[key] = None
        if len(recent) > self.window:
            recent.popitem(last=False)
        return True


Persisting = tuple[tuple[MessageHandler, ...], PersistMemory]
"""The ``on_persist_message`` handlers of one context, and what was passed to them lately."""


class MessageEvents:
    """The listener a context installs: it runs the handlers for every complete message.

    Args:
        start: Starts a handler's coroutine in a task the context waits for.
        resolved: The ``on_promise_resolved`` handlers (every promise).
        persist: The ``on_persist_message`` handlers of each context, outermost first, each
            with its context's memory (once per message for them, see the module).
    """

    __slots__ = ("_persist", "_resolved", "_start")

    def __init__(
        self, start: Start, resolved: tuple[MessageHandler, ...], persist: tuple[Persisting, ...]
    ) -> None:
        """Bind the handlers and their memories."""
        self._start = start
        self._resolved = resolved
        self._persist = persist

    def __call__(self, promise: MessagePromise, message: Message) -> None:
        """Hear about a complete message: start its handlers."""
        for handler in self._resolved:
            self._start(_call(handler, promise, message), "on_promise_resolved")
        if self._persist:
            for distinct in messages_in(message):
                for handlers, memory in self._persist:
                    if memory.first_time(distinct):
                        for handler in handlers:
                            self._start(_call(handler, promise, distinct), "on_persist_message")


async def _call(handler: MessageHandler, promise: MessagePromise, message: Message) -> None:
    try:
        result: object = handler(promise, message)
        if not inspect.isawaitable(result):  # (typed Awaitable: code mypy does not check)
            name = getattr(handler, "__name__", "")
            name = name if name.isidentifier() else "handler"
            raise ContextArgumentError(
                f"A MiniAgents message handler must return an awaitable (the context awaits "
                f"it), but {handler!r:.60} returned {type(result).__name__}: make it `async "
                f"def {name}(promise, message) -> None`."
            )
        await result
    except Exception:
        _logger.exception("A MiniAgents message handler %r failed.", handler)


def messages_in(value: object) -> Iterator[Message]:
    """The message itself and every message nested in its fields, depth first."""
    if isinstance(value, Message):
        yield value
    if isinstance(value, Frozen):
        for _name, field in value:  # declared and extra fields
            yield from messages_in(field)
    elif isinstance(value, (tuple, frozenset)):
        for item in value:
            yield from messages_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from messages_in(item)
