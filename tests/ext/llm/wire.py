"""Streamed replies of the three APIs as raw server-sent events, for the real SDK clients.

The tests that need a stream the fake server does not send (a reply paced on a virtual
clock, one read at a time, thinking events) give the SDK clients an ``httpx2`` transport
that answers with these events (``httpx2.MockTransport``): no socket, so virtual time
applies. Each ``*_events`` function returns a reply's events in three parts: what comes
before the text (the preamble, then the model's thinking, if any), the text deltas, and
what ends the reply.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Literal

import anthropic
import httpx2
import openai

from miniagents import MiniAgent
from miniagents.ext.llm.anthropic import anthropic_agent
from miniagents.ext.llm.openai import openai_agent

__all__ = [
    "APIS",
    "EVENTS",
    "PacedBody",
    "anthropic_events",
    "chat_events",
    "error_reply",
    "events_reply",
    "paced_agent",
    "replying_agent",
    "response",
    "responses_events",
    "sdk_agent",
    "sse",
]

APIS = ["chat", "responses", "anthropic"]
"""The three APIs, as these helpers name them."""

Parts = tuple[list[bytes], list[bytes], list[bytes]]
"""A reply's events: before the text, the text deltas, after them."""


def sse(event: str | None, data: object) -> bytes:
    """One server-sent event (``data`` as JSON unless it is a ``str``)."""
    head = f"event: {event}\n" if event else ""
    body = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {body}\n\n".encode()


def chat_events(tokens: Sequence[str], thinking: Sequence[str] = (), usage: bool = True) -> Parts:
    """A Chat Completions stream: ``thinking`` as ``reasoning_content`` deltas (DeepSeek's).

    Args:
        tokens: The text deltas.
        thinking: The reasoning deltas, before the text.
        usage: Whether a usage chunk comes after the finish reason.
    """

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return sse(
            None,
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "m",
                "choices": [choice],
            },
        )

    counts = {"prompt_tokens": 1, "completion_tokens": len(tokens), "total_tokens": 41}
    last = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [],
        "usage": counts,
    }
    ending = [chunk({}, "stop"), *([sse(None, last)] if usage else []), sse(None, "[DONE]")]
    return (
        [
            chunk({"role": "assistant", "content": ""}, None),
            *(chunk({"reasoning_content": text}, None) for text in thinking),
        ],
        [chunk({"content": text}, None) for text in tokens],
        ending,
    )


def responses_events(tokens: Sequence[str], thinking: Sequence[str] = ()) -> Parts:
    """A Responses API stream: ``thinking`` as ``response.reasoning_summary_text.delta`` events."""

    def event(kind: str, **fields: Any) -> bytes:
        return sse(kind, {"type": kind, "sequence_number": 0, **fields})

    def reply(status: str, output: list[Any]) -> dict[str, Any]:
        return response(status, output, model="m", usage=(1, len(tokens)))

    where = {"item_id": "msg", "output_index": 0, "content_index": 0}
    text = "".join(tokens)
    part = {"type": "output_text", "text": text, "annotations": []}
    item = {
        "id": "msg",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [part],
    }
    summary = {"item_id": "rs", "output_index": 0, "summary_index": 0}
    return (
        [
            event("response.created", response=reply("in_progress", [])),
            *(event("response.reasoning_summary_text.delta", **summary, delta=t) for t in thinking),
        ],
        [event("response.output_text.delta", **where, delta=token) for token in tokens],
        [
            event("response.output_text.done", **where, text=text),
            event("response.output_item.done", output_index=0, item=item),
            event("response.completed", response=reply("completed", [item])),
        ],
    )


def anthropic_events(tokens: Sequence[str], thinking: Sequence[str] = ()) -> Parts:
    """A Messages API stream: ``thinking`` as a thinking block's ``thinking_delta`` events."""
    start: dict[str, Any] = {
        "id": "a",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }

    def delta(index: int, change: dict[str, Any]) -> bytes:
        return sse(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": change}
        )

    def block(index: int, content: dict[str, Any]) -> bytes:
        started = {"type": "content_block_start", "index": index, "content_block": content}
        return sse("content_block_start", started)

    thought: list[bytes] = []
    if thinking:
        thought = [
            block(0, {"type": "thinking", "thinking": "", "signature": ""}),
            *(delta(0, {"type": "thinking_delta", "thinking": text}) for text in thinking),
            delta(0, {"type": "signature_delta", "signature": "sig"}),
            sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ]
    index = 1 if thinking else 0  # the text block's
    stop = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": len(tokens)},
    }
    return (
        [
            sse("message_start", {"type": "message_start", "message": start}),
            *thought,
            block(index, {"type": "text", "text": ""}),
        ],
        [delta(index, {"type": "text_delta", "text": token}) for token in tokens],
        [
            sse("content_block_stop", {"type": "content_block_stop", "index": index}),
            sse("message_delta", stop),
            sse("message_stop", {"type": "message_stop"}),
        ],
    )


EVENTS: dict[str, Callable[..., Parts]] = {
    "chat": chat_events,
    "responses": responses_events,
    "anthropic": anthropic_events,
}
"""Each API's events, by its name in :data:`APIS`."""


def sdk_agent(api: str, http: httpx2.AsyncClient) -> MiniAgent[..., Any]:
    """The LLM agent of ``api`` (model "m"), its SDK client on ``http``, without retries."""
    if api == "anthropic":
        client = anthropic.AsyncAnthropic(api_key="test", max_retries=0, http_client=http)
        return anthropic_agent.fork(model="m", async_client=client)
    openai_client = openai.AsyncOpenAI(api_key="test", max_retries=0, http_client=http)
    name: Literal["chat_completions", "responses"] = (
        "chat_completions" if api == "chat" else "responses"
    )
    return openai_agent.fork(model="m", async_client=openai_client, api=name)


class PacedBody(httpx2.AsyncByteStream):
    """A response body of ``events``, one at a time, ``gap`` seconds apart (the loop's clock)."""

    def __init__(self, events: Sequence[bytes], gap: float) -> None:
        self._events = events
        self._gap = gap

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for index, event in enumerate(self._events):
            if index:
                await asyncio.sleep(self._gap)
            yield event


Reply = Callable[[], httpx2.Response]
"""Makes the response to one request."""


def events_reply(events: Sequence[bytes], gap: float = 0.0) -> Reply:
    """A streamed reply of ``events``, ``gap`` seconds apart."""

    def reply() -> httpx2.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx2.Response(200, headers=headers, stream=PacedBody(events, gap))

    return reply


def error_reply(status: int, headers: dict[str, str]) -> Reply:
    """An HTTP error response (``headers``: e.g. a ``retry-after``)."""
    body = {"error": {"message": "Try again later.", "type": "error"}}
    return lambda: httpx2.Response(status, headers=headers, json=body)


def replying_agent(api: str, *replies: Reply) -> MiniAgent[..., Any]:
    """The agent of ``api`` whose n-th request gets the n-th reply (the last one after)."""
    answered = 0

    def reply(request: httpx2.Request) -> httpx2.Response:
        nonlocal answered
        answered += 1
        return replies[min(answered, len(replies)) - 1]()

    return sdk_agent(api, httpx2.AsyncClient(transport=httpx2.MockTransport(reply)))


def paced_agent(api: str, events: Sequence[bytes], gap: float = 0.0) -> MiniAgent[..., Any]:
    """The agent of ``api`` whose every call gets ``events``, ``gap`` seconds apart."""
    return replying_agent(api, events_reply(events, gap))


def response(
    status: str,
    output: list[dict[str, Any]],
    model: str = "gpt-test",
    usage: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """A Responses API ``response`` object of ``status`` with its ``output`` items (a whole
    reply's body, or the ``response`` of a ``response.created`` / ``.completed`` event).

    ``usage``: its ``(input, output)`` tokens; ``None``: ``(3, 5)`` when ``completed``,
    else no usage.
    """
    if usage is None and status == "completed":
        usage = (3, 5)
    counts = None
    if usage is not None:
        counts = {
            "input_tokens": usage[0],
            "output_tokens": usage[1],
            "total_tokens": sum(usage),
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        }
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 0,
        "model": model,
        "status": status,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": counts,
    }
