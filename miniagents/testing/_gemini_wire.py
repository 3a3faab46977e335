"""The Gemini API wire format (``.../models/{model}:streamGenerateContent``), as the fake speaks it.

The model is in the path, not the body: ``/v1beta/models/{model}:generateContent`` (the
Gemini Developer API), or ``/v1beta1/projects/{p}/locations/{l}/publishers/google/models/
{model}:...`` (Vertex AI); ``:streamGenerateContent?alt=sse`` streams. A reply is a
``GenerateContentResponse``, or a stream of them as server-sent events (``data: {...}``
lines, no event names): a chunk per piece of the scripted thinking (a part of its
summary, ``"thought": true``; the whole reply's first part has it all; after the text
with ``thinking_order``, or a part beside each text token's), a chunk per text token, a
chunk per function call (Gemini sends a call whole, its ``args`` an object, never in
pieces; each with a ``thoughtSignature``), then a last chunk with the ``finishReason`` and
the whole ``usageMetadata``. The finish reasons are Gemini's: ``STOP`` (tool calls too),
``MAX_TOKENS``, ``SAFETY`` (a ``refusal`` or ``content_filter``, and any other reason given
as it is); ``finish_reason="prompt_blocked"`` blocks the prompt instead: one chunk with
``promptFeedback.blockReason`` ``SAFETY`` and no candidates.

Requests are refused (400, ``INVALID_ARGUMENT``) as the API refuses them: no
``contents``, a role other than ``user`` and ``model``, a model turn of function calls
that does not come right after the user's turn (or the function responses), or whose
first call has no ``thoughtSignature`` (Gemini 3's rule: send each signature back),
or that the next turn does not answer with as many ``functionResponse`` parts, a
``generationConfig`` option out of range, and an ``inlineData`` image whose data is not
base64 of a PNG, JPEG, GIF or WebP image.
"""

from __future__ import annotations

from typing import Any

from miniagents.testing._script import Provider
from miniagents.testing._wire import (
    Event,
    Rendering,
    StreamPlan,
    Wire,
    check_base64,
    check_ranges,
)

__all__ = ["THOUGHT_SIGNATURE", "GeminiWire"]

THOUGHT_SIGNATURE = "ZmFrZS10aG91Z2h0LXNpZ25hdHVyZQ=="
"""The ``thoughtSignature`` the fake sends with each function call."""

_STATUSES = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "API key not valid. Please pass a valid API key."),
    403: ("PERMISSION_DENIED", "The caller does not have permission."),
    404: ("NOT_FOUND", "The model is not found."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "An internal error has occurred."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "The request timed out."),
}

_REASONS = {
    "stop": "STOP",
    "end_turn": "STOP",
    "stop_sequence": "STOP",
    "tool_calls": "STOP",
    "tool_use": "STOP",
    "length": "MAX_TOKENS",
    "max_tokens": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "refusal": "SAFETY",
}
"""Finish reasons in OpenAI's or Anthropic's words, in Gemini's."""

PROMPT_BLOCKED = "prompt_blocked"
"""The scripted finish reason that blocks the prompt (``promptFeedback.blockReason``)."""

_RANGES = {
    "temperature": (0, 2),
    "topP": (0, 1),
    "topK": (1, 1_000_000),
    "maxOutputTokens": (1, 1_000_000),
    "candidateCount": (1, 1),
}

_MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


class GeminiWire(Wire):
    """Renders replies and errors as the Gemini API (``generateContent``) does."""

    provider: Provider = "gemini"
    thinking_beside_text = True  # (a chunk's parts: a text one and a thought one)
    reply_prefix = "fake"  # a responseId
    call_prefix = "fake-call-"  # sent only for a call scripted with its own id
    stop_reasons = ("stop", "stop")
    reasons = _REASONS

    def route(self, path: str, body: object) -> tuple[str | None, bool]:
        """The model named in the path (``models/{model}:method``), and whether the
        method streams."""
        name, _, method = path.rpartition(":")
        model = name.rpartition("/models/")[2] or None
        return model, method == "streamGenerateContent"

    def validate(self, body: object) -> str | None:
        """Why the API would refuse this body (see the module)."""
        if not isinstance(body, dict):
            return "Invalid JSON payload received."
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return "* GenerateContentRequest.contents: contents is not specified"
        config = body.get("generationConfig")
        return (
            _check_contents(contents)
            or check_ranges(config, _RANGES)
            or _check_output_format(config)
        )

    def body(self, rendering: Rendering) -> dict[str, Any]:
        """A ``GenerateContentResponse`` with the whole reply."""
        parts: list[dict[str, Any]] = []
        thought = None
        if rendering.reply.thinking is not None:
            thought = {"text": "".join(rendering.reply.thinking), "thought": True}
        if thought is not None and rendering.reply.thinking_first:
            parts.append(thought)
        if rendering.tokens or not rendering.calls:
            parts.append({"text": rendering.text})
        if thought is not None and not rendering.reply.thinking_first:
            parts.append(thought)  # (after the text, before the calls)
        parts.extend(_call_part(rendering, number) for number in range(len(rendering.calls)))
        return self._chunk(rendering, parts, final=True)

    def stream(self, rendering: Rendering) -> StreamPlan:
        """A chunk per token and per call, then the finish reason and the usage."""
        plan = StreamPlan()
        if rendering.reply.finish_reason == PROMPT_BLOCKED:
            plan.final.append((None, self._blocked(rendering)))
            return plan
        thoughts = [
            (None, self._chunk(rendering, [{"text": thought, "thought": True}]))
            for thought in rendering.reply.thinking or ()
        ]
        if rendering.reply.thinking_first:
            plan.body.extend((thought, False) for thought in thoughts)
            thoughts = []
        pieces = rendering.reply.thinking or ()
        beside = rendering.reply.thinking_order == "with_text"  # (a piece in a token's chunk)
        for number, token in enumerate(rendering.tokens):
            parts: list[dict[str, Any]] = [{"text": token}]
            if beside and number < len(pieces):
                parts.append({"text": pieces[number], "thought": True})
            plan.add((None, self._chunk(rendering, parts)), content=True)
        if beside:
            thoughts = thoughts[len(rendering.tokens) :]
        plan.body.extend((thought, False) for thought in thoughts)  # (after the text)
        for number in range(len(rendering.calls)):
            part = _call_part(rendering, number)
            plan.add((None, self._chunk(rendering, [part])), content=True)
        plan.final.append((None, self._chunk(rendering, [{"text": ""}], final=True)))
        return plan

    def _chunk(
        self, rendering: Rendering, parts: list[dict[str, Any]], *, final: bool = False
    ) -> dict[str, Any]:
        if rendering.reply.finish_reason == PROMPT_BLOCKED:
            return self._blocked(rendering)
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if final:
            candidate["finishReason"] = rendering.finish_reason
        prompt = rendering.input_tokens
        usage: dict[str, Any] = {"promptTokenCount": prompt, "totalTokenCount": prompt}
        if final:
            reasoning = rendering.reply.reasoning_tokens
            candidates = rendering.output_tokens - reasoning
            usage["candidatesTokenCount"] = candidates
            usage["totalTokenCount"] = prompt + rendering.output_tokens
            if rendering.reply.cached_tokens:
                usage["cachedContentTokenCount"] = rendering.reply.cached_tokens
            if reasoning:
                usage["thoughtsTokenCount"] = reasoning
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": rendering.model,
            "responseId": rendering.id,
        }

    def _blocked(self, rendering: Rendering) -> dict[str, Any]:
        prompt = rendering.input_tokens
        return {
            "promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": prompt, "totalTokenCount": prompt},
            "modelVersion": rendering.model,
            "responseId": rendering.id,
        }

    def error_event(self, error_type: str | None, message: str | None) -> Event:
        """``data: {"error": {"code", "message", "status"}}`` (what Gemini sends mid-stream)."""
        status = error_type or "INTERNAL"
        code = next((code for code, (name, _) in _STATUSES.items() if name == status), 500)
        error = {
            "code": code,
            "message": message or "An internal error has occurred.",
            "status": status,
        }
        return (None, {"error": error})

    def malformed_event(self, rendering: Rendering) -> Event:
        """A chunk cut in the middle of its JSON."""
        return (None, b'{"candidates": [{"content": {"parts": [{"te')

    def error_body(self, status: int, message: str | None, request_id: str) -> dict[str, Any]:
        """``{"error": {"code", "message", "status"}}``."""
        name, default = _STATUSES.get(status, ("UNKNOWN", "Error."))
        return {"error": {"code": status, "message": message or default, "status": name}}

    def id_headers(self, request_id: str) -> dict[str, str]:
        """``x-request-id``."""
        return {"x-request-id": request_id}


def _call_part(rendering: Rendering, number: int) -> dict[str, Any]:
    rendered = rendering.calls[number]
    given = rendered.call.input()
    call: dict[str, Any] = {
        "name": rendered.call.name,
        "args": given if isinstance(given, dict) else {},
    }
    if rendered.call.id is not None:
        call["id"] = rendered.call.id
    return {"functionCall": call, "thoughtSignature": THOUGHT_SIGNATURE}


def _get(given: dict[str, Any], name: str) -> Any:
    """A field by its JSON name (``mimeType``) or its proto name (``mime_type``): the API
    takes either, and the SDK sends some fields by the latter."""
    if name in given:
        return given[name]
    return given.get("".join(f"_{c.lower()}" if c.isupper() else c for c in name))


def _parts(content: object) -> list[dict[str, Any]]:
    parts = content.get("parts") if isinstance(content, dict) else None
    return [part for part in parts if isinstance(part, dict)] if isinstance(parts, list) else []


def _check_contents(contents: list[Any]) -> str | None:
    """Why the API would refuse these contents: roles, function call turns, images."""
    for index, content in enumerate(contents):
        role = content.get("role") if isinstance(content, dict) else None
        if role not in ("user", "model"):
            return f"Please use a valid role: user, model. (contents[{index}].role is {role!r})"
        parts = _parts(content)
        if not parts:
            return (
                f"* GenerateContentRequest.contents[{index}].parts: contents.parts must not "
                "be empty."
            )
        calls = [part for part in parts if _get(part, "functionCall") is not None]
        before = contents[index - 1] if index > 0 else None
        if calls and not (isinstance(before, dict) and before.get("role") == "user"):
            return (
                "Please ensure that function call turn comes immediately after a user turn or "
                "after a function response turn."
            )
        if calls:
            if not _get(calls[0], "thoughtSignature"):
                return (
                    f"Function call is missing a thought_signature in functionCall parts "
                    f"(contents[{index}]). Send back the thoughtSignature of each function "
                    "call part as the model sent it."
                )
            following = _parts(contents[index + 1]) if index + 1 < len(contents) else None
            if following is not None:
                answered = [
                    part for part in following if _get(part, "functionResponse") is not None
                ]
                if len(answered) != len(calls):
                    return (
                        "Please ensure that the number of function response parts is equal to "
                        "the number of function call parts of the function call turn."
                    )
        for number, part in enumerate(parts):
            inline = _get(part, "inlineData")
            if isinstance(inline, dict):
                where = f"contents[{index}].parts[{number}].inline_data"
                media_type = _get(inline, "mimeType")
                if media_type not in _MEDIA_TYPES:
                    return f"* {where}.mime_type: Unsupported MIME type: {media_type}"
                problem = check_base64(inline.get("data"), f"{where}.data")
                if problem is not None:
                    return problem
    return None


def _check_output_format(config: object) -> str | None:
    """A response schema needs the JSON media type."""
    if not isinstance(config, dict):
        return None
    schema = config.get("responseJsonSchema", config.get("responseSchema"))
    if schema is None:
        return None
    if config.get("responseMimeType") != "application/json":
        return (
            "* GenerateContentRequest.generation_config.response_mime_type: "
            "response_mime_type must be application/json when a response schema is set."
        )
    if not isinstance(schema, dict):
        return "* GenerateContentRequest.generation_config.response_json_schema: not an object."
    return None
