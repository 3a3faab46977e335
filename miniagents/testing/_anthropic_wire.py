"""The Anthropic Messages wire format (``POST /v1/messages``), as the fake speaks it.

A reply is a ``message`` object, or a stream of events: ``message_start``, then a content
block per part (the scripted thinking first: a ``thinking`` block of ``thinking_delta``
events and a ``signature_delta``, a ``redacted_thinking`` block whole; a ``text`` block of
``text_delta`` events; a ``tool_use`` block per tool call, of ``input_json_delta``
events), then ``message_delta`` (the stop reason and the usage) and ``message_stop``.
Requests are refused (400) as the API refuses them: roles other than ``user`` and
``assistant``, a first message that is not the user's, roles that do not alternate (as
Claude on Bedrock and Vertex AI refuse them; Anthropic's own API merges such turns), a
message with no content (but a last assistant one), a blank text block, a last assistant
text that ends with whitespace; tool blocks too: ``tool_use`` and ``tool_result`` blocks
need ``tools``, a ``tool_use`` id is letters, digits, ``_`` and ``-`` and unique in the
request, and each ``tool_use`` of an assistant message needs its ``tool_result`` in the
next message; an ``image`` block needs a ``url`` source (http(s)) or a ``base64`` one
with the media type of a PNG, JPEG, GIF or WebP image; thinking blocks too: a
``thinking`` block must keep the signature the fake gave it (:func:`thinking_signature`),
and with ``thinking`` enabled a last assistant message with ``tool_use`` blocks must start
with a ``thinking`` or ``redacted_thinking`` block (the reply's, sent back).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from miniagents.testing._output_format import check_output_format
from miniagents.testing._script import OPENAI_TO_ANTHROPIC, Provider
from miniagents.testing._wire import (
    Event,
    Rendering,
    StreamPlan,
    Wire,
    check_base64,
    check_fields,
    check_ranges,
)

__all__ = ["AnthropicWire", "thinking_signature"]


def thinking_signature(thinking: str) -> str:
    """The signature the fake gives a ``thinking`` block of this text (and checks it keeps)."""
    return "fake-signature-" + hashlib.sha256(thinking.encode()).hexdigest()[:24]


_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    503: ("api_error", "Service unavailable"),
    504: ("timeout_error", "Request timeout"),
    529: ("overloaded_error", "Overloaded"),
}

_RANGES = {
    "temperature": (0, 1),
    "top_p": (0, 1),
    "top_k": (0, 1_000_000),
    "max_tokens": (1, 1_000_000),
}
"""The numeric options the API checks, with their ranges."""


class AnthropicWire(Wire):
    """Renders replies and errors as the Messages API does."""

    provider: Provider = "anthropic"
    reply_prefix = "msg_fake"
    call_prefix = "toolu_fake"
    stop_reasons = ("end_turn", "tool_use")
    reasons = OPENAI_TO_ANTHROPIC

    def validate(self, body: object) -> str | None:
        """Why the API would refuse this body: a missing field, an option out of range, or
        tool blocks without tools or without their results."""
        problem = check_fields(body, ("model", "messages", "max_tokens"))
        if problem is not None or not isinstance(body, dict):
            return problem
        messages = body["messages"]
        return (
            check_ranges(body, _RANGES)
            or _check_turns(messages)
            or _check_tool_blocks(messages, "tools" in body)
            or _check_thinking(messages, body.get("thinking"))
            or _check_images(messages)
            or check_output_format(body)
        )

    def body(self, rendering: Rendering) -> dict[str, Any]:
        """A ``message`` object."""
        thoughts = _thoughts(rendering)
        content = thoughts if rendering.reply.thinking_first else []
        if rendering.tokens or not rendering.calls:
            content.append({"type": "text", "text": rendering.text})
        if not rendering.reply.thinking_first:  # (after the text, before the calls)
            content.extend(thoughts)
        content.extend(
            {
                "type": "tool_use",
                "id": rendered.id,
                "name": rendered.call.name,
                "input": rendered.call.input(),
            }
            for rendered in rendering.calls
        )
        return _message(rendering, content, rendering.output_tokens, stopped=True)

    def stream(self, rendering: Rendering) -> StreamPlan:
        """The events of a streamed reply."""
        plan = StreamPlan()
        start = _message(rendering, [], min(1, rendering.output_tokens), stopped=False)
        plan.add(("message_start", {"type": "message_start", "message": start}))
        block = -1
        first = rendering.reply.thinking_first
        if first:
            block = _think(plan, rendering, block)
        opened = False  # whether a block is open (the thinking ones are closed)
        if rendering.tokens or not rendering.calls:
            block += 1
            opened = True
            plan.add(_block_start(block, {"type": "text", "text": ""}))
        plan.add(("ping", b'{"type": "ping"}'))
        for token in rendering.tokens:
            delta = {"type": "text_delta", "text": token}
            plan.add(_block_delta(block, delta), content=True)
        if not first and _thoughts(rendering):  # after the text's block, before the calls
            if opened:
                plan.add(_block_stop(block))
            opened = False
            block = _think(plan, rendering, block)
        for rendered in rendering.calls:
            if opened:
                plan.add(_block_stop(block))
            opened = True
            block += 1
            tool_use = {"type": "tool_use", "id": rendered.id, "name": rendered.call.name}
            plan.add(_block_start(block, {**tool_use, "input": {}}))
            for piece in rendered.call.deltas():
                delta = {"type": "input_json_delta", "partial_json": piece}
                plan.add(_block_delta(block, delta), content=True)
        if opened:
            plan.closing.append(_block_stop(block))
        stop = {
            "stop_reason": rendering.finish_reason,
            "stop_sequence": rendering.reply.stop_sequence,
        }
        usage = {"output_tokens": rendering.output_tokens}
        plan.closing.append(
            ("message_delta", {"type": "message_delta", "delta": stop, "usage": usage})
        )
        plan.final.append(("message_stop", {"type": "message_stop"}))
        return plan

    def error_event(self, error_type: str | None, message: str | None) -> Event:
        """``event: error`` with ``{"type": "error", "error": {...}}``."""
        error = {"type": error_type or "overloaded_error", "message": message or "Overloaded"}
        return ("error", {"type": "error", "error": error})

    def malformed_event(self, rendering: Rendering) -> Event:
        """A ``content_block_delta`` cut in the middle of its JSON."""
        return (
            "content_block_delta",
            b'{"type":"content_block_delta","index":0,"delta":{"type":"text_del',
        )

    def error_body(self, status: int, message: str | None, request_id: str) -> dict[str, Any]:
        """``{"type": "error", "error": {"type", "message"}, "request_id"}``."""
        kind, default = _ERRORS.get(
            status, ("api_error" if status >= 500 else "invalid_request_error", "Error.")
        )
        return {
            "type": "error",
            "error": {"type": kind, "message": message or default},
            "request_id": request_id,
        }

    def id_headers(self, request_id: str) -> dict[str, str]:
        """``request-id``."""
        return {"request-id": request_id}


def _think(plan: StreamPlan, rendering: Rendering, block: int) -> int:
    """Add the events of the reply's thinking blocks after ``block``; the last block's index."""
    for thought in _thoughts(rendering):
        block += 1
        if thought["type"] == "thinking":
            plan.add(_block_start(block, {**thought, "thinking": "", "signature": ""}))
            for piece in rendering.reply.thinking or ():
                plan.add(_block_delta(block, {"type": "thinking_delta", "thinking": piece}))
            signed = {"type": "signature_delta", "signature": thought["signature"]}
            plan.add(_block_delta(block, signed))
        else:
            plan.add(_block_start(block, thought))
        plan.add(_block_stop(block))
    return block


def _message(
    rendering: Rendering, content: list[dict[str, Any]], output_tokens: int, *, stopped: bool
) -> dict[str, Any]:
    return {
        "id": rendering.id,
        "type": "message",
        "role": "assistant",
        "model": rendering.model,
        "content": content,
        "stop_reason": rendering.finish_reason if stopped else None,
        "stop_sequence": rendering.reply.stop_sequence if stopped else None,
        "usage": {  # Anthropic's input_tokens leave out the cache's reads and writes
            "input_tokens": max(
                0,
                rendering.input_tokens
                - rendering.reply.cached_tokens
                - rendering.reply.cache_write_tokens,
            ),
            "cache_creation_input_tokens": rendering.reply.cache_write_tokens,
            "cache_read_input_tokens": rendering.reply.cached_tokens,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        },
    }


def _thoughts(rendering: Rendering) -> list[dict[str, Any]]:
    """The reply's scripted thinking blocks, whole: a ``thinking`` one, a redacted one."""
    reply = rendering.reply
    thoughts: list[dict[str, Any]] = []
    if reply.thinking is not None:
        text = "".join(reply.thinking)
        signature = thinking_signature(text)
        thoughts.append({"type": "thinking", "thinking": text, "signature": signature})
    if reply.redacted_thinking is not None:
        thoughts.append({"type": "redacted_thinking", "data": reply.redacted_thinking})
    return thoughts


def _block_start(index: int, block: dict[str, Any]) -> Event:
    return (
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": block},
    )


def _block_delta(index: int, delta: dict[str, Any]) -> Event:
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def _block_stop(index: int) -> Event:
    return ("content_block_stop", {"type": "content_block_stop", "index": index})


def _blocks(message: object, kind: str) -> list[dict[str, Any]]:
    """The content blocks of type ``kind`` of a message."""
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return []
    return [block for block in content if isinstance(block, dict) and block.get("type") == kind]


_TOOL_ID = re.compile(r"[a-zA-Z0-9_-]+")


def _check_turns(messages: list[Any]) -> str | None:
    """Why the API would refuse these messages' roles, or their (blank) content."""
    previous = None
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return f"messages.{index}.role: Input should be 'user' or 'assistant'"
        if index == 0 and role != "user":
            return 'messages: first message must use the "user" role'
        if role == previous:
            return (
                'messages: roles must alternate between "user" and "assistant", but found '
                f'multiple "{role}" roles in a row'
            )
        previous = role
        content = message.get("content")
        last = index == len(messages) - 1
        if not content and not (last and role == "assistant"):
            return (
                f"messages.{index}: all messages must have non-empty content except for the "
                "optional final assistant message"
            )
        texts = (
            [content]
            if isinstance(content, str)
            else [block.get("text") for block in _blocks(message, "text")]
        )
        if isinstance(content, list) and any(
            not (isinstance(text, str) and text.strip()) for text in texts
        ):
            return "messages: text content blocks must be non-empty"
        final = texts[-1] if last and role == "assistant" and texts else None
        if isinstance(final, str) and final != final.rstrip():
            return "final assistant content cannot end with trailing whitespace"
        for number, block in enumerate(_blocks(message, "tool_use")):
            if not _TOOL_ID.fullmatch(str(block.get("id"))):
                return (
                    f"messages.{index}.content.{number}.tool_use.id: String should match "
                    "pattern '^[a-zA-Z0-9_-]+$'"
                )
    return None


def _check_tool_blocks(messages: list[Any], has_tools: bool) -> str | None:
    """Why the API would refuse these tool_use and tool_result blocks, if it would."""
    uses = [[block.get("id") for block in _blocks(message, "tool_use")] for message in messages]
    results = [
        [block.get("tool_use_id") for block in _blocks(message, "tool_result")]
        for message in messages
    ]
    if (any(uses) or any(results)) and not has_tools:
        return "Requests which include `tool_use` or `tool_result` blocks must define tools."
    seen: set[str] = set()
    for index, ids in enumerate(uses):
        named = [str(used) for used in ids]
        if seen.intersection(named) or len(set(named)) < len(named):
            return f"messages.{index}: `tool_use` ids must be unique"
        seen.update(named)
    for index, message in enumerate(messages):
        asked = uses[index - 1] if index > 0 else []
        unexpected = [used for used in results[index] if used not in asked]
        if unexpected:
            return (
                f"messages.{index}: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{', '.join(map(str, unexpected))}. Each `tool_result` block must have a "
                "corresponding `tool_use` block in the previous message."
            )
        content = message.get("content") if isinstance(message, dict) else None
        leading = 0
        for block in content if isinstance(content, list) else []:
            if not (isinstance(block, dict) and block.get("type") == "tool_result"):
                break
            leading += 1
        if leading < len(results[index]):
            return (
                f"messages.{index}: `tool_result` blocks must come first in the content, "
                "before any other block."
            )
        following = results[index + 1] if index + 1 < len(results) else []
        missing = [used for used in uses[index] if used not in following]
        if missing:
            return (
                f"messages.{index}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(map(str, missing))}. Each `tool_use` block "
                "must have a corresponding `tool_result` block in the next message."
            )
    return None


_THOUGHTS = ("thinking", "redacted_thinking")


def _check_thinking(messages: list[Any], thinking: object) -> str | None:
    """Why the API would refuse these thinking blocks: one altered, or one missing.

    A ``thinking`` block must keep its signature; with ``thinking`` enabled, the last
    assistant message, if it has ``tool_use`` blocks, must start with a thinking block.
    """
    for index, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        for number, block in enumerate(content if isinstance(content, list) else []):
            if not (isinstance(block, dict) and block.get("type") == "thinking"):
                continue
            if block.get("signature") != thinking_signature(str(block.get("thinking"))):
                return f"messages.{index}.content.{number}: Invalid `signature` in `thinking` block"
    enabled = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
    roles = [message.get("role") if isinstance(message, dict) else None for message in messages]
    last = len(roles) - 1 - roles[::-1].index("assistant") if "assistant" in roles else None
    if not enabled or last is None or not _blocks(messages[last], "tool_use"):
        return None
    first = messages[last]["content"][0]
    kind = first.get("type") if isinstance(first, dict) else None
    if kind in _THOUGHTS:
        return None
    return (
        f"messages.{last}.content.0.type: Expected `thinking` or `redacted_thinking`, but "
        f"found `{kind}`. When `thinking` is enabled, a final `assistant` message must start "
        "with a thinking block (before its `tool_use` blocks): send back the thinking "
        "blocks of the reply unchanged, or disable `thinking`."
    )


_MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def _check_images(messages: list[Any]) -> str | None:
    """Why the API would refuse an ``image`` block of these messages, if it would."""
    for index, message in enumerate(messages):
        for number, block in enumerate(_blocks(message, "image")):
            where = f"messages.{index}.content.{number}.image.source"
            source = block.get("source")
            kind = source.get("type") if isinstance(source, dict) else None
            if kind == "url" and isinstance(source, dict):
                url = source.get("url")
                if not (isinstance(url, str) and url.startswith(("https://", "http://"))):
                    return f"{where}.url: Input should be a valid URL"
            elif kind == "base64" and isinstance(source, dict):
                if source.get("media_type") not in _MEDIA_TYPES:
                    return (
                        f"{where}.media_type: Input should be 'image/jpeg', 'image/png', "
                        "'image/gif' or 'image/webp'"
                    )
                problem = check_base64(source.get("data"), f"{where}.data")
                if problem is not None:
                    return problem
            else:
                return (
                    f"{where}: Input tag {kind!r} found using 'type' does not match any of "
                    "the expected tags: 'base64', 'url'"
                )
    return None
