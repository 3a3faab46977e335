"""Two real processes appending to one ``ChatHistoryMD`` file take turns (an OS file lock).

The parent steps both children through the interleaving that loses a message without a
lock: the second process opens the file and reads its size while the first one is about
to write (each child stops just before its write until the parent says go on).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from miniagents.ext.history import ChatHistoryMD
from tests.subprocesses import ROOT, ProcessGroups

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the children use POSIX pipes")

_CHILD = """
import asyncio, sys
from miniagents.ext.history import ChatHistoryMD
from miniagents.ext.history import markdown
from miniagents.messages import Message

original = markdown.write_at

def stepped_write_at(*args, **kwargs):
    print("writing", flush=True)  # the lock (if any) is held here
    assert sys.stdin.readline() == "write\\n"
    return original(*args, **kwargs)

markdown.write_at = stepped_write_at

async def main(name: str) -> None:
    history = ChatHistoryMD(sys.argv[1])
    await history.load()  # both children know the file as it is now
    print("loaded", flush=True)
    assert sys.stdin.readline() == "append\\n"
    await history.append(Message(text=f"from {name}", role="user"))
    print("appended", flush=True)

asyncio.run(main(sys.argv[2]))
"""


class _Child:
    def __init__(self, started: ProcessGroups, path: Path, name: str) -> None:
        pipe = subprocess.PIPE
        self.process = started.python(
            ["-c", _CHILD, str(path), name], ROOT, stdin=pipe, stdout=pipe
        )

    def says(self, line: str) -> None:
        assert self.process.stdout is not None
        assert self.process.stdout.readline() == f"{line}\n"

    def tell(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{line}\n")
        self.process.stdin.flush()

    def ends(self) -> None:
        assert self.process.wait(60) == 0


async def test_two_processes_appending_to_one_file_lose_no_message(tmp_path: Path) -> None:
    path = tmp_path / "CHAT.md"
    with ProcessGroups() as started:  # (ended with all they started, whatever happens)
        first, second = _Child(started, path, "first"), _Child(started, path, "second")
        first.says("loaded")
        second.says("loaded")
        first.tell("append")
        first.says("writing")  # the first one is about to write (it holds the lock)
        second.tell("append")  # the second one opens the file now, and waits for the lock
        first.tell("write")
        first.says("appended")
        first.ends()
        second.says("writing")  # it has taken in the first one's message: it writes after it
        second.tell("write")
        second.says("appended")
        second.ends()
    loaded = await ChatHistoryMD(path).load()
    assert [message.text for message in loaded] == ["from first", "from second"]
