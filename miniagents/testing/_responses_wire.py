"""The OpenAI Responses wire format (``POST /v1/responses``), as the fake speaks it.

A reply is a ``response`` object, or a stream of named events, each with its
``sequence_number``::

    response.created | response.in_progress
    | response.output_item.added (reasoning)  (the scripted thinking, if any: its summary)
    | response.reasoning_summary_part.added | response.reasoning_summary_text.delta ...
    | response.reasoning_summary_text.done | ....summary_part.done | response.output_item.done
    | response.output_item.added (message) | response.content_part.added
    | response.output_text.delta ...       (one per text token)
    | response.output_text.done | response.content_part.done | response.output_item.done
      (a refusal: a ``refusal`` content part, of response.refusal.delta ... | ....done)
    | response.output_item.added (function_call: call_id, name)   (per tool call)
    | response.function_call_arguments.delta ... | ....done | response.output_item.done
    | response.completed                   (or response.incomplete: max_output_tokens, ...)

(``thinking_order="after_text"``: the reasoning item after the message; ``"with_text"`` is
refused, see ``_respond``.)

There is no ``data: [DONE]``. Failures mid-stream are an ``error`` event or a
``response.failed`` event (status ``failed``, with the error's code and message).
Requests the API would refuse get its 400 (see ``_responses_checks``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from miniagents.testing._openai_wire import OpenAIWire
from miniagents.testing._responses_checks import refusal
from miniagents.testing._script import TO_RESPONSES, Provider
from miniagents.testing._wire import Event, Rendering, StreamPlan, Wire

__all__ = ["ResponsesWire"]

_OPENAI = OpenAIWire()
"""What the Responses API shares with Chat Completions: call ids, error bodies, headers."""


class ResponsesWire(Wire):
    """Renders replies and errors as the Responses API does."""

    provider: Provider = "openai_responses"
    reply_prefix = "resp_fake"
    call_prefix = _OPENAI.call_prefix
    stop_reasons = ("completed", "completed")  # or why the response is incomplete
    reasons = TO_RESPONSES

    def validate(self, body: object) -> str | None:
        """Why the API would refuse this body, if it would (see ``_responses_checks``)."""
        return refusal(body)

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

        thinking = rendering.reply.thinking
        if thinking is not None and rendering.reply.thinking_first:
            plan.body.extend((each, False) for each in _reasoning(event, output, index, thinking))
            index += 1
        if _has_message(rendering):
            message = output[index]
            where: dict[str, Any] = {"item_id": message["id"], "output_index": index}
            started = {**message, "status": "in_progress", "content": []}
            plan.add(event("response.output_item.added", output_index=index, item=started))
            done = []
            for number, part in enumerate(message["content"]):
                at = {**where, "content_index": number}
                if part["type"] == "refusal":
                    empty: dict[str, Any] = {"type": "refusal", "refusal": ""}
                    kind, pieces, field = "response.refusal", rendering.refusal, "refusal"
                    extra: dict[str, Any] = {}
                else:
                    empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                    kind, pieces, field = "response.output_text", rendering.tokens, "text"
                    extra = {"logprobs": []}
                plan.body.extend((ended, False) for ended in done)
                plan.add(event("response.content_part.added", **at, part=empty))
                for piece in pieces:
                    plan.add(event(f"{kind}.delta", **at, delta=piece, **extra), content=True)
                done = [
                    event(f"{kind}.done", **at, **{field: part[field]}, **extra),
                    event("response.content_part.done", **at, part=part),
                ]
            done.append(event("response.output_item.done", output_index=index, item=message))
            index += 1
        if thinking is not None and not rendering.reply.thinking_first:  # after the message
            plan.body.extend((ended, False) for ended in done)
            done = []
            plan.body.extend((each, False) for each in _reasoning(event, output, index, thinking))
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


def _reasoning(
    event: Callable[..., Event], output: list[dict[str, Any]], index: int, thinking: tuple[str, ...]
) -> list[Event]:
    """The events of the reasoning item ``output[index]``, its summary streamed (``thinking``).

    ``event(kind, **fields)`` makes an event, numbered in its stream.
    """
    reasoning = output[index]
    summary = {"item_id": reasoning["id"], "output_index": index, "summary_index": 0}
    [part] = reasoning["summary"]
    return [
        event("response.output_item.added", output_index=index, item={**reasoning, "summary": []}),
        event("response.reasoning_summary_part.added", **summary, part={**part, "text": ""}),
        *(event("response.reasoning_summary_text.delta", **summary, delta=p) for p in thinking),
        event("response.reasoning_summary_text.done", **summary, text=part["text"]),
        event("response.reasoning_summary_part.done", **summary, part=part),
        event("response.output_item.done", output_index=index, item=reasoning),
    ]


def _error(code: str | None, message: str | None) -> dict[str, Any]:
    return {
        "code": code or "server_error",
        "message": message or "The server had an error while processing your request.",
    }


def _status(rendering: Rendering) -> str:
    return "completed" if rendering.finish_reason == "completed" else "incomplete"


def _has_message(rendering: Rendering) -> bool:
    """Whether the output has a message item: text, a refusal, or nothing else to send."""
    return bool(rendering.tokens or rendering.refusal or not rendering.calls)


def _output(rendering: Rendering) -> list[dict[str, Any]]:
    """The output items: the reasoning (if scripted), the message (if there is text, or
    nothing else), then the calls (the reasoning after the message, if scripted so)."""
    serial = rendering.id.removeprefix("resp_")
    output: list[dict[str, Any]] = []
    reasoning = None
    if rendering.reply.thinking is not None:
        summary = {"type": "summary_text", "text": "".join(rendering.reply.thinking)}
        reasoning = {"id": f"rs_{serial}", "type": "reasoning", "summary": [summary]}
        if rendering.reply.thinking_first:
            output.append(reasoning)
            reasoning = None
    if _has_message(rendering):
        content: list[dict[str, Any]] = []
        if rendering.tokens or not rendering.refusal:
            content.append(
                {"type": "output_text", "text": rendering.text, "annotations": [], "logprobs": []}
            )
        if rendering.refusal:
            content.append({"type": "refusal", "refusal": rendering.refusal_text})
        output.append(
            {
                "id": f"msg_{serial}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": content,
            }
        )
    if reasoning is not None:  # (thinking_order: after the message, before the calls)
        output.append(reasoning)
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
        "input_tokens_details": {"cached_tokens": rendering.reply.cached_tokens},
        "output_tokens": rendering.output_tokens,
        "output_tokens_details": {"reasoning_tokens": rendering.reply.reasoning_tokens},
        "total_tokens": rendering.input_tokens + rendering.output_tokens,
    }
