"""AWS Bedrock agents: ``bedrock_agent`` and ``create_bedrock_agent`` (Converse / ConverseStream).

Converse is Bedrock's one wire format for every model family it serves (Anthropic's
Claude, Amazon Nova, Meta's Llama, Mistral, Cohere, DeepSeek, ...): the agent speaks it
through aiobotocore, the asyncio port of botocore (the library under boto3), which signs
each request (AWS Signature Version 4) and parses the binary event stream of a streamed
reply. (aiobotocore rather than aioboto3: aioboto3 is aiobotocore plus boto3's resource
layer, which the Bedrock runtime has none of; aiobotocore alone is the smaller install
and the client both give.) Without it, a call fails with an ``LLMSDKMissingError`` (an
``ImportError``) that says ``pip install "miniagents[bedrock]"``.

The client comes from ``async_client=`` (an aiobotocore ``bedrock-runtime`` client, left
open) or is made once per ``MiniAgents`` context (and setting of ``max_retries``,
``timeout`` and ``region``) as botocore makes one from the environment: the credentials of
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (/ ``AWS_SESSION_TOKEN``), a profile, an
instance role, or a Bedrock API key in ``AWS_BEARER_TOKEN_BEDROCK``; the region of
``region=``, else ``AWS_REGION``, else botocore's (``AWS_DEFAULT_REGION``, its config
file); the endpoint of
``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` (or ``AWS_ENDPOINT_URL``), if set::

    call:     system "Be brief." | user "What is this?" + image | call c1 | result c1
    request:  system=[{"text": "Be brief."}]
              {"role": "user", "content": [{"text": ...}, {"image": {"format", "source"}}]}
              {"role": "assistant", "content": [{"toolUse": {"toolUseId", "name", "input"}}]}
              {"role": "user", "content": [{"toolResult": {"toolUseId", "content", "status"}}]}
    stream:   messageStart | contentBlockDelta (reasoningContent: text, signature, or
              redactedContent; thinking only) | contentBlockDelta text tokens |
              contentBlockStart (toolUse: id, name) | contentBlockDelta (toolUse input
              JSON) | messageStop (the stop reason) | metadata (the usage)

Converse takes an image's bytes only (``ImagePart(data=...)``, PNG, JPEG, GIF or WebP): an
image given by URL is refused before the request (``LLMConfigurationError``). It refuses
a blank text block, so an empty message is left out. Structured output is
``outputConfig.textFormat`` (a JSON schema), on the models that take it.

With Claude's extended thinking (``extra_options={"additionalModelRequestFields":
{"thinking": {"type": "enabled", "budget_tokens": 1024}}}``), the reasoning blocks the
model writes before its first call of a turn (``reasoningContent``: a ``reasoningText``
with its ``signature``, or ``redactedContent``) are kept, as JSON (the redacted bytes in
base64), as that call's ``LLMToolCallMessage.thought_signature`` (in a saved history too),
and sent back first in the turn's assistant message: the model refuses a tool loop's next
request without them (later calls of the turn keep those written just before them, sent
back before their ``toolUse`` blocks).

A reply stopped by a guardrail (``guardrail_intervened``) or a content filter
(``content_filtered``) fails with an ``LLMRefusalError`` carrying its text, and is not
retried.

An exception of the event stream before the reply's first token (its first text, or a
tool call) is what its HTTP status would have been: ``throttlingException`` an
``LLMRateLimitError``, ``internalServerException`` and ``serviceUnavailableException`` an
``LLMServerError``; after a token, or any other exception (``modelStreamErrorException``,
``validationException``), an ``LLMResponseError``: part of the reply reached its readers
(``sdk_errors.reported_error`` decides, as for every provider).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, ParamSpec

from miniagents.ext.llm._turn_chars import KeptThoughts, TurnCount, count_reasoning
from miniagents.ext.llm.errors import (
    LLMAuthenticationError,
    LLMConfigurationError,
    LLMConnectionError,
    LLMError,
    LLMRateLimitError,
    LLMRequestError,
    LLMResponseError,
    LLMServerError,
    LLMTimeoutError,
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
    ToolCallDelta,
    ToolCallStart,
    call_option,
    check_kind,
    check_sampling,
)
from miniagents.ext.llm.sdk_calls import (
    SDKOptions,
    base_url_source,
    check_base_url,
    import_sdk,
    tool_declaration,
)
from miniagents.ext.llm.sdk_errors import (
    adrain_closed,
    made_error,
    reported_error,
    transient_status,
    translate_transport_error,
)
from miniagents.ext.tools.messages import ToolCallMessage
from miniagents.ext.tools.tool import Tool
from miniagents.miniagents.context import MiniAgents

if TYPE_CHECKING:
    from types_aiobotocore_bedrock_runtime import BedrockRuntimeClient

    from miniagents.ext.llm.llm_agent import ForkArguments, TypedFork

__all__ = [
    "REFUSAL_REASONS",
    "BedrockAgent",
    "BedrockMessage",
    "BedrockOptions",
    "BedrockProvider",
    "bedrock_agent",
    "create_bedrock_agent",
]

REFUSAL_REASONS: Final = frozenset({"guardrail_intervened", "content_filtered"})
"""The stop reasons of a reply that Bedrock withheld: a refusal."""

_MALFORMED: Final = {
    "malformed_tool_use": "the model wrote a tool call that could not be parsed",
    "malformed_model_output": "the model wrote a reply that could not be parsed",
}
"""The stop reasons of a reply that is no answer (its calls not to be run), with what each
means."""

_INFERENCE = {
    "max_tokens": "maxTokens",
    "temperature": "temperature",
    "top_p": "topP",
    "stop_sequences": "stopSequences",
}
"""The typed options, by their ``inferenceConfig`` names."""

_SET_BY_THE_AGENT = frozenset(
    {"modelId", "messages", "system", "inferenceConfig", "toolConfig", "outputConfig"}
)
"""The Converse parameters the agent sets itself (``extra_options`` may add to the last
three's own fields only through the typed options and tools)."""


class BedrockMessage(AssistantMessage):
    """A reply of a model on AWS Bedrock."""


@dataclass(frozen=True, kw_only=True)
class BedrockOptions(SDKOptions):
    """The arguments of ``bedrock_agent``: those of every LLM agent, and Bedrock's own.

    The call options go in Converse's ``inferenceConfig``; any other Converse parameter
    goes in ``extra_options`` by its API name (e.g. ``{"guardrailConfig": {...},
    "additionalModelRequestFields": {"top_k": 40}, "performanceConfig": {...}}``).

    Attributes:
        model: The model id or inference profile, e.g.
            "us.anthropic.claude-3-5-haiku-20241022-v1:0" or "amazon.nova-lite-v1:0"
            (required).
        async_client: An aiobotocore ``bedrock-runtime`` client instead of the default one
            (the agent leaves it open; ``max_retries``, ``timeout`` and ``region`` are then
            its own, set when it was made).
        region: The AWS region (default: the environment's, ``AWS_REGION``).
        max_tokens: The most tokens the reply may have (``maxTokens``).
        temperature: The sampling temperature, from 0 to 1: higher is more random.
        stop_sequences: Texts at which the model stops.
        max_retries: How many times botocore retries a request that failed with a
            throttling error, a 5xx or a broken connection before its reply began (its
            "standard" mode, with backoff); ``None``: botocore's own setting.
        timeout: Seconds to wait to connect, and then for each read of the reply, before
            the request fails with an ``LLMTimeoutError``; ``None``: botocore's (60 s).
    """

    client_classes = ("aiobotocore.client.AioBaseClient",)
    sdk_name = "Bedrock"
    most_temperature = 1
    own_setting = "botocore's own setting"

    async_client: BedrockRuntimeClient | None = None
    region: str | None = None
    max_tokens: int | None = call_option(None)
    stop_sequences: Sequence[str] | None = call_option(None)

    def check(self, alias: str) -> None:
        """Refuse an argument of the wrong kind: every LLM agent's, and Bedrock's own.

        Raises:
            LLMConfigurationError: for one of the wrong kind, naming it and the fix.
        """
        super().check(alias)
        check_kind(self.region, str, alias, "region", "a str", 'region="us-east-1"')
        if self.async_client is not None and (
            self.max_retries is not None or self.timeout is not None or self.region
        ):
            raise LLMConfigurationError(
                f"The agent {alias} has its own async_client, so max_retries, timeout and "
                "region are that client's: set them when you make it, e.g. "
                "session.create_client('bedrock-runtime', region_name=..., config=AioConfig("
                "retries={'max_attempts': 1}, read_timeout=30)), or give no client."
            )
        check_sampling(alias, max_tokens=self.max_tokens)


class BedrockProvider:
    """Streams replies of Bedrock's Converse API (see ``LLMProvider``)."""

    message_class = BedrockMessage
    price_provider = "aws"  # whose prices it pays (see miniagents.ext.llm.pricing)
    provider_name = "aws.bedrock"  # the OpenTelemetry GenAI conventions' name

    async def reply(self, call: LLMCall, options: BedrockOptions) -> AsyncIterator[LLMEvent]:
        """Stream the reply's tokens and calls, then one ``Finish``."""
        client = await _client(options)
        arguments = _arguments(client, call, options)
        if not call.stream:
            response = await client.converse(**arguments)
            for event in _whole_reply(response, call):
                yield event
            return
        response = await client.converse_stream(**arguments)
        del client, arguments  # (not held while it streams)
        stream = response["stream"]
        stop_reason: str | None = None
        usage: dict[str, Any] | None = None
        stopped = False
        calls: dict[int, str] = {}  # the id of each toolUse block, by its index
        kept = _Reasonings()  # the reasoning blocks (counted toward the turn's characters)
        begun = False  # whether the reply's first token (a text, a call) came
        try:
            async for event in stream:
                # (per token: no call but the generator's, lookups and subscripts only)
                if "contentBlockDelta" in event:  # most events: a token, tested first
                    delta = event["contentBlockDelta"]
                    try:
                        piece = delta["delta"]
                    except KeyError:  # botocore leaves out what it could not parse
                        raise LLMResponseError(
                            "Bedrock sent a malformed contentBlockDelta event (no delta)."
                        ) from None
                    if "text" in piece:  # (counted by the turn, as it takes it)
                        begun = True
                        yield piece["text"]
                        continue
                    used = piece.get("toolUse")
                    if used is not None:
                        begun = True
                        index = delta.get("contentBlockIndex", 0)
                        yield ToolCallDelta(calls.get(index, ""), used.get("input", ""))
                        continue
                    reasoning = piece.get("reasoningContent")
                    if reasoning is not None:
                        kept.add(delta.get("contentBlockIndex", 0), reasoning)
                elif "contentBlockStart" in event:
                    started = event["contentBlockStart"]
                    used = started.get("start", {}).get("toolUse")
                    if used is not None:
                        begun = True
                        calls[started.get("contentBlockIndex", 0)] = used["toolUseId"]
                        signature = kept.taken()
                        yield ToolCallStart(
                            used["toolUseId"], used["name"], thought_signature=signature
                        )
                        continue
                elif "messageStop" in event:
                    stop_reason = event["messageStop"].get("stopReason")
                    stopped = True
                elif "metadata" in event:
                    usage = event["metadata"].get("usage")
                yield ""  # nothing for the reply (reasoning, a block's end): a sign of life
        except BaseException as error:  # stopped part-way (a budget, a reader gone, an error)
            stream.close()  # the HTTP response, at once
            await adrain_closed(stream)
            if (raised := _stream_exception(error)) is not None:  # (an event stream's)
                raise reported_error("Bedrock", *raised, begun=begun) from error
            raise
        finally:
            stream.close()  # the HTTP response, at once
        if not stopped:
            raise LLMResponseError(
                "The Bedrock stream ended before its messageStop event (the reply is incomplete)."
            )
        yield _finish(stop_reason, usage, call, response)

    def translate(self, error: BaseException) -> BaseException:
        """The ``LLMError`` for an error of botocore (or its HTTP client), else ``error``."""
        return translate_bedrock_error(error)


def _whole_reply(response: dict[str, Any], call: LLMCall) -> Iterator[LLMEvent]:
    """The events of a reply that was not streamed: its text, its tool calls, its ``Finish``.

    Its reasoning blocks, kept with its calls, count toward
    ``MiniAgents(llm_max_turn_chars=...)`` with its text and arguments (which the turn
    counts as it takes them), as a streamed reply's do (see :class:`_Reasonings`).

    Raises:
        LLMResponseError: for a reply that is not a whole Converse reply (see
            :func:`_whole_content`); past the turn's bound, ``too_long()``'s (the turn gives
            its own error in its place).
    """
    content = _whole_content(response)
    text = "".join(block["text"] for block in content if "text" in block)
    counted: TurnCount | None = None  # the turn's count: its reasoning counts as a stream's
    events: list[LLMEvent] = []
    thought: list[dict[str, Any]] = []  # the reasoning blocks since the last call
    for block in content:
        used = block.get("toolUse")
        if used is not None:
            signature = thoughts_json(thought)
            arguments = json.dumps(used.get("input", {}))
            events.append(
                ToolCallStart(used["toolUseId"], used["name"], thought_signature=signature)
            )
            events.append(ToolCallDelta(used["toolUseId"], arguments))
            thought = []
        elif "reasoningContent" in block:
            reasoning = block["reasoningContent"]
            counted = count_reasoning(counted, _reasoning_chars(reasoning))
            thought.append(_kept_reasoning(reasoning))
    yield text
    yield from events
    yield _finish(response.get("stopReason"), response.get("usage"), call, response)


def _whole_content(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The content blocks of a whole (not streamed) Converse reply, checked.

    Raises:
        LLMResponseError: if the reply has no ``output.message.content`` list, or a
            ``toolUse`` block lacks its id or name.
    """
    keys = ("output", "message", "content")
    level: Any = response
    for depth, key in enumerate(keys, 1):  # (a dict at each level, and a list at the last)
        level = level.get(key)
        if not isinstance(level, list if depth == len(keys) else dict):
            path = ".".join(keys[:depth]) + " list" * (depth == len(keys))
            raise LLMResponseError(
                f"Bedrock sent a reply with no {path} (not a whole Converse reply): check "
                "that the endpoint is Bedrock's runtime, or call it again."
            )
    content: list[dict[str, Any]] = level
    for index, block in enumerate(content):
        used = block.get("toolUse")
        if used is not None and not ("toolUseId" in used and "name" in used):
            raise LLMResponseError(
                f"Bedrock sent a reply whose toolUse block {index} has no toolUseId or no "
                "name: check that the endpoint is Bedrock's runtime, or call it again."
            )
    return content


# -- reasoning (Claude's extended thinking) --------------------------------------------------


class _Reasoning:
    """A streamed reasoning block, filled in by its deltas (its text, signature, bytes)."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.signature = ""
        self.redacted = b""

    def add(self, delta: dict[str, Any]) -> int:
        """Add a ``reasoningContent`` delta: a piece of text, the signature, redacted bytes.

        Returns:
            How many characters (bytes, of redacted content) it added.
        """
        text = delta.get("text") or ""
        signature = delta.get("signature") or ""
        redacted = delta.get("redactedContent") or b""
        self.text.append(text)
        self.signature += signature
        self.redacted += redacted
        return len(text) + len(signature) + len(redacted)

    def kept(self) -> dict[str, Any]:
        """The block as a call keeps it (see :func:`_kept_reasoning`)."""
        if self.redacted:
            return _kept_reasoning({"redactedContent": self.redacted})
        text = {"text": "".join(self.text), "signature": self.signature}
        return _kept_reasoning({"reasoningText": text})


class _Reasonings(KeptThoughts[_Reasoning]):
    """The reasoning blocks of a streamed reply, kept to go back with its calls (counted)."""

    __slots__ = ()

    def add(self, index: int, delta: dict[str, Any]) -> None:
        """Add a ``reasoningContent`` delta to the block at ``index`` (a new one, at first)."""
        block = self.blocks.get(index)
        if block is None:
            block = self.blocks[index] = _Reasoning()
            self.since_call.append(block)
        self.counted = count_reasoning(self.counted, block.add(delta))

    def kept(self, block: _Reasoning) -> Mapping[str, object]:
        return block.kept()


def _reasoning_chars(block: dict[str, Any]) -> int:
    """The characters of a whole ``reasoningContent`` block (bytes, of redacted content).

    As a stream counts its deltas (see :meth:`_Reasoning.add`): its text, its signature,
    its redacted bytes.
    """
    given = block.get("reasoningText") or {}
    text, signature = given.get("text") or "", given.get("signature") or ""
    return len(text) + len(signature) + len(block.get("redactedContent") or b"")


def _kept_reasoning(block: dict[str, Any]) -> dict[str, Any]:
    """A ``reasoningContent`` block of a reply as a call keeps it: JSON, its bytes in base64."""
    redacted = block.get("redactedContent")
    if redacted is not None:
        return {"redactedContent": base64.b64encode(redacted).decode("ascii")}
    given = block.get("reasoningText") or {}
    return {
        "reasoningText": {
            "text": given.get("text") or "",
            "signature": given.get("signature") or "",
        }
    }


def _reasoning_of(item: PromptItem) -> list[dict[str, Any]]:
    """The ``reasoningContent`` blocks a call's message keeps (``thoughts_json``), if any.

    Another API's signature (Gemini's, base64; Anthropic's thinking blocks) is none of
    Converse's reasoning blocks: none.
    """
    blocks = kept_thoughts(item)
    sent: list[dict[str, Any]] = []
    for block in blocks:
        reasoning = _sent_reasoning(block)
        if reasoning is None:
            return []
        sent.append({"reasoningContent": reasoning})
    return sent


def _sent_reasoning(block: object) -> dict[str, Any] | None:
    """A kept reasoning block as Converse takes it back (its bytes as bytes), or ``None``."""
    if not isinstance(block, dict) or len(block) != 1:
        return None
    text = block.get("reasoningText")
    if isinstance(text, dict) and isinstance(text.get("text"), str):
        signature = text.get("signature")
        return {"reasoningText": {"text": text["text"], "signature": signature or ""}}
    redacted = block.get("redactedContent")
    if not isinstance(redacted, str):
        return None
    try:
        return {"redactedContent": base64.b64decode(redacted, validate=True)}
    except (binascii.Error, ValueError):
        return None


def _finish(
    reason: str | None, usage: dict[str, Any] | None, call: LLMCall, response: dict[str, Any]
) -> Finish:
    """The ``Finish``: the stop reason (a refusal's as ``"refusal"``) and the usage.

    Raises:
        LLMResponseError: for a reply Bedrock stopped as malformed (see :data:`_MALFORMED`).
    """
    if reason in _MALFORMED:
        raise LLMResponseError(
            f"Bedrock stopped the reply with the stop reason {reason}: {_MALFORMED[reason]}. "
            "Call it again, or fall back to another model."
        )
    if reason in REFUSAL_REASONS:
        reason = "refusal"
    metadata = response.get("ResponseMetadata") or {}
    request_id = metadata.get("RequestId")
    if usage is None:
        return Finish(reason, model=call.model, response_id=request_id)
    read = usage.get("cacheReadInputTokens")
    written = usage.get("cacheWriteInputTokens")
    given = usage.get("inputTokens")
    if given is not None:
        given += (read or 0) + (written or 0)
    return Finish(
        reason,
        given,
        usage.get("outputTokens"),
        read,
        written,
        model=call.model,
        response_id=request_id,
    )


# -- the client ----------------------------------------------------------------------------


class _Clients:
    """The clients a context made, one per setting (region, retries, timeout), closed with it."""

    def __init__(self) -> None:
        self._made: dict[tuple[str | None, int | None, float | None], tuple[Any, Any]] = {}
        self._lock = asyncio.Lock()

    async def get(self, options: BedrockOptions) -> Any:
        key = (options.region, options.max_retries, options.timeout)
        made = self._made.get(key)
        if made is not None:
            return made[1]
        async with self._lock:
            made = self._made.get(key)
            if made is None:
                creating = _new_client(options)
                made = self._made[key] = (creating, await creating.__aenter__())
            return made[1]

    async def close(self) -> None:
        made, self._made = list(self._made.values()), {}
        for creating, _ in made:
            await creating.__aexit__(None, None, None)


_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ENDPOINT_URL")
"""The environment variables botocore takes the endpoint from, in its order."""


def _new_client(options: BedrockOptions) -> Any:
    """The context manager of a ``bedrock-runtime`` client made from the environment.

    The client has the options' settings; leaving the context manager closes it.

    Raises:
        LLMConfigurationError: for an endpoint in the environment that is no http(s) URL
            (botocore's own error is a ``ValueError``), naming its variable.
    """
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() != "true":
        for variable in _ENDPOINT_VARIABLES:  # (the first set is botocore's)
            endpoint = os.environ.get(variable)
            if endpoint:
                check_base_url(endpoint, "bedrock_agent", base_url_source(variable, given=False))
                break
    session_module = import_sdk("aiobotocore.session", "Bedrock")
    config_module = import_sdk("aiobotocore.config", "Bedrock")
    settings: dict[str, Any] = {}
    if options.max_retries is not None:
        settings["retries"] = {"max_attempts": options.max_retries, "mode": "standard"}
    if options.timeout is not None:
        settings["read_timeout"] = settings["connect_timeout"] = float(options.timeout)
    session = session_module.get_session()
    # botocore reads AWS_DEFAULT_REGION (and the config file); AWS_REGION is the other SDKs'
    region = options.region or os.environ.get("AWS_REGION") or None
    return session.create_client(
        "bedrock-runtime", region_name=region, config=config_module.AioConfig(**settings)
    )


async def _client(options: BedrockOptions) -> Any:
    """The client of a call: ``async_client``, else the context's for its settings."""
    if options.async_client is not None:
        return options.async_client
    import_sdk("aiobotocore", "Bedrock")
    clients = MiniAgents.get_current().resource("bedrock-clients", _Clients, _Clients.close)
    return await clients.get(options)


def _arguments(client: Any, call: LLMCall, options: BedrockOptions) -> dict[str, Any]:
    """The Converse arguments of the call.

    Raises:
        LLMConfigurationError: for an ``extra_options`` entry that Converse does not take or
            that the agent sets, or an image given by URL.
    """
    arguments: dict[str, Any] = {"modelId": call.model, "messages": _messages(call)}
    inference = {_INFERENCE[name]: value for name, value in options.typed_call_options().items()}
    if inference:
        arguments["inferenceConfig"] = inference
    if call.system:
        arguments["system"] = [{"text": call.system}]
    if call.tools:
        arguments["toolConfig"] = {"tools": [_tool(tool) for tool in call.tools]}
    if call.output_format is not None:
        schema: dict[str, Any] = {
            "schema": json.dumps(dict(call.output_format.schema)),
            "name": call.output_format.name,
        }
        if call.output_format.description:
            schema["description"] = call.output_format.description
        structure = {"jsonSchema": schema}
        arguments["outputConfig"] = {"textFormat": {"type": "json_schema", "structure": structure}}
    if options.extra_options:
        taken = client.meta.service_model.operation_model("ConverseStream").input_shape.members
        for name, value in options.extra_options.items():
            if name not in taken or name in _SET_BY_THE_AGENT:
                raise LLMConfigurationError(
                    f"Bedrock's Converse takes no parameter {name!r} in extra_options"
                    + (" (the agent sets it itself)" if name in _SET_BY_THE_AGENT else "")
                    + ". Check its spelling (the API's names, e.g. 'guardrailConfig'); a "
                    "model's own fields go in extra_options={'additionalModelRequestFields': "
                    "{...}}."
                )
            arguments[name] = value
    return arguments


def _tool(tool: Tool) -> dict[str, Any]:
    return {"toolSpec": tool_declaration(tool, inputSchema={"json": tool.parameters})}


def _messages(call: LLMCall) -> list[dict[str, Any]]:
    """The conversation in Converse's terms, a message per turn (see ``turns_for``).

    Converse wants the roles to alternate from the user's: a turn of tool calls is the
    assistant's message (after its text, if any; the reasoning blocks its first call keeps,
    first of all), their results ``toolResult`` blocks of the
    user's next message, first. The last assistant text ends with no whitespace (Claude's
    models refuse it there, as Anthropic's own API does).
    """
    messages: list[dict[str, Any]] = []
    for turn in turns_for(call.messages, _CONVERSATION):
        blocks: list[dict[str, Any]] = []
        called = False  # whether the turn has a call yet (its reasoning goes first)
        for item in turn.items:
            put_thoughts(blocks, _reasoning_of(item), called=called)
            called = called or isinstance(item, ToolCallMessage)
            blocks += _item_blocks(item)
        if blocks:
            messages.append({"role": turn.role, "content": blocks})
    return messages


_CONVERSATION = ConversationRules(trim_last=True)
"""What Converse takes: user and assistant turns, alternating from the user's, no blank text,
no whitespace at the end of the last assistant text (Claude's rule)."""


def _item_blocks(item: PromptItem) -> list[dict[str, Any]]:
    """An item's content blocks: a message's, a ``toolUse`` or a ``toolResult``."""
    if isinstance(item, PromptText):
        return _blocks(item)
    if isinstance(item, ToolCallMessage):
        used = {"toolUseId": item.call_id, "name": item.tool_name, "input": arguments_object(item)}
        return [{"toolUse": used}]
    result: dict[str, Any] = {
        "toolUseId": item.call_id,
        "content": [{"text": item.text or "(no output)"}],
    }
    if item.is_error:
        result["status"] = "error"
    return [{"toolResult": result}]


_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}


def _blocks(item: PromptText) -> list[dict[str, Any]]:
    """A message's content blocks: its images (bytes), then its text (if not blank)."""
    blocks: list[dict[str, Any]] = []
    for image in item.images:
        if image.data is None:
            raise LLMConfigurationError(
                f"Bedrock's Converse takes an image's bytes, not a URL ({image.url!r}): "
                "give ImagePart(data=..., media_type=...) or ImagePart.from_file(path)."
            )
        blocks.append(
            {
                "image": {
                    "format": _FORMATS.get(image.media_type or "", "png"),
                    "source": {"bytes": image.data},
                }
            }
        )
    if item.text.strip():
        blocks.append({"text": item.text})
    return blocks


# -- errors --------------------------------------------------------------------------------

_BY_CODE: dict[str, tuple[type[LLMError], str]] = {
    "ThrottlingException": (LLMRateLimitError, "kept refusing the request for its rate limit"),
    "ServiceQuotaExceededException": (LLMRateLimitError, "refused the request for its quota"),
    "TooManyRequestsException": (LLMRateLimitError, "kept refusing the request for its rate limit"),
    "AccessDeniedException": (LLMAuthenticationError, "refused the credentials for this request"),
    "UnrecognizedClientException": (LLMAuthenticationError, "refused the credentials"),
    "InvalidSignatureException": (LLMAuthenticationError, "refused the request's signature"),
    "IncompleteSignatureException": (LLMAuthenticationError, "refused the request's signature"),
    "MissingAuthenticationTokenException": (LLMAuthenticationError, "got no credentials"),
    "ExpiredTokenException": (LLMAuthenticationError, "refused the expired credentials"),
    "ModelTimeoutException": (LLMTimeoutError, "did not answer in time"),
    "InternalServerException": (LLMServerError, "kept failing with a server error"),
    "ServiceUnavailableException": (LLMServerError, "was unavailable"),
    "ModelNotReadyException": (LLMServerError, "had the model not ready"),
    "ModelErrorException": (LLMServerError, "had the model fail"),
}

_BY_CLASS: dict[str, tuple[type[LLMError], str]] = {
    "NoCredentialsError": (LLMAuthenticationError, "needs AWS credentials"),
    "PartialCredentialsError": (LLMAuthenticationError, "needs whole AWS credentials"),
    "NoAuthTokenError": (LLMAuthenticationError, "needs AWS credentials"),
    "NoRegionError": (LLMConfigurationError, "needs a region"),
    "ParamValidationError": (LLMRequestError, "refused the request's parameters"),
    "ReadTimeoutError": (LLMTimeoutError, "did not answer in time"),
    "ConnectTimeoutError": (LLMTimeoutError, "could not be reached in time"),
    "EndpointConnectionError": (LLMConnectionError, "could not be reached"),
    "ConnectionClosedError": (LLMConnectionError, "closed the connection"),
    "ResponseStreamingError": (LLMConnectionError, "broke the connection mid-reply"),
    "ChecksumMismatch": (LLMResponseError, "sent a damaged event"),
    "InvalidHeadersLength": (LLMResponseError, "sent a damaged event"),
    "InvalidPayloadLength": (LLMResponseError, "sent a damaged event"),
    "DuplicateHeader": (LLMResponseError, "sent a damaged event"),
    "ResponseParserError": (LLMResponseError, "sent a malformed response"),
}

_HINTS = {
    LLMAuthenticationError: (
        " Set AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, an "
        "instance role) or a Bedrock API key (AWS_BEARER_TOKEN_BEDROCK), with access to the "
        "model."
    ),
    LLMConfigurationError: ' Set AWS_REGION, or give the agent region="us-east-1".',
}


def translate_bedrock_error(error: BaseException) -> BaseException:
    """The ``LLMError`` for an error of botocore (or aiohttp under it), else ``error``.

    A ``ClientError`` by its error code (HTTP errors), the other botocore errors by their
    class (missing credentials or region, timeouts, broken connections, damaged events),
    aiohttp's as a broken connection or a timeout. An exception of an event stream
    (``EventStreamError``) never reaches this function: botocore raises it only while the
    stream is read, inside ``BedrockProvider.reply``, which decides it by whether the reply
    had begun (``converse_stream`` reads no event: Converse's rest-json stream has no
    initial response).
    """
    exceptions = sys.modules.get("botocore.exceptions")
    parser = sys.modules.get("botocore.eventstream")
    bases = tuple(
        base
        for base in (
            getattr(exceptions, "BotoCoreError", None),
            getattr(exceptions, "ClientError", None),
            getattr(parser, "ParserError", None),
            getattr(sys.modules.get("botocore.parsers"), "ResponseParserError", None),
        )
        if isinstance(base, type)
    )
    if isinstance(error, (AttributeError, TypeError, ValueError)) and _raised_in(
        error, "botocore.parsers"
    ):  # botocore's parser, given a body of another shape than the API's
        return made_error(
            LLMResponseError,
            f"Bedrock sent a malformed response (botocore could not parse it: {error}). Check "
            "that the endpoint is Bedrock's runtime, or call it again.",
            error,
        )
    if not bases or not isinstance(error, bases):
        return translate_transport_error(error, "Bedrock")
    said = _said(error)
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        transient = transient_status(status)  # 408, 409, 504: whatever the code, as the SDKs'
        found = _BY_CODE.get(code)
        if transient is not None:
            found = (transient[0], f"{transient[1]} (HTTP {status})")
        elif found is None:
            if status == 429:
                found = (LLMRateLimitError, "refused the request for its rate limit")
            elif status in (401, 403):
                found = (LLMAuthenticationError, "refused the credentials")
            elif isinstance(status, int) and status >= 500:
                found = (LLMServerError, "failed with a server error")
            else:
                found = (LLMRequestError, "refused the request")
    else:
        found = next(
            (_BY_CLASS[cls.__name__] for cls in type(error).__mro__ if cls.__name__ in _BY_CLASS),
            (LLMError, "failed"),
        )
    kind, what = found
    return made_error(kind, f"Bedrock {what}: {said}.{_HINTS.get(kind, '')}", error)


def _stream_exception(error: BaseException) -> tuple[str, str | None] | None:
    """The message and code of an exception of ConverseStream's event stream, else ``None``.

    botocore raises such an exception (``throttlingException``, ``internalServerException``,
    ``modelStreamErrorException``, ...) as an ``EventStreamError`` while the stream is read;
    ``sdk_errors.reported_error`` decides what it is, by whether the reply had begun.
    """
    if not any(cls.__name__ == "EventStreamError" for cls in type(error).__mro__):
        return None
    response = getattr(error, "response", None)
    found = response.get("Error") if isinstance(response, dict) else None
    if not isinstance(found, dict):
        return None
    code, message = found.get("Code"), found.get("Message")
    return (
        message if isinstance(message, str) and message else _said(error),
        code if isinstance(code, str) and code else None,
    )


def _said(error: BaseException) -> str:
    """What a botocore error says (its class name if it says nothing), with no closing period."""
    return (str(error) or type(error).__name__).rstrip(".")


def _raised_in(error: BaseException, module: str) -> bool:
    """Whether ``error`` was raised by the code of ``module`` (its innermost frame's)."""
    trace = error.__traceback__
    if trace is None:
        return False
    while trace.tb_next is not None:
        trace = trace.tb_next
    return bool(trace.tb_frame.f_globals.get("__name__") == module)


P = ParamSpec("P")


if TYPE_CHECKING:

    @dataclass(frozen=True, kw_only=True)
    class _BedrockFork(BedrockOptions, ForkArguments):
        """What ``bedrock_agent.fork`` takes: its arguments, and a fork's name and limits."""


class BedrockAgent(LLMAgent[P, BedrockMessage], AnyLLMAgent[BedrockMessage]):
    """The class of ``bedrock_agent`` and its forks, an ``AnyLLMAgent`` (see ``llm_agent``)."""

    __slots__ = ()

    if TYPE_CHECKING:
        fork = TypedFork(_BedrockFork)  # type: ignore[assignment]  # (see TypedFork)


bedrock_agent = BedrockAgent.of(
    BedrockOptions,
    BedrockProvider(),
    alias="BEDROCK_AGENT",
    summary="A model on AWS Bedrock: the input messages are the prompt, the reply streams back.",
)
"""A model on AWS Bedrock (Converse): the input messages are the prompt."""

create_bedrock_agent = bedrock_agent.bind
"""A Bedrock agent with arguments bound: ``bedrock_agent.fork(...)``, with the arguments typed."""
