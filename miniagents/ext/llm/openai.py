"""OpenAI agents: ``openai_agent`` and ``create_openai_agent`` (Chat Completions).

The SDK is imported when a call is made; without it, the call fails with an
``ImportError`` that says ``pip install "miniagents[openai]"``. The client comes from
``async_client=`` or is made from the environment (``OPENAI_API_KEY``,
``OPENAI_BASE_URL``), once per ``MiniAgents`` context.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from miniagents.ext.llm._translate import import_sdk, translate_loaded_sdk_error
from miniagents.ext.llm.errors import LLMAuthenticationError, LLMResponseError
from miniagents.ext.llm.llm_common import Finish, LLMCall, run_llm_agent
from miniagents.ext.llm.messages import AssistantMessage
from miniagents.miniagents.agent import miniagent
from miniagents.miniagents.context import MiniAgents
from miniagents.miniagents.interaction import InteractionContext

if TYPE_CHECKING:
    import openai as openai_sdk

__all__ = ["OpenAIMessage", "create_openai_agent", "openai_agent"]


class OpenAIMessage(AssistantMessage):
    """A reply of an OpenAI model."""


class _OpenAIProvider:
    message_class = OpenAIMessage

    def reply(self, call: LLMCall, client: object | None) -> AsyncIterator[str | Finish]:
        return self._reply(call, client)

    async def _reply(self, call: LLMCall, client: object | None) -> AsyncIterator[str | Finish]:
        sdk = import_sdk("openai", "OpenAI")
        api: Any = client
        if api is None:
            api = MiniAgents.get_current().resource(
                "openai-client", lambda: _client_from_environment(sdk), lambda made: made.close()
            )
        messages: list[dict[str, str]] = []
        if call.system:
            messages.append({"role": "system", "content": call.system})
        messages.extend({"role": role, "content": text} for role, text in call.messages)
        create = api.chat.completions.create
        if not call.stream:
            completion = await create(model=call.model, messages=messages, **call.options)
            choice = completion.choices[0]
            yield choice.message.content or ""
            yield Finish(choice.finish_reason, *_usage(completion.usage))
            return
        options = dict(call.options)
        options.setdefault("stream_options", {"include_usage": True})
        stream_options = options["stream_options"]
        wants_usage = isinstance(stream_options, Mapping) and bool(
            stream_options.get("include_usage")
        )
        finish_reason: str | None = None
        usage = None
        stream = await create(model=call.model, messages=messages, stream=True, **options)
        async with stream:
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices[:1]:
                    if choice.delta is not None and choice.delta.content:
                        yield choice.delta.content
                    if choice.finish_reason is not None:
                        finish_reason = choice.finish_reason
        if finish_reason is None or (wants_usage and usage is None):
            raise LLMResponseError(
                "The OpenAI stream ended before its final event (the reply is incomplete)."
            )
        yield Finish(finish_reason, *_usage(usage))

    def translate(self, error: BaseException) -> BaseException:
        return translate_loaded_sdk_error(error, "openai", "OpenAI", "OpenAIError")


def _client_from_environment(sdk: Any) -> Any:
    try:
        return sdk.AsyncOpenAI()
    except sdk.OpenAIError as error:
        raise LLMAuthenticationError(
            "No OpenAI API key: set OPENAI_API_KEY, or pass "
            "async_client=openai.AsyncOpenAI(api_key=...) to the agent."
        ) from error


def _usage(usage: Any) -> tuple[int | None, int | None]:
    if usage is None:
        return None, None
    return usage.prompt_tokens, usage.completion_tokens


_PROVIDER = _OpenAIProvider()


@miniagent(alias="OPENAI_AGENT")
async def openai_agent(
    ctx: InteractionContext,
    /,
    model: str | None = None,
    stream: bool | None = None,
    system: str | None = None,
    async_client: openai_sdk.AsyncOpenAI | None = None,
    **kwargs: Any,
) -> None:
    """An OpenAI chat model: the input messages are the prompt, the reply streams back.

    Args:
        ctx: The interaction.
        model: The model, e.g. "gpt-4o-mini" (required).
        stream: Stream token by token (default: the ``MiniAgents`` setting, on).
        system: A system prompt, put before the texts of any ``SystemMessage``.
        async_client: An ``openai.AsyncOpenAI`` client to use instead of the default one.
        **kwargs: Passed to ``chat.completions.create`` unchanged (``max_tokens``,
            ``temperature``, ...).
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


create_openai_agent = openai_agent.bind
"""An OpenAI agent with arguments bound: ``openai_agent.fork(...)``, with the arguments typed."""
