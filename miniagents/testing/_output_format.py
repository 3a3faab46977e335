"""Structured output on the fake server: the schema a request asks for, and its refusals.

Each API asks in its own place: Chat Completions ``response_format`` (``{"type":
"json_schema", "json_schema": {"name", "schema", "strict"}}``), the Responses API
``text.format`` (``{"type": "json_schema", "name", "schema", "strict"}``), Anthropic
``output_config.format`` (``{"type": "json_schema", "schema"}``). The server refuses (400)
what the real APIs refuse: an OpenAI schema name outside ``^[a-zA-Z0-9_-]{1,64}$``, and a
strict schema (OpenAI's ``strict: true``; Anthropic's always) with an object that is not
closed (``additionalProperties: false``) or does not require all its properties. The
replies are whatever the test scripts: a JSON text, or not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["check_output_format", "output_format"]

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def output_format(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The structured output format a request body asks for, in one shape.

    Returns:
        ``{"name", "schema", "strict"}`` (``name`` ``None`` for Anthropic, ``strict`` true
        for it), or ``None`` for a request that asks for none.
    """
    chat = body.get("response_format")
    if isinstance(chat, Mapping) and chat.get("type") == "json_schema":
        given = chat.get("json_schema")
        given = given if isinstance(given, Mapping) else {}
        return {
            "name": given.get("name"),
            "schema": given.get("schema"),
            "strict": given.get("strict") is True,
        }
    gemini = body.get("generationConfig")
    if isinstance(gemini, Mapping) and "responseJsonSchema" in gemini:
        return {"name": None, "schema": gemini["responseJsonSchema"], "strict": False}
    bedrock = body.get("outputConfig")
    text_format = bedrock.get("textFormat") if isinstance(bedrock, Mapping) else None
    if isinstance(text_format, Mapping) and text_format.get("type") == "json_schema":
        structure = text_format.get("structure")
        given = structure.get("jsonSchema") if isinstance(structure, Mapping) else None
        given = given if isinstance(given, Mapping) else {}
        try:
            schema = json.loads(given.get("schema") or "null")
        except ValueError:
            schema = None
        return {"name": given.get("name"), "schema": schema, "strict": False}
    for outer, strict in (("text", None), ("output_config", True)):
        config = body.get(outer)
        found = config.get("format") if isinstance(config, Mapping) else None
        if isinstance(found, Mapping) and found.get("type") == "json_schema":
            return {
                "name": found.get("name"),
                "schema": found.get("schema"),
                "strict": strict if strict is not None else found.get("strict") is True,
            }
    return None


def check_output_format(body: Mapping[str, Any]) -> str | None:
    """Why the API would refuse the request's output format (``None``: it would not)."""
    asked = output_format(body)
    if asked is None:
        return None
    schema = asked["schema"]
    if not isinstance(schema, Mapping):
        return "The output format's schema must be a JSON object."
    name = asked["name"]
    if ("response_format" in body or "text" in body) and not (
        isinstance(name, str) and _NAME.match(name)
    ):
        return f"Invalid output format name {name!r}: it must match '^[a-zA-Z0-9_-]{{1,64}}$'."
    if asked["strict"]:
        return _strict_error(schema, "")
    return None


def _strict_error(node: object, where: str) -> str | None:
    """The first object of ``node`` that a strict schema does not allow."""
    if isinstance(node, list):
        for number, item in enumerate(node):
            found = _strict_error(item, f"{where}/{number}")
            if found:
                return found
        return None
    if not isinstance(node, Mapping):
        return None
    if node.get("type") == "object" or "properties" in node:
        if node.get("additionalProperties") is not False:
            return (
                f"Invalid schema for the output format: in context={where or '/'!r}, "
                "'additionalProperties' is required to be supplied and to be false."
            )
        missing = set(node.get("properties", {})) - set(node.get("required", []))
        if missing:
            return (
                f"Invalid schema for the output format: in context={where or '/'!r}, "
                f"'required' must list every property; missing {sorted(missing)!r}."
            )
    for key, value in node.items():
        found = _strict_error(value, f"{where}/{key}")
        if found:
            return found
    return None
