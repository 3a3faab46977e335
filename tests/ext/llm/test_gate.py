"""``InTurn``: a burst of streams parsed one stream at a time, each first event handed over.

Each test's streams wait for one shared ``arrival`` (a burst: every stream's read arrives
in the same pass of the loop), then give their events without waiting (a read the SDK
parses). A consumer lets the loop run once after its first event, as an LLM turn does to
hand its first token to its reader. The log shows who parsed when.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from miniagents.ext.llm._gate import InTurn, waits_in_line
from miniagents.ext.llm._stall import stall_watched
from miniagents.ext.llm.errors import LLMTimeoutError
from miniagents.testing.virtual_time import virtual_time


async def _stream(
    name: str, arrival: asyncio.Event, log: list[str], size: int = 3
) -> AsyncIterator[int]:
    await arrival.wait()
    log.append(f"{name} parses")
    for index in range(size):
        yield index
    log.append(f"{name} waits")  # asked for more after its read: the read is done
    await asyncio.sleep(0)


async def _consume(
    name: str, events: AsyncIterator[int], log: list[str], hold: float = 0
) -> list[int]:
    """Take every event in turn; after the first, let the loop run (for ``hold`` seconds)."""
    got: list[int] = []
    turns = InTurn(events)
    try:
        async for event in turns:
            got.append(event)
            log.append(f"{name} {event}")
            if event == 0:
                await asyncio.sleep(hold)  # the handoff: the reader sees the first event now
    finally:
        turns.leave()
    return got


async def test_a_burst_is_parsed_one_stream_at_a_time() -> None:
    arrival = asyncio.Event()
    log: list[str] = []
    tasks = [
        asyncio.create_task(_consume(name, _stream(name, arrival, log), log)) for name in "abc"
    ]
    await asyncio.sleep(0)  # every stream waits for the arrival
    arrival.set()
    assert await asyncio.gather(*tasks) == [[0, 1, 2]] * 3
    one = ["parses", "0", "1", "2", "waits"]
    assert log == [f"{name} {step}" for name in "abc" for step in one]


async def test_without_the_gate_every_stream_parks_mid_read() -> None:
    """What the gate prevents: each stream's read half-parsed while the others parse theirs."""
    arrival = asyncio.Event()
    log: list[str] = []

    async def consume(name: str) -> None:
        async for event in _stream(name, arrival, log):
            log.append(f"{name} {event}")
            if event == 0:
                await asyncio.sleep(0)

    tasks = [asyncio.create_task(consume(name)) for name in "abc"]
    await asyncio.sleep(0)
    arrival.set()
    await asyncio.gather(*tasks)
    assert log[:6] == ["a parses", "a 0", "b parses", "b 0", "c parses", "c 0"]


async def test_a_stream_cancelled_in_line_leaves_it() -> None:
    arrival = asyncio.Event()
    log: list[str] = []
    tasks = {
        name: asyncio.create_task(_consume(name, _stream(name, arrival, log), log))
        for name in "abc"
    }
    await asyncio.sleep(0)
    arrival.set()
    await asyncio.sleep(0)  # a parsed up to its first event and hands it over; b and c in line
    assert log == ["a parses", "a 0"]
    tasks["b"].cancel()
    assert await tasks["a"] == [0, 1, 2]
    assert await tasks["c"] == [0, 1, 2]
    with pytest.raises(asyncio.CancelledError):
        await tasks["b"]
    assert "b parses" not in log
    assert log.index("a waits") < log.index("c parses")


async def test_a_stream_handed_the_gate_and_cancelled_before_it_runs_passes_it_on() -> None:
    arrival = asyncio.Event()
    log: list[str] = []
    tasks: dict[str, asyncio.Task[list[int]]] = {}

    async def ending() -> AsyncIterator[int]:
        await arrival.wait()
        for index in range(3):
            yield index  # and ends without waiting: a leaves the gate when its stream ends

    async def first() -> list[int]:
        try:
            return await _consume("a", ending(), log)
        finally:
            tasks["b"].cancel()  # b was handed the gate as a left it: cancelled before it runs

    tasks["a"] = asyncio.create_task(first())
    for name in "bc":
        tasks[name] = asyncio.create_task(_consume(name, _stream(name, arrival, log), log))
    await asyncio.sleep(0)
    arrival.set()
    assert await tasks["a"] == [0, 1, 2]
    assert await tasks["c"] == [0, 1, 2]
    with pytest.raises(asyncio.CancelledError):
        await tasks["b"]
    assert "b 0" not in log


async def test_a_stream_cancelled_while_it_hands_over_passes_the_gate_on() -> None:
    arrival = asyncio.Event()
    log: list[str] = []
    tasks = {
        name: asyncio.create_task(_consume(name, _stream(name, arrival, log), log)) for name in "ab"
    }
    await asyncio.sleep(0)
    arrival.set()
    await asyncio.sleep(0)  # a holds the gate in its handoff
    tasks["a"].cancel()
    with pytest.raises(asyncio.CancelledError):
        await tasks["a"]
    assert await tasks["b"] == [0, 1, 2]
    assert log == ["a parses", "a 0", "b parses", "b 0", "b 1", "b 2", "b waits"]


async def test_a_stream_that_fails_while_it_holds_the_gate_passes_it_on() -> None:
    arrival = asyncio.Event()
    log: list[str] = []

    async def failing() -> AsyncIterator[int]:
        await arrival.wait()
        yield 0
        raise ValueError("The stream broke.")

    broken = asyncio.create_task(_consume("a", failing(), log))
    other = asyncio.create_task(_consume("b", _stream("b", arrival, log), log))
    await asyncio.sleep(0)
    arrival.set()
    with pytest.raises(ValueError, match="broke"):
        await broken
    assert await other == [0, 1, 2]


async def test_a_stream_that_waits_while_it_holds_the_gate_passes_it_on() -> None:
    """A wait inside the stream (e.g. the next network read) ends the stream's turn."""
    arrival = asyncio.Event()
    more = asyncio.Event()
    log: list[str] = []

    async def slow() -> AsyncIterator[int]:
        await arrival.wait()
        log.append("a parses")
        yield 0
        await more.wait()  # the rest of a's reply is not there yet
        log.append("a parses more")
        yield 1

    tasks = [
        asyncio.create_task(_consume("a", slow(), log)),
        asyncio.create_task(_consume("b", _stream("b", arrival, log), log)),
    ]
    await asyncio.sleep(0)
    arrival.set()
    assert await tasks[1] == [0, 1, 2]  # not held up by a, whose stream waits
    more.set()
    assert await tasks[0] == [0, 1]
    assert log.index("b waits") < log.index("a parses more")


async def test_a_consumer_closed_in_line_leaves_it() -> None:
    """A consumer's coroutine closed while it waits in line (driven by hand, not a task)."""
    arrival, late = asyncio.Event(), asyncio.Event()
    log: list[str] = []
    holder = asyncio.create_task(_consume("a", _stream("a", arrival, log), log))
    closed = _consume("b", _stream("b", late, log), log)
    assert isinstance(closed.send(None), asyncio.Future)  # b's stream waits for its read
    await asyncio.sleep(0)
    arrival.set()
    await asyncio.sleep(0)  # a holds the gate in its handoff
    late.set()
    assert isinstance(closed.send(None), asyncio.Future)  # b's read came: b is in line
    closed.close()
    assert await holder == [0, 1, 2]
    assert await _consume("c", _stream("c", arrival, log), log) == [0, 1, 2]
    assert "b parses" not in log


def _stalled() -> LLMTimeoutError:
    return LLMTimeoutError("The model sent nothing.")


async def test_a_stall_watch_does_not_count_the_time_in_line() -> None:
    """A call whose read has come waits for its turn, not for the model: no stall."""
    arrival = asyncio.Event()
    log: list[str] = []
    with virtual_time() as clock:
        holder = asyncio.create_task(_consume("a", _stream("a", arrival, log), log, hold=10))
        watched = stall_watched(_stream("b", arrival, log), 1, _stalled)
        behind = asyncio.create_task(_consume("b", watched, log))
        await asyncio.sleep(0)  # both streams wait for the arrival
        arrival.set()
        await asyncio.sleep(0)  # a parses up to its first event and holds the gate; b in line
        assert waits_in_line(behind)
        assert not waits_in_line(holder)
        assert await behind == [0, 1, 2]  # 10 s in line, with a stall timeout of 1 s
        assert clock.elapsed >= 10
        assert await holder == [0, 1, 2]
        assert not waits_in_line(behind)


async def test_a_stall_watch_still_stops_a_silent_model_behind_the_gate() -> None:
    arrival, never = asyncio.Event(), asyncio.Event()
    log: list[str] = []
    with virtual_time():
        holder = asyncio.create_task(_consume("a", _stream("a", arrival, log), log, hold=10))
        watched = stall_watched(_stream("b", never, log), 1, _stalled)
        silent = asyncio.create_task(_consume("b", watched, log))
        await asyncio.sleep(0)
        arrival.set()
        with pytest.raises(LLMTimeoutError, match="sent nothing"):
            await silent
        assert log == ["a parses", "a 0"]  # b failed while a still held the gate
        assert await holder == [0, 1, 2]
