"""``ChatHistoryMD``: a chat history kept in a markdown file, to read and to resume.

The file holds one section per message, in order: a one-line HTML comment with the
section's size and checksum and the message's fields as JSON (invisible when the markdown
is rendered), a heading with the role (and model), a blank line, the text, a blank line::

    <!-- miniagents size=60 crc32=d1780ad7: {"role": "user"} -->
    ### USER

    What is a replayable stream?

    <!-- miniagents size=152 crc32=bf52f9f5: {"role": "assistant", "model": "gpt-4o-mini"} -->
    ### ASSISTANT (gpt-4o-mini)

    A stream that keeps what it carried, so that late readers see all of it.

``size`` counts the bytes from the ``{`` of the fields to the line break that ends the
text, and ``crc32`` is their CRC-32 (``zlib.crc32``, in hex): a section cut short by a
crash is told apart from a complete one. Files written before sections had a size and a
checksum (``<!-- miniagents: {...} -->``) are read as they always were. A text line that
would read as a section's first line is written with a backslash in front (taken off
again when the file is read).

A message comes back as its class. ``UserMessage``, ``AssistantMessage`` and
``SystemMessage`` (of their own roles) and plain ``Message`` s of other roles are told by
their role; any other class is named first in the fields, e.g. ``{"$class":
"ToolCallMessage", ...}``, under the heading ``### TOOL CALL: get_weather``. Names are
looked up, never imported: the built-in message classes (those of ``miniagents.ext.llm``
and ``miniagents.ext.tools``, and those of the extensions imported by the time the file is
read or written, such as ``miniagents.ext.a2a``) and the ``message_classes`` given; a name
not among them gives a plain ``Message`` with all the section's fields. A message's images
are among its fields (``"images": [{"url": ...}, {"data": <base64>, "media_type": ...}]``,
inside the section's size and checksum: the file stays self-contained), counted in its
heading (``### USER [2 images]``), and load back as equal ``ImagePart`` s.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from miniagents.arguments import check_path
from miniagents.ext.history._classes import MessageClasses
from miniagents.ext.history._file import (
    FileId,
    Stamp,
    close,
    open_for_append,
    open_to_read,
    read_from,
    read_regular,
    stamp_of,
    write_at,
)
from miniagents.ext.history._format import encode_section
from miniagents.ext.history._reader import Parsed, parse
from miniagents.ext.history.base import ChatHistory
from miniagents.ext.history.errors import (
    ChatHistoryError,
    ChatHistoryOptionError,
    TornChatHistoryError,
)
from miniagents.ext.history.storage import SerialWorker
from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageTuple

__all__ = ["ChatHistoryMD"]

_logger = logging.getLogger(__name__)


@dataclass
class _Known:
    """What a ``ChatHistoryMD`` knows of its file, since it read it."""

    messages: list[Message]
    identity: FileId | None
    end: int
    """Where the complete sections end: the next one is written there."""
    size: int
    """The file's size when last seen (-1 after a failed write: unknown)."""
    lines: int
    """How many line breaks come before ``end``."""
    tail: bytes
    """The last two bytes before ``end``."""
    stamp: Stamp | None = None
    """The file's stamp when last read again by :meth:`ChatHistoryMD.load` (``None``: not
    yet): an unchanged stamp, and there is nothing new to read."""

    def separator(self) -> bytes:
        """What goes before the next section, so that it starts after a blank line."""
        if self.end == 0 or self.tail.endswith(b"\n\n"):
            return b""
        return b"\n" if self.tail.endswith(b"\n") else b"\n\n"

    def add(self, parsed: Parsed, data: bytes) -> None:
        """Take in the complete sections of ``data``, which the file holds from ``end`` on."""
        self.messages.extend(parsed.messages)
        self.tail = (self.tail + data[: parsed.end])[-2:]
        self.end += parsed.end
        self.lines += parsed.lines


class ChatHistoryMD(ChatHistory):
    """A chat history in a markdown file: readable by a person, loaded back on restart.

    The file is read at the first :meth:`load` or :meth:`append` (a missing file is an
    empty history, created at the first append). Each appended message is written at the
    end of the file at once, flushed and synced to disk, so a crash leaves every message
    appended so far readable. An append that fails (a full disk) leaves the file as it
    was. The file is read and written in a worker thread, never on the event loop, one
    call at a time in the order they were made; a cancelled :meth:`append` either
    happened completely or not at all. A file that cannot be read is left untouched:
    every call raises an error naming the file and the line.

    Several processes (or several ``ChatHistoryMD`` of one file) may append to one file:
    an OS file lock makes their appends take turns, and each one first takes in what the
    others wrote, so no message is lost or cut into by another; each :meth:`load` returns
    every message of the file as it is then, the others' appends among them (read again
    when the file's size or modification time changed). A file removed, replaced or
    shortened under a ``ChatHistoryMD`` is not read again: it loads what it knew, and its
    next append refuses to write (make a new one to read the file again). The lock is
    ``fcntl.flock`` on POSIX: advisory, other programs writing the file do not take it. On
    Windows it is ``msvcrt.locking``, which has no shared mode (reads take turns too) and
    waits for another process's turn in steps of a second.

    A last section cut short (a crash or a full disk during an append) is *torn*: by
    default it is dropped with a logged warning (the history holds the messages before
    it) and cut off the file at the next append.

    Args:
        path: The markdown file, e.g. ``"CHAT.md"``.
        on_torn_section: ``"drop"`` (the default) drops a torn last section with a logged
            warning; ``"raise"`` raises :class:`~miniagents.ext.history.TornChatHistoryError`
            instead, at every call, leaving the file as it is.
        message_classes: Your own ``Message`` subclasses, so that their messages load back
            as themselves (the built-in classes always do); others load as ``Message``.

    Raises:
        ChatHistoryOptionError: if ``path`` is not a path (a ``str`` or a ``PathLike``),
            if it holds a NUL or cannot be encoded as a file name,
            if ``on_torn_section`` is neither ``"drop"`` nor ``"raise"``,
            or if ``message_classes`` holds something that is not a ``Message`` subclass, or
            two classes of one name (a ``ValueError``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        on_torn_section: Literal["drop", "raise"] = "drop",
        message_classes: Iterable[type[Message]] = (),
    ) -> None:
        if on_torn_section not in ("drop", "raise"):
            raise ChatHistoryOptionError(
                f'on_torn_section must be "drop" or "raise", not {on_torn_section!r}.'
            )
        self.path = Path(
            check_path(
                path,
                "path",
                owner="ChatHistoryMD",
                fix='Pass e.g. ChatHistoryMD("CHAT.md").',
                error=ChatHistoryOptionError,
            )
        )
        try:
            encoded = os.fsencode(self.path)
        except UnicodeEncodeError as error:
            raise ChatHistoryOptionError(
                f"The chat history path {str(self.path)!r} cannot be encoded as a file name "
                f"({error.reason}). Pass a path of valid characters."
            ) from error
        if b"\x00" in encoded:
            raise ChatHistoryOptionError(
                f"The chat history path {str(self.path)!r} holds a NUL character, which no file "
                "name can hold. Pass a path without it."
            )
        self.on_torn_section: Literal["drop", "raise"] = on_torn_section
        self._classes = MessageClasses(message_classes)
        self._known: _Known | None = None
        self._worker = SerialWorker()

    async def load(self) -> MessageTuple:
        """Every message of the file, oldest first, as it is now.

        The file is read at the first call; a later one takes in what was appended since
        (by another ``ChatHistoryMD`` of the file, in this process or another), if the
        file changed (its size or modification time).

        Raises:
            MalformedChatHistoryError: if the file is not a chat history (file and line named).
            TornChatHistoryError: if its last section is torn, with ``on_torn_section="raise"``.
            ChatHistoryError: if the file cannot be read (or is not a regular file).
        """
        return await self._worker.arun(lambda: MessageTuple(self._read_again().messages))

    async def append(self, message: Message) -> None:
        """Write one more message at the end of the file, flushed and synced to disk.

        Raises:
            MessageTypeError: if ``message`` is not a ``Message`` (a ``TypeError`` too).
            MalformedChatHistoryError: if the file is not a chat history (it is left as is).
            TornChatHistoryError: if its last section is torn, with ``on_torn_section="raise"``.
            ChatHistoryError: if the message's fields cannot be written as JSON (``inf``,
                ``nan``, bytes that are not UTF-8, nesting too deep), or if the file cannot
                be read or written; the file is then left as it was.
        """
        checked = self.check_message(message)
        await self._worker.arun(lambda: self._append(checked))

    def _read(self) -> _Known:
        """What the file holds, read at the first call (in the worker thread)."""
        if self._known is None:
            data, identity = read_regular(self.path)
            parsed = parse(data, self.path, self._classes)
            self._on_torn(parsed)
            known = _Known([], identity, 0, len(data), 0, b"")
            known.add(parsed, data)
            self._known = known
        return self._known

    def _read_again(self) -> _Known:
        """What the file holds now: read at the first call, then what was appended since.

        A file that was removed, replaced or shortened is not read again: the messages
        known are kept (and the next append refuses to write).
        """
        known = self._known
        if known is None:
            return self._read()
        stamp = stamp_of(self.path)
        if stamp is None or stamp == known.stamp:
            return known
        if known.identity is None:  # missing at the first read, made since by another
            self._known = None
            return self._read()
        opened = open_to_read(self.path, known.identity)
        if opened is None:
            return known
        fd, stamp = opened
        try:
            size = stamp[2]
            if known.end <= size and (size != known.size or size > known.end):
                self._catch_up(fd, size, known)  # (and a torn tail again: it may be whole now)
            known.stamp = stamp
        finally:
            close(fd)
        return known

    def _append(self, message: Message) -> None:
        known = self._read()
        line = known.lines + 1 + len(known.separator())
        section = encode_section(message, self.path, line, self._classes)
        fd, known.identity, size = open_for_append(self.path, known.identity)
        try:
            if size != known.size:  # written to since it was read: take that in first
                self._catch_up(fd, size, known)
            data = known.separator() + section
            known.size = -1  # unknown, should the write fail
            write_at(fd, known.end, data, size, self.path)
        finally:
            close(fd)  # and the lock: another process's append may go on
        known.add(Parsed([message], len(data), data.count(b"\n"), None), data)
        known.size = known.end

    def _catch_up(self, fd: int, size: int, known: _Known) -> None:
        if size < known.end:
            raise ChatHistoryError(
                f"The chat history file {self.path} is shorter than when it was read "
                f"({size} bytes, not {known.end}), so this message was not written. Keep one "
                "ChatHistoryMD per file at a time; make a new one to read the file again."
            )
        added = read_from(fd, known.end, self.path)
        parsed = parse(added, self.path, self._classes, known.lines + 1)
        self._on_torn(parsed)  # raised: nothing taken in, and the next call raises again
        known.add(parsed, added)
        known.size = size

    def _on_torn(self, parsed: Parsed) -> None:
        if parsed.torn is None:
            return
        where = f"{self.path}, line {parsed.torn.line}: {parsed.torn.problem}"
        if self.on_torn_section == "raise":
            raise TornChatHistoryError(
                f"{where}, most likely by a crash or a full disk during an append. Pass "
                'on_torn_section="drop" to ChatHistoryMD to load the messages before it '
                "(the torn section is cut off at the next append); the file was not changed."
            )
        _logger.warning(
            "%s, most likely by a crash or a full disk during an append. It was dropped: the "
            "history holds the messages before it, and the next append cuts it off the file.",
            where,
        )

    def __repr__(self) -> str:
        """The class and the file (and ``on_torn_section``, unless it is the default)."""
        option = "" if self.on_torn_section == "drop" else ", on_torn_section='raise'"
        return f"ChatHistoryMD({str(self.path)!r}{option})"
