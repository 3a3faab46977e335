"""The sections of a ``ChatHistoryMD`` file, and a message written as one.

A section written today is *checked*: its header line names the size and the CRC-32 of
the bytes that follow the ``: `` after them, up to and including the line break that ends
the text (the blank line after it is a separator, outside the check)::

    <!-- miniagents size=37 crc32=7eaff8f5: {"role": "user"} -->
    ### USER

    hello

A section cut short (a crash or a full disk during an append) is then told apart from a
complete one, and reported as *torn* rather than read as a shorter message. Sections
written before the check existed (``<!-- miniagents: {...} -->``) are *unchecked*: their
text runs to the next header line, as it always did. ``_history_reader`` reads them back.
The message's class is in the fields when its role does not tell it (``_history_classes``);
tool calls and results get headings of their own (``### TOOL CALL: get_weather``). A
message's images are in its fields, ``"images": [{"url": ...}, {"data": <base64>,
"media_type": ...}]``, and counted in its heading (``### USER [2 images]``).
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections import deque
from collections.abc import Mapping
from pathlib import Path

import pydantic

from miniagents.ext.history._classes import MessageClasses
from miniagents.ext.history.errors import ChatHistoryError
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.messages.errors import MessageTypeError
from miniagents.messages.image import ImagePart
from miniagents.messages.message import Message

CHECKED_HEADER = re.compile(rb"<!-- miniagents size=(\d{1,15}) crc32=([0-9a-f]{8}): ")
UNCHECKED_HEADER = re.compile(r"<!-- miniagents *: (?P<fields>.*) -->")  # " :" once checked
_LOOKS_LIKE_HEADER = re.compile(r"\\*<!-- miniagents(?: *:| size=)")
_ESCAPED_HEADER = re.compile(r"\\+<!-- miniagents(?: *:| size=)")
_LEAD = b"<!-- miniagents size="
MAX_DEPTH = 256
"""How deeply a header's JSON may nest: deeper than anything pydantic writes (254 levels)."""


def _beginnings(literal: bytes) -> bytes:
    """A regex matching every beginning of ``literal`` (the empty one too)."""
    return b"(?:" + b"|".join(re.escape(literal[:n]) for n in range(len(literal), -1, -1)) + b")"


CUT_CHECKED_HEADER = re.compile(
    _beginnings(_LEAD)
    + b"|"
    + re.escape(_LEAD)
    + rb"\d{1,15}"
    + b"(?:"
    + _beginnings(b" crc32=")
    + b"|"
    + rb" crc32=[0-9a-f]{0,8}"
    + b"|"
    + rb" crc32=[0-9a-f]{8}"
    + _beginnings(b": ")
    + b")"
)
"""A checked header line cut before the end of its ``: `` (it has no line break yet)."""


def encode_section(message: Message, path: Path, line: int, classes: MessageClasses) -> bytes:
    """``message`` as a checked section, followed by its blank line.

    Raises:
        ChatHistoryError: if the message's fields cannot be written as JSON that reads back
            the same (``line`` is where its section would have started).
    """

    def refused(problem: str) -> ChatHistoryError:
        return ChatHistoryError(
            f"{path}, line {line}: cannot append this message to the chat history file: "
            f"{problem}. The file was not changed."
        )

    try:
        images = message.images
    except MessageTypeError as error:
        raise refused(str(error).rstrip(".")) from error
    unfit = _unfit_value(dict(message))
    if unfit is not None:
        raise refused(unfit)
    try:
        dumped = message.model_dump(mode="json", exclude={"text"})
        declared = type(message).model_fields
        fields = {
            name: value
            for name, value in dumped.items()
            if value is not None or name not in declared or declared[name].is_required()
        }  # a declared field left at None is not written: it is None again when loaded
        if message.text is None:
            fields["text"] = None
        fields = classes.header_fields(message, fields)
        header = json.dumps(fields, ensure_ascii=False, allow_nan=False)
    except (ValueError, RecursionError) as error:
        raise refused(
            f"its fields cannot be written as JSON ({error}). Keep metadata to JSON values "
            f"(text, numbers, booleans, lists and dicts nested less than {MAX_DEPTH - 2} "
            "levels deep)"
        ) from error
    lines = (message.text or "").split("\n")
    text = "\n".join("\\" + line if _LOOKS_LIKE_HEADER.match(line) else line for line in lines)
    try:
        heading = _heading(message, fields, len(images))
        checked = f"{header} -->\n### {heading}\n\n{text}\n".encode()
    except UnicodeEncodeError as error:
        raise refused(
            f"its text or fields are not valid Unicode ({error.reason}). Remove the invalid "
            "characters (e.g. lone surrogates) first"
        ) from error
    lead = b"<!-- miniagents size=%d crc32=%08x: " % (len(checked), zlib.crc32(checked))
    return lead + checked + b"\n"


def _heading(message: Message, fields: Mapping[str, object], images: int) -> str:
    role = fields.get("role")
    heading = role.upper() if isinstance(role, str) and role.strip() else "MESSAGE"
    model = fields.get("model")
    if isinstance(model, str) and model.strip():
        heading += f" ({model})"
    if isinstance(message, ToolCallMessage):
        heading = f"TOOL CALL: {message.tool_name}"
    elif isinstance(message, ToolResultMessage):
        heading = f"TOOL {'ERROR' if message.is_error else 'RESULT'}: {message.tool_name}"
    if images:
        heading += f" [{images} image{'s' if images > 1 else ''}]"
    return " ".join(heading.split())  # one line, whatever the fields hold


def _unfit_value(fields: Mapping[str, object]) -> str | None:
    """Why a value among ``fields`` cannot go into a header as itself, if one cannot."""
    queue = deque((repr(name), value) for name, value in fields.items())
    while queue:
        where, value = queue.popleft()
        if isinstance(value, ImagePart):
            continue  # its bytes are written as base64
        if isinstance(value, float) and not math.isfinite(value):
            return (
                f"its field {where} is {value!r}, which JSON cannot hold (it would be read "
                f'back as null). Store it as a string (e.g. "{value!r}") or leave it out'
            )
        if isinstance(value, int):
            try:
                repr(value)
            except ValueError:  # more digits than Python converts (4,300 by default)
                return (
                    f"its field {where} is an integer too long to be written as digits "
                    f"({value.bit_length()} bits). Store it as a string, e.g. in hexadecimal"
                )
        if isinstance(value, bytes):
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as error:
                return (
                    f"its field {where} holds bytes that are not UTF-8 text ({error.reason}). "
                    "Decode them to text, or store them base64-encoded"
                )
        elif isinstance(value, (pydantic.BaseModel, Mapping)):
            queue.extend((f"{where}[{key!r}]", item) for key, item in dict(value).items())
        elif isinstance(value, (list, tuple, set, frozenset)):
            queue.extend((f"{where}[{index}]", item) for index, item in enumerate(value))
    return None


def unescape(text: str) -> str:
    """``text`` as written, with the backslash taken off its header-like lines."""
    return "\n".join(line[1:] if _ESCAPED_HEADER.match(line) else line for line in text.split("\n"))
