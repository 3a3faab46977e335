"""``RunFirst``: what a producer's piece woke runs next, and the producer right after it.

Each test schedules callbacks that log their names, as other tasks woken before the
producer would be, and checks the order the loop runs them in.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import pytest
from reactivex.subject import Subject

from miniagents.promising import StreamedPromise
from miniagents.promising.lowlevel import RunFirst, run_first
from tests.fakes.uvloop_runs import on_uvloop


def _first() -> RunFirst:
    first = run_first()
    assert first is not None
    return first


def _logger(log: list[str]) -> Callable[[str], None]:
    def schedule(name: str) -> None:
        asyncio.get_running_loop().call_soon(log.append, name)

    return schedule


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_asyncio_keeps_its_ready_callbacks_in_a_deque_that_call_soon_appends_to() -> None:
    # what RunFirst relies on; a Python that changed it would make run_first() None, and
    # the tests below would fail rather than the library fall back unnoticed
    loop = asyncio.get_running_loop()
    ready = loop._ready  # type: ignore[attr-defined]
    assert type(ready) is deque
    before = len(ready)
    handle = loop.call_soon(print)
    assert len(ready) == before + 1
    assert ready[-1] is handle
    handle.cancel()


async def test_what_was_scheduled_since_the_mark_runs_before_what_was_there() -> None:
    log: list[str] = []
    schedule = _logger(log)
    first = _first()
    schedule("a")
    schedule("b")
    mark = len(first.ready)
    schedule("c")
    schedule("d")
    first.to_front(mark)
    mark = len(first.ready)
    schedule("e")
    first.to_front(mark)  # after the ones moved before, still waiting
    await _settle()
    assert log == ["c", "d", "e", "a", "b"]


async def test_the_producer_resumes_right_after_what_it_moved_before_anything_else() -> None:
    log: list[str] = []
    schedule = _logger(log)
    first = _first()

    async def producer() -> None:
        schedule("other")  # woken before the piece (another call's network read)
        mark = len(first.ready)
        schedule("reader")
        first.to_front(mark)
        await first.await_handover()
        log.append("producer")

    await producer()
    await _settle()
    assert log == ["reader", "producer", "other"]


async def test_moved_handles_that_have_run_are_not_counted_again() -> None:
    log: list[str] = []
    schedule = _logger(log)
    first = _first()
    mark = len(first.ready)
    schedule("reader 1")
    first.to_front(mark)
    await _settle()  # the producer's source waited: the loop ran them
    schedule("other")
    mark = len(first.ready)
    schedule("reader 2")
    first.to_front(mark)  # at the very front again, not after a stale count
    await _settle()
    assert log == ["reader 1", "reader 2", "other"]


async def test_a_producer_cancelled_in_its_handover_is_cancelled_cleanly() -> None:
    first = _first()
    log: list[str] = []

    async def producer() -> None:
        mark = len(first.ready)
        asyncio.get_running_loop().call_soon(cancel)  # a reader that gives up on it
        first.to_front(mark)
        try:
            await first.await_handover()
        except asyncio.CancelledError:
            log.append("cancelled")
            raise
        log.append("resumed")

    def cancel() -> None:
        log.append("reader")
        task.cancel()

    task = asyncio.create_task(producer())
    with pytest.raises(asyncio.CancelledError):
        await task
    await _settle()  # the resumption scheduled for it finds its wait cancelled: nothing
    assert log == ["reader", "cancelled"]


async def test_nothing_moved_the_producer_resumes_at_once() -> None:
    log: list[str] = []
    schedule = _logger(log)
    first = _first()
    schedule("other")
    await first.await_handover()
    log.append("producer")
    await _settle()
    assert log == ["producer", "other"]


async def _joined(pieces: tuple[str, ...]) -> str:
    return "".join(pieces)


async def _read_a_stream(
    log: list[str],
) -> tuple[Subject[str], asyncio.Task[None]]:
    """A stream fed from a subject, and a task that logs each piece it reads (waiting)."""
    source: Subject[str] = Subject()
    stream = StreamedPromise(source, resolver=_joined)

    async def read() -> None:
        async for piece in stream:
            log.append(f"read {piece}")

    reader = asyncio.create_task(read())
    await _settle()  # the reader waits for the first piece
    return source, reader


async def test_a_leading_task_runs_the_reader_its_piece_wakes_first_until_it_releases() -> None:
    log: list[str] = []
    schedule = _logger(log)
    source, reader = await _read_a_stream(log)
    first = _first()
    first.lead()
    schedule("other")  # woken before the piece
    source.on_next("a")  # no check per piece: the stream moves the reader it wakes
    await first.await_handover()
    log.append("producer")
    source.on_next("b")  # the reader waits again: moved again
    first.release()
    await _settle()
    schedule("other 2")
    source.on_next("c")  # released: the reader's wake-up waits behind
    source.on_completed()
    await reader
    assert log == ["read a", "producer", "read b", "other", "other 2", "read c"]


async def test_only_the_task_that_leads_has_its_wake_ups_moved() -> None:
    log: list[str] = []
    schedule = _logger(log)
    source, reader = await _read_a_stream(log)
    first = _first()
    leading, done = asyncio.Event(), asyncio.Event()

    async def lead_elsewhere() -> None:  # another task leads meanwhile
        first.lead()
        try:
            leading.set()
            await done.wait()
        finally:
            first.release()

    elsewhere = asyncio.create_task(lead_elsewhere())
    await leading.wait()
    first.release()  # this task does not lead: nothing to end (the other still leads)
    schedule("other")
    source.on_next("a")  # this task does not lead: first in, first out
    await _settle()
    done.set()
    await elsewhere
    source.on_completed()
    await reader
    assert log == ["other", "read a"]


def test_a_loop_whose_queue_cannot_be_reordered_has_none() -> None:
    async def probe() -> RunFirst | None:
        return run_first()

    assert on_uvloop(probe) is None
