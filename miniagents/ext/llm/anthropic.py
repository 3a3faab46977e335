"""Anthropic agents: ``anthropic_agent`` and ``create_anthropic_agent`` (Messages API).

The SDK is imported when a call is made; without it, the call fails with an
``LLMSDKMissingError`` (an ``ImportError``) that says ``pip install "miniagents[anthropic]"``.
The client comes from ``async_client=`` or is made from the environment
(``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``), once per ``MiniAgents`` context. The
Messages API requires ``max_tokens``; it defaults to :data:`DEFAULT_MAX_TOKENS`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from miniagents.ext.llm.errors import LLMAuthenticationError, LLMResponseError
from miniagents.ext.llm.llm_agent import make_llm_agent
from miniagents.ext.llm.messages import AssistantMessage
from miniagents.ext.llm.provider import Finish, LLMCall, LLMEvent, LLMOptions, call_option
from miniagents.ext.llm.sdk_calls import import_sdk, sdk_arguments
from miniagents.ext.llm.sdk_errors import translate_loaded_sdk_error
from miniagents.miniagents.context import MiniAgents

if TYPE_CHECKING:
    import anthropic as anthropic_sdk

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "AnthropicMessage",
    "AnthropicOptions",
    "AnthropicProvider",
    "anthropic_agent",
    "create_anthropic_agent",
]

DEFAULT_MAX_TOKENS: Final = 4096
"""``max_tokens`` when the agent and the call give none (the Messages API requires it)."""


class AnthropicMessage(AssistantMessage):
    """A reply of an Anthropic model."""


@dataclass(frozen=True, kw_only=True)
class AnthropicOptions(LLMOptions):
    """The arguments of ``anthropic_agent``: those of every LLM agent, and Anthropic's own.

    The call options are those of ``messages.create``, by the SDK's names; any other one
    goes in ``extra_options``. Those an installed SDK version does not take as arguments
    (anthropic 2.x has no ``temperature``, ``top_p`` nor ``top_k``) are sent in the
    request body all the same.

    Attributes:
        model: The model, e.g. "claude-haiku-4-5" (required).
        system: A system prompt (sent as the ``system`` parameter), put before the texts
            of any ``SystemMessage``.
        async_client: An ``anthropic.AsyncAnthropic`` client instead of the default one.
        max_tokens: The most tokens the reply may have (default: ``DEFAULT_MAX_TOKENS``).
        temperature: The sampling temperature, from 0 to 1: higher is more random.
        top_p: Sample only from the most likely tokens that make up this probability.
        top_k: Sample only from this many most likely tokens.
        stop_sequences: Texts at which the model stops.
    """

    async_client: anthropic_sdk.AsyncAnthropic | None = None
    max_tokens: int = call_option(DEFAULT_MAX_TOKENS)
    temperature: float | None = call_option(None)
    top_p: float | None = call_option(None)
    top_k: int | None = call_option(None)
    stop_sequences: Sequence[str] | None = call_option(None)


class AnthropicProvider:
    """Streams replies of the Messages API (see ``LLMProvider``)."""

    message_class = AnthropicMessage

    async def reply(self, call: LLMCall, options: AnthropicOptions) -> AsyncIterator[LLMEvent]:
        """Stream the reply's tokens, then one ``Finish``."""
        sdk = import_sdk("anthropic", "Anthropic")
        api: Any = options.async_client
        if api is None and not (
            os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")
        ):
            raise LLMAuthenticationError(
                "No Anthropic API key: set ANTHROPIC_API_KEY, or pass "
                "async_client=anthropic.AsyncAnthropic(api_key=...) to the agent."
            )
        if api is None:
            api = MiniAgents.get_current().resource(
                "anthropic-client", sdk.AsyncAnthropic, lambda made: made.close()
            )
        create = api.messages.create
        arguments = sdk_arguments(create, options, "The Anthropic SDK's messages")
        if call.system:
            arguments["system"] = call.system
        messages = [{"role": role, "content": text} for role, text in call.messages]
        if not call.stream:
            reply = await create(model=call.model, messages=messages, **arguments)
            yield "".join(block.text for block in reply.content if block.type == "text")
            yield Finish(reply.stop_reason, reply.usage.input_tokens, reply.usage.output_tokens)
            return
        stop_reason: str | None = None
        input_tokens: int | None = None
        output_tokens: int | None = None
        stopped = False
        stream = await create(model=call.model, messages=messages, stream=True, **arguments)
        async with stream:
            async for event in stream:
                if event.type == "message_start":
                    input_tokens = event.message.usage.input_tokens
                elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                    yield event.delta.text
                elif event.type == "message_delta":
                    stop_reason = event.delta.stop_reason
                    output_tokens = event.usage.output_tokens
                elif event.type == "message_stop":
                    stopped = True
        if not stopped:
            raise LLMResponseError(
                "The Anthropic stream ended before its message_stop event "
                "(the reply is incomplete)."
            )
        yield Finish(stop_reason, input_tokens, output_tokens)

    def translate(self, error: BaseException) -> BaseException:
        """The ``LLMError`` for an error of the Anthropic SDK, else ``error``."""
        return translate_loaded_sdk_error(error, "anthropic", "Anthropic", "AnthropicError")


anthropic_agent = make_llm_agent(
    AnthropicOptions,
    AnthropicProvider(),
    alias="ANTHROPIC_AGENT",
    summary="An Anthropic model: the input messages are the prompt, the reply streams back.",
)
"""An Anthropic model (Messages API): the input messages are the prompt."""

create_anthropic_agent = anthropic_agent.bind
"""An Anthropic agent with arguments bound: ``anthropic_agent.fork(...)``, arguments typed."""
