"""The role a history's message is replayed to a model with: :func:`role_of`.

A history holds messages of any class: ``UserMessage``, ``AssistantMessage`` and the LLM
agents' messages declare ``role``, and a plain ``Message`` may carry it as an extra field
(``Message(text=..., role="assistant")``), which its type does not name. :func:`role_of`
reads it from either, typed ``str``, so that code checked by ``mypy --strict`` needs no
``getattr``.
"""

from __future__ import annotations

from miniagents.messages.message import Message

__all__ = ["role_of"]


def role_of(message: Message) -> str:
    """The role ``message`` is replayed to a model with: its ``role``, or ``"user"``.

    ``role`` is read whether the message's class declares it or it is an extra field; a
    message without one (or whose ``role`` is not a ``str``) counts as the user's, as the
    LLM agents count it.

    Args:
        message: A message of a history (any ``Message``).

    Returns:
        Its role: ``"user"``, ``"assistant"``, ``"system"``, ``"tool"`` or one of yours.

    Example:
        >>> from miniagents import Message
        >>> role_of(Message(text="Hi", role="assistant")), role_of(Message(text="Hi"))
        ('assistant', 'user')
    """
    role = getattr(message, "role", None)  # (a declared field, a property or an extra one)
    return role if isinstance(role, str) else "user"
