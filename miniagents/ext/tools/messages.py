"""``ToolCallMessage`` and ``ToolResultMessage``: a model's call of a tool, and its result.

Both are ordinary (frozen) messages, so histories, dialogs and prompts carry them like any
other. A call's text is the JSON of its arguments; a result's text is the tool's reply.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator, model_validator

from miniagents.frozen.nesting import nesting_depth
from miniagents.messages.message import Message

__all__ = ["ToolCallMessage", "ToolResultMessage"]


class ToolCallMessage(Message):
    """A model's request to call a tool.

    Give ``arguments`` (the text becomes their JSON) or the ``text`` the model produced
    (the arguments are parsed from it). So a call streamed token by token is a
    ``MessageTokenAppender(message_class=ToolCallMessage, tool_name=..., call_id=...)``
    fed with the model's argument deltas: its message parses them when it is complete.
    Text that is not a JSON object gives empty ``arguments`` and says why in
    ``arguments_error``; running such a call gives an error result that tells the model.

    Attributes:
        tool_name: The name of the tool to call.
        arguments: The arguments, a frozen mapping.
        call_id: The provider's id of the call; its result carries the same id.
        arguments_error: Why ``text`` could not be parsed into ``arguments``, if it could not.
        role: ``assistant``: calls are part of the model's turn.

    Example:
        >>> call = ToolCallMessage(tool_name="add", arguments={"a": 1, "b": 2}, call_id="c1")
        >>> str(call)
        '{"a": 1, "b": 2}'
    """

    role: str = "assistant"
    tool_name: str
    arguments: Mapping[str, object] = Field(default_factory=dict)
    call_id: str
    arguments_error: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _text_and_arguments(cls, data: Any) -> Any:
        """Fill in whichever of ``text`` and ``arguments`` is missing from the other."""
        if not isinstance(data, Mapping):
            return data
        has_arguments = data.get("arguments") is not None
        text = data.get("text")
        if has_arguments and text is None:
            return {**data, "text": _json(data["arguments"])}
        if not has_arguments and isinstance(text, str):
            arguments, problem = _parse(text)
            return {**data, "arguments": arguments, "arguments_error": problem}
        return data


class ToolResultMessage(Message):
    """The result of one tool call; its text is what the tool replied.

    Unlike a plain ``Message``'s, its ``text`` is always a ``str`` (``result.text[:40]``
    type-checks): a tool that replied nothing gives ``""``, and so does a result made
    without ``text``, or read back from a history that an older release stored with
    ``"text": null``.

    Every way the library makes a result validates it (the constructor, ``model_validate``,
    ``model_copy(update=...)``, a result streamed token by token), so none has ``None`` as
    its text. pydantic's ``model_construct`` validates nothing, by design: it takes fields
    already valid, so ``ToolResultMessage.model_construct(text=None, ...)`` makes a result
    whose text is ``None``, against its type, and whose ``str()`` is its fields as JSON.
    Build results otherwise; ``ToolResultMessage.model_validate(result.model_dump())``
    gives such a result its ``""``.

    Attributes:
        text: What the tool replied (for an error result: what went wrong).
        tool_name: The name of the tool that was called.
        call_id: The id of the call this result answers.
        is_error: Whether the call failed (invalid arguments, an unknown tool or an
            exception of the tool); the text then tells the model what went wrong.
        role: ``tool``.
    """

    text: str = ""
    role: str = "tool"
    tool_name: str
    call_id: str
    is_error: bool = False

    @field_validator("text", mode="before")
    @classmethod
    def _text_never_none(cls, text: object) -> object:
        """``None`` (a result stored without text, or made with ``text=None``) is ``""``."""
        return "" if text is None else text


def _json(arguments: object) -> str:
    return json.dumps(arguments, ensure_ascii=False, default=str)


def _parse(text: str) -> tuple[dict[str, object], str | None]:
    """The arguments ``text`` holds, or none and why (what a model wrote never raises)."""
    if not text.strip():
        return {}, None  # a call without arguments may come with no text at all
    constants: list[str] = []  # NaN and Infinity, which Python's json reads but JSON has not
    try:
        parsed = json.loads(text, parse_constant=constants.append)
    except json.JSONDecodeError as error:
        return {}, f"The arguments are not valid JSON ({error})."
    except RecursionError:
        return {}, "The arguments are not valid JSON: they nest too deeply to be read."
    except ValueError:  # an integer of more digits than Python converts (4,300)
        return {}, "The arguments hold a number of too many digits to be read: write it as text."
    if constants:
        return {}, f"The arguments are not valid JSON: {constants[0]} is not a JSON number."
    if not isinstance(parsed, dict):
        return {}, f"The arguments must be a JSON object, not {type(parsed).__name__}."
    # (json.loads reads deeper from 3.12; freeze, as the message is made, would recurse)
    if nesting_depth(parsed, limit=_MAX_ARGUMENTS_DEPTH) > _MAX_ARGUMENTS_DEPTH:
        return {}, "The arguments are not valid JSON: they nest too deeply to be read."
    return parsed, None


_MAX_ARGUMENTS_DEPTH = 100
"""The deepest a call's arguments may nest (objects and arrays in one another): deeper ones
are the call's ``arguments_error`` (a message could not freeze them, nor a history keep them)."""
