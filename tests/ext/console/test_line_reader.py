"""The console's reading of ``sys.stdin``: a read given up on (Ctrl+C) and the next line.

``sys.stdin`` is replaced by a pseudo-terminal (the test types into its other side) or a
pipe. A read is run by hand, as its task's first step would run it, until it waits for its
line; then it is given up on (the ``CancelledError`` that Ctrl+C brings) or finished. No
step waits for time to pass: the read waits for its line, the test for the reading thread.
"""

from __future__ import annotations

import asyncio
import io
import os
import select
import sys
import termios
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TextIO

import pytest

from miniagents.ext.console import _terminal

WAIT = 30.0
"""Seconds to wait for what should happen at once (the CI machine is slow)."""


class Keyboard:
    """The other side of the test's stdin: what is written there is typed (or piped)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())


def replace_stdin(monkeypatch: pytest.MonkeyPatch, stdin: TextIO) -> None:
    """Make ``stdin`` the console's input, with a reader of its own."""
    monkeypatch.setattr(sys, "stdin", stdin)
    monkeypatch.setattr(_terminal._console_input, "reader", None)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TextIO, Keyboard]]:
    """A pseudo-terminal as ``sys.stdin`` (canonical mode: one line per read, not echoed)."""
    master, slave = os.openpty()
    modes = termios.tcgetattr(slave)
    modes[3] &= ~termios.ECHO  # nobody reads the echo on the other side
    termios.tcsetattr(slave, termios.TCSANOW, modes)
    with open(slave, encoding="utf-8") as stdin:
        replace_stdin(monkeypatch, stdin)
        try:
            yield stdin, Keyboard(master)
        finally:
            os.close(master)


@pytest.fixture
def pipe(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TextIO, Keyboard]]:
    """A pipe as ``sys.stdin``."""
    reading, writing = os.pipe()
    with open(reading, encoding="utf-8") as stdin:
        replace_stdin(monkeypatch, stdin)
        try:
            yield stdin, Keyboard(writing)
        finally:
            os.close(writing)


class Read:
    """A read of the console's, run by hand: until it waits for its line, then on."""

    def __init__(self) -> None:
        before = set(threading.enumerate())
        self.read: Coroutine[Any, Any, str | None] = _terminal._read_line()
        self.waiting: asyncio.Future[Any] = self.read.send(None)  # what it waits for
        self.threads = set(threading.enumerate()) - before
        """The thread this read started (none, if it waits for the line of another)."""

    def give_up(self) -> None:
        """Give up on the read, as Ctrl+C does (its task is cancelled)."""
        with pytest.raises(asyncio.CancelledError):
            self.read.throw(asyncio.CancelledError())

    async def line(self) -> str | None:
        """The line read, once it is there."""
        done, _ = await asyncio.wait([self.waiting], timeout=WAIT)
        assert done, f"no line read within {WAIT} s"
        try:
            self.read.send(None)
        except StopIteration as finished:
            line: str | None = finished.value
            return line
        raise AssertionError("the read waited again, with its line there")


def assert_ended(threads: set[threading.Thread]) -> None:
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive(), f"{thread.name} still reads the input"


def read_directly(stdin: TextIO) -> str:
    """A line of ``stdin`` read as ``input()`` reads it, once there (not waiting forever)."""
    ready, _, _ = select.select([stdin], [], [], WAIT)
    assert ready, f"no line to read within {WAIT} s: did a thread take it?"
    return stdin.readline()


async def test_after_a_read_given_up_on_the_next_line_typed_goes_to_input(
    terminal: tuple[TextIO, Keyboard],
) -> None:
    stdin, keyboard = terminal
    read = Read()
    assert len(read.threads) == 1  # it reads in a thread of its own
    read.give_up()
    assert_ended(read.threads)  # nothing is left waiting for the next line

    keyboard.type("for input()\n")
    assert read_directly(stdin) == "for input()\n"


async def test_after_a_read_given_up_on_the_next_line_typed_goes_to_the_next_read(
    terminal: tuple[TextIO, Keyboard],
) -> None:
    _, keyboard = terminal
    given_up = Read()
    given_up.give_up()
    read = Read()
    keyboard.type("for the next read\n")
    assert await read.line() == "for the next read"
    assert_ended(given_up.threads | read.threads)


async def test_a_read_given_up_on_by_one_of_two_readers_goes_on_for_the_other(
    terminal: tuple[TextIO, Keyboard],
) -> None:
    _, keyboard = terminal
    first = Read()
    second = Read()
    assert not second.threads  # it waits for the same line
    first.give_up()
    keyboard.type("still wanted\n")
    assert await second.line() == "still wanted"
    assert_ended(first.threads)


async def test_a_line_read_on_a_pipe_for_a_read_given_up_on_goes_to_the_next_read(
    pipe: tuple[TextIO, Keyboard],
) -> None:
    _, keyboard = pipe  # lines may wait unseen in the stream's buffer: its thread reads on
    given_up = Read()
    given_up.give_up()
    keyboard.type("kept\nnext\n")
    assert await Read().line() == "kept"
    assert await Read().line() == "next"
    assert_ended(given_up.threads)


async def test_the_end_of_input_on_a_terminal_is_read_as_the_end(
    terminal: tuple[TextIO, Keyboard],
) -> None:
    _, keyboard = terminal
    read = Read()
    keyboard.type("\x04")  # Ctrl+D at the start of a line
    assert await read.line() is None
    assert_ended(read.threads)


async def test_bytes_that_are_not_text_are_read_as_replacement_characters_not_as_the_end(
    pipe: tuple[TextIO, Keyboard],
) -> None:
    stdin, keyboard = pipe
    assert stdin.errors == "strict"  # (as a UTF-8 locale's stdin is)
    os.write(keyboard.fd, b"hello\n\xff\xfe bad\nafter\n")
    assert await Read().line() == "hello"
    assert await Read().line() == "\ufffd\ufffd bad"
    assert await Read().line() == "after"


async def test_a_line_past_the_most_characters_is_skipped_without_being_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    most = _terminal.MAX_LINE_CHARS
    lines = ["a" * most, "b" * (most + 1) + "\r", "c" * (3 * most), "after", "d" * (2 * most)]
    stdin = io.StringIO("\n".join(lines))  # (piped; the last line without a line break)
    taken = [0]
    read = stdin.readline

    def readline(size: int = -1) -> str:
        line = read(size)
        taken[0] = max(taken[0], len(line))  # (the most characters one read took)
        return line

    monkeypatch.setattr(stdin, "readline", readline)
    replace_stdin(monkeypatch, stdin)
    assert await _terminal._read_line() == "a" * most  # the most: read whole
    for _ in range(2):
        with pytest.raises(_terminal._LineTooLong, match="more than 1,000,000 characters"):
            await _terminal._read_line()
    assert await _terminal._read_line() == "after"
    with pytest.raises(_terminal._LineTooLong):
        await _terminal._read_line()
    assert await _terminal._read_line() is None
    assert taken[0] == most + 2  # (was: each line whole, 3,000,001 characters)
