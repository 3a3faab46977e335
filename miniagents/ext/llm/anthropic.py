"""Anthropic agents: ``anthropic_agent`` and ``create_anthropic_agent`` (Messages API).

The SDK is imported when a call is made; without it, the call fails with an
``ImportError`` that says ``pip install "miniagents[anthropic]"``. The client comes from
``async_client=`` or is made from the environment (``ANTHROPIC_API_KEY``,
``ANTHROPIC_BASE_URL``), once per ``MiniAgents`` context. The Messages API requires
``max_tokens``; it defaults to :data:`DEFAULT_MAX_TOKENS`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Final

from miniagents.ext.llm._translate import import_sdk, translate_loaded_sdk_error
from miniagents.ext.llm.errors import LLMAuthenticationError, LLMResponseError
from miniagents.ext.llm.llm_common import Finish, LLMCall, run_llm_agent
from miniagents.ext.llm.messages import AssistantMessage
from miniagents.miniagents.agent import miniagent
from miniagents.miniagents.context import MiniAgents
from miniagents.miniagents.interaction import InteractionContext

if TYPE_CHECKING:
    import anthropic as anthropic_sdk

__all__ = ["DEFAULT_MAX_TOKENS", "AnthropicMessage", "anthropic_agent", "create_anthropic_agent"]

DEFAULT_MAX_TOKENS: Final = 4096
"""``max_tokens`` when the agent and the call give none (the Messages API requires it)."""


class AnthropicMessage(AssistantMessage):
    """A reply of an Anthropic model."""


class _AnthropicProvider:
    message_class = AnthropicMessage

    def reply(self, call: LLMCall, client: object | None) -> AsyncIterator[str | Finish]:
        return self._reply(call, client)

    async def _reply(self, call: LLMCall, client: object | None) -> AsyncIterator[str | Finish]:
        sdk = import_sdk("anthropic", "Anthropic")
        api: Any = client
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
        options = dict(call.options)
        options.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
        if call.system:
            options["system"] = call.system
        messages = [{"role": role, "content": text} for role, text in call.messages]
        create = api.messages.create
        if not call.stream:
            reply = await create(model=call.model, messages=messages, **options)
            yield "".join(block.text for block in reply.content if block.type == "text")
            yield Finish(reply.stop_reason, reply.usage.input_tokens, reply.usage.output_tokens)
            return
        stop_reason: str | None = None
        input_tokens: int | None = None
        output_tokens: int | None = None
        stopped = False
        stream = await create(model=call.model, messages=messages, stream=True, **options)
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
        return translate_loaded_sdk_error(error, "anthropic", "Anthropic", "AnthropicError")


_PROVIDER = _AnthropicProvider()


@miniagent(alias="ANTHROPIC_AGENT")
async def anthropic_agent(
    ctx: InteractionContext,
    /,
    model: str | None = None,
    stream: bool | None = None,
    system: str | None = None,
    async_client: anthropic_sdk.AsyncAnthropic | None = None,
    **kwargs: Any,
) -> None:
    """An Anthropic model: the input messages are the prompt, the reply streams back.

    Args:
        ctx: The interaction.
        model: The model, e.g. "claude-haiku-4-5" (required).
        stream: Stream token by token (default: the ``MiniAgents`` setting, on).
        system: A system prompt (sent as the ``system`` parameter), put before the texts
            of any ``SystemMessage``.
        async_client: An ``anthropic.AsyncAnthropic`` client instead of the default one.
        **kwargs: Passed to ``messages.create`` unchanged (``max_tokens``, defaulting to
            ``DEFAULT_MAX_TOKENS``, and whatever else the installed SDK takes).
    """
    await run_llm_agent(
        ctx,
        _PROVIDER,
        model=model,
        stream=stream,
        system=system,
        client=async_client,
        options=kwargs,
    )


create_anthropic_agent = anthropic_agent.bind
"""An Anthropic agent with arguments bound: ``anthropic_agent.fork(...)``, arguments typed."""
