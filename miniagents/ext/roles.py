"""The role a message is given to a model with: :func:`role_of`.

A conversation (a history's, an LLM agent's input, a realtime session's, an A2A agent's)
holds messages of any class: ``UserMessage``, ``AssistantMessage`` and the LLM agents'
messages declare ``role``, and a plain ``Message`` may carry it as an extra field
(``Message(text=..., role="assistant")``), which its type does not name. :func:`role_of`
reads it from either, typed ``str``, so that code checked by ``mypy --strict`` needs no
``getattr``; the prompt, the LLM log, the realtime session and the A2A client read a
message's role with it, and ``miniagents.ext.history`` re-exports it. (It is here, not in
the history package, which is built on the LLM agents' messages, so that ``ext.llm`` may
use it.)
"""

from __future__ import annotations

from miniagents.messages.message import Message

__all__ = ["role_of"]


def role_of(message: Message) -> str:
    """The role ``message`` is given to a model with: its ``role``, or ``"user"``.

    ``role`` is read whether the message's class declares it or it is an extra field; a
    message without one (or whose ``role`` is not a ``str``) counts as the user's, as the
    LLM agents count it.

    Args:
        message: A message of a conversation (any ``Message``).

    Returns:
        Its role: ``"user"``, ``"assistant"``, ``"system"``, ``"tool"`` or one of yours.

    Example:
        >>> from miniagents import Message
        >>> role_of(Message(text="Hi", role="assistant")), role_of(Message(text="Hi"))
        ('assistant', 'user')
    """
    role = getattr(message, "role", None)  # (a declared field, a property or an extra one)
    return role if isinstance(role, str) else "user"
