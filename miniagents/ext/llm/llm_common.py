"""What every LLM agent shares: building the prompt, streaming the reply, errors and logs.

A provider (OpenAI, Anthropic, the offline model, or your own) only turns an
:class:`LLMCall` into a stream of tokens ending with a :class:`Finish`, and translates
its SDK's errors; :func:`run_llm_agent` does the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.messages import AssistantMessage, TokenUsage
from miniagents.messages.appender import MessageTokenAppender
from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageTuple
from miniagents.miniagents.context import MiniAgents
from miniagents.miniagents.interaction import InteractionContext

__all__ = ["Finish", "LLMCall", "LLMProvider", "prompt_of", "run_llm_agent"]


@dataclass(frozen=True)
class LLMCall:
    """One request to a model.

    Attributes:
        model: The model name.
        stream: Whether to stream the reply token by token.
        system: The system prompt (``system=`` and the texts of ``SystemMessage``s), if any.
        messages: The conversation, as ``(role, text)`` pairs, system messages excluded.
        options: Every other keyword argument, passed to the SDK unchanged.
    """

    model: str
    stream: bool
    system: str | None
    messages: tuple[tuple[str, str], ...]
    options: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Finish:
    """The end of a reply: why the model stopped, and the tokens it used."""

    reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


class LLMProvider(Protocol):
    """What a provider implements (see :mod:`miniagents.ext.llm.openai` for an example)."""

    @property
    def message_class(self) -> type[AssistantMessage]:
        """The class of the replies (an ``AssistantMessage`` subclass)."""
        ...

    def reply(self, call: LLMCall, client: object | None) -> AsyncIterator[str | Finish]:
        """Stream the reply's tokens, then one :class:`Finish`."""
        ...

    def translate(self, error: BaseException) -> BaseException:
        """The MiniAgents error for an SDK error (with it as ``__cause__``), else ``error``."""
        ...


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


async def run_llm_agent(
    ctx: InteractionContext,
    provider: LLMProvider,
    *,
    model: str | None,
    stream: bool | None,
    system: str | None,
    client: object | None,
    options: Mapping[str, object],
) -> None:
    """Run one LLM call for an agent: its input messages in, one streamed reply out.

    Raises:
        LLMConfigurationError: if no model was given.
        LLMError: the translated SDK error, if the call failed.
    """
    alias = ctx.this_agent.alias
    if not model:
        raise LLMConfigurationError(
            f"The agent {alias} needs a model. Give it one when you make the agent, e.g. "
            f"{alias.lower()}.fork(model=...) or inquire(..., model=...)."
        )
    context = MiniAgents.get_current()
    if stream is None:
        stream = context.stream_llm_tokens_by_default
    system_prompt, conversation = prompt_of(await ctx.messages, system)
    call = LLMCall(model, stream, system_prompt, conversation, dict(options))

    reply = MessageTokenAppender(
        message_class=provider.message_class, model=model, agent_alias=alias
    )
    _cancel_when_abandoned(reply)
    ctx.reply(reply.promise)
    try:
        async for event in provider.reply(call, client):
            if isinstance(event, Finish):
                usage = TokenUsage(
                    input_tokens=event.input_tokens, output_tokens=event.output_tokens
                )
                reply.update_metadata(finish_reason=event.reason, usage=usage)
            else:
                reply.append(event)
    except BaseException as error:
        translated = provider.translate(error)
        reply.fail(translated)
        if translated is error:
            raise
        raise translated from error
    reply.complete()
    _log(context, ctx, call, reply)


def _cancel_when_abandoned(reply: MessageTokenAppender) -> None:
    """Stop the call (closing its HTTP stream) when every consumer of its message gives up.

    (Its reply sequence already cancels the agent's task when abandoned: see
    ``MessageSequenceAppender.cancel_when_abandoned``.)
    """
    task = asyncio.current_task()
    if task is None:
        return

    def cancel() -> None:
        task.cancel()

    reply.promise._core.on_abandoned = cancel


def _log(
    context: MiniAgents, ctx: InteractionContext, call: LLMCall, reply: MessageTokenAppender
) -> None:
    logger = context.llm_logger_agent
    if logger is False:
        return
    if logger is True:
        from miniagents.ext.llm.llm_logger import llm_logger_agent

        logger = llm_logger_agent
    logger.inquire([*_call_messages(call), reply.promise], agent_alias=ctx.this_agent.alias)


def _call_messages(call: LLMCall) -> list[Message]:
    messages: list[Message] = []
    if call.system:
        messages.append(Message(text=call.system, role="system"))
    messages.extend(Message(text=text, role=role) for role, text in call.messages)
    return messages
