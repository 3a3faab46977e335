"""The JSON schema of a structured output type, and the validation of an answer against it.

The schema holds the fields a ``Message`` subclass declares (its ``text`` aside: the text of
the answer is the JSON itself; and, for an ``LLMMessage`` subclass, the reply's metadata that
it inherits, ``role``, ``model``, ``usage``, ..., which the reply fills in, not the model).
For the APIs' strict modes (OpenAI's ``strict: true``, Anthropic's structured outputs), every
object lists all its properties as required and allows no others; a type that cannot be
said that way (e.g. a ``dict[str, int]`` field, an object of any keys) gets a schema that is
not strict.

An answer validates with the output type itself, so its validators (``@field_validator``,
``@model_validator``) run too.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import pydantic_core
from pydantic import BaseModel, ValidationError

from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.messages import LLMMessage
from miniagents.ext.llm.provider import OutputFormat
from miniagents.messages.message import Message

__all__ = [
    "PartialParser",
    "error_summary",
    "output_fields",
    "output_format_of",
    "validated_fields",
]

_OWN_FIELDS = frozenset(Message.model_fields)  # ``text``: the JSON, not a field of it
_METADATA_FIELDS = frozenset(LLMMessage.model_fields) - _OWN_FIELDS  # the reply fills them in


def output_fields(output_type: type[Message]) -> tuple[str, ...]:
    """The names of the fields the model writes: those ``output_type`` declares.

    Not ``text``, nor, for an ``LLMMessage`` subclass, the metadata fields it inherits.
    """
    return tuple(name for name in output_type.model_fields if name not in _not_written(output_type))


def _not_written(output_type: type[Message]) -> frozenset[str]:
    """The fields of ``output_type`` that the model does not write."""
    if issubclass(output_type, LLMMessage):
        return _OWN_FIELDS | _METADATA_FIELDS
    return _OWN_FIELDS


def output_format_of(output_type: type[Message]) -> OutputFormat:
    """The ``OutputFormat`` that asks a model for an ``output_type`` (made once per type).

    Raises:
        LLMConfigurationError: if ``output_type`` is not a ``Message`` subclass with fields,
            or if it redeclares ``text``.
    """
    given: object = output_type  # (typed so; code mypy does not check may pass anything)
    if not (isinstance(given, type) and issubclass(given, Message)):
        if isinstance(given, type) and issubclass(given, BaseModel):
            name = given.__name__
            raise LLMConfigurationError(
                f"output_type must be a Message subclass, but {name} is a plain pydantic "
                f"model: derive it from Message instead of BaseModel, `class {name}(Message): "
                "...` (with from miniagents import Message). Its fields stay as they are; the "
                "answer is then a message with them filled in."
            )
        raise LLMConfigurationError(
            f"output_type must be a Message subclass with typed fields, got {given!r}: "
            "e.g. `class Weather(Message): city: str; celsius: float`, then "
            "output_type=Weather."
        )
    return _format_of(given)  # (checked first: the cache hashes it, a list is unhashable)


@cache
def _format_of(output_type: type[Message]) -> OutputFormat:
    """``output_format_of`` for a ``Message`` subclass, made once per type."""
    schema: dict[str, Any] = output_type.model_json_schema(mode="validation")
    if schema.get("properties", {}).get("text", _TEXT_SCHEMA) != _TEXT_SCHEMA:
        raise LLMConfigurationError(
            f"The output type {output_type.__name__} declares its own field 'text', but the "
            "text of an answer is its JSON, which would overwrite the field's value: name "
            "the field otherwise, e.g. `answer: str`."
        )
    if not output_fields(output_type):
        raise LLMConfigurationError(
            f"The output type {output_type.__name__} declares no fields for the model to "
            "fill in: declare them on the class, e.g. `city: str`."
        )
    _without_metadata(schema, output_type)
    for node in [schema, *schema.get("$defs", {}).values()]:
        _as_written(node)
    strict = _made_strict(schema)
    own_doc = output_type.__dict__.get("__doc__")
    return OutputFormat(
        name=re.sub(r"[^a-zA-Z0-9_-]", "_", output_type.__name__)[:64],
        schema=schema if strict is None else strict,
        strict=strict is not None,
        description=inspect.cleandoc(own_doc) if own_doc else None,
    )


_TEXT_SCHEMA = Message.model_json_schema()["properties"]["text"]


def _without_metadata(schema: dict[str, Any], output_type: type[Message]) -> None:
    """Take out of ``schema`` (in place) the metadata fields that the reply fills in.

    An ``LLMMessage`` subclass inherits ``role``, ``model``, ``usage``, ...: typed for its
    reader, set from the reply's metadata; the model is not asked to write them.
    """
    if not issubclass(output_type, LLMMessage):
        return
    properties = schema.get("properties", {})
    for name in _METADATA_FIELDS:
        properties.pop(name, None)
    schema["required"] = [name for name in schema.get("required", []) if name in properties]
    definitions: dict[str, Any] = schema.pop("$defs", {})
    used: set[str] = set()
    reached = _refs(schema)
    while reached - used:  # the definitions the fields left still reach
        used |= reached
        reached = used | {ref for name in reached for ref in _refs(definitions.get(name))}
    if used:
        schema["$defs"] = {name: node for name, node in definitions.items() if name in used}


def _refs(node: object) -> set[str]:
    """The names of the definitions that ``node`` refers to (``#/$defs/<name>``)."""
    if isinstance(node, list):
        return {ref for item in node for ref in _refs(item)}
    if not isinstance(node, dict):
        return set()
    found = {ref for value in node.values() for ref in _refs(value)}
    target = node.get("$ref")
    if isinstance(target, str) and target.startswith("#/$defs/"):
        found.add(target.removeprefix("#/$defs/"))
    return found


def _as_written(node: dict[str, Any]) -> None:
    """A ``Message`` (or ``Frozen``) model's schema as the model writes it, in place.

    Without ``text`` (a message's text is its JSON, not a field of it), and closed: such
    a model takes any metadata (``additionalProperties: true``), the model writes none.
    """
    properties = node.get("properties")
    if not isinstance(properties, dict):
        return
    if properties.get("text") == _TEXT_SCHEMA:
        del properties["text"]
        node["required"] = [name for name in node.get("required", []) if name != "text"]
    if node.get("additionalProperties") is True:
        del node["additionalProperties"]


def _made_strict(schema: dict[str, Any]) -> dict[str, Any] | None:
    """``schema`` for a strict mode (a copy), or ``None`` if it cannot be made strict."""
    strict = copy.deepcopy(schema)
    return strict if _strictify(strict) else None


def _strictify(node: object) -> bool:
    """Make every object of ``node`` closed with all its properties required, in place."""
    if isinstance(node, list):
        return all(_strictify(item) for item in node)
    if not isinstance(node, dict):
        return True
    if node.get("type") == "object" or "properties" in node:
        extra = node.get("additionalProperties", False)
        if extra is not False or not node.get("properties"):
            return False  # an object of any keys: no strict mode can say it
        node["additionalProperties"] = False
        node["required"] = list(node["properties"])
    if "default" in node and node["default"] is None:
        del node["default"]  # the strict modes refuse it; the field is nullable anyway
    return all(_strictify(value) for value in node.values())


def validated_fields(
    output_type: type[Message], text: str
) -> tuple[dict[str, object], list[dict[str, object]]]:
    """The fields of an answer, validated as ``output_type``, or its errors.

    Returns:
        The fields (JSON-able values, by name) and no errors, or no fields and the errors
        (pydantic's, or one ``json_invalid`` error for text that is not a JSON object).
    """
    try:
        data = pydantic_core.from_json(text)
    except ValueError as error:
        return {}, [{"type": "json_invalid", "loc": (), "msg": f"Invalid JSON: {error}"}]
    if not isinstance(data, dict):
        found = type(data).__name__
        return {}, [{"type": "model_type", "loc": (), "msg": f"Expected an object, got {found}"}]
    try:
        message = output_type.model_validate({**data, "text": text})
    except ValidationError as error:
        return {}, [dict(details) for details in error.errors(include_url=False)]
    names = set(output_fields(output_type))
    return message.model_dump(mode="json", include=names), []


class PartialParser:
    """Parses a JSON object token by token into the partial objects of an output type.

    Unfinished strings count with what came of them (pydantic's partial JSON,
    ``allow_partial="trailing-strings"``). A partial is given when the object so far
    changed and validates as the output type (so not before its required fields came);
    its text is the JSON so far.
    """

    __slots__ = ("_last", "_output_type", "text")

    def __init__(self, output_type: type[Message]) -> None:
        """Start on an empty text."""
        self._output_type = output_type
        self._last: object = None
        self.text = ""

    def feed(self, token: str) -> Message | None:
        """Add a token; the new partial object, if there is one."""
        self.text += token
        try:
            data = pydantic_core.from_json(self.text, allow_partial="trailing-strings")
        except ValueError:
            return None
        if not isinstance(data, dict) or data == self._last:
            return None
        try:
            partial = self._output_type.model_validate({**data, "text": self.text})
        except ValidationError:
            return None
        self._last = data
        return partial


def error_summary(errors: Sequence[Mapping[str, object]], limit: int = 5) -> str:
    """The errors in one line: ``where: what`` for each (at most ``limit``)."""
    parts = []
    for error in errors[:limit]:
        loc = error.get("loc") or ()
        where = ".".join(str(part) for part in loc) if isinstance(loc, tuple) else str(loc)
        parts.append(f"{where or 'the answer'}: {error.get('msg')}")
    more = len(errors) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
