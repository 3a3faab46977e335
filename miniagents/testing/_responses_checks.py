"""What the fake's Responses API refuses (a 400), as the real one does.

A missing ``model`` or ``input``; a parameter of Chat Completions (``messages``,
``max_tokens``, ``stop``, ...); a numeric option out of range; a message of a role other
than ``user``, ``assistant``, ``system`` and ``developer``; a ``function_call_output``
without its ``function_call``, or the reverse; an ``input_image`` without a valid URL or a
``detail``; a function tool without a name or parameters; a ``json_schema`` text format
without a name or a schema, or a strict one that strict mode does not allow
(see :mod:`miniagents.testing._output_format`).
"""

from __future__ import annotations

from typing import Any

from miniagents.testing._output_format import check_output_format
from miniagents.testing._wire import check_image_url, check_ranges, parts_of

__all__ = ["refusal"]

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


def refusal(body: object) -> str | None:
    """Why the Responses API would refuse this request body, if it would."""
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
        or _check_roles(items)
        or _check_calls(items)
        or _check_images(items)
        or _check_tools(body.get("tools"))
        or _check_format(body.get("text"))
        or check_output_format(body)
    )


def _check_roles(items: list[Any]) -> str | None:
    """Why the API would refuse a message's role."""
    for item in items:
        if isinstance(item, dict) and item.get("type", "message") == "message":
            role = item.get("role")
            if role not in ("assistant", "system", "developer", "user"):
                return (
                    f"Invalid value: {role!r}. Supported values are: 'assistant', 'system', "
                    "'developer', and 'user'."
                )
    return None


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
    for index, number, part in parts_of(items, "input_image"):
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
