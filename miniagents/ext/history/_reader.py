"""Reading the sections of a ``ChatHistoryMD`` file back (the format: ``_history_format``).

Checked sections are read by their size, unchecked ones (written before sections had a
size and a checksum) up to the next header line. A last section cut short is reported as
torn, for the caller to drop or raise; anything else that is not a run of sections is a
``MalformedChatHistoryError`` naming the file and the line.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pydantic

from miniagents.ext.history._classes import MessageClasses
from miniagents.ext.history._format import (
    CHECKED_HEADER,
    CUT_CHECKED_HEADER,
    MAX_DEPTH,
    UNCHECKED_HEADER,
    unescape,
)
from miniagents.ext.history.errors import MalformedChatHistoryError
from miniagents.frozen.nesting import nesting_depth
from miniagents.messages.message import Message


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


def parse(data: bytes, path: Path, classes: MessageClasses, first_line: int = 1) -> Parsed:
    """The sections of ``data`` (a whole file, or what was added after ``first_line``).

    A torn last section is reported in ``Parsed.torn``, not raised: the caller decides.

    Raises:
        MalformedChatHistoryError: if ``data`` is not a run of sections (file and line named).
    """
    return _Reader(data, path, classes, first_line).read()


class _Reader:
    def __init__(self, data: bytes, path: Path, classes: MessageClasses, first_line: int) -> None:
        self.classes = classes
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
        checked = CHECKED_HEADER.match(self.data, self.pos)
        if checked is not None:
            return self._checked(checked)
        if self._is_cut_header(self.pos):
            return Torn(self.line, "the last section was cut short inside its header line")
        self._unchecked()
        return None

    def _is_cut_header(self, pos: int) -> bool:
        return self._eol(pos) == len(self.data) and bool(
            CUT_CHECKED_HEADER.fullmatch(self.data, pos)
        )

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
                return Torn(line, "the last section was damaged: it does not match its checksum")
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
        self.messages.append(self._message(fields, unescape(rest[1:-1]), line))
        self._move(stop)
        return None

    def _unchecked(self) -> None:
        data, line = self.data, self.line
        end = self._eol(self.pos)
        header = self._decode(data[self.pos : end], line)
        match = UNCHECKED_HEADER.fullmatch(header)
        if match is None and header.endswith("\r"):
            self._malformed(
                line,
                "the file has Windows line endings (CRLF), and a chat history's lines end "
                "with LF alone: convert the file (e.g. dos2unix; with git, set "
                "core.autocrlf to false or input for it)",
            )
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
        self.messages.append(self._message(fields, unescape(body), line))
        self._move(stop)

    def _is_header(self, pos: int) -> bool:
        """Whether a line starting at ``pos`` starts a section (when inside an unchecked one)."""
        if CHECKED_HEADER.match(self.data, pos) or self._is_cut_header(pos):
            return True
        line = self.data[pos : self._eol(pos)]
        try:
            return UNCHECKED_HEADER.fullmatch(line.decode("utf-8")) is not None
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
        if nesting_depth(fields, limit=MAX_DEPTH) > MAX_DEPTH:
            self._malformed(line, f"the header's fields nest deeper than {MAX_DEPTH} levels")
        return fields

    def _message(self, fields: dict[str, object], text: str, line: int) -> Message:
        cls, fields = self.classes.class_of(fields)
        if "text" in fields:
            if fields["text"] is not None or text:
                self._malformed(line, 'a message with "text" in its header must have no body')
            fields = {name: value for name, value in fields.items() if name != "text"}
            text_or_none: str | None = None
        else:
            text_or_none = text
        images = fields.get("images")
        own_images = "images" in fields and "images" not in cls.model_fields
        if own_images and not isinstance(images, list):
            self._malformed(
                line, f'the header\'s "images" must be a list of images, not {images!r}'
            )
        try:  # (the message turns the images' mappings into ImageParts)
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
