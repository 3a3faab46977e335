"""What the wire formats share: a reply ready to render, and the events of a stream.

:class:`Rendering` is one scripted ``Reply`` made concrete for one request (ids, model,
text tokens, tool calls, usage). A wire format (``_openai_wire``, ``_responses_wire``,
``_anthropic_wire``) turns it into a JSON body, or into a :class:`StreamPlan`: the events
of a streamed reply, those that carry content (text tokens, argument deltas) marked, so
that the failure modes (``_faults``) can strike after a given number of them. The
helpers here read a request of any of the three (its messages, or the Responses API's
``input``) and check the image URLs it carries.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from miniagents.testing._script import Provider, Reply, ToolCall

__all__ = [
    "Event",
    "RenderedCall",
    "Rendering",
    "StreamPlan",
    "Wire",
    "check_base64",
    "check_fields",
    "check_image_url",
    "check_ranges",
    "count_words",
    "dumps",
    "echo_tokens",
    "parts_of",
    "text_of",
    "turns",
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
    refusal: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The text of the reply: its tokens joined."""
        return "".join(self.tokens)

    @property
    def refusal_text(self) -> str:
        """The refusal (OpenAI's APIs send it apart from the text): its pieces joined."""
        return "".join(self.refusal)


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


class Wire(ABC):
    """One provider's wire format, as the fake server renders it.

    What most formats share is here: ids made of a prefix and a serial, finish reasons
    translated by a table, the model and ``stream`` in the JSON body, server-sent events,
    and a response failed mid-stream by an error event (a format that differs overrides
    the method).

    Attributes:
        provider: The provider whose API this is.
        reply_prefix: The prefix of a reply's id (``chatcmpl-fake``, ``msg_fake``).
        call_prefix: The prefix of a tool call's id (``call_fake``, ``toolu_fake``).
        stop_reasons: The finish reason of a reply without calls, and of one with calls.
        reasons: Finish reasons in other APIs' words, in this one's.
        stream_content_type: The ``Content-Type`` of a streamed reply.
        thinking_beside_text: Whether one event of a streamed reply can carry a piece of
            thinking beside a text token (``thinking_order="with_text"``; a format without
            such an event refuses a reply scripted so).
    """

    provider: Provider
    reply_prefix: str
    call_prefix: str
    stop_reasons: tuple[str, str]
    reasons: Mapping[str, str] = {}
    stream_content_type = "text/event-stream; charset=utf-8"
    thinking_beside_text = False

    def reply_id(self, serial: int) -> str:
        """The id of a reply: its prefix and the serial (``chatcmpl-fake00000001``)."""
        return f"{self.reply_prefix}{serial:08d}"

    def call_id(self, serial: int) -> str:
        """The id of a tool call: its prefix and the serial (``call_fake00000001``)."""
        return f"{self.call_prefix}{serial:08d}"

    def finish_reason(self, given: str | None, has_calls: bool) -> str:
        """The finish reason in this API's words: the one given (translated), else the
        default for a reply with or without calls."""
        reason = given or self.stop_reasons[has_calls]
        return self.reasons.get(reason, reason)

    @abstractmethod
    def validate(self, body: object) -> str | None:
        """Why the API would refuse this request body (a 400), if it would."""

    @abstractmethod
    def body(self, rendering: Rendering) -> dict[str, Any]:
        """The JSON body of a reply that is not streamed."""

    @abstractmethod
    def stream(self, rendering: Rendering) -> StreamPlan:
        """The events of a streamed reply."""

    @abstractmethod
    def error_event(self, error_type: str | None, message: str | None) -> Event:
        """An error event sent in the middle of a stream."""

    def failed_event(
        self, rendering: Rendering, error_type: str | None, message: str | None
    ) -> Event:
        """The event of a response that fails mid-stream: the error event (the Responses
        API sends ``response.failed``)."""
        return self.error_event(error_type, message)

    @abstractmethod
    def malformed_event(self, rendering: Rendering) -> Event:
        """An event whose data is truncated JSON."""

    @abstractmethod
    def error_body(self, status: int, message: str | None, request_id: str) -> dict[str, Any]:
        """The JSON body of an HTTP error response."""

    @abstractmethod
    def id_headers(self, request_id: str) -> dict[str, str]:
        """The headers that carry the request id."""

    def error_headers(self, status: int) -> dict[str, str]:
        """The headers of an HTTP error response besides the request id's (its error
        type): none, the body says it."""
        return {}

    def authenticate(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, str] | None:
        """The error status and message for a request the API would not authenticate:
        none, any key is taken (the SDK's own check that one is given is enough)."""
        return None

    def route(self, path: str, body: object) -> tuple[str | None, bool]:
        """The model a request asks for, and whether it asks for a stream: the body's
        ``model`` and ``stream``.

        Args:
            path: The request's path, without its query string.
            body: The parsed JSON body (``None`` if it was not JSON).
        """
        if not isinstance(body, dict):
            return None, False
        model = body.get("model")
        return (model if isinstance(model, str) else None), body.get("stream") is True

    def frame(self, event: Event) -> bytes:
        """One event of a stream, as it goes in a chunk of the body: a server-sent event,
        ``event: NAME`` (if named), then ``data: JSON``."""
        name, payload = event
        data = payload if isinstance(payload, bytes) else dumps(payload)
        prefix = b"" if name is None else b"event: %s\n" % name.encode()
        return prefix + b"data: " + data + b"\n\n"


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""One encoder for every event (``json.dumps`` with options makes a new one per call)."""


def dumps(payload: object) -> bytes:
    """Compact JSON, as the services send it."""
    return _ENCODER.encode(payload).encode()


_TEXT_PARTS = frozenset({"text", "input_text", "output_text", None})
"""The types of the parts that hold text (``None``: a part with no type, as Gemini's parts
and Bedrock's content blocks are: ``{"text": ...}``)."""


def text_of(content: object) -> str:
    """The text of a message's content: a string, the text parts of a list, or of the
    ``parts`` of a Gemini content."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict) and isinstance(content.get("parts"), list):
        return text_of(content["parts"])
    if isinstance(content, list):
        parts = [
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict)
            and part.get("type") in _TEXT_PARTS
            and isinstance(part.get("text", ""), str)
        ]
        return " ".join(parts)
    return ""


def turns(request: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The messages of a request: ``messages``, the Responses API's ``input`` items, or
    Gemini's ``contents`` (its role ``model`` read as ``assistant``, its parts as the
    content)."""
    contents = request.get("contents")
    if isinstance(contents, list):
        return [
            {
                "role": "assistant" if item.get("role") == "model" else item.get("role"),
                "content": item.get("parts"),
            }
            for item in contents
            if isinstance(item, dict)
        ]
    given = request.get("input", request.get("messages"))
    if isinstance(given, str):
        return [{"role": "user", "content": given}]
    return [item for item in given if isinstance(item, dict)] if isinstance(given, list) else []


def echo_tokens(request: Mapping[str, Any]) -> tuple[str, ...]:
    """The text of the request's last user message, split before each word."""
    text = ""
    for message in reversed(turns(request)):
        if message.get("role") == "user":
            text = text_of(message.get("content"))
            break
    return tuple(re.findall(r"\s*\S+", text)) or ("",)


def count_words(request: Mapping[str, Any]) -> int:
    """How many words the request's system prompt and messages hold (at least 1)."""
    texts = [
        text_of(request.get("system")),
        text_of(request.get("instructions")),
        text_of(request.get("systemInstruction")),
    ]
    texts.extend(text_of(message.get("content")) for message in turns(request))
    return max(1, sum(len(text.split()) for text in texts))


def parts_of(messages: list[Any], kind: str) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """The parts of type ``kind`` of these messages' contents (lists of parts), each with
    its message's index and its own."""
    for index, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        for number, part in enumerate(content if isinstance(content, list) else []):
            if isinstance(part, dict) and part.get("type") == kind:
                yield index, number, part


_DATA_URL = re.compile(r"data:(image/(?:png|jpeg|gif|webp));base64,(.*)", re.DOTALL)


def check_image_url(url: object, where: str) -> str | None:
    """Why the OpenAI APIs would refuse this image URL (not http(s), or a bad data URL)."""
    if not isinstance(url, str):
        return f"Invalid '{where}': expected a string URL."
    if url.startswith(("https://", "http://")):
        return None
    match = _DATA_URL.fullmatch(url)
    if match is None:
        return (
            f"Invalid '{where}'. Expected a valid URL, or a base64-encoded data URL with an "
            "image MIME type (e.g. 'data:image/png;base64,aW1n')."
        )
    return check_base64(match[2], where)


def check_base64(data: object, where: str) -> str | None:
    """Why this is not base64 text of some bytes, if it is not."""
    try:
        if isinstance(data, str) and base64.b64decode(data, validate=True):
            return None
    except (binascii.Error, ValueError):
        pass
    return f"Invalid '{where}': the image data is not valid base64."


def check_fields(body: object, required: tuple[str, ...]) -> str | None:
    """Why a request body with ``messages`` is refused before they are read: it is not a
    JSON object, a ``required`` field is missing, or ``messages`` is not a list."""
    if not isinstance(body, dict):
        return "The request body is not a JSON object."
    for name in required:
        if name not in body:
            return f"{name}: Field required"
    if not isinstance(body["messages"], list):
        return "messages: Input should be a valid list"
    return None


def check_ranges(body: object, ranges: Mapping[str, tuple[float, float]]) -> str | None:
    """Why a numeric option of ``body`` (if an object) is refused: not a number, out of range."""
    for name, (low, high) in ranges.items():
        value = body.get(name) if isinstance(body, Mapping) else None
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{name}: Input should be a valid number"
        if not low <= value <= high:
            if high == math.inf:
                return f"{name}: Input should be greater than or equal to {low}, got {value}"
            return f"{name}: Input should be between {low} and {high}, got {value}"
    return None
