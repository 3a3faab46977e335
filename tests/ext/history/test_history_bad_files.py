"""Bad history files and unwritable metadata: clear errors, never raw ones, never a hang.

A header that would crash a JSON reader (nesting 100,000 levels deep, a 5,000-digit
number) is a ``MalformedChatHistoryError`` naming the file and the line. A path that is not
a regular file (a FIFO, ``/dev/zero``, a directory) is refused without being opened for
reading, so it can neither hang nor fill the memory. Metadata that JSON cannot hold as
itself (``inf``, ``nan``, bytes that are not UTF-8, nesting deeper than pydantic writes)
is refused at ``append`` with a ``ChatHistoryError`` naming the file, the line and the
field, and the file is not touched.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from miniagents import Message
from miniagents.ext.history import (
    ChatHistoryError,
    ChatHistoryOptionError,
    MalformedChatHistoryError,
)
from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.ext.llm.messages import UserMessage
from tests.history_calls import every_call

OLD_MTIME_NS = 1_000_000_000 * 1_000_000_000


def checked_raw(body: bytes) -> bytes:
    """A section with a size and a checksum, built as the README defines them."""
    return b"<!-- miniagents size=%d crc32=%08x: " % (len(body), zlib.crc32(body)) + body + b"\n"


def checked(fields: str, heading: str = "### USER", text: str = "x") -> bytes:
    return checked_raw(f"{fields} -->\n{heading}\n\n{text}\n".encode())


def unchecked(fields: str) -> bytes:
    return f"<!-- miniagents: {fields} -->\n### USER\n\nx\n\n".encode()


def nested(depth: int) -> str:
    return '{"v": ' + "[" * (depth - 1) + "1" + "]" * (depth - 1) + "}"


GOOD = checked('{"role": "user"}')
BAD_HEADERS: dict[str, tuple[bytes, int, str]] = {
    "json-nested-100000-levels": (GOOD + unchecked(nested(100_000)), 6, "deeper than 256"),
    "checked-json-nested-100000-levels": (GOOD + checked(nested(100_000)), 6, "deeper than 256"),
    "json-nested-600-levels": (unchecked(nested(600)), 1, "deeper than 256"),
    "5000-digit-integer": (GOOD * 2 + unchecked('{"n": ' + "7" * 5000 + "}"), 11, "digits"),
    "checked-5000-digit-integer": (checked('{"n": -' + "7" * 5000 + "}"), 1, "digits"),
    "checked-bad-json": (GOOD + checked('{"role": user}'), 6, "not valid JSON"),
    "checked-no-heading": (checked("{}", heading="USER"), 2, "heading line"),
    "checked-header-without-its-end": (checked_raw(b"{}\n### X\n\nx\n"), 1, '" -->"'),
    "checked-no-blank-line": (checked_raw(b"{} -->\n### X\nx\n"), 3, "blank line"),
    "checked-invalid-utf8": (
        GOOD + checked_raw(b"{} -->\n### USER\n\none\ntwo\ncaf\xe9\n"),
        11,
        "not valid UTF-8",
    ),
    "images-not-a-list": (
        GOOD + unchecked('{"role": "user", "images": "notalist"}'),
        6,
        '"images" must be a list of images',
    ),
    "windows-line-endings": (
        b'<!-- miniagents: {"role": "user"} -->\r\n### USER\r\n\r\nhi\r\n',
        1,
        "Windows line endings (CRLF)",
    ),
}


@pytest.mark.parametrize(("content", "line", "problem"), BAD_HEADERS.values(), ids=BAD_HEADERS)
async def test_a_bad_header_is_a_malformed_file_error(
    tmp_path: Path, content: bytes, line: int, problem: str
) -> None:
    path = tmp_path / "chat.md"
    path.write_bytes(content)
    os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    for attempt in every_call(ChatHistoryMD(path)):
        with pytest.raises(MalformedChatHistoryError) as caught:
            await attempt()
        message = str(caught.value)
        assert str(path) in message
        assert re.findall(r"\bline (\d+)\b", message) == [str(line)], message
        assert problem in message
    assert path.read_bytes() == content
    assert path.stat().st_mtime_ns == OLD_MTIME_NS


# --- Metadata that cannot be written --------------------------------------------------------


def deep_list(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


UNWRITABLE: dict[str, tuple[Message, str]] = {
    "inf": (Message(text="x", ratio=float("inf")), "field 'ratio' is inf"),
    "minus-inf": (Message(text="x", ratio=float("-inf")), "field 'ratio' is -inf"),
    "nested-nan": (
        Message(text="x", stats={"values": (1.0, float("nan"))}),
        "field 'stats'['values'][1] is nan",
    ),
    "non-utf8-bytes": (Message(text="x", blob=b"\xff\xfe"), "field 'blob' holds bytes"),
    "nested-non-utf8-bytes": (
        Message(text="x", parts=[{"raw": b"caf\xe9"}]),
        "field 'parts'[0]['raw'] holds bytes",
    ),
    "nested-300-levels": (Message(text="x", deep=deep_list(300)), "cannot be written as JSON"),
    "5000-digit-integer": (
        Message(text="x", n=[10**5000]),
        "field 'n'[0] is an integer too long to be written as digits",
    ),
}


@pytest.mark.parametrize(("message", "problem"), UNWRITABLE.values(), ids=UNWRITABLE)
async def test_metadata_that_json_cannot_hold_is_refused_at_append(
    tmp_path: Path, message: Message, problem: str
) -> None:
    path = tmp_path / "chat.md"
    history = ChatHistoryMD(path)
    await history.append(UserMessage(text="kept"))
    before = path.read_bytes()

    with pytest.raises(ChatHistoryError) as caught:
        await history.append(message)
    text = str(caught.value)
    assert not isinstance(caught.value, MalformedChatHistoryError)
    assert text.startswith(f"{path}, line 6: cannot append this message")
    assert problem in text
    assert text.endswith("The file was not changed.")
    assert path.read_bytes() == before
    assert list(await history.load()) == [UserMessage(text="kept")]

    await history.append(UserMessage(text="next"))
    assert list(await ChatHistoryMD(path).load()) == [
        UserMessage(text="kept"),
        UserMessage(text="next"),
    ]


async def test_metadata_json_can_hold_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    messages = [
        Message(text="x", deep=deep_list(250), big=10**4000, small=1e-300, neg=-0.5),
        Message(text="y", blob=b"utf-8 text \xc3\xa9"),  # comes back as its JSON form: text
    ]
    await ChatHistoryMD(path).store(messages)
    loaded = list(await ChatHistoryMD(path).load())
    assert loaded[0] == messages[0]
    assert loaded[1] == Message(text="y", blob="utf-8 text é")


# --- Paths that are not regular files -------------------------------------------------------


async def assert_refused(path: Path, kind: str) -> None:
    for attempt in every_call(ChatHistoryMD(path)):
        with pytest.raises(ChatHistoryError) as caught:
            await attempt()
        assert not isinstance(caught.value, MalformedChatHistoryError)
        assert str(path) in str(caught.value)
        assert f"it is {kind}, not a regular file, so it was not opened" in str(caught.value)


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A FIFO, and a writer waiting for a reader: opening it for reading would not hang.

    The writer writes nothing and closes it, so a reader would see an empty file (and load
    an empty history, failing the test instead of hanging it).
    """
    path = tmp_path / "chat.md"
    os.mkfifo(path)
    opened = threading.Event()

    def writer() -> None:
        with path.open("wb"):  # blocks until a reader opens the FIFO
            opened.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    yield path
    if not opened.is_set():  # nobody opened it for reading: release the writer ourselves
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        thread.join(timeout=10)
        os.close(fd)
    assert not thread.is_alive()


@pytest.mark.skipif(sys.platform == "win32", reason="FIFO")
async def test_a_fifo_is_refused_without_being_opened(fifo: Path) -> None:
    await assert_refused(fifo, "a FIFO (named pipe)")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
async def test_dev_zero_is_refused_without_being_read() -> None:
    await assert_refused(Path("/dev/zero"), "a character device")


async def test_a_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    path.mkdir()
    await assert_refused(path, "a directory")
    assert list(path.iterdir()) == []


async def test_a_symlink_to_a_regular_file_is_followed(tmp_path: Path) -> None:
    target = tmp_path / "real.md"
    link = tmp_path / "chat.md"
    link.symlink_to(target)
    await ChatHistoryMD(link).append(UserMessage(text="via the link"))
    assert list(await ChatHistoryMD(target).load()) == [UserMessage(text="via the link")]


@pytest.mark.parametrize(("name", "problem"), [("a\x00b.md", "NUL"), ("a\ud800b.md", "encoded")])
def test_a_path_no_file_can_have_is_refused_at_once(
    tmp_path: Path, name: str, problem: str
) -> None:
    with pytest.raises(ChatHistoryOptionError, match=problem) as raised:
        ChatHistoryMD(tmp_path / name)
    assert isinstance(raised.value, ValueError)
    assert list(tmp_path.iterdir()) == []
