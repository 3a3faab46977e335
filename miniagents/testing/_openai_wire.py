"""The OpenAI Chat Completions wire format (``POST /v1/chat/completions``), as the fake speaks it.

A reply is a ``chat.completion`` object, or a stream of ``chat.completion.chunk`` events
ending with ``data: [DONE]``: the role first, then a chunk per piece of the scripted
thinking (``reasoning_content``, as DeepSeek's and vLLM's servers send it; the whole
reply's message has it all; after the text, or in its chunks, as ``thinking_order``
says), a chunk per text token (a refusal: per
``refusal`` piece, with ``content`` null in a reply not streamed), then per tool
call a chunk with its ``id`` and ``function.name`` and one per argument delta, then the
``finish_reason``, and the usage chunk when ``stream_options.include_usage`` asked for it.
Requests are refused (400) as the API refuses them, tool messages included: a message of
a role the API does not have (its roles: ``system``, ``developer``, ``user``,
``assistant``, ``tool``, ``function``), a call's id of more than 40 characters, a ``tool``
message that does not answer a call of the assistant message just before or whose
content is not a string or a list of parts (null: a result without text), and a call
not answered before the conversation goes on. So are ``image_url`` parts whose URL is neither
http(s) nor a base64 data URL of an image, and a ``json_schema`` ``response_format``
without a name or a schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from miniagents.testing._output_format import check_output_format
from miniagents.testing._script import ANTHROPIC_TO_OPENAI, Provider
from miniagents.testing._wire import (
    Event,
    RenderedCall,
    Rendering,
    StreamPlan,
    Wire,
    check_fields,
    check_image_url,
    check_ranges,
    parts_of,
)

__all__ = ["OpenAIWire", "chat_call", "chat_usage", "include_usage"]

_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again in 1ms.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}

_RANGES = {
    "temperature": (0, 2),
    "top_p": (0, 1),
    "presence_penalty": (-2, 2),
    "frequency_penalty": (-2, 2),
    "max_tokens": (1, 1_000_000),
    "max_completion_tokens": (1, 1_000_000),
}
"""The numeric options the API checks, with their ranges."""


class OpenAIWire(Wire):
    """Renders replies and errors as the Chat Completions API does."""

    provider: Provider = "openai"
    thinking_beside_text = True  # (a chunk's delta: content and reasoning_content)
    reply_prefix = "chatcmpl-fake"
    call_prefix = "call_fake"
    stop_reasons = ("stop", "tool_calls")
    reasons = ANTHROPIC_TO_OPENAI
    ranges: Mapping[str, tuple[float, float]] = _RANGES
    """The numeric options it checks, with their ranges (a server's dialect may differ)."""

    def validate(self, body: object) -> str | None:
        """Why the API would refuse this body: a missing field, an option out of range, or
        tool messages that do not answer the calls just before them."""
        problem = check_fields(body, ("model", "messages"))
        if problem is not None or not isinstance(body, dict):
            return problem
        messages = body["messages"]
        return (
            check_ranges(body, self.ranges)
            or _check_roles(messages)
            or _check_tool_messages(messages)
            or _check_images(messages)
            or _check_response_format(body.get("response_format"))
            or check_output_format(body)
        )

    def body(self, rendering: Rendering) -> dict[str, Any]:
        """A ``chat.completion`` object."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": (
                rendering.text
                if rendering.tokens or not (rendering.calls or rendering.refusal)
                else None
            ),
            "refusal": rendering.refusal_text or None,
            "annotations": [],
        }
        if rendering.calls:
            message["tool_calls"] = [chat_call(rendered) for rendered in rendering.calls]
        if rendering.reply.thinking is not None:  # (a reasoning server's, as DeepSeek's)
            message["reasoning_content"] = "".join(rendering.reply.thinking)
        return {
            "id": rendering.id,
            "object": "chat.completion",
            "created": rendering.created,
            "model": rendering.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": rendering.finish_reason,
                }
            ],
            "usage": chat_usage(rendering),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }

    def stream(self, rendering: Rendering) -> StreamPlan:
        """The chunks of a streamed reply."""
        plan = StreamPlan()
        plan.add(_chunk(rendering, {"role": "assistant", "content": "", "refusal": None}, None))
        thoughts = rendering.reply.thinking or ()
        if rendering.reply.thinking_first:
            plan.body.extend((_reasoning(rendering, thought), False) for thought in thoughts)
            thoughts = ()
        beside = rendering.reply.thinking_order == "with_text"  # (a piece in a token's delta)
        for number, token in enumerate(rendering.tokens):
            said = {"content": token}
            if beside and number < len(thoughts):
                said["reasoning_content"] = thoughts[number]
            plan.add(_chunk(rendering, said, None), content=True)
        for refused in rendering.refusal:
            plan.add(_chunk(rendering, {"refusal": refused}, None), content=True)
        if beside:
            thoughts = thoughts[len(rendering.tokens) :]
        plan.body.extend((_reasoning(rendering, thought), False) for thought in thoughts)
        for index, rendered in enumerate(rendering.calls):
            start = {"index": index, **chat_call(rendered, "")}
            plan.add(_chunk(rendering, {"tool_calls": [start]}, None))
            for delta in rendered.call.deltas():
                piece = {"index": index, "function": {"arguments": delta}}
                plan.add(_chunk(rendering, {"tool_calls": [piece]}, None), content=True)
        plan.final.append(_chunk(rendering, {}, rendering.finish_reason))
        if include_usage(rendering):
            usage = _chunk(rendering, {}, None)
            usage[1].update(choices=[], usage=chat_usage(rendering))
            plan.final.append(usage)
        plan.final.append((None, b"[DONE]"))
        return plan

    def error_event(self, error_type: str | None, message: str | None) -> Event:
        """``data: {"error": {...}}``."""
        error = {
            "message": message or "The server had an error while processing your request.",
            "type": error_type or "server_error",
            "param": None,
            "code": None,
        }
        return (None, {"error": error})

    def malformed_event(self, rendering: Rendering) -> Event:
        """A chunk cut in the middle of its JSON."""
        return (
            None,
            b'{"id":"%s","object":"chat.completion.chunk","choices":[{"ind'
            % (rendering.id.encode()),
        )

    def error_body(self, status: int, message: str | None, request_id: str) -> dict[str, Any]:
        """``{"error": {"message", "type", "param", "code"}}``."""
        kind, code, default = _ERRORS.get(
            status,
            ("server_error" if status >= 500 else "invalid_request_error", None, "Error."),
        )
        return {"error": {"message": message or default, "type": kind, "param": None, "code": code}}

    def id_headers(self, request_id: str) -> dict[str, str]:
        """``x-request-id`` (and ``openai-processing-ms``)."""
        return {"x-request-id": request_id, "openai-processing-ms": "1"}


def _reasoning(rendering: Rendering, thought: str) -> tuple[None, dict[str, Any]]:
    """A chunk of a piece of reasoning alone (``reasoning_content``, as DeepSeek's)."""
    return _chunk(rendering, {"reasoning_content": thought}, None)


def _chunk(
    rendering: Rendering, delta: Mapping[str, Any], finish_reason: str | None
) -> tuple[None, dict[str, Any]]:
    chunk: dict[str, Any] = {
        "id": rendering.id,
        "object": "chat.completion.chunk",
        "created": rendering.created,
        "model": rendering.model,
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
        "choices": [
            {"index": 0, "delta": dict(delta), "logprobs": None, "finish_reason": finish_reason}
        ],
    }
    if include_usage(rendering):
        chunk["usage"] = None
    return (None, chunk)


def chat_call(rendered: RenderedCall, arguments: str | None = None) -> dict[str, Any]:
    """A tool call as Chat Completions sends it, with its arguments (else the call's own)."""
    text = rendered.call.text if arguments is None else arguments
    function = {"name": rendered.call.name, "arguments": text}
    return {"id": rendered.id, "type": "function", "function": function}


def include_usage(rendering: Rendering) -> bool:
    """Whether the request asked for the usage chunk (``stream_options.include_usage``)."""
    options = rendering.request.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def chat_usage(rendering: Rendering) -> dict[str, Any]:
    """The ``usage`` of a reply, as Chat Completions counts it."""
    return {
        "prompt_tokens": rendering.input_tokens,
        "completion_tokens": rendering.output_tokens,
        "total_tokens": rendering.input_tokens + rendering.output_tokens,
        "prompt_tokens_details": {
            "cached_tokens": rendering.reply.cached_tokens,
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": rendering.reply.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


_ROLES = ("system", "assistant", "user", "function", "tool", "developer")


def _check_roles(messages: list[Any]) -> str | None:
    """Why the API would refuse a message's role, or a call's id (40 characters at most)."""
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in _ROLES:
            return (
                f"Invalid value: {role!r}. Supported values are: 'system', 'assistant', "
                "'user', 'function', 'tool', and 'developer'."
            )
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        for number, call in enumerate(calls if isinstance(calls, list) else []):
            given = call.get("id") if isinstance(call, dict) else None
            if isinstance(given, str) and len(given) > 40:
                return (
                    f"Invalid 'messages[{index}].tool_calls[{number}].id': string too long. "
                    "Expected a string with maximum length 40, but got a string with length "
                    f"{len(given)} instead."
                )
    return None


def _check_tool_messages(messages: list[Any]) -> str | None:
    """Why the API would refuse these tool calls and results, if it would."""
    waiting: list[str] = []  # the calls of the last assistant message not answered yet
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"messages.[{index}]: Input should be an object"
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in waiting:
                return (
                    f"Invalid parameter: messages.[{index}]: messages with role 'tool' must be "
                    "a response to a preceeding message with 'tool_calls'."
                )
            waiting.remove(call_id)
            content = message.get("content")
            if not isinstance(content, str | list):
                kind = "null" if content is None else type(content).__name__
                return (
                    f"Invalid type for 'messages[{index}].content': expected one of a string "
                    f"or array of objects, but got {kind} instead."
                )
            continue
        if waiting:
            return _unanswered(waiting)
        if role == "assistant" and message.get("tool_calls"):
            calls = message["tool_calls"]
            if not isinstance(calls, list) or not all(
                isinstance(call, dict)
                and isinstance(call.get("id"), str)
                and isinstance((call.get("function") or {}).get("name"), str)
                and isinstance((call.get("function") or {}).get("arguments"), str)
                for call in calls
            ):
                return f"messages.[{index}].tool_calls: each needs an id, a name and arguments"
            waiting = [call["id"] for call in calls]
    return _unanswered(waiting) if waiting else None


def _unanswered(waiting: list[str]) -> str:
    return (
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        f"to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        f"{', '.join(waiting)}"
    )


def _check_images(messages: list[Any]) -> str | None:
    """Why the API would refuse an ``image_url`` part of these messages, if it would."""
    for index, number, part in parts_of(messages, "image_url"):
        where = f"messages[{index}].content[{number}].image_url"
        image = part.get("image_url")
        if not isinstance(image, dict):
            return f"Missing required parameter: '{where}'."
        problem = check_image_url(image.get("url"), f"{where}.url")
        if problem is None and image.get("detail", "auto") not in ("auto", "low", "high"):
            problem = f"Invalid value for '{where}.detail': expected 'auto', 'low' or 'high'."
        if problem is not None:
            return problem
    return None


def _check_response_format(given: object) -> str | None:
    """Why the API would refuse this ``response_format``, if it would."""
    if not isinstance(given, dict) or given.get("type") != "json_schema":
        return None
    schema = given.get("json_schema")
    if not isinstance(schema, dict) or not isinstance(schema.get("name"), str):
        return "Missing required parameter: 'response_format.json_schema.name'."
    if not isinstance(schema.get("schema"), dict):
        return "Missing required parameter: 'response_format.json_schema.schema'."
    return None
