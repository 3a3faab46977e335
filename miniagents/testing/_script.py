"""The script of the fake LLM server: scripted replies, tool calls and HTTP failures.

Items are provider-neutral: a :class:`Reply` or a :class:`Failure` is rendered in the
wire format of the endpoint that takes it (OpenAI Chat Completions, the OpenAI Responses
API, or Anthropic Messages).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from miniagents.testing.errors import FakeLLMServerError

__all__ = [
    "ANTHROPIC_TO_OPENAI",
    "FAST_RETRY",
    "OPENAI_TO_ANTHROPIC",
    "THINKING_ORDERS",
    "TO_RESPONSES",
    "Failure",
    "Provider",
    "Reply",
    "ThinkingOrder",
    "ToolCall",
    "as_tokens",
    "check_script_count",
    "check_script_seconds",
]

Provider = Literal["openai", "openai_responses", "anthropic", "gemini", "bedrock"]
"""The API an endpoint belongs to: OpenAI Chat Completions (also the OpenAI-compatible
servers'), the OpenAI Responses API, Anthropic Messages, Gemini's ``generateContent``, or
Bedrock's Converse."""

FAST_RETRY: Mapping[str, str] = {"retry-after-ms": "1"}
"""Headers for ``fail()`` that make both SDKs retry after 1 ms (``retry-after: 0`` does not)."""

OPENAI_TO_ANTHROPIC = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
"""Finish reasons in OpenAI's words, in Anthropic's."""

ANTHROPIC_TO_OPENAI = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
"""Finish reasons in Anthropic's words, in OpenAI's."""

TO_RESPONSES = {
    "stop": "completed",
    "end_turn": "completed",
    "stop_sequence": "completed",
    "tool_calls": "completed",
    "tool_use": "completed",
    "function_call": "completed",
    "length": "max_output_tokens",
    "max_tokens": "max_output_tokens",
    "refusal": "content_filter",
}
"""Finish reasons in either vocabulary, in the Responses API's: ``completed``, or why the
response is incomplete (``max_output_tokens``, ``content_filter``)."""


@dataclass(frozen=True)
class ToolCall:
    """A call of a tool in a scripted reply (see ``FakeLLMServer.reply(tool_calls=...)``).

    Args:
        name: The name of the tool the model calls.
        arguments: The arguments: a mapping (sent as its JSON), or the raw text the model
            "wrote" (e.g. malformed JSON, to test how it is handled).
        id: The call's id (default: ``call_fake...`` for OpenAI, ``toolu_fake...`` for
            Anthropic, numbered per server).
        pieces: Into how many argument deltas a streamed reply splits the arguments' text
            (OpenAI: ``tool_calls[].function.arguments`` deltas; Anthropic:
            ``input_json_delta`` events).

    Raises:
        FakeLLMServerError: if ``pieces`` is not a whole number of at least 1.

    Example:
        >>> ToolCall("get_weather", {"city": "Paris"}).text
        '{"city":"Paris"}'
    """

    name: str
    arguments: Mapping[str, object] | str = field(default_factory=dict)
    id: str | None = None
    pieces: int = 2

    def __post_init__(self) -> None:
        """Refuse a number of pieces below 1 (it would split the arguments into none)."""
        check_script_count(self.pieces, "pieces", "ToolCall()", least=1)

    @property
    def text(self) -> str:
        """The arguments as the model writes them: JSON text."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, separators=(",", ":"), ensure_ascii=False)

    def deltas(self) -> list[str]:
        """The arguments' text split into ``pieces`` deltas (fewer if it is shorter)."""
        text = self.text
        count = max(1, min(self.pieces, len(text)))
        size = -(-len(text) // count) if text else 0
        return [text[start : start + size] for start in range(0, len(text), size)] if text else []

    def input(self) -> object:
        """The arguments as a non-streamed Anthropic reply carries them (parsed JSON)."""
        if not isinstance(self.arguments, str):
            return dict(self.arguments)
        try:
            return json.loads(self.arguments)
        except ValueError:
            return self.arguments  # what a broken service might send: the raw text


ThinkingOrder = Literal["first", "after_text", "with_text"]
"""Where a reply's scripted thinking comes (see ``FakeLLMServer.reply``'s ``thinking_order``)."""

THINKING_ORDERS: tuple[ThinkingOrder, ...] = ("first", "after_text", "with_text")
"""Every :data:`ThinkingOrder`."""


@dataclass(frozen=True)
class Reply:
    """A scripted successful reply (see ``FakeLLMServer.reply`` for the fields)."""

    tokens: tuple[str, ...] | None = None
    refusal: tuple[str, ...] | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    stop_sequence: str | None = None
    usage: tuple[int, int] | None = None
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    thinking: tuple[str, ...] | None = None
    redacted_thinking: str | None = None
    thinking_order: ThinkingOrder = "first"
    token_delay: float = 0.0
    delay: float = 0.0
    model: str | None = None
    for_model: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    cut_after: int | None = None
    reset: bool = False
    omit_final: bool = False
    malformed_after: int | None = None
    error_event_after: int | None = None
    failed_after: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    hang_after: int | None = None
    pause_after: int | None = None

    def __post_init__(self) -> None:
        """Refuse a fault's count, or a delay, that could never happen as scripted."""
        owner = "FakeLLMServer.reply()"
        for name in _REPLY_COUNTS:
            check_script_count(getattr(self, name), name, owner, optional=True)
        for name in ("cached_tokens", "cache_write_tokens", "reasoning_tokens"):
            check_script_count(getattr(self, name), name, owner)
        check_script_seconds(self.token_delay, "token_delay", owner)
        check_script_seconds(self.delay, "delay", owner)
        if self.thinking_order not in THINKING_ORDERS:
            raise FakeLLMServerError(
                f"{owner} takes thinking_order= as one of {', '.join(map(repr, THINKING_ORDERS))}"
                f", not {self.thinking_order!r}: pass one of them."
            )

    @property
    def thinking_first(self) -> bool:
        """Whether the thinking comes before the text (else after it, or beside it)."""
        return self.thinking_order == "first"


_REPLY_COUNTS = (
    "cut_after",
    "malformed_after",
    "error_event_after",
    "failed_after",
    "hang_after",
    "pause_after",
)
"""The faults of a reply that strike after a number of its content events."""


@dataclass(frozen=True)
class Failure:
    """A scripted HTTP error response (see ``FakeLLMServer.fail``)."""

    status: int
    body: object = None
    headers: Mapping[str, str] = field(default_factory=dict)
    message: str | None = None
    delay: float = 0.0
    for_model: str | None = None

    def __post_init__(self) -> None:
        """Refuse a delay that is negative or not a finite number."""
        check_script_seconds(self.delay, "delay", "FakeLLMServer.fail()")


def as_tokens(tokens: Sequence[str]) -> tuple[str, ...]:
    """``tokens`` as a tuple (a ``str`` is one token)."""
    return (tokens,) if isinstance(tokens, str) else tuple(tokens)


def check_script_count(
    value: object,
    name: str,
    owner: str,
    *,
    least: int = 0,
    optional: bool = False,
    why: str = "as given, what it scripts would never happen",
) -> None:
    """Refuse a count of a script (``cut_after=``, ``times=``, ...) that is not a whole number
    of at least ``least`` (``None`` too, unless ``optional``).

    A negative ``cut_after`` would be taken and never strike (no stream reaches it), so the
    test that scripted it would pass without the fault it meant to test. The waiters check
    their ``count`` and ``index`` with it too (``why`` says, after the refusal, what the
    value would have done).

    Raises:
        FakeLLMServerError: naming the argument, ``owner`` (who takes it) and what it takes.
    """
    if value is None and optional:
        return
    if isinstance(value, int) and not isinstance(value, bool) and value >= least:
        return
    unless = " (or None, for none)" if optional else ""
    raise FakeLLMServerError(
        f"{owner} takes {name}= as a whole number of at least {least}{unless}, not "
        f"{value!r:.40}: {why}. Give e.g. {name}={max(least, 1)}."
    )


def check_script_seconds(
    value: object, name: str, owner: str, *, unit: str = "seconds", positive: bool = False
) -> None:
    """Refuse a number of seconds of a script (``delay=``, ...), or another measure of it
    (``unit``), that is negative or not a finite number (or 0 too, if ``positive``: a
    waiter's ``timeout``).

    Raises:
        FakeLLMServerError: naming the argument, ``owner`` (who takes it) and what it takes.
    """
    given = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if given is not None and given < math.inf and (given > 0 if positive else given >= 0):
        return
    least = "above 0" if positive else "of at least 0"
    example = f"{name}=0.5" if positive else f"{name}=0.0 or {name}=0.5"
    raise FakeLLMServerError(
        f"{owner} takes {name}= as a finite number of {unit} {least}, not "
        f"{value!r:.40}. Give e.g. {example}."
    )
