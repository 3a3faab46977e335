"""The OpenAI Responses wire format (``POST /v1/responses``), as the fake speaks it.

A reply is a ``response`` object, or a stream of named events, each with its
``sequence_number``::

    response.created | response.in_progress
    | response.output_item.added (message) | response.content_part.added
    | response.output_text.delta ...       (one per text token)
    | response.output_text.done | response.content_part.done | response.output_item.done
    | response.output_item.added (function_call: call_id, name)   (per tool call)
    | response.function_call_arguments.delta ... | ....done | response.output_item.done
    | response.completed                   (or response.incomplete: max_output_tokens, ...)

There is no ``data: [DONE]``. Failures mid-stream are an ``error`` event or a
``response.failed`` event (status ``failed``, with the error's code and message).
Requests are refused (400) as the API refuses them: a missing ``model`` or ``input``, a
parameter of Chat Completions (``messages``, ``max_tokens``, ``stop``, ...), a numeric
option out of range, a ``function_call_output`` without its ``function_call`` (or the
reverse), an ``input_image`` without a valid URL, a function tool without a name, a
``json_schema`` text format without a name or a schema.
"""

from __future__ import annotations

import itertools
from typing import Any

from miniagents.testing._openai_wire import OpenAIWire
from miniagents.testing._script import TO_RESPONSES, Provider
from miniagents.testing._wire import (
    Event,
    Rendering,
    StreamPlan,
    check_image_url,
    check_ranges,
)

__all__ = ["ResponsesWire"]

_RANGES = {"temperature": (0, 2), "top_p": (0, 1), "max_output_tokens": (16, 1_000_000)}
"""The numeric options the API checks, with their ranges."""

_CHAT_ONLY = (
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "response_format",
    "reasoning_effort",
    "n",
)
"""Parameters of Chat Completions that the Responses API does not know."""

_OPENAI = OpenAIWire()
"""What the Responses API shares with Chat Completions: call ids, error bodies, headers."""


class ResponsesWire:
    """Renders replies and errors as the Responses API does."""

    provider: Provider = "openai_responses"

    def reply_id(self, serial: int) -> str:
        """``resp_fake00000001``."""
        return f"resp_fake{serial:08d}"

    def call_id(self, serial: int) -> str:
        """``call_fake00000001``, as Chat Completions."""
        return _OPENAI.call_id(serial)

    def finish_reason(self, given: str | None, has_calls: bool) -> str:
        """``completed``, or why the response is incomplete; other vocabularies translated."""
        reason = given or "completed"
        return TO_RESPONSES.get(reason, reason)

    def validate(self, body: object) -> str | None:
        """Why the API would refuse this body, if it would."""
        if not isinstance(body, dict):
            return "The request body is not a JSON object."
        for name in ("model", "input"):
            if name not in body:
                return f"Missing required parameter: '{name}'."
        for name in _CHAT_ONLY:
            if name in body:
                return f"Unknown parameter: '{name}'."
        given = body["input"]
        if not isinstance(given, (str, list)):
            return "Invalid type for 'input': expected a string or an array of input items."
        items = given if isinstance(given, list) else []
        return (
            check_ranges(body, _RANGES)
            or _check_calls(items)
            or _check_images(items)
            or _check_tools(body.get("tools"))
            or _check_format(body.get("text"))
        )

    def body(self, rendering: Rendering) -> dict[str, Any]:
        """A ``response`` object (with ``failed_after``: one of status ``failed``)."""
        reply = rendering.reply
        if reply.failed_after is not None:
            failed = _response(rendering, "failed", [])
            failed["error"] = _error(reply.error_type, reply.error_message)
            return failed
        return _response(rendering, _status(rendering), _output(rendering), usage=True)

    def stream(self, rendering: Rendering) -> StreamPlan:
        """The events of a streamed reply."""
        plan = StreamPlan()
        numbers = itertools.count()

        def event(kind: str, **fields: Any) -> Event:
            return (kind, {"type": kind, "sequence_number": next(numbers), **fields})

        plan.add(event("response.created", response=_response(rendering, "in_progress", [])))
        plan.add(event("response.in_progress", response=_response(rendering, "in_progress", [])))
        done: list[Event] = []  # the events that end the last output item
        output = _output(rendering)
        index = 0
        if rendering.tokens or not rendering.calls:
            message = output[index]
            where: dict[str, Any] = {"item_id": message["id"], "output_index": index}
            started = {**message, "status": "in_progress", "content": []}
            plan.add(event("response.output_item.added", output_index=index, item=started))
            empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            plan.add(event("response.content_part.added", **where, content_index=0, part=empty))
            for token in rendering.tokens:
                delta = event(
                    "response.output_text.delta", **where, content_index=0, delta=token, logprobs=[]
                )
                plan.add(delta, content=True)
            part = message["content"][0]
            done = [
                event(
                    "response.output_text.done",
                    **where,
                    content_index=0,
                    text=rendering.text,
                    logprobs=[],
                ),
                event("response.content_part.done", **where, content_index=0, part=part),
                event("response.output_item.done", output_index=index, item=message),
            ]
            index += 1
        for rendered in rendering.calls:
            plan.body.extend((item, False) for item in done)
            item = output[index]
            where = {"item_id": item["id"], "output_index": index}
            started = {**item, "status": "in_progress", "arguments": ""}
            plan.add(event("response.output_item.added", output_index=index, item=started))
            for piece in rendered.call.deltas():
                delta = event("response.function_call_arguments.delta", **where, delta=piece)
                plan.add(delta, content=True)
            done = [
                event(
                    "response.function_call_arguments.done",
                    **where,
                    name=rendered.call.name,
                    arguments=rendered.call.text,
                ),
                event("response.output_item.done", output_index=index, item=item),
            ]
            index += 1
        plan.closing.extend(done)
        status = _status(rendering)
        final = _response(rendering, status, output, usage=True)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        plan.final.append(event(kind, response=final))
        return plan

    def error_event(self, error_type: str | None, message: str | None) -> Event:
        """``event: error`` with the error's code and message."""
        error = {
            "type": "error",
            "sequence_number": 0,
            **_error(error_type, message),
            "param": None,
        }
        return ("error", error)

    def failed_event(
        self, rendering: Rendering, error_type: str | None, message: str | None
    ) -> Event:
        """``response.failed``: the response with status ``failed`` and its error."""
        failed = _response(rendering, "failed", [])
        failed["error"] = _error(error_type, message)
        return (
            "response.failed",
            {"type": "response.failed", "sequence_number": 0, "response": failed},
        )

    def malformed_event(self, rendering: Rendering) -> Event:
        """A text delta cut in the middle of its JSON."""
        return (
            "response.output_text.delta",
            b'{"type":"response.output_text.delta","sequence_number":1,"item_id":"msg_',
        )

    def error_body(self, status: int, message: str | None, request_id: str) -> dict[str, Any]:
        """``{"error": {"message", "type", "param", "code"}}``, as Chat Completions."""
        return _OPENAI.error_body(status, message, request_id)

    def id_headers(self, request_id: str) -> dict[str, str]:
        """``x-request-id`` (and ``openai-processing-ms``), as Chat Completions."""
        return _OPENAI.id_headers(request_id)


def _error(code: str | None, message: str | None) -> dict[str, Any]:
    return {
        "code": code or "server_error",
        "message": message or "The server had an error while processing your request.",
    }


def _status(rendering: Rendering) -> str:
    return "completed" if rendering.finish_reason == "completed" else "incomplete"


def _output(rendering: Rendering) -> list[dict[str, Any]]:
    """The output items: the message (if there is text, or nothing else), then the calls."""
    serial = rendering.id.removeprefix("resp_")
    output: list[dict[str, Any]] = []
    if rendering.tokens or not rendering.calls:
        text = {"type": "output_text", "text": rendering.text, "annotations": [], "logprobs": []}
        output.append(
            {
                "id": f"msg_{serial}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [text],
            }
        )
    for number, rendered in enumerate(rendering.calls):
        output.append(
            {
                "id": f"fc_{serial}_{number}",
                "type": "function_call",
                "status": "completed",
                "call_id": rendered.id,
                "name": rendered.call.name,
                "arguments": rendered.call.text,
            }
        )
    return output


def _response(
    rendering: Rendering, status: str, output: list[dict[str, Any]], *, usage: bool = False
) -> dict[str, Any]:
    request = rendering.request
    incomplete = None if status != "incomplete" else {"reason": rendering.finish_reason}
    return {
        "id": rendering.id,
        "object": "response",
        "created_at": rendering.created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": rendering.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": request.get("store", True),
        "temperature": request.get("temperature", 1.0),
        "text": request.get("text") or {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": request.get("tools", []),
        "top_p": request.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": _usage(rendering) if usage else None,
        "user": None,
        "metadata": {},
    }


def _usage(rendering: Rendering) -> dict[str, Any]:
    return {
        "input_tokens": rendering.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": rendering.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": rendering.input_tokens + rendering.output_tokens,
    }


def _check_calls(items: list[Any]) -> str | None:
    """Why the API would refuse these function calls and outputs, if it would."""
    called: list[str] = []
    answered: set[str] = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            return f"Invalid type for 'input[{index}]': expected an object."
        kind = item.get("type")
        if kind == "function_call":
            for name in ("call_id", "name", "arguments"):
                if not isinstance(item.get(name), str):
                    return f"Missing required parameter: 'input[{index}].{name}'."
            called.append(item["call_id"])
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if call_id not in called:
                return f"No tool call found for function call output with call_id {call_id}."
            if not isinstance(item.get("output"), (str, list)):
                return f"Missing required parameter: 'input[{index}].output'."
            answered.add(call_id)
    missing = [call_id for call_id in called if call_id not in answered]
    return f"No tool output found for function call {missing[0]}." if missing else None


def _check_images(items: list[Any]) -> str | None:
    """Why the API would refuse an ``input_image`` part of these items, if it would."""
    for index, item in enumerate(items):
        content = item.get("content") if isinstance(item, dict) else None
        for number, part in enumerate(content if isinstance(content, list) else []):
            if not (isinstance(part, dict) and part.get("type") == "input_image"):
                continue
            where = f"input[{index}].content[{number}]"
            if part.get("detail") not in ("auto", "low", "high", "original"):
                return f"Missing required parameter: '{where}.detail'."
            if "file_id" in part and "image_url" not in part:
                continue
            problem = check_image_url(part.get("image_url"), f"{where}.image_url")
            if problem is not None:
                return problem
    return None


def _check_tools(tools: object) -> str | None:
    """Why the API would refuse these tools, if it would."""
    for index, tool in enumerate(tools if isinstance(tools, list) else []):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            continue
        for name in ("name", "parameters"):
            if name not in tool:
                return f"Missing required parameter: 'tools[{index}].{name}'."
    return None


def _check_format(text: object) -> str | None:
    """Why the API would refuse this ``text.format``, if it would."""
    given = text.get("format") if isinstance(text, dict) else None
    if not isinstance(given, dict) or given.get("type") != "json_schema":
        return None
    if not isinstance(given.get("name"), str):
        return "Missing required parameter: 'text.format.name'."
    if not isinstance(given.get("schema"), dict):
        return "Missing required parameter: 'text.format.schema'."
    return None
