"""Message classes of LLM conversations: each carries its ``role``.

Everything an LLM agent replies with is an :class:`LLMMessage`, which carries ``role``,
``model``, ``agent_alias``, ``finish_reason`` and ``usage``: the answer (an
:class:`AssistantMessage` of the provider's class, e.g. ``OpenAIMessage``) and, with tools,
the :class:`LLMToolCallMessage` s and :class:`LLMToolResultMessage` s streamed before it.
:data:`LLMReply` is the type of such a reply message: ``LLMReply[OpenAIMessage]`` is the
reply class of ``openai_agent``, so ``reply[0].model`` type-checks, and
``isinstance(message, OpenAIMessage)`` picks the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Self, TypeAlias, TypeVar, Union

from pydantic import model_validator

from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.frozen.model import Frozen
from miniagents.messages.message import Message, refuse_content

__all__ = [
    "AssistantMessage",
    "LLMMessage",
    "LLMReply",
    "LLMToolApprovalRequest",
    "LLMToolCallMessage",
    "LLMToolResultMessage",
    "SystemMessage",
    "TokenUsage",
    "UserMessage",
    "reply_metadata",
]


def _refuse_content(cls: type[Message], data: object) -> object:
    """``Message``'s refusal of ``content=`` without ``text=``, in ``model_validate`` too.

    ``Message()`` refuses it as the message is made; this refuses it too when a role
    message is read from a dict (e.g. an OpenAI-shaped conversation in JSON).

    Raises:
        MessageTypeError: naming the ``text`` field to use instead.
    """
    refuse_content(cls, data)
    return data


_text_not_content = model_validator(mode="before")(_refuse_content)  # (a classmethod: cls)
"""The role messages' validator (one, of each class that sets it): see ``_refuse_content``."""


class UserMessage(Message):
    """A message from the user (any message without a ``role`` counts as one)."""

    role: str = "user"

    _text_not_content = _text_not_content


class SystemMessage(Message):
    """Instructions for the model; LLM agents put them in the system prompt."""

    role: str = "system"

    _text_not_content = _text_not_content


class TokenUsage(Frozen):
    """How many tokens a call read and wrote, as the provider reported them, and the cost.

    A count the provider did not report is ``None`` (and so is left out of the text).

    Attributes:
        input_tokens: The prompt's tokens, the cached ones included.
        output_tokens: The reply's tokens, the reasoning ones included.
        cached_input_tokens: Prompt tokens read from the provider's cache (OpenAI
            ``cached_tokens``, Anthropic ``cache_read_input_tokens``).
        cache_write_tokens: Prompt tokens written to the cache (Anthropic
            ``cache_creation_input_tokens``).
        reasoning_tokens: Output tokens the model spent reasoning (OpenAI
            ``reasoning_tokens``).
        cost_usd: What the tokens cost in US dollars, by the price table of the
            ``genai-prices`` package; ``None`` when the model's price is unknown (never
            a guess) or a count is missing.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None

    def __repr_args__(self) -> Iterator[tuple[str | None, object]]:
        """The fields that are known (``input_tokens=5 output_tokens=2``)."""
        return ((name, value) for name, value in super().__repr_args__() if value is not None)

    @classmethod
    def summed(cls, usages: Iterable[Self]) -> Self:
        """The ``usages`` summed, field by field (e.g. the texts of one run's reply).

        A count is the sum of the usages that know it; one that none of them knows stays
        unknown (``None``), so no usages sum to a ``TokenUsage()`` that knows nothing. (A
        ``cost_usd`` known of some usages only is the sum of theirs: a lower bound.) A
        subclass sums its own fields too, into one of its own (``RealtimeUsage.summed``).
        """
        known = tuple(usages)
        found: dict[str, object] = {}
        for name in cls.model_fields:
            values = [value for usage in known if (value := getattr(usage, name)) is not None]
            if values:
                found[name] = sum(values)
        return cls.model_validate(found)


class LLMMessage(Message):
    """A message of an LLM agent's reply, with what is known about the call that produced it.

    Attributes:
        role: ``assistant`` (``tool`` for a tool's result).
        model: The model that was called.
        agent_alias: The alias of the agent that called it.
        finish_reason: Why the model stopped (the answer's, and the text's before tool
            calls); ``None`` for tool calls and results.
        usage: The tokens used by every call of the model in the reply (the answer's);
            ``None`` for the other messages.
    """

    role: str = "assistant"
    model: str | None = None
    agent_alias: str | None = None
    finish_reason: str | None = None
    usage: TokenUsage | None = None


class AssistantMessage(LLMMessage):
    """An LLM agent's answer, its text (each provider has a subclass, e.g. ``OpenAIMessage``)."""

    _text_not_content = _text_not_content


class LLMToolCallMessage(ToolCallMessage, LLMMessage):
    """A tool call in an LLM agent's reply: a ``ToolCallMessage`` with the model and agent.

    Attributes:
        thought_signature: What the API asked to be sent back with the call (Gemini's
            thought signature, base64; Anthropic's thinking blocks, or Bedrock's
            reasoning blocks, written before it, as JSON), sent with it in the
            conversation's next requests and kept in a saved history; ``None`` (a call
            of another API, or of an older history): nothing.
    """

    thought_signature: str | None = None


class LLMToolResultMessage(ToolResultMessage, LLMMessage):
    """A tool's result in an LLM agent's reply: a ``ToolResultMessage`` with the model and agent."""


class LLMToolApprovalRequest(ToolApprovalRequest, LLMMessage):
    """A call in an LLM agent's reply that waits for approval: ``approve()`` or ``deny()`` it."""


AnswerT = TypeVar("AnswerT", bound=Message)

LLMReply: TypeAlias = Union[  # noqa: UP007
    AnswerT, LLMToolCallMessage, LLMToolApprovalRequest, LLMToolResultMessage
]
"""A message of an LLM agent's reply whose answers are ``AnswerT``: ``LLMReply[OpenAIMessage]``.

``AnswerT`` is an ``AssistantMessage`` subclass for the built-in agents; any ``Message``
subclass is allowed (an answer of another class has only the fields it declares).

Every one is an :class:`LLMMessage` (``role``, ``model``, ``agent_alias``,
``finish_reason``, ``usage`` are typed on each); ``isinstance`` tells the answer from the
tool calls and results.
"""


def reply_metadata(message: Message | None) -> tuple[TokenUsage | None, str | None, str | None]:
    """The usage, model and finish reason a message of an LLM agent's reply says, if it does.

    An LLM agent's message (an :class:`LLMMessage`) has them as fields; a structured answer
    of a plain ``Message`` type (``structured(agent, Weather)``) carries them as extra fields
    of its own. Each is ``None`` where the message does not say it (or is ``None``).
    """
    if isinstance(message, LLMMessage):
        return message.usage, message.model, message.finish_reason
    extra = (message.model_extra or {}) if message is not None else {}
    usage, model, reason = extra.get("usage"), extra.get("model"), extra.get("finish_reason")
    return (
        usage if isinstance(usage, TokenUsage) else None,
        model if isinstance(model, str) else None,
        reason if isinstance(reason, str) else None,
    )
