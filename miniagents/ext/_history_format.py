"""The sections of a ``ChatHistoryMD`` file: a message written as bytes, and read back.

A section written today is *checked*: its header line names the size and the CRC-32 of
the bytes that follow the ``: `` after them, up to and including the line break that ends
the text (the blank line after it is a separator, outside the check)::

    <!-- miniagents size=37 crc32=7eaff8f5: {"role": "user"} -->
    ### USER

    hello

A section cut short (a crash or a full disk during an append) is then told apart from a
complete one, and reported as *torn* rather than read as a shorter message. Sections
written before the check existed (``<!-- miniagents: {...} -->``) are *unchecked*: their
text runs to the next header line, as it always did.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pydantic

from miniagents.chat_history import ChatHistoryError, MalformedChatHistoryError
from miniagents.ext.llm.messages import AssistantMessage, SystemMessage, UserMessage
from miniagents.messages.message import Message

_CHECKED = re.compile(rb"<!-- miniagents size=(\d{1,15}) crc32=([0-9a-f]{8}): ")
_UNCHECKED = re.compile(r"<!-- miniagents *: (?P<fields>.*) -->")  # " :" once checked
_LOOKS_LIKE_HEADER = re.compile(r"\\*<!-- miniagents(?: *:| size=)")
_ESCAPED_HEADER = re.compile(r"\\+<!-- miniagents(?: *:| size=)")
_LEAD = b"<!-- miniagents size="
MAX_DEPTH = 256
"""How deeply a header's JSON may nest: deeper than anything pydantic writes (254 levels)."""
_CLASSES: dict[str, type[Message]] = {
    "user": UserMessage,
    "assistant": AssistantMessage,
    "system": SystemMessage,
}


def _beginnings(literal: bytes) -> bytes:
    """A regex matching every beginning of ``literal`` (the empty one too)."""
    return b"(?:" + b"|".join(re.escape(literal[:n]) for n in range(len(literal), -1, -1)) + b")"


_CUT_CHECKED = re.compile(
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


@dataclass(frozen=True)
class Torn:
    """A last section cut short: where it starts, and what is wrong with it."""

    line: int
    problem: str


@dataclass
class Parsed:
    """What a run of sections holds: the messages, and where the complete ones end."""

    messages: list[Message]
    end: int
    """The offset just after the last complete section (where a torn one starts)."""
    lines: int
    """How many line breaks come before ``end``."""
    torn: Torn | None


def encode_section(message: Message, path: Path, line: int) -> bytes:
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
        checked = f"{header} -->\n### {_heading(fields)}\n\n{text}\n".encode()
    except UnicodeEncodeError as error:
        raise refused(
            f"its text or fields are not valid Unicode ({error.reason}). Remove the invalid "
            "characters (e.g. lone surrogates) first"
        ) from error
    lead = b"<!-- miniagents size=%d crc32=%08x: " % (len(checked), zlib.crc32(checked))
    return lead + checked + b"\n"


def _heading(fields: Mapping[str, object]) -> str:
    role = fields.get("role")
    heading = role.upper() if isinstance(role, str) and role.strip() else "MESSAGE"
    model = fields.get("model")
    if isinstance(model, str) and model.strip():
        heading += f" ({model})"
    return " ".join(heading.split())  # one line, whatever the fields hold


def _unfit_value(fields: Mapping[str, object]) -> str | None:
    """Why a value among ``fields`` cannot go into a header as itself, if one cannot."""
    stack: list[tuple[str, object]] = [(repr(name), value) for name, value in fields.items()]
    while stack:
        where, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return (
                f"its field {where} is {value!r}, which JSON cannot hold (it would be read "
                'back as null). Store it as a string (e.g. "inf") or leave it out'
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
            stack.extend((f"{where}[{key!r}]", item) for key, item in dict(value).items())
        elif isinstance(value, (list, tuple, set, frozenset)):
            stack.extend((f"{where}[{index}]", item) for index, item in enumerate(value))
    return None


def parse(data: bytes, path: Path, first_line: int = 1) -> Parsed:
    """The sections of ``data`` (a whole file, or what was added after ``first_line``).

    A torn last section is reported in ``Parsed.torn``, not raised: the caller decides.

    Raises:
        MalformedChatHistoryError: if ``data`` is not a run of sections (file and line named).
    """
    return _Reader(data, path, first_line).read()


class _Reader:
    def __init__(self, data: bytes, path: Path, first_line: int) -> None:
        self.data = data
        self.path = path
        self.pos = 0
        self.line = first_line
        self.first_line = first_line
        self.messages: list[Message] = []

    def read(self) -> Parsed:
        data = self.data
        while self.pos < len(data):
            end = self._eol(self.pos)
            if _is_blank(data[self.pos : end]):  # before the first section, or after one
                self._move(end + 1)
                continue
            torn = self._section()
            if torn is not None:
                return Parsed(self.messages, self.pos, self.line - self.first_line, torn)
        return Parsed(self.messages, len(data), self.line - self.first_line, None)

    def _eol(self, pos: int) -> int:
        end = self.data.find(b"\n", pos)
        return len(self.data) if end < 0 else end

    def _move(self, pos: int) -> None:
        pos = min(pos, len(self.data))
        self.line += self.data.count(b"\n", self.pos, pos)
        self.pos = pos

    def _section(self) -> Torn | None:
        checked = _CHECKED.match(self.data, self.pos)
        if checked is not None:
            return self._checked(checked)
        if self._is_cut_header(self.pos):
            return Torn(self.line, "the last section was cut short inside its header line")
        self._unchecked()
        return None

    def _is_cut_header(self, pos: int) -> bool:
        return self._eol(pos) == len(self.data) and bool(_CUT_CHECKED.fullmatch(self.data, pos))

    def _checked(self, header: re.Match[bytes]) -> Torn | None:
        data, line = self.data, self.line
        size, crc = int(header[1]), int(header[2], 16)
        start, stop = header.end(), header.end() + size
        if stop > len(data):
            return Torn(
                line,
                f"the last section was cut short: {len(data) - start} of the {size} bytes its "
                "header announces were written",
            )
        body = data[start:stop]
        if zlib.crc32(body) != crc:
            if _is_blank(data[stop:]):
                return Torn(line, "the last section does not match its checksum")
            self._malformed(
                line,
                "the section does not match its size and checksum: it was damaged, or edited. "
                'To edit a section, remove "size=... crc32=..." from its header line (it is '
                "then read without a check)",
            )
        text = self._decode(body, line)
        fields_part, _, rest = text.partition("\n")
        if not fields_part.endswith(" -->"):
            self._malformed(line, 'expected " -->" at the end of the header line')
        heading, _, rest = rest.partition("\n")
        if not heading.startswith("### "):
            self._malformed(line + 1, "expected a heading line (### ROLE) after the header")
        if not rest.startswith("\n") or not rest.endswith("\n") or rest == "\n":
            self._malformed(line + 2, "expected a blank line after the heading")
        fields = self._fields(fields_part[: -len(" -->")], line)
        self.messages.append(self._message(fields, _unescape(rest[1:-1]), line))
        self._move(stop)
        return None

    def _unchecked(self) -> None:
        data, line = self.data, self.line
        end = self._eol(self.pos)
        header = self._decode(data[self.pos : end], line)
        match = _UNCHECKED.fullmatch(header)
        if match is None:
            self._malformed(
                line,
                f"expected a message header (<!-- miniagents: {{...}} -->), found {header[:60]!r}",
            )
        fields = self._fields(match["fields"], line)
        heading_end = self._eol(end + 1)
        heading = self._decode(data[end + 1 : heading_end], line + 1)
        if end + 1 >= len(data) or not heading.startswith("### "):
            self._malformed(line + 1, "expected a heading line (### ROLE) after the header")
        body_start = stop = heading_end + 1
        if stop < len(data) and not self._is_header(stop):  # a section may end at its heading
            if data[stop : stop + 1] != b"\n":
                self._malformed(line + 2, "expected a blank line after the heading")
            body_start = stop = stop + 1
            while stop < len(data) and not self._is_header(stop):
                stop = self._eol(stop) + 1
        stop = min(stop, len(data))
        body = self._decode(data[body_start:stop], line + 3)
        for _ in range(2):  # the line break of the last line, then the blank line
            body = body[:-1] if body.endswith("\n") else body
        self.messages.append(self._message(fields, _unescape(body), line))
        self._move(stop)

    def _is_header(self, pos: int) -> bool:
        """Whether a line starting at ``pos`` starts a section (when inside an unchecked one)."""
        if _CHECKED.match(self.data, pos) or self._is_cut_header(pos):
            return True
        line = self.data[pos : self._eol(pos)]
        try:
            return _UNCHECKED.fullmatch(line.decode("utf-8")) is not None
        except UnicodeDecodeError:
            return False

    def _decode(self, data: bytes, line: int) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            self._malformed(
                line + data.count(b"\n", 0, error.start),
                f"the chat history file is not valid UTF-8 text ({error.reason})",
            )

    def _fields(self, text: str, line: int) -> dict[str, object]:
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as error:
            self._malformed(line, f"the header's fields are not valid JSON ({error.msg})")
        except RecursionError:
            self._malformed(line, f"the header's fields nest deeper than {MAX_DEPTH} levels")
        except ValueError as error:  # e.g. an integer of more than 4,300 digits
            self._malformed(line, f"the header's fields cannot be read ({error})")
        if not isinstance(fields, dict):
            self._malformed(line, "the header's fields must be a JSON object")
        if _depth(fields) > MAX_DEPTH:
            self._malformed(line, f"the header's fields nest deeper than {MAX_DEPTH} levels")
        return fields

    def _message(self, fields: dict[str, object], text: str, line: int) -> Message:
        role = fields.get("role")
        cls = _CLASSES.get(role, Message) if isinstance(role, str) else Message
        if "text" in fields:
            if fields["text"] is not None or text:
                self._malformed(line, 'a message with "text" in its header must have no body')
            fields = {name: value for name, value in fields.items() if name != "text"}
            text_or_none: str | None = None
        else:
            text_or_none = text
        try:
            return cls(text=text_or_none, **fields)
        except pydantic.ValidationError as error:
            problem = "; ".join(
                f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors()
            )
            self._malformed(line, f"the header's fields do not make a message ({problem})")
        except (ValueError, TypeError, RecursionError) as error:
            self._malformed(line, f"the header's fields do not make a message ({error!r})")

    def _malformed(self, line: int, problem: str) -> NoReturn:
        raise MalformedChatHistoryError(
            f"{self.path}, line {line}: {problem}. This file is not a chat history that "
            "MiniAgents can read; fix it or pass another file (it was not changed)."
        )


def _is_blank(line: bytes) -> bool:
    try:
        return not line.decode("utf-8").strip()
    except UnicodeDecodeError:
        return False


def _unescape(text: str) -> str:
    return "\n".join(line[1:] if _ESCAPED_HEADER.match(line) else line for line in text.split("\n"))


def _depth(value: object) -> int:
    """How deeply JSON containers nest in ``value`` (counted without recursion)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack and deepest <= MAX_DEPTH:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in item)
    return deepest
