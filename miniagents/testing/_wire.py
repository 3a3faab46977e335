"""What the two wire formats share: a reply ready to render, and the events of a stream.

:class:`Rendering` is one scripted ``Reply`` made concrete for one request (ids, model,
text tokens, tool calls, usage). A wire format (``_openai_wire``, ``_anthropic_wire``)
turns it into a JSON body, or into a :class:`StreamPlan`: the events of a streamed reply,
those that carry content (text tokens, argument deltas) marked, so that the failure modes
(``_faults``) can strike after a given number of them.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from miniagents.testing._script import Provider, Reply, ToolCall

__all__ = [
    "Event",
    "RenderedCall",
    "Rendering",
    "StreamPlan",
    "Wire",
    "count_words",
    "dumps",
    "echo_tokens",
    "text_of",
]

Event = tuple["str | None", "bytes | Mapping[str, Any]"]
"""A server-sent event: its ``event:`` name (``None``: none) and its data (JSON, or raw)."""


@dataclass(frozen=True)
class RenderedCall:
    """A scripted tool call with its id."""

    id: str
    call: ToolCall


@dataclass(frozen=True)
class Rendering:
    """A scripted reply made concrete for one request."""

    reply: Reply
    id: str
    model: str
    tokens: tuple[str, ...]
    calls: tuple[RenderedCall, ...]
    finish_reason: str
    input_tokens: int
    output_tokens: int
    request: Mapping[str, Any]
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def text(self) -> str:
        """The text of the reply: its tokens joined."""
        return "".join(self.tokens)


@dataclass
class StreamPlan:
    """The events of a streamed reply, in order.

    Attributes:
        body: Every event up to the end of the content, each with whether it carries
            content (a text token or an argument delta: what ``*_after`` counts).
        closing: The events after the content that are sent even with ``omit_final``.
        final: The final events, left out with ``omit_final``.
    """

    body: list[tuple[Event, bool]] = field(default_factory=list)
    closing: list[Event] = field(default_factory=list)
    final: list[Event] = field(default_factory=list)

    def add(self, event: Event, *, content: bool = False) -> None:
        """Append an event to the body."""
        self.body.append((event, content))


class Wire(Protocol):
    """One provider's wire format, as the fake server renders it."""

    provider: Provider

    def reply_id(self, serial: int) -> str:
        """The id of a reply (``chatcmpl-...``, ``msg_...``)."""
        ...

    def call_id(self, serial: int) -> str:
        """The id of a tool call (``call_...``, ``toolu_...``)."""
        ...

    def finish_reason(self, given: str | None, has_calls: bool) -> str:
        """The finish reason in this API's words (either vocabulary is accepted)."""
        ...

    def validate(self, body: object) -> str | None:
        """Why the API would refuse this request body (a 400), if it would."""
        ...

    def body(self, rendering: Rendering) -> dict[str, Any]:
        """The JSON body of a reply that is not streamed."""
        ...

    def stream(self, rendering: Rendering) -> StreamPlan:
        """The events of a streamed reply."""
        ...

    def error_event(self, error_type: str | None, message: str | None) -> Event:
        """An error event sent in the middle of a stream."""
        ...

    def malformed_event(self, rendering: Rendering) -> Event:
        """An event whose data is truncated JSON."""
        ...

    def error_body(self, status: int, message: str | None, request_id: str) -> dict[str, Any]:
        """The JSON body of an HTTP error response."""
        ...

    def id_headers(self, request_id: str) -> dict[str, str]:
        """The headers that carry the request id."""
        ...


def dumps(payload: object) -> bytes:
    """Compact JSON, as the services send it."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def text_of(content: object) -> str:
    """The text of a message's content: a string, or the ``text`` parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        ]
        return " ".join(parts)
    return ""


def echo_tokens(request: Mapping[str, Any]) -> tuple[str, ...]:
    """The text of the request's last user message, split before each word."""
    messages = request.get("messages")
    text = ""
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                text = text_of(message.get("content"))
                break
    return tuple(re.findall(r"\s*\S+", text)) or ("",)


def count_words(request: Mapping[str, Any]) -> int:
    """How many words the request's system prompt and messages hold (at least 1)."""
    texts = [text_of(request.get("system"))]
    messages = request.get("messages")
    if isinstance(messages, list):
        texts.extend(
            text_of(message.get("content")) for message in messages if isinstance(message, dict)
        )
    return max(1, sum(len(text.split()) for text in texts))


def check_ranges(body: Mapping[str, Any], ranges: Mapping[str, tuple[float, float]]) -> str | None:
    """Why a numeric option of ``body`` is refused (not a number, out of range), if one is."""
    for name, (low, high) in ranges.items():
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{name}: Input should be a valid number"
        if not low <= value <= high:
            return f"{name}: Input should be between {low} and {high}, got {value}"
    return None
