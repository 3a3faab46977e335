"""A hook that hears about every message promise whose message is complete.

The agents layer (``MiniAgents``) sets :data:`message_listener` for the code running
inside it, so that ``on_persist_message`` and ``on_promise_resolved`` handlers are
called once a message is complete, whether or not anyone awaits it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from miniagents.messages.message import Message
    from miniagents.messages.message_promise import MessagePromise

__all__ = ["MessageListener", "message_listener"]

MessageListener = Callable[["MessagePromise", "Message"], None]
"""Called with a promise and its complete message; it must not block or raise."""

message_listener: ContextVar[MessageListener | None] = ContextVar(
    "miniagents_message_listener", default=None
)
"""The listener for message promises created in the current context, if any."""
