"""``ChatHistoryMD``: a chat history kept in a markdown file, to read and to resume.

The file holds one section per message, in order: a one-line HTML comment with the
message's fields as JSON (invisible when the markdown is rendered), a heading with the
role (and model), a blank line, the text, a blank line::

    <!-- miniagents: {"role": "user"} -->
    ### USER

    What is a replayable stream?

    <!-- miniagents: {"role": "assistant", "model": "gpt-4o-mini"} -->
    ### ASSISTANT (gpt-4o-mini)

    A stream that keeps what it carried, so that late readers see all of it.

A text line that would read as a section's first line is written with a backslash in
front (taken off again when the file is read).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import NoReturn

import pydantic

from miniagents.chat_history import ChatHistory, ChatHistoryError, MalformedChatHistoryError
from miniagents.ext.llm.messages import AssistantMessage, SystemMessage, UserMessage
from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageTuple

__all__ = ["ChatHistoryMD"]

_HEADER = re.compile(r"<!-- miniagents: (?P<fields>.*) -->")
_LOOKS_LIKE_HEADER = re.compile(r"\\*<!-- miniagents:")
_ESCAPED_HEADER = re.compile(r"\\+<!-- miniagents:")
_CLASSES: dict[str, type[Message]] = {
    "user": UserMessage,
    "assistant": AssistantMessage,
    "system": SystemMessage,
}


class ChatHistoryMD(ChatHistory):
    """A chat history in a markdown file: readable by a person, loaded back on restart.

    The file is read at the first :meth:`load` or :meth:`append` (a missing file is an
    empty history, created at the first append). Each appended message is written at the
    end of the file at once, flushed and synced to disk, so a crash leaves every message
    appended so far readable; the file is never rewritten. A file that cannot be read is
    left untouched: every call raises an error naming the file and the line.

    Args:
        path: The markdown file, e.g. ``"CHAT.md"``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._messages: list[Message] | None = None
        self._ends_with_newline = True

    async def load(self) -> MessageTuple:
        """Every message of the file (and appended since), oldest first.

        Raises:
            MalformedChatHistoryError: if the file is not a chat history (file and line named).
            ChatHistoryError: if the file cannot be read.
        """
        return MessageTuple(self._loaded())

    async def append(self, message: Message) -> None:
        """Write one more message at the end of the file, flushed and synced to disk.

        Raises:
            TypeError: if ``message`` is not a ``Message``.
            MalformedChatHistoryError: if the file is not a chat history (it is left as is).
            ChatHistoryError: if the file cannot be read or written.
        """
        messages = self._loaded()
        section = _section(self.check_message(message))
        if not self._ends_with_newline:
            section = "\n" + section
        try:
            data = section.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ChatHistoryError(
                f"Cannot write this message to the chat history file {self.path}: its text "
                f"or fields are not valid Unicode ({error.reason}). Remove the invalid "
                "characters (e.g. lone surrogates) first; the file was not changed."
            ) from error
        try:
            with self.path.open("ab") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
        except OSError as error:
            raise ChatHistoryError(
                f"Cannot write to the chat history file {self.path}: {error}. Check that its "
                "directory exists and is writable."
            ) from error
        self._ends_with_newline = True
        messages.append(message)

    def _loaded(self) -> list[Message]:
        if self._messages is None:
            content = self._read()
            self._messages = _parse(content, self.path)
            self._ends_with_newline = not content or content.endswith("\n")
        return self._messages

    def _read(self) -> str:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return ""
        except OSError as error:
            raise ChatHistoryError(
                f"Cannot read the chat history file {self.path}: {error}. Check the path and "
                "its permissions, or pass another file."
            ) from error
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            line = data.count(b"\n", 0, error.start) + 1
            raise MalformedChatHistoryError(
                f"{self.path}, line {line}: the chat history file is not valid UTF-8 text "
                f"({error.reason}). Fix that line, or pass another file; the file was not changed."
            ) from error

    def __repr__(self) -> str:
        """The class and the file."""
        return f"ChatHistoryMD({str(self.path)!r})"


def _section(message: Message) -> str:
    declared = type(message).model_fields
    fields = {
        name: value
        for name, value in message.model_dump(mode="json", exclude={"text"}).items()
        if value is not None or name not in declared or declared[name].is_required()
    }  # a declared field left at None is not written: it is None again when loaded
    if message.text is None:
        fields["text"] = None
    role = fields.get("role")
    heading = role.upper() if isinstance(role, str) and role.strip() else "MESSAGE"
    model = fields.get("model")
    if isinstance(model, str) and model.strip():
        heading += f" ({model})"
    heading = " ".join(heading.split())  # one line, whatever the fields hold
    lines = (message.text or "").split("\n")
    text = "\n".join("\\" + line if _LOOKS_LIKE_HEADER.match(line) else line for line in lines)
    header = json.dumps(fields, ensure_ascii=False)
    return f"<!-- miniagents: {header} -->\n### {heading}\n\n{text}\n\n"


def _parse(content: str, path: Path) -> list[Message]:
    lines = content.split("\n")
    if content.endswith("\n"):
        lines.pop()
    messages: list[Message] = []
    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    while index < len(lines):
        fields = _header_fields(lines[index], index + 1, path)
        heading = lines[index + 1] if index + 1 < len(lines) else ""
        if not heading.startswith("### "):
            _malformed(path, index + 2, "expected a heading line (### ROLE) after the header")
        after = lines[index + 2] if index + 2 < len(lines) else ""
        if after and not _HEADER.fullmatch(after):  # a section may end at its heading
            _malformed(path, index + 3, "expected a blank line after the heading")
        end = index + 2 if _HEADER.fullmatch(after) else index + 3
        while end < len(lines) and not _HEADER.fullmatch(lines[end]):
            end += 1
        body = [
            line[1:] if _ESCAPED_HEADER.match(line) else line for line in lines[index + 3 : end]
        ]
        text = "\n".join(body)
        text = text[:-1] if text.endswith("\n") else text
        messages.append(_message(fields, text, index + 1, path))
        index = end
    return messages


def _header_fields(line: str, number: int, path: Path) -> dict[str, object]:
    match = _HEADER.fullmatch(line)
    if match is None:
        _malformed(
            path,
            number,
            f"expected a message header (<!-- miniagents: {{...}} -->), found {line[:60]!r}",
        )
    try:
        fields = json.loads(match.group("fields"))
    except json.JSONDecodeError as error:
        _malformed(path, number, f"the header's fields are not valid JSON ({error.msg})")
    if not isinstance(fields, dict):
        _malformed(path, number, "the header's fields must be a JSON object")
    return fields


def _message(fields: dict[str, object], text: str, number: int, path: Path) -> Message:
    role = fields.get("role")
    cls = _CLASSES.get(role, Message) if isinstance(role, str) else Message
    if "text" in fields:
        if fields["text"] is not None or text:
            _malformed(path, number, 'a message with "text" in its header must have no body')
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
        _malformed(path, number, f"the header's fields do not make a message ({problem})")


def _malformed(path: Path, line: int, problem: str) -> NoReturn:
    raise MalformedChatHistoryError(
        f"{path}, line {line}: {problem}. This file is not a chat history that MiniAgents "
        "can read; fix it or pass another file (it was not changed)."
    )
