"""OpenAI agents: ``openai_agent`` and ``create_openai_agent`` (Chat Completions).

The SDK is imported when a call is made; without it, the call fails with an
``LLMSDKMissingError`` (an ``ImportError``) that says ``pip install "miniagents[openai]"``.
The client comes from ``async_client=`` or is made from the environment
(``OPENAI_API_KEY``, ``OPENAI_BASE_URL``), once per ``MiniAgents`` context.

Tools go in ``tools`` as functions; the model's calls come back as ``tool_calls`` (streamed:
the id and name first, then the arguments in deltas), and go back to it as an assistant
message's ``tool_calls`` followed by one ``tool`` message per result.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from miniagents.ext.llm.errors import LLMAuthenticationError, LLMResponseError
from miniagents.ext.llm.llm_agent import make_llm_agent
from miniagents.ext.llm.messages import AssistantMessage
from miniagents.ext.llm.prompt import PromptText, arguments_json
from miniagents.ext.llm.provider import (
    Finish,
    LLMCall,
    LLMEvent,
    LLMOptions,
    OutputFormat,
    ToolCallDelta,
    ToolCallStart,
    call_option,
)
from miniagents.ext.llm.sdk_calls import import_sdk, sdk_arguments
from miniagents.ext.llm.sdk_errors import translate_loaded_sdk_error
from miniagents.ext.tools.messages import ToolCallMessage
from miniagents.ext.tools.tool import Tool
from miniagents.miniagents.context import MiniAgents

if TYPE_CHECKING:
    import openai as openai_sdk

__all__ = [
    "OpenAIMessage",
    "OpenAIOptions",
    "OpenAIProvider",
    "create_openai_agent",
    "openai_agent",
]


class OpenAIMessage(AssistantMessage):
    """A reply of an OpenAI model."""


@dataclass(frozen=True, kw_only=True)
class OpenAIOptions(LLMOptions):
    """The arguments of ``openai_agent``: those of every LLM agent, and OpenAI's own.

    The call options are those of ``chat.completions.create``, by the SDK's names; any
    other one goes in ``extra_options``.

    Attributes:
        model: The model, e.g. "gpt-4o-mini" (required).
        async_client: An ``openai.AsyncOpenAI`` client to use instead of the default one.
        max_tokens: The most tokens the reply may have.
        max_completion_tokens: The most tokens the reply may have, reasoning tokens
            included (what reasoning models take instead of ``max_tokens``).
        temperature: The sampling temperature, from 0 to 2: higher is more random.
        top_p: Sample only from the most likely tokens that make up this probability.
        stop: A text, or up to 4 texts, at which the model stops.
        seed: A seed, so that repeated calls sample alike (as far as the service can).
        presence_penalty: From -2 to 2: higher makes new topics more likely.
        frequency_penalty: From -2 to 2: higher makes repeated tokens less likely.
        logit_bias: A bias from -100 to 100 per token id (given as a string).
        reasoning_effort: How hard a reasoning model thinks, e.g. "low" or "high".
    """

    async_client: openai_sdk.AsyncOpenAI | None = None
    max_tokens: int | None = call_option(None)
    max_completion_tokens: int | None = call_option(None)
    temperature: float | None = call_option(None)
    top_p: float | None = call_option(None)
    stop: str | Sequence[str] | None = call_option(None)
    seed: int | None = call_option(None)
    presence_penalty: float | None = call_option(None)
    frequency_penalty: float | None = call_option(None)
    logit_bias: Mapping[str, int] | None = call_option(None)
    reasoning_effort: str | None = call_option(None)


class OpenAIProvider:
    """Streams replies of the Chat Completions API (see ``LLMProvider``)."""

    message_class = OpenAIMessage

    async def reply(self, call: LLMCall, options: OpenAIOptions) -> AsyncIterator[LLMEvent]:
        """Stream the reply's tokens, then one ``Finish``."""
        sdk = import_sdk("openai", "OpenAI")
        api: Any = options.async_client
        if api is None:
            api = MiniAgents.get_current().resource(
                "openai-client", lambda: _client_from_environment(sdk), lambda made: made.close()
            )
        messages = _messages(call)
        create = api.chat.completions.create
        arguments = sdk_arguments(create, options, "The OpenAI SDK's chat.completions")
        if call.tools:
            arguments["tools"] = [_tool(tool) for tool in call.tools]
        if call.output_format is not None:
            arguments["response_format"] = _response_format(call.output_format)
        if not call.stream:
            completion = await create(model=call.model, messages=messages, **arguments)
            choice = completion.choices[0]
            yield choice.message.content or ""
            for called in choice.message.tool_calls or ():
                function = getattr(called, "function", None)  # not a "custom" tool call
                if function is not None:
                    yield ToolCallStart(called.id, function.name)
                    yield ToolCallDelta(called.id, function.arguments or "")
            yield Finish(choice.finish_reason, *_usage(completion.usage))
            return
        arguments.setdefault("stream_options", {"include_usage": True})
        stream_options = arguments["stream_options"]
        wants_usage = isinstance(stream_options, Mapping) and bool(
            stream_options.get("include_usage")
        )
        finish_reason: str | None = None
        usage = None
        ids: dict[int, str] = {}  # the id of each call, by its index in the reply
        stream = await create(model=call.model, messages=messages, stream=True, **arguments)
        async with stream:
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices[:1]:
                    delta = choice.delta
                    if delta is not None and delta.content:
                        yield delta.content
                    for called in (delta.tool_calls if delta is not None else None) or ():
                        for event in _call_events(called, ids):
                            yield event
                    if choice.finish_reason is not None:
                        finish_reason = choice.finish_reason
        if finish_reason is None or (wants_usage and usage is None):
            raise LLMResponseError(
                "The OpenAI stream ended before its final event (the reply is incomplete)."
            )
        yield Finish(finish_reason, *_usage(usage))

    def translate(self, error: BaseException) -> BaseException:
        """The ``LLMError`` for an error of the OpenAI SDK, else ``error``."""
        return translate_loaded_sdk_error(error, "openai", "OpenAI", "OpenAIError")


def _client_from_environment(sdk: Any) -> Any:
    try:
        return sdk.AsyncOpenAI()
    except sdk.OpenAIError as error:
        raise LLMAuthenticationError(
            "No OpenAI API key: set OPENAI_API_KEY, or pass "
            "async_client=openai.AsyncOpenAI(api_key=...) to the agent."
        ) from error


def _messages(call: LLMCall) -> list[dict[str, Any]]:
    """The conversation in Chat Completions' terms.

    A run of tool calls joins the assistant message before it (or makes one); each result
    is a ``tool`` message.
    """
    messages: list[dict[str, Any]] = []
    if call.system:
        messages.append({"role": "system", "content": call.system})
    for item in call.messages:
        if isinstance(item, PromptText):
            messages.append({"role": item.role, "content": item.text})
        elif isinstance(item, ToolCallMessage):
            last = messages[-1] if messages else None
            if last is None or last["role"] != "assistant":
                last = {"role": "assistant", "content": None}
                messages.append(last)
            function = {"name": item.tool_name, "arguments": arguments_json(item)}
            entry = {"id": item.call_id, "type": "function", "function": function}
            last.setdefault("tool_calls", []).append(entry)
        else:
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": item.text})
    return messages


def _tool(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def _response_format(output: OutputFormat) -> dict[str, Any]:
    schema: dict[str, Any] = {"name": output.name, "schema": dict(output.schema)}
    schema["strict"] = output.strict
    if output.description:
        schema["description"] = output.description
    return {"type": "json_schema", "json_schema": schema}


def _call_events(called: Any, ids: dict[int, str]) -> list[LLMEvent]:
    """The events of one ``tool_calls`` delta: a start for a new index, then its arguments."""
    events: list[LLMEvent] = []
    function = called.function
    call_id = ids.get(called.index)
    if call_id is None:
        call_id = ids[called.index] = called.id or f"call_{called.index}"
        events.append(ToolCallStart(call_id, (function.name if function else None) or ""))
    if function is not None and function.arguments:
        events.append(ToolCallDelta(call_id, function.arguments))
    return events


def _usage(usage: Any) -> tuple[int | None, int | None]:
    if usage is None:
        return None, None
    return usage.prompt_tokens, usage.completion_tokens


openai_agent = make_llm_agent(
    OpenAIOptions,
    OpenAIProvider(),
    alias="OPENAI_AGENT",
    summary="An OpenAI chat model: the input messages are the prompt, the reply streams back.",
)
"""An OpenAI chat model (Chat Completions): the input messages are the prompt."""

create_openai_agent = openai_agent.bind
"""An OpenAI agent with arguments bound: ``openai_agent.fork(...)``, with the arguments typed."""
