"""Anthropic agents: ``anthropic_agent`` and ``create_anthropic_agent`` (Messages API).

The SDK is imported when a call is made; without it, the call fails with an
``LLMSDKMissingError`` (an ``ImportError``) that says ``pip install "miniagents[anthropic]"``.
The client comes from ``async_client=`` or is made from the environment
(``ANTHROPIC_API_KEY`` or ``ANTHROPIC_AUTH_TOKEN``, ``ANTHROPIC_BASE_URL``), once per
``MiniAgents`` context. The
Messages API requires ``max_tokens``; it defaults to :data:`DEFAULT_MAX_TOKENS`.

Tools go in ``tools`` (``input_schema``: their JSON schema); the model's calls come back as
``tool_use`` blocks (streamed: ``input_json_delta`` events), and go back to it as those
blocks in the assistant message and ``tool_result`` blocks (with ``is_error``) first in the
next user message. With extended thinking (``extra_options={"thinking": {...}}``), the
thinking blocks the model writes before its first call of a turn (``thinking``, with its
``signature``, or ``redacted_thinking``) are kept, as JSON, as that call's
``LLMToolCallMessage.thought_signature`` (in a saved history too), and sent back first in
the turn's assistant message: the API refuses a tool loop's next request without them
(later calls of the turn keep those written just before them, sent back before their
``tool_use`` blocks). A message's images are ``image`` blocks before its text (a ``url``
source, or a ``base64`` one for bytes), as Anthropic advises.

An error event that comes before the reply's first token (its first text, or a tool
call), as an overloaded API sends after a 200 that the SDK cannot retry, is what its HTTP
status would have been: ``overloaded_error`` and ``api_error`` an ``LLMServerError``,
``rate_limit_error`` an ``LLMRateLimitError`` (any later, or any other, error event is an
``LLMResponseError``: the reply broke).

A reply that ends with ``stop_reason="refusal"`` (the model declined, its text so far is
the refusal) fails with an ``LLMRefusalError`` carrying that text, and is not retried. One
that ends with ``stop_reason="pause_turn"`` (the API paused a long turn of its server tools,
given in ``extra_options``, before the model answered) fails with an ``LLMResponseError``:
the agent does not send the paused content back to continue it.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, ParamSpec

from miniagents.arguments import check_count
from miniagents.ext.llm._turn_chars import KeptThoughts, TurnCount, count_reasoning
from miniagents.ext.llm.errors import (
    LLMAuthenticationError,
    LLMConfigurationError,
    LLMResponseError,
)
from miniagents.ext.llm.llm_agent import AnyLLMAgent, LLMAgent
from miniagents.ext.llm.messages import AssistantMessage
from miniagents.ext.llm.prompt import (
    ConversationRules,
    PromptItem,
    PromptText,
    arguments_object,
    kept_thoughts,
    put_thoughts,
    thoughts_json,
    turns_for,
)
from miniagents.ext.llm.provider import (
    Finish,
    LLMCall,
    LLMEvent,
    OutputFormat,
    ToolCallDelta,
    ToolCallStart,
    call_option,
    check_sampling,
)
from miniagents.ext.llm.sdk_calls import (
    SDKOptions,
    accepts,
    base_url_source,
    client_with_options,
    import_sdk,
    sdk_arguments,
    tool_declaration,
    whole_reply,
)
from miniagents.ext.llm.sdk_errors import (
    adrain_closed,
    raised_event,
    reported_error,
    translate_loaded_sdk_error,
)
from miniagents.ext.tools.messages import ToolCallMessage
from miniagents.miniagents.context import MiniAgents

if TYPE_CHECKING:
    import anthropic as anthropic_sdk

    from miniagents.ext.llm.llm_agent import ForkArguments, TypedFork

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "AnthropicAgent",
    "AnthropicMessage",
    "AnthropicOptions",
    "AnthropicProvider",
    "anthropic_agent",
    "create_anthropic_agent",
]

DEFAULT_MAX_TOKENS: Final = 4096
"""``max_tokens`` when the agent and the call give none (the Messages API requires it)."""

_KEY_VARIABLES = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
"""The environment variables the SDK's client takes its credentials from: an API key, or a
bearer token (sent as ``Authorization: Bearer``, e.g. for a gateway in front of the API)."""


def _key_in_environment() -> bool:
    """Whether the environment gives the SDK's client a key: an API key or a bearer token."""
    return any(os.environ.get(name) for name in _KEY_VARIABLES)


class AnthropicMessage(AssistantMessage):
    """A reply of an Anthropic model."""


@dataclass(frozen=True, kw_only=True)
class AnthropicOptions(SDKOptions):
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
        top_k: Sample only from this many most likely tokens.
        stop_sequences: Texts at which the model stops.
    """

    client_classes = (
        "anthropic.AsyncAnthropic",
        "anthropic.AsyncAnthropicBedrock",
        "anthropic.AsyncAnthropicVertex",
    )
    sdk_name = "Anthropic"
    most_temperature = 1

    async_client: (
        anthropic_sdk.AsyncAnthropic
        | anthropic_sdk.AsyncAnthropicBedrock
        | anthropic_sdk.AsyncAnthropicVertex
        | None
    ) = None
    max_tokens: int = call_option(DEFAULT_MAX_TOKENS)
    top_k: int | None = call_option(None)
    stop_sequences: Sequence[str] | None = call_option(None)

    def check(self, alias: str) -> None:
        """Refuse an argument of the wrong kind: every LLM agent's, and Anthropic's own.

        Raises:
            LLMConfigurationError: for one of the wrong kind, naming it and the fix.
        """
        super().check(alias)
        fix = (
            f"The Messages API requires one: e.g. {alias.lower()}.fork(max_tokens=1024), or "
            f"leave it out for the default, {DEFAULT_MAX_TOKENS}."
        )
        owner = f"The agent {alias}"
        check_count(
            self.max_tokens, "max_tokens", owner=owner, fix=fix, error=LLMConfigurationError
        )
        check_sampling(alias, top_k=self.top_k)


class AnthropicProvider:
    """Streams replies of the Messages API (see ``LLMProvider``)."""

    message_class = AnthropicMessage
    price_provider = "anthropic"  # whose prices it pays (see miniagents.ext.llm.pricing)

    @staticmethod
    def client(options: AnthropicOptions) -> Any:
        """The SDK client a call with ``options`` uses (batch mode sends through a copy).

        It is ``async_client``, else the context's, with the options' retries and timeout.
        """
        return _client(options)

    async def reply(self, call: LLMCall, options: AnthropicOptions) -> AsyncIterator[LLMEvent]:
        """Stream the reply's tokens, then one ``Finish``."""
        create, messages, arguments = _request(call, options)
        if not call.stream:
            reply = await create(model=call.model, messages=messages, **arguments)
            for event in _whole_reply(whole_reply(reply, "Anthropic")):
                yield event
            return
        stop_reason: str | None = None
        prompt: tuple[int | None, int | None, int | None] = (None, None, None)
        output_tokens: int | None = None
        answered: str | None = None  # the model that answered
        message_id: str | None = None  # the reply's id
        stopped = False
        calls: dict[int, str] = {}  # the id of each tool_use block, by its index
        kept = _Thinking()  # the thinking blocks (counted toward the turn's characters)
        begun = False  # whether the reply's first token (a text, a call) came
        stream = await create(model=call.model, messages=messages, stream=True, **arguments)
        del create, arguments, messages  # (not held while it streams)
        try:
            async with stream:
                async for event in stream:
                    kind = event.type
                    if kind == "content_block_delta":  # most events: a token, tested first
                        delta = event.delta
                        if delta.type == "text_delta":  # (counted by the turn, as it takes it)
                            begun = True
                            yield delta.text
                            continue
                        if delta.type == "input_json_delta":
                            yield ToolCallDelta(calls.get(event.index, ""), delta.partial_json)
                            continue
                        kept.delta(event.index, delta)
                    elif kind == "message_start":
                        prompt = _input_usage(event.message.usage)
                        answered = event.message.model
                        message_id = event.message.id
                    elif kind == "content_block_start":
                        block = event.content_block
                        if block.type == "tool_use":
                            begun = True
                            calls[event.index] = block.id
                            signed = kept.taken()
                            yield ToolCallStart(block.id, block.name, thought_signature=signed)
                            continue
                        kept.start(event.index, block)
                    elif kind == "message_delta":
                        stop_reason = event.delta.stop_reason
                        output_tokens = event.usage.output_tokens
                    elif kind == "message_stop":
                        stopped = True
                    yield ""  # nothing for the reply (thinking, a block's edge): a sign of life
        except BaseException as error:  # stopped part-way (a budget, a reader gone, an error)
            await adrain_closed(stream)  # (its response closed as the `async with` ended)
            if (raised := raised_event(error)) is not None:  # (an error event of the SDK's)
                raise reported_error("Anthropic", *raised, begun=begun) from error
            raise
        if not stopped:
            raise LLMResponseError(
                "The Anthropic stream ended before its message_stop event "
                "(the reply is incomplete)."
            )
        yield Finish(
            stop_reason,
            prompt[0],
            output_tokens,
            prompt[1],
            prompt[2],
            model=answered,
            response_id=message_id,
        )

    def translate(self, error: BaseException) -> BaseException:
        """The ``LLMError`` for an error of the Anthropic SDK, else ``error``."""
        return translate_loaded_sdk_error(error, "anthropic", "Anthropic", "AnthropicError")


def _request(
    call: LLMCall, options: AnthropicOptions
) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """The SDK's ``messages.create`` for ``options``, the messages and the other arguments.

    Raises:
        LLMAuthenticationError: with no client given and no API key in the environment.
    """
    api = _client(options)
    create = api.messages.create
    arguments = sdk_arguments(create, options, "The Anthropic SDK's messages")
    if call.system:
        arguments["system"] = call.system
    if call.tools:
        arguments["tools"] = [
            tool_declaration(tool, input_schema=tool.parameters) for tool in call.tools
        ]
    if call.output_format is not None:
        _ask_output_format(create, arguments, call.output_format)
    return create, _messages(call), arguments


def _client(options: AnthropicOptions) -> Any:
    """The client of a call: ``async_client``, else the context's (with the retries, timeout).

    Raises:
        LLMAuthenticationError: with no client given and no API key in the environment.
        LLMSDKMissingError: without the SDK (and no client given).
    """
    api: Any = options.async_client
    if api is None:  # the context's client (a client given means the SDK is installed)
        sdk = import_sdk("anthropic", "Anthropic")
        if not _key_in_environment():
            raise LLMAuthenticationError(
                "No Anthropic API key: set ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN, a "
                "bearer token), or pass async_client=anthropic.AsyncAnthropic(api_key=...) "
                "to the agent."
            )
        api = MiniAgents.get_current().resource(
            "anthropic-client", sdk.AsyncAnthropic, lambda made: made.close()
        )
    source = _ENVIRONMENTS_URL if options.async_client is None else _GIVEN_CLIENTS_URL
    return client_with_options(api, options.max_retries, options.timeout, "anthropic_agent", source)


_ENVIRONMENTS_URL = base_url_source("ANTHROPIC_BASE_URL", given=False)
_GIVEN_CLIENTS_URL = base_url_source("ANTHROPIC_BASE_URL", given=True)
"""Where a client's base URL was set, for the error about a malformed one."""


def _whole_reply(reply: Any) -> Iterator[LLMEvent]:
    """The events of a reply that was not streamed: its text, its tool calls, its ``Finish``.

    Its thinking blocks, kept with its calls, count toward
    ``MiniAgents(llm_max_turn_chars=...)`` with its text and arguments (which the turn
    counts as it takes them), as a streamed reply's do (see :class:`_Thinking`).

    Raises:
        LLMResponseError: if it has no ``stop_reason``: Anthropic documents one in every
            whole reply, so a null one is a message not finished (as a stream that ends
            before its ``message_stop`` event is); past the turn's bound, ``too_long()``'s
            (the turn gives its own error in its place).
    """
    if reply.stop_reason is None:
        raise LLMResponseError(
            "Anthropic sent a whole reply with no stop_reason (the API always gives one to a "
            "finished message): the reply is incomplete. Check that the base URL is the API's "
            "(not a proxy that cuts replies short), or call it again."
        )
    text = "".join(block.text for block in reply.content if block.type == "text")
    counted: TurnCount | None = None  # the turn's count: its thinking counts as a stream's
    events: list[LLMEvent] = []
    thought: list[dict[str, Any]] = []  # the thinking blocks since the last call
    for block in reply.content:
        if block.type == "tool_use":
            given = block.input
            arguments = given if isinstance(given, str) else json.dumps(given)
            events.append(
                ToolCallStart(block.id, block.name, thought_signature=thoughts_json(thought))
            )
            events.append(ToolCallDelta(block.id, arguments))
            thought = []
        else:
            thinking = _thought(block)
            if thinking is not None:
                counted = count_reasoning(counted, _thought_chars(thinking))
                thought.append(thinking)
    yield text
    yield from events
    total, read, written = _input_usage(reply.usage)
    yield Finish(
        reply.stop_reason,
        total,
        reply.usage.output_tokens,
        read,
        written,
        model=reply.model,
        response_id=reply.id,
    )


class _Thinking(KeptThoughts[dict[str, Any]]):
    """The thinking blocks of a streamed reply, kept to go back with its calls (counted)."""

    __slots__ = ()

    def start(self, index: int, block: Any) -> None:
        """Keep the block ``block`` (at ``index``) if it is a thinking block."""
        thinking = _thought(block)
        if thinking is not None:
            self.spend(_thought_chars(thinking))
            self.blocks[index] = thinking
            self.since_call.append(thinking)

    def delta(self, index: int, delta: Any) -> None:
        """Add a piece of thinking (or of its signature) to the block at ``index``."""
        thinking = self.blocks.get(index)
        if thinking is not None and delta.type == "thinking_delta":
            self.spend(len(delta.thinking))
            thinking["thinking"] += delta.thinking
        elif thinking is not None and delta.type == "signature_delta":
            self.spend(len(delta.signature))
            thinking["signature"] += delta.signature

    def kept(self, block: dict[str, Any]) -> Mapping[str, object]:
        return block  # (kept as it goes back)


def _thought(block: Any) -> dict[str, Any] | None:
    """A thinking block of a reply as it goes back to the API, or ``None`` for another block.

    A streamed ``thinking`` block starts empty: its ``thinking_delta`` and
    ``signature_delta`` events fill it in.
    """
    if block.type == "thinking":
        thinking = getattr(block, "thinking", None) or ""
        signature = getattr(block, "signature", None) or ""
        return {"type": "thinking", "thinking": thinking, "signature": signature}
    if block.type == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.data}
    return None


def _thought_chars(thinking: dict[str, Any]) -> int:
    """The characters of a thinking block that count toward the turn (all but its type)."""
    return sum(len(value) for key, value in thinking.items() if key != "type")


def _thinking_of(item: PromptItem) -> list[dict[str, Any]]:
    """The thinking blocks a call's message keeps (``thoughts_json``), if any.

    Another API's signature (Gemini's, base64) is not a list of thinking blocks: none.
    """
    blocks = kept_thoughts(item)
    thinking = [each for each in blocks if isinstance(each, dict) and each.get("type") in _THOUGHTS]
    return thinking if len(thinking) == len(blocks) else []


_THOUGHTS = ("thinking", "redacted_thinking")
"""The types of the thinking blocks a tool loop sends back."""


def _input_usage(usage: Any) -> tuple[int | None, int | None, int | None]:
    """Every prompt token (the cache's included), the cache reads, the cache writes."""
    read = getattr(usage, "cache_read_input_tokens", None)
    written = getattr(usage, "cache_creation_input_tokens", None)
    total = usage.input_tokens
    if total is not None:
        total += (read or 0) + (written or 0)
    return total, read, written


def _messages(call: LLMCall) -> list[dict[str, Any]]:
    """The conversation in the Messages API's terms, a message per turn (see ``turns_for``).

    The roles alternate from the user's (as Claude on Bedrock and Vertex AI require, and
    Anthropic's own API makes of any conversation): a turn of tool calls is the assistant's
    message (``tool_use`` blocks after its text, if any; the thinking blocks its first call
    keeps, first of all), their results ``tool_result`` blocks of the user's next message,
    first. A turn of one text is the message's text; the last assistant text ends with no
    whitespace (the API refuses it there).
    """
    messages: list[dict[str, Any]] = []
    for turn in turns_for(call.messages, _CONVERSATION):
        only = turn.items[0]
        if len(turn.items) == 1 and isinstance(only, PromptText):
            content: str | list[dict[str, Any]] = _content(only)
        else:
            content = []
            called = False  # whether the turn has a call yet (its thinking goes first)
            for item in turn.items:
                put_thoughts(content, _thinking_of(item), called=called)
                called = called or isinstance(item, ToolCallMessage)
                content += _blocks(item)
        messages.append({"role": turn.role, "content": content})
    return messages


_CONVERSATION = ConversationRules(trim_last=True)
"""What the Messages API takes: user and assistant turns, alternating from the user's, no
blank text, no whitespace at the end of the last assistant text."""


def _blocks(item: PromptItem) -> list[dict[str, Any]]:
    """An item's content blocks: a message's (its images, its text), a call's, a result's."""
    if isinstance(item, PromptText):
        content = _content(item)
        return [{"type": "text", "text": content}] if isinstance(content, str) else content
    if isinstance(item, ToolCallMessage):
        used = {"type": "tool_use", "id": item.call_id, "name": item.tool_name}
        return [{**used, "input": arguments_object(item)}]
    return [
        {
            "type": "tool_result",
            "tool_use_id": item.call_id,
            "content": item.text,
            "is_error": item.is_error,
        }
    ]


def _content(item: PromptText) -> str | list[dict[str, Any]]:
    """A message's content: its text, or its image blocks then its text (if not blank)."""
    if not item.images:
        return item.text
    blocks: list[dict[str, Any]] = []
    for image in item.images:
        if image.data is None:
            source: dict[str, Any] = {"type": "url", "url": image.url}
        else:
            source = {"type": "base64", "media_type": image.media_type, "data": image.base64}
        blocks.append({"type": "image", "source": source})
    if item.text.strip():  # (the API refuses a text block of whitespace only)
        blocks.append({"type": "text", "text": item.text})
    return blocks


def _ask_output_format(create: Any, arguments: dict[str, object], output: OutputFormat) -> None:
    """Ask for structured output (``output_config.format``), in the body for an older SDK."""
    given = arguments.get("output_config")
    config = {**(given if isinstance(given, Mapping) else {})}
    config["format"] = {"type": "json_schema", "schema": dict(output.schema)}
    if accepts(create, "output_config"):
        arguments["output_config"] = config
    else:
        body = arguments.get("extra_body")
        body = {**(body if isinstance(body, Mapping) else {}), "output_config": config}
        arguments["extra_body"] = body


P = ParamSpec("P")


if TYPE_CHECKING:

    @dataclass(frozen=True, kw_only=True)
    class _AnthropicFork(AnthropicOptions, ForkArguments):
        """What ``anthropic_agent.fork`` takes: its arguments, and a fork's name and limits."""


class AnthropicAgent(LLMAgent[P, AnthropicMessage], AnyLLMAgent[AnthropicMessage]):
    """The class of ``anthropic_agent`` and its forks, an ``AnyLLMAgent`` (see ``llm_agent``)."""

    __slots__ = ()

    if TYPE_CHECKING:
        fork = TypedFork(_AnthropicFork)  # type: ignore[assignment]  # (see TypedFork)


anthropic_agent = AnthropicAgent.of(
    AnthropicOptions,
    AnthropicProvider(),
    alias="ANTHROPIC_AGENT",
    summary="An Anthropic model: the input messages are the prompt, the reply streams back.",
)
"""An Anthropic model (Messages API): the input messages are the prompt."""

create_anthropic_agent = anthropic_agent.bind
"""An Anthropic agent with arguments bound: ``anthropic_agent.fork(...)``, arguments typed."""
