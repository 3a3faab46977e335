"""Bedrock's Converse wire format (``POST /model/{modelId}/converse-stream``) in the fake.

The model is in the path (percent-encoded: ``anthropic.claude-3-haiku-20240307-v1%3A0``);
``/converse`` answers with one JSON body, ``/converse-stream`` streams in AWS's binary
event-stream framing (``_eventstream``), not server-sent events: ``messageStart``, the
scripted thinking first (a ``reasoningContent`` block of ``text`` deltas, then one with its
``signature``; a redacted one of ``redactedContent``), the text tokens as
``contentBlockDelta`` events of a block of their own, each tool call a block of its own
(``contentBlockStart`` with its ``toolUseId`` and name, ``contentBlockDelta`` events of
its input's JSON text, ``contentBlockStop``), then ``messageStop`` (the stop reason) and
``metadata`` (the usage). An error mid-stream is an exception message
(``modelStreamErrorException`` unless ``error_type`` names another).

Every request must be signed (AWS Signature Version 4) with :data:`AWS_TEST_CREDENTIALS`
(or carry a ``Bearer`` API key): a missing, malformed or wrong signature is a 403, as AWS
answers it. Requests are refused (400, ``ValidationException``) as Converse refuses them:
no ``messages``, roles that do not alternate from ``user``, a blank text block, a last
assistant message whose text ends with whitespace (as Claude's models refuse it), tool
blocks without ``toolConfig``, a ``toolUseId`` that is not letters, digits, ``_`` and ``-``
(64 at most), a ``toolUse`` not answered by a ``toolResult`` in the next
message, an ``inferenceConfig`` option out of range, or an image whose bytes are not
base64 of a PNG, JPEG, GIF or WebP image; reasoning blocks too, as Claude refuses them: a
``reasoningText`` must keep the signature the fake gave it (``thinking_signature``), and
with thinking enabled (``additionalModelRequestFields.thinking``, or
``reasoning_config``) a last assistant message with ``toolUse`` blocks must start with a
``reasoningContent`` block (the reply's, sent back).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote

from miniagents.testing._anthropic_wire import thinking_signature
from miniagents.testing._eventstream import stream_message
from miniagents.testing._script import OPENAI_TO_ANTHROPIC, Provider
from miniagents.testing._sigv4 import check_signature
from miniagents.testing._wire import (
    Event,
    Rendering,
    StreamPlan,
    Wire,
    check_base64,
    check_ranges,
    dumps,
)

__all__ = ["AWS_TEST_CREDENTIALS", "BedrockWire"]

AWS_TEST_CREDENTIALS: Final[Mapping[str, str]] = {
    "aws_access_key_id": "AKIAFAKELLMSERVER000",
    "aws_secret_access_key": "fake-llm-server/secret-access-key",
    "region_name": "us-east-1",
}
"""The AWS credentials the fake server takes, as ``create_client`` takes them (also the
values of ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_REGION``)."""

_SECRETS = {
    AWS_TEST_CREDENTIALS["aws_access_key_id"]: AWS_TEST_CREDENTIALS["aws_secret_access_key"]
}

_ERRORS = {
    400: ("ValidationException", "Invalid request."),
    401: ("UnrecognizedClientException", "The security token included in the request is invalid."),
    403: (
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    ),
    404: ("ResourceNotFoundException", "The model is not found."),
    408: ("ModelTimeoutException", "The request took too long to process."),
    424: ("ModelErrorException", "The model failed to process the request."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "The server encountered an internal error."),
    503: ("ServiceUnavailableException", "The service is unavailable. Please try again."),
}

_REASONS = {
    **OPENAI_TO_ANTHROPIC,
    "content_filter": "content_filtered",
    "refusal": "content_filtered",
}
"""Finish reasons in OpenAI's or Anthropic's words, in Converse's."""

_RANGES = {"temperature": (0, 1), "topP": (0, 1), "maxTokens": (1, 1_000_000)}

_FORMATS = ("png", "jpeg", "gif", "webp")


class BedrockWire(Wire):
    """Renders replies and errors as Bedrock's Converse API does."""

    provider: Provider = "bedrock"
    stream_content_type = "application/vnd.amazon.eventstream"
    reply_prefix = "fake-"  # the x-amzn-requestid of a reply
    call_prefix = "tooluse_fake"
    stop_reasons = ("end_turn", "tool_use")
    reasons = _REASONS

    def route(self, path: str, body: object) -> tuple[str | None, bool]:
        """The model of the path (``/model/{modelId}/converse-stream``), and whether it streams."""
        head, _, method = path.rpartition("/")
        return unquote(head.rpartition("/model/")[2]) or None, method == "converse-stream"

    def authenticate(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, str] | None:
        """A 403 for a request not signed with the test credentials (see the module)."""
        problem = check_signature(method, target, headers, body, _SECRETS, "bedrock")
        return None if problem is None else (403, problem)

    def validate(self, body: object) -> str | None:
        """Why Converse would refuse this body (see the module)."""
        if not isinstance(body, dict):
            return "The request body is not a JSON object."
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return (
                "A conversation must start with a user message. Try again with a "
                "conversation that starts with a user message."
            )
        config = body.get("inferenceConfig")
        return (
            _check_messages(messages, "toolConfig" in body)
            or check_ranges(config, _RANGES)
            or _check_reasoning(messages, body.get("additionalModelRequestFields"))
        )

    def body(self, rendering: Rendering) -> dict[str, Any]:
        """A Converse response."""
        thoughts = [{"reasoningContent": thought} for thought in _thoughts(rendering)]
        content: list[dict[str, Any]] = thoughts if rendering.reply.thinking_first else []
        if rendering.tokens or not rendering.calls:
            content.append({"text": rendering.text})
        if not rendering.reply.thinking_first:  # (after the text, before the calls)
            content.extend(thoughts)
        content.extend(
            {
                "toolUse": {
                    "toolUseId": rendered.id,
                    "name": rendered.call.name,
                    "input": rendered.call.input(),
                }
            }
            for rendered in rendering.calls
        )
        return {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": rendering.finish_reason,
            "usage": _usage(rendering),
            "metrics": {"latencyMs": 1},
        }

    def stream(self, rendering: Rendering) -> StreamPlan:
        """The events of a ConverseStream reply (see the module)."""
        plan = StreamPlan()
        plan.add(("messageStart", {"role": "assistant"}))
        block = -1
        first = rendering.reply.thinking_first
        if first:
            block = _reason(plan, rendering, block)
        opened = False  # whether a block is open (the reasoning ones are closed)
        if rendering.tokens or not rendering.calls:
            block += 1
            opened = True
        for token in rendering.tokens:
            delta = {"contentBlockIndex": block, "delta": {"text": token}}
            plan.add(("contentBlockDelta", delta), content=True)
        if not first and _thoughts(rendering):  # after the text's block, before the calls
            if opened:
                plan.add(("contentBlockStop", {"contentBlockIndex": block}))
            opened = False
            block = _reason(plan, rendering, block)
        for rendered in rendering.calls:
            if opened:
                plan.add(("contentBlockStop", {"contentBlockIndex": block}))
            opened = True
            block += 1
            start = {"toolUse": {"toolUseId": rendered.id, "name": rendered.call.name}}
            plan.add(("contentBlockStart", {"contentBlockIndex": block, "start": start}))
            for piece in rendered.call.deltas():
                delta = {"contentBlockIndex": block, "delta": {"toolUse": {"input": piece}}}
                plan.add(("contentBlockDelta", delta), content=True)
        plan.closing.append(("contentBlockStop", {"contentBlockIndex": block}))
        plan.final.append(("messageStop", {"stopReason": rendering.finish_reason}))
        metadata = {"usage": _usage(rendering), "metrics": {"latencyMs": 1}}
        plan.final.append(("metadata", metadata))
        return plan

    def frame(self, event: Event) -> bytes:
        """An event-stream message: an event, or an exception (``exception:TYPE``)."""
        name, payload = event
        data = payload if isinstance(payload, bytes) else dumps(payload)
        kind = name or "event"
        if kind.startswith("exception:"):
            return stream_message("exception", kind.removeprefix("exception:"), data)
        return stream_message("event", kind, data)

    def error_event(self, error_type: str | None, message: str | None) -> Event:
        """An exception message (``modelStreamErrorException`` unless told)."""
        kind = error_type or "modelStreamErrorException"
        return (f"exception:{kind}", {"message": message or "The model stream failed."})

    def malformed_event(self, rendering: Rendering) -> Event:
        """A ``contentBlockDelta`` whose JSON payload is cut in the middle."""
        return ("contentBlockDelta", b'{"contentBlockIndex":0,"delta":{"te')

    def error_body(self, status: int, message: str | None, request_id: str) -> dict[str, Any]:
        """``{"message": ...}`` (the type is in the ``x-amzn-ErrorType`` header)."""
        default = _ERRORS.get(status, ("", "Error."))[1]
        return {"message": message or default}

    def error_headers(self, status: int) -> dict[str, str]:
        """``x-amzn-ErrorType``: the error's type."""
        kind = _ERRORS.get(
            status, ("InternalServerException" if status >= 500 else "ValidationException", "")
        )[0]
        return {"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"}

    def id_headers(self, request_id: str) -> dict[str, str]:
        """``x-amzn-RequestId``."""
        return {"x-amzn-RequestId": request_id}


def _reason(plan: StreamPlan, rendering: Rendering, block: int) -> int:
    """Add the events of the reply's reasoning blocks after ``block``; the last block's index."""
    for thought in _thoughts(rendering):
        block += 1
        text = thought.get("reasoningText")
        if text is None:
            reasoning: list[dict[str, Any]] = [thought]
        else:
            reasoning = [{"text": piece} for piece in rendering.reply.thinking or ()]
            reasoning.append({"signature": text["signature"]})
        for each in reasoning:
            reasoned = {"contentBlockIndex": block, "delta": {"reasoningContent": each}}
            plan.add(("contentBlockDelta", reasoned))
        plan.add(("contentBlockStop", {"contentBlockIndex": block}))
    return block


def _usage(rendering: Rendering) -> dict[str, int]:
    """Converse's usage: its ``inputTokens`` leave out the cache's reads and writes."""
    read, written = rendering.reply.cached_tokens, rendering.reply.cache_write_tokens
    usage = {
        "inputTokens": max(0, rendering.input_tokens - read - written),
        "outputTokens": rendering.output_tokens,
        "totalTokens": rendering.input_tokens + rendering.output_tokens,
    }
    if read:
        usage["cacheReadInputTokens"] = read
    if written:
        usage["cacheWriteInputTokens"] = written
    return usage


def _thoughts(rendering: Rendering) -> list[dict[str, Any]]:
    """The reply's scripted reasoning blocks, whole: a ``reasoningText``, a redacted one.

    The redacted bytes are the script's text (base64, as Converse's JSON carries a blob).
    """
    reply = rendering.reply
    thoughts: list[dict[str, Any]] = []
    if reply.thinking is not None:
        text = "".join(reply.thinking)
        signature = thinking_signature(text)
        thoughts.append({"reasoningText": {"text": text, "signature": signature}})
    if reply.redacted_thinking is not None:
        thoughts.append({"redactedContent": reply.redacted_thinking})
    return thoughts


def _check_reasoning(messages: list[Any], fields: object) -> str | None:
    """Why Claude would refuse these reasoning blocks: one altered, or one missing.

    A ``reasoningText`` must keep its signature; with thinking enabled, the last assistant
    message, if it has ``toolUse`` blocks, must start with a ``reasoningContent`` block.
    """
    for index, message in enumerate(messages):
        for number, reasoning in enumerate(_blocks(message, "reasoningContent")):
            text = reasoning.get("reasoningText")
            if isinstance(text, dict) and text.get("signature") != thinking_signature(
                str(text.get("text"))
            ):
                return (
                    f"The model returned the following errors: messages.{index}.content."
                    f"{number}: Invalid `signature` in `thinking` block"
                )
    given = fields if isinstance(fields, dict) else {}
    thinking = given.get("thinking", given.get("reasoning_config"))
    enabled = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
    roles = [message.get("role") if isinstance(message, dict) else None for message in messages]
    last = len(roles) - 1 - roles[::-1].index("assistant") if "assistant" in roles else None
    if not enabled or last is None or not _blocks(messages[last], "toolUse"):
        return None
    first = messages[last]["content"][0]
    kind = next(iter(first), None) if isinstance(first, dict) else None
    if kind == "reasoningContent":
        return None
    return (
        f"The model returned the following errors: messages.{last}.content.0.type: Expected "
        f"`thinking` or `redacted_thinking`, but found `{kind}`. When `thinking` is enabled, "
        "a final `assistant` message must start with a thinking block (before its "
        "`tool_use` blocks): send back the reasoningContent blocks of the reply unchanged, "
        "or disable thinking."
    )


def _blocks(message: object, kind: str) -> list[dict[str, Any]]:
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return []
    return [
        block[kind]
        for block in content
        if isinstance(block, dict) and isinstance(block.get(kind), dict)
    ]


_TOOL_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def _check_messages(messages: list[Any], has_tools: bool) -> str | None:
    """Why Converse would refuse these messages (see the module)."""
    expected = "user"
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role != expected:
            return (
                "A conversation must alternate between user and assistant roles. Make sure "
                "the conversation alternates between user and assistant roles and try again."
            )
        expected = "assistant" if role == "user" else "user"
        content = message.get("content")
        if not isinstance(content, list) or not content:
            return f"The content field in the Message object at messages.{index} is empty."
        for number, block in enumerate(content):
            text = block.get("text") if isinstance(block, dict) else None
            if isinstance(text, str) and not text.strip():
                return (
                    f"The text field in the ContentBlock object at messages.{index}.content."
                    f"{number} is blank. Add text to the text field, and try again."
                )
        last = content[-1]
        final = last.get("text") if isinstance(last, dict) else None
        if (
            role == "assistant"
            and index == len(messages) - 1
            and isinstance(final, str)
            and final != final.rstrip()
        ):
            return (
                "The model returned the following errors: messages: final assistant content "
                "cannot end with trailing whitespace"
            )
        uses = [use.get("toolUseId") for use in _blocks(message, "toolUse")]
        for number, used in enumerate(uses):
            if not (isinstance(used, str) and _TOOL_ID.fullmatch(used)):
                return (
                    f"1 validation error detected: Value at 'messages.{index}.member.content."
                    f"{number}.member.toolUse.toolUseId' failed to satisfy constraint: Member "
                    "must satisfy regular expression pattern: [a-zA-Z0-9_-]+"
                )
        results = [result.get("toolUseId") for result in _blocks(message, "toolResult")]
        if (uses or results) and not has_tools:
            return (
                "The toolConfig field must be defined when using toolUse and toolResult "
                "content blocks."
            )
        following = messages[index + 1] if index + 1 < len(messages) else None
        if uses and following is not None:
            answered = [result.get("toolUseId") for result in _blocks(following, "toolResult")]
            if sorted(map(str, answered)) != sorted(map(str, uses)):
                return (
                    f"Expected toolResult blocks at messages.{index + 1}.content for the "
                    f"following Ids: {', '.join(map(str, uses))}"
                )
        for number, image in enumerate(_blocks(message, "image")):
            where = f"messages.{index}.content.{number}.image"
            if image.get("format") not in _FORMATS:
                return f"{where}.format: the format must be one of png, jpeg, gif, webp."
            source = image.get("source")
            problem = check_base64(
                source.get("bytes") if isinstance(source, dict) else None, f"{where}.source.bytes"
            )
            if problem is not None:
                return problem
    return None
