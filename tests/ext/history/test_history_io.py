"""File I/O off the event loop: ``ChatHistoryMD`` reads, writes and syncs in a worker thread.

The loop goes on while a write is synced; calls are served one at a time in the order they
were made; an append cancelled before its turn never happens, and one cancelled while its
write is under way happens completely (the next call waits for it). A gate on ``os.fsync``
holds a write in the middle, so that every step is ordered by events, not by time.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from miniagents.ext.history.markdown import ChatHistoryMD
from miniagents.ext.llm.messages import AssistantMessage, UserMessage


def on_file(path: Path, fd: int) -> bool:
    return path.exists() and os.path.samestat(os.fstat(fd), os.stat(path))


class FsyncGate:
    """Holds the first ``os.fsync`` of a file until :meth:`open` (the write is done by then)."""

    def __init__(self, path: Path, loop: asyncio.AbstractEventLoop) -> None:
        self.path = path
        self.loop = loop
        self.loop_thread = threading.get_ident()
        self.reached = asyncio.Event()
        self.released = threading.Event()
        self.held = 0

    def fsync(self, real: Callable[[int], None], fd: int) -> None:
        if not self.held and on_file(self.path, fd):
            self.held += 1
            self.loop.call_soon_threadsafe(self.reached.set)
            assert threading.get_ident() != self.loop_thread, "fsync ran on the event loop"
            assert self.released.wait(timeout=60), "the gate was never opened"
        real(fd)

    def open(self) -> None:
        self.released.set()


@pytest.fixture
async def gate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[FsyncGate]:
    gate = FsyncGate(tmp_path / "chat.md", asyncio.get_running_loop())
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: gate.fsync(real, fd))
    try:
        yield gate
    finally:
        gate.open()  # never leave a worker thread waiting


async def load_fresh(path: Path) -> list[object]:
    """What a new ``ChatHistoryMD`` (as in a new process) reads from ``path``."""
    return list(await ChatHistoryMD(path).load())


def recording(path: Path, real: Callable[..., object], threads: set[int]) -> Callable[..., object]:
    """``real`` (an ``os`` function of a file descriptor), noting the threads it runs in."""

    def call(fd: int, *args: object) -> object:
        if on_file(path, fd):
            threads.add(threading.get_ident())
        return real(fd, *args)

    return call


async def test_file_io_runs_in_a_worker_thread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "chat.md"
    path.write_bytes(b"")
    threads: dict[str, set[int]] = {"read": set(), "write": set(), "fsync": set()}
    for name in threads:
        real = getattr(os, name)

        monkeypatch.setattr(os, name, recording(path, real, threads[name]))

    history = ChatHistoryMD(path)
    await history.append(UserMessage(text="one"))
    assert list(await ChatHistoryMD(path).load()) == [UserMessage(text="one")]
    assert all(threads.values()), threads
    assert threading.get_ident() not in set.union(*threads.values())


async def test_the_loop_goes_on_while_a_write_is_synced(tmp_path: Path, gate: FsyncGate) -> None:
    history = ChatHistoryMD(tmp_path / "chat.md")
    append = asyncio.create_task(history.append(UserMessage(text="slow disk")))
    await gate.reached.wait()  # the write is held in os.fsync, and the loop still runs
    other = asyncio.Event()
    asyncio.get_running_loop().call_soon(other.set)
    await other.wait()
    assert not append.done()
    gate.open()
    await append
    assert list(await history.load()) == [UserMessage(text="slow disk")]


async def test_appends_are_written_in_the_order_they_were_made(
    tmp_path: Path, gate: FsyncGate
) -> None:
    path = tmp_path / "chat.md"
    history = ChatHistoryMD(path)
    messages = [UserMessage(text=f"message {n}") for n in range(50)]
    first = asyncio.create_task(history.append(messages[0]))
    await gate.reached.wait()  # the others queue up behind the first
    rest = [asyncio.create_task(history.append(message)) for message in messages[1:]]
    loads = asyncio.create_task(history.load())
    await asyncio.sleep(0)
    assert not any(task.done() for task in [first, *rest, loads])
    gate.open()
    await asyncio.gather(first, *rest)
    assert list(await loads) == messages
    assert await load_fresh(path) == messages


async def test_an_append_cancelled_before_its_turn_never_happens(
    tmp_path: Path, gate: FsyncGate
) -> None:
    path = tmp_path / "chat.md"
    history = ChatHistoryMD(path)
    first = asyncio.create_task(history.append(UserMessage(text="first")))
    await gate.reached.wait()
    queued = asyncio.create_task(history.append(UserMessage(text="given up")))
    after = asyncio.create_task(history.append(UserMessage(text="after")))
    await asyncio.sleep(0)  # both wait for their turn
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    gate.open()
    await asyncio.gather(first, after)
    expected = [UserMessage(text="first"), UserMessage(text="after")]
    assert list(await history.load()) == expected
    assert await load_fresh(path) == expected


async def test_an_append_cancelled_mid_write_happens_completely(
    tmp_path: Path, gate: FsyncGate
) -> None:
    path = tmp_path / "chat.md"
    history = ChatHistoryMD(path)
    big = AssistantMessage(text="z" * 100_000, model="m")
    append = asyncio.create_task(history.append(big))
    await gate.reached.wait()  # written, not yet synced
    append.cancel()
    with pytest.raises(asyncio.CancelledError):
        await append  # the caller is free at once ...
    load = asyncio.create_task(history.load())
    await asyncio.sleep(0)
    assert not load.done(), "... but the next call waits for the write to end"
    gate.open()
    assert list(await load) == [big]
    await history.append(UserMessage(text="next"))
    assert await load_fresh(path) == [big, UserMessage(text="next")]


def test_a_history_serves_one_event_loop_after_another(tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    history = ChatHistoryMD(path)
    asyncio.run(history.append(UserMessage(text="one")))
    asyncio.run(history.append(UserMessage(text="two")))
    assert [m.text for m in asyncio.run(history.load())] == ["one", "two"]
    assert [m.text for m in asyncio.run(ChatHistoryMD(path).load())] == ["one", "two"]
