"""Failed appends and crashes: a history file never keeps half a message.

A write that fails part way (a full disk, a quota: ``RLIMIT_FSIZE`` in a child process, or
an injected failing ``os.write`` / ``os.fsync``) is rolled back: the file is exactly as it
was, the ``ChatHistoryMD`` still holds what the file holds, and the next append works. A
process killed with SIGKILL in the middle of writing a large message leaves a torn last
section that the next load drops, and every completed message before it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from miniagents import Message
from miniagents.ext.history import ChatHistoryError, MalformedChatHistoryError
from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.ext.llm.messages import AssistantMessage, UserMessage
from tests.subprocesses import ProcessGroups, run_python

LOGGER = "miniagents.ext.history.markdown"
EARLIER: list[Message] = [
    UserMessage(text="first"),
    AssistantMessage(text="second", model="m", finish_reason="stop"),
]
BIG = AssistantMessage(text="\n".join(f"line {n}: déjà vu" for n in range(20_000)), model="m")
SMALL = UserMessage(text="next")


class Faults:
    """Makes ``os`` calls on one file fail, as a full disk or a failing device would."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
        self.monkeypatch = monkeypatch
        self.path = path
        self.failed: list[str] = []

    def on_this_file(self, fd: int) -> bool:
        return self.path.exists() and os.path.samestat(os.fstat(fd), os.stat(self.path))

    def write(self, times: int = 1) -> None:
        """The next ``times`` writes to the file write half their bytes, then fail (ENOSPC)."""
        real = os.write
        left = [times]

        def write(fd: int, data: bytes | memoryview) -> int:
            if left[0] and self.on_this_file(fd):
                left[0] -= 1
                real(fd, bytes(data[: len(data) // 2]))
                self.failed.append("write")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(fd, data)

        self.monkeypatch.setattr(os, "write", write)

    def fail(self, name: str, code: int, times: int = 1) -> None:
        """The next ``times`` calls ``os.<name>(fd, ...)`` on the file fail with ``code``."""
        real: Callable[..., object] = getattr(os, name)
        left = [times]

        def call(fd: int, *args: object) -> object:
            if left[0] and self.on_this_file(fd):
                left[0] -= 1
                self.failed.append(name)
                raise OSError(code, os.strerror(code))
            return real(fd, *args)

        self.monkeypatch.setattr(os, name, call)


@pytest.fixture
def history_file(tmp_path: Path) -> tuple[Path, bytes]:
    """A history file holding ``EARLIER``, and its bytes."""
    path = tmp_path / "chat.md"
    asyncio.run(ChatHistoryMD(path).store(EARLIER))
    return path, path.read_bytes()


def expected_after(tmp_path: Path, before: bytes, messages: list[Message]) -> bytes:
    """The bytes of a file that held ``before`` once ``messages`` are appended to it."""
    reference = tmp_path / "reference.md"
    reference.write_bytes(before)
    asyncio.run(ChatHistoryMD(reference).store(messages))
    return reference.read_bytes()


@pytest.mark.parametrize(
    "fault",
    ["write-half-then-ENOSPC", "fsync-EIO", "truncate-of-a-torn-tail-EIO"],
)
def test_a_failed_append_leaves_the_file_as_it_was(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    history_file: tuple[Path, bytes],
    fault: str,
) -> None:
    path, before = history_file
    expected = expected_after(tmp_path, before, [SMALL])
    history = ChatHistoryMD(path)
    faults = Faults(monkeypatch, path)

    async def scenario() -> None:
        assert list(await history.load()) == EARLIER
        if fault == "truncate-of-a-torn-tail-EIO":
            # a torn tail to cut off first, and cutting it off fails
            path.write_bytes(before + b"<!-- miniagents size=900 crc32=00000000: {")
            faults.fail("ftruncate", errno.EIO)
        elif fault == "fsync-EIO":
            faults.fail("fsync", errno.EIO)  # every byte was written, but not synced
        else:
            faults.write()
        with pytest.raises(ChatHistoryError) as caught:
            await history.append(BIG)
        assert faults.failed
        assert not isinstance(caught.value, MalformedChatHistoryError)
        assert str(path) in str(caught.value)
        assert isinstance(caught.value.__cause__, OSError)
        assert "was not written" in str(caught.value)
        if fault != "truncate-of-a-torn-tail-EIO":
            assert path.read_bytes() == before, "the file is exactly as it was"
            assert "cut back to what it held before" in str(caught.value)
        assert list(await history.load()) == EARLIER, "the object holds what the file holds"

        await history.append(SMALL)  # the next append works ...
        assert list(await history.load()) == [*EARLIER, SMALL]

    asyncio.run(scenario())
    assert path.read_bytes() == expected  # ... and the file is as if BIG was never tried
    assert list(asyncio.run(ChatHistoryMD(path).load())) == [*EARLIER, SMALL]


def test_a_failed_rollback_is_finished_by_the_next_append(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    history_file: tuple[Path, bytes],
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    path, before = history_file
    expected = expected_after(tmp_path, before, [SMALL])
    history = ChatHistoryMD(path)
    faults = Faults(monkeypatch, path)

    async def scenario() -> None:
        faults.write()
        faults.fail("ftruncate", errno.EIO)  # the part written cannot be cut off at once
        with pytest.raises(ChatHistoryError, match="could not be cut off again") as caught:
            await history.append(BIG)
        assert faults.failed == ["write", "ftruncate"]
        assert isinstance(caught.value.__cause__, OSError)
        torn = path.read_bytes()
        assert torn.startswith(before)
        assert len(torn) > len(before), "half of BIG is still in the file"
        # another process reading it now drops the torn section: BIG is never loaded
        assert list(await ChatHistoryMD(path).load()) == EARLIER
        assert list(await history.load()) == EARLIER

        await history.append(SMALL)

    asyncio.run(scenario())
    assert path.read_bytes() == expected
    assert any("was dropped" in record.getMessage() for record in caplog.records)


RLIMIT_SCRIPT = """\
import asyncio
import resource
import signal
from pathlib import Path

from miniagents.ext.history import ChatHistoryError
from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.ext.llm.messages import AssistantMessage, UserMessage

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG


async def main() -> None:
    history = ChatHistoryMD("chat.md")
    await history.store([UserMessage(text="first"), AssistantMessage(text="second")])
    before = Path("chat.md").read_bytes()
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 200, hard))
    try:
        await history.append(AssistantMessage(text="x" * 100_000))
    except ChatHistoryError as error:
        print("refused:", type(error.__cause__).__name__, error.__cause__.errno == 27)
    print("unchanged:", Path("chat.md").read_bytes() == before)
    await history.append(UserMessage(text="fits under the limit"))
    print("loaded:", [message.text for message in await history.load()])


asyncio.run(main())
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE")
def test_a_full_disk_leaves_the_file_as_it_was_and_the_next_append_works(
    tmp_path: Path,
) -> None:
    (tmp_path / "rlimit.py").write_text(RLIMIT_SCRIPT, encoding="utf-8")
    result = run_python(["rlimit.py"], tmp_path, timeout=60)
    assert (result.returncode, result.stderr) == (0, "")
    texts = ["first", "second", "fits under the limit"]
    assert result.stdout.splitlines() == [
        "refused: OSError True",
        "unchanged: True",
        f"loaded: {texts}",
    ]
    loaded = asyncio.run(ChatHistoryMD(tmp_path / "chat.md").load())
    assert [message.text for message in loaded] == texts


# --- kill -9 in the middle of a large write ------------------------------------------------

CRASH_SCRIPT = """\
import asyncio
import os
import sys

from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.ext.llm.messages import AssistantMessage, UserMessage

real_write = os.write


def write_part_then_wait(fd, data):
    if len(data) < 100_000:
        return real_write(fd, data)
    written = real_write(fd, bytes(data[: eval(sys.argv[1], {"data": data})]))
    print("written", written, flush=True)
    sys.stdin.read()  # the parent kills the process now, in the middle of the write
    return written


async def main() -> None:
    history = ChatHistoryMD("chat.md")
    await history.store([UserMessage(text="first"), AssistantMessage(text="second")])
    print("stored", os.path.getsize("chat.md"), flush=True)
    os.write = write_part_then_wait
    await history.append(AssistantMessage(text="y" * 200_000))
    print("never here", flush=True)


asyncio.run(main())
"""

COMPLETED = [UserMessage(text="first"), AssistantMessage(text="second")]
CUTS = {
    "in-the-header-line": ("20", False),
    "in-the-text": ("len(data) // 2", False),
    "before-the-text-line-break": ("len(data) - 2", False),
    "before-the-blank-line": ("len(data) - 1", True),  # the message is complete
}


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize(("written", "complete"), CUTS.values(), ids=CUTS.keys())
def test_a_process_killed_mid_write_loses_no_completed_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, written: str, complete: bool
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    (tmp_path / "crash.py").write_text(CRASH_SCRIPT, encoding="utf-8")
    pipe = subprocess.PIPE
    with ProcessGroups() as started:  # (ended with all it started, whatever happens)
        process = started.python(["crash.py", written], tmp_path, stdin=pipe, stdout=pipe)
        assert process.stdout is not None
        stored = process.stdout.readline().split()
        wrote = process.stdout.readline().split()
        assert (stored[:1], wrote[:1]) == (["stored"], ["written"]), (stored, wrote)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL

    path = tmp_path / "chat.md"
    before = path.read_bytes()[: int(stored[1])]
    assert path.stat().st_size == len(before) + int(wrote[1]), "the process died mid-write"
    big = AssistantMessage(text="y" * 200_000)
    loaded = list(asyncio.run(ChatHistoryMD(path).load()))
    assert loaded == ([*COMPLETED, big] if complete else COMPLETED)
    dropped = [r for r in caplog.records if "was dropped" in r.getMessage()]
    assert len(dropped) == (not complete)

    asyncio.run(ChatHistoryMD(path).append(SMALL))
    assert list(asyncio.run(ChatHistoryMD(path).load())) == [*loaded, SMALL]
    if not complete:
        assert path.read_bytes() == expected_after(tmp_path, before, [SMALL])
