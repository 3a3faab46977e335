"""Message classes of LLM conversations: each carries its ``role``."""

from __future__ import annotations

from miniagents.messages.message import Message
from miniagents.promising.frozen import Frozen

__all__ = ["AssistantMessage", "SystemMessage", "TokenUsage", "UserMessage"]


class UserMessage(Message):
    """A message from the user (any message without a ``role`` counts as one)."""

    role: str = "user"


class SystemMessage(Message):
    """Instructions for the model; LLM agents put them in the system prompt."""

    role: str = "system"


class TokenUsage(Frozen):
    """How many tokens a call read and wrote, as the provider reported them."""

    input_tokens: int | None = None
    output_tokens: int | None = None


class AssistantMessage(Message):
    """A reply of an LLM agent, with what is known about the call that produced it."""

    role: str = "assistant"
    model: str | None = None
    agent_alias: str | None = None
    finish_reason: str | None = None
    usage: TokenUsage | None = None
