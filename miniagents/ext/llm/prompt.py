"""The prompt of an LLM call: a system prompt and ``(role, text)`` pairs, from messages."""

from __future__ import annotations

from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageTuple

__all__ = ["prompt_of"]


def prompt_of(
    messages: MessageTuple, system: str | None
) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """Split input messages into a system prompt and ``(role, text)`` pairs.

    Each message's ``role`` field (``user`` when it has none) gives its role; the texts of
    system messages, after ``system``, make the system prompt.
    """
    system_parts = [system] if system else []
    conversation: list[tuple[str, str]] = []
    for message in messages:
        role = _role_of(message)
        if role == "system":
            system_parts.append(str(message))
        else:
            conversation.append((role, str(message)))
    return ("\n\n".join(system_parts) or None), tuple(conversation)


def _role_of(message: Message) -> str:
    role = getattr(message, "role", None)
    return role if isinstance(role, str) else "user"
