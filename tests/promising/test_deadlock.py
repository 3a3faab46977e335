"""The deadlock watch: a wait cycle on the library's own streams ends as a ``DeadlockError``.

Each program runs on a virtual clock, where the watch's timer fires as soon as the loop is
idle: a deadlock is reported at once, and deterministically.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.subject import Subject

from miniagents import InteractionContext, Message, MiniAgents, miniagent
from miniagents.errors import DeadlockError, MiniAgentsError, StreamLimitError, StreamLoopError
from miniagents.messages.appender import MessageTokenAppender
from miniagents.messages.sequence import MessageSequencePromise
from miniagents.operators import resolve_messages
from miniagents.promising import StreamedPromise, _deadlock
from miniagents.promising.lowlevel import (
    ReplayCore,
    core_of,
    parked,
    set_deadlock_check_interval,
)
from miniagents.testing.virtual_time import run_with_virtual_time
from tests.fakes.cut_off import run_with_cut_off
from tests.fakes.uvloop_runs import on_uvloop


async def _as_list(pieces: tuple[int, ...]) -> list[int]:
    return list(pieces)


@pytest.fixture
def interval() -> Iterator[None]:
    former = set_deadlock_check_interval(1.0)
    yield
    set_deadlock_check_interval(former)


@miniagent(max_concurrency=1)
async def nested(ctx: InteractionContext, depth: int = 0) -> None:
    """Holds its only slot while it waits for a call of itself: a cycle by construction."""
    if depth < 1:
        ctx.reply(await nested.inquire(depth=depth + 1))
    else:
        ctx.reply("leaf")


async def _await_nested() -> str:
    async with MiniAgents():
        return str(await nested.inquire())


def test_a_wait_cycle_ends_with_a_deadlock_error_naming_every_wait(
    interval: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="miniagents"), pytest.raises(DeadlockError) as info:
        run_with_virtual_time(_await_nested())
    assert isinstance(info.value, MiniAgentsError)
    assert isinstance(info.value, RuntimeError)
    text = str(info.value)
    assert "waits for a piece of the replies of the agent NESTED" in text
    assert "waits for a slot of a concurrency limit of 1" in text
    assert "raise max_concurrency" in text  # it names a fix
    reports = [record for record in caplog.records if "Deadlock:" in record.getMessage()]
    assert len(reports) == 1  # logged once, not again as lost errors of the failed replies
    assert not [record for record in caplog.records if "no consumer" in record.getMessage()]
    caplog.clear()


def test_the_report_comes_at_the_first_check_after_the_loop_went_idle(
    interval: None, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(DeadlockError):
            await _await_nested()
        return loop.time() - start

    assert run_with_virtual_time(main()) == pytest.approx(1.0)
    caplog.clear()


@miniagent
async def _source(ctx: InteractionContext, count: int = 3) -> None:
    for index in range(count):
        await ctx.areply(f"s{index}")


@miniagent
async def _whole(ctx: InteractionContext) -> None:
    ctx.reply(f"whole: {' '.join(str(message) for message in await ctx.messages)}")


@miniagent
async def _each(ctx: InteractionContext) -> None:
    async for promise in ctx.message_promises:
        ctx.reply(f"each: {await promise}")


@miniagent
async def _diamond(ctx: InteractionContext, count: int = 3) -> None:
    """One stream read by two branches that meet again in order: the first branch needs all
    of it, the second may be read only after the first. With a high-water mark of 1 every
    producer ends up waiting for room (an artificial deadlock of bounded buffers)."""
    shared = _source.inquire(count=count)
    ctx.reply([_whole.inquire(shared), _each.inquire(shared)])


_DIAMOND_REPLIES = ["whole: s0 s1 s2", "each: s0", "each: s1", "each: s2"]


async def _run_diamond() -> tuple[list[str], float]:
    """The diamond's replies, and how long (of the loop's clock) it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with MiniAgents(high_water_mark=1):
        texts = [str(message) for message in await _diamond.inquire()]
    return texts, loop.time() - start


def test_a_diamond_of_bounded_streams_is_relieved_at_once_and_ends(interval: None) -> None:
    """The watch doubles the room of a stream the diamond's producers wait for the moment
    they are stuck, from the wait-for graph: no timer, no idle loop needed."""
    texts, elapsed = run_with_virtual_time(_run_diamond())
    assert texts == _DIAMOND_REPLIES
    assert elapsed == 0.0  # (the watch's own check comes after a second)


def test_a_diamond_that_needs_many_reliefs_gets_each_the_moment_it_is_stuck(
    interval: None,
) -> None:
    """A diamond of 256 pieces at a high-water mark of 1 needs about 8 doublings, each taken
    as soon as the buffers fill up again."""

    async def main() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with MiniAgents(high_water_mark=1):
            replies = await _diamond.inquire(count=256)
        return len(replies), loop.time() - start

    count, elapsed = run_with_virtual_time(main())
    assert count == 257
    assert elapsed == 0.0


@miniagent
async def _complete_ones(ctx: InteractionContext, operator: bool = False) -> None:
    """The diamond's complete messages, in order (a message observable), as its replies."""
    if operator:
        ctx.reply(reactivex.of("go").pipe(_diamond.as_operator()))
    else:
        ctx.reply(_diamond.inquire().as_message_observable())


@pytest.mark.parametrize("operator", [False, True], ids=["as_message_observable", "as_operator"])
def test_a_diamond_behind_a_message_observable_is_relieved_too(
    interval: None, operator: bool
) -> None:
    """The library's own observables are no outside source, which would keep the watch from
    ever telling that the loop is stuck (the diamond hung for good)."""

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        async with MiniAgents(high_water_mark=1):
            replies = _complete_ones.inquire(operator=operator)
            for _ in range(5):
                await asyncio.sleep(0)  # (the agents run until they wait)
            assert not _deadlock.watch_of(loop).externals  # (no timeout: it is a timer too)
            return [str(message) for message in await replies]

    assert run_with_virtual_time(main()) == _DIAMOND_REPLIES


# -- on uvloop, which hides its ready callbacks and timers from the watch ----------------------


@pytest.fixture
def short_interval() -> Iterator[None]:
    """Checks every 10 ms of uvloop's real clock (no virtual clock runs on uvloop)."""
    former = set_deadlock_check_interval(0.01)
    yield
    set_deadlock_check_interval(former)


def test_on_uvloop_a_diamond_of_bounded_streams_is_relieved_and_ends(
    short_interval: None,
) -> None:
    # it hung for good before: the watch needed asyncio's own loop to see the loop idle
    texts, _elapsed = on_uvloop(_run_diamond)
    assert texts == _DIAMOND_REPLIES


def test_on_uvloop_a_wait_that_a_hidden_callback_ends_is_never_reported(
    short_interval: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every task waits on the library, and only a raw callback (no task, no Observable
    # source) can end the wait: asyncio's loop shows that callback to the watch, uvloop does
    # not, so there the watch must not call it a deadlock. The callback is scheduled right
    # after the watch has found the waits stuck and declined to report them.
    token = MessageTokenAppender()
    declined: list[bool] = []
    confirm = _deadlock._Watch.confirm

    def confirm_then_end_the_wait(watch: _deadlock._Watch) -> None:
        confirm(watch)
        if watch.spent and not declined:
            declined.append(True)
            watch.loop.call_soon(finish)

    def finish() -> None:
        token.append("at last")
        token.complete()

    monkeypatch.setattr(_deadlock._Watch, "confirm", confirm_then_end_the_wait)

    async def main() -> str:
        return str(await token.promise)

    assert on_uvloop(main) == "at last"
    assert declined == [True]


def test_a_task_that_sleeps_is_no_deadlock(interval: None) -> None:
    @miniagent
    async def slow(ctx: InteractionContext) -> None:
        await asyncio.sleep(3600)  # an hour of waits by others, checked every second
        ctx.reply("at last")

    async def main() -> str:
        async with MiniAgents():
            return str(await slow.inquire())

    assert run_with_virtual_time(main()) == "at last"


def test_a_timer_without_a_task_is_no_deadlock(interval: None) -> None:
    async def main() -> list[int]:
        subject: Subject[int] = Subject()
        loop = asyncio.get_running_loop()

        def emit() -> None:
            subject.on_next(1)
            subject.on_completed()

        loop.call_later(30, emit)
        return await StreamedPromise[int, list[int]](subject, resolver=_as_list)

    assert run_with_virtual_time(main()) == [1]


def test_a_source_that_pushes_from_a_thread_is_no_deadlock(interval: None) -> None:
    async def main() -> list[int]:
        subject: Subject[int] = Subject()
        loop = asyncio.get_running_loop()
        ready = threading.Event()

        def push() -> None:
            ready.wait()
            subject.on_next(7)
            subject.on_completed()

        thread = threading.Thread(target=push)
        thread.start()
        # the thread may push only after the loop has been idle (and checked) for a while
        loop.call_later(10, ready.set)
        try:
            return await StreamedPromise[int, list[int]](subject, resolver=_as_list)
        finally:
            await asyncio.to_thread(thread.join)

    assert run_with_virtual_time(main()) == [7]


@miniagent
async def _upper(ctx: InteractionContext) -> None:
    async for message in ctx.message_promises:
        ctx.reply(str(await message).upper())


async def _through_a_sequence(subject: Subject[str], way: str) -> list[str]:
    """``subject``'s items read through a message sequence made the way ``way`` says."""
    if way == "sequence":
        sequence = MessageSequencePromise.from_observable(subject)
        sequence.start()
        return [str(message) for message in await sequence]
    if way == "resolve_messages":
        resolved = await subject.pipe(resolve_messages(), ops.to_list())
        return [str(message) for message in resolved]
    async with MiniAgents():
        return [str(message) for message in await _upper.inquire(subject)]


@pytest.mark.parametrize("way", ["sequence", "resolve_messages", "agent"])
def test_a_message_sequence_fed_from_a_thread_is_no_deadlock(interval: None, way: str) -> None:
    async def main() -> list[str]:
        subject: Subject[str] = Subject()
        ready = threading.Event()

        def push() -> None:
            ready.wait()
            subject.on_next("from a thread")
            subject.on_completed()

        thread = threading.Thread(target=push)
        thread.start()
        # the thread pushes only after the loop has been idle (and checked) for a while
        asyncio.get_running_loop().call_later(10, ready.set)
        try:
            return await _through_a_sequence(subject, way)
        finally:
            await asyncio.to_thread(thread.join)

    expected = "FROM A THREAD" if way == "agent" else "from a thread"
    assert run_with_virtual_time(main()) == [expected]


@pytest.mark.parametrize("dropped", ["stream", "sequence"])
def test_a_dropped_stream_of_an_outside_source_does_not_keep_the_watch_off(
    interval: None, dropped: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        never: reactivex.Observable[int] = reactivex.never()
        if dropped == "stream":
            StreamedPromise[int, list[int]](never, resolver=_as_list).start()
        else:
            MessageSequencePromise.from_observable(reactivex.never()).start()
        await _await_nested()  # a real cycle, which the dropped stream's source cannot end

    with caplog.at_level(logging.ERROR, logger="miniagents"), pytest.raises(DeadlockError):
        run_with_virtual_time(main())
    caplog.clear()


def test_a_library_stream_followed_in_a_sequence_is_no_outside_source(interval: None) -> None:
    # it is fed on its loop: the watch stays on while the sequence follows it
    async def main() -> tuple[int, list[str]]:
        gate, waiting = asyncio.Event(), asyncio.Event()

        async def texts() -> AsyncIterator[str]:
            yield "a"
            waiting.set()  # pulled again: the sequence follows it
            await gate.wait()
            yield "b"

        async def joined(pieces: tuple[str, ...]) -> str:
            return "".join(pieces)

        stream = StreamedPromise[str, str](texts(), resolver=joined)
        sequence = MessageSequencePromise([stream])
        reading = asyncio.ensure_future(sequence.aresolve())
        await waiting.wait()
        counted = _deadlock.watch_of(asyncio.get_running_loop()).externals
        gate.set()
        return counted, [str(message) for message in await reading]

    assert run_with_virtual_time(main()) == (0, ["a", "b"])


def test_a_finished_source_leaves_nothing_parked(interval: None) -> None:
    async def main() -> dict[asyncio.Task[object], str]:
        result = await StreamedPromise[int, list[int]](reactivex.of(1, 2), resolver=_as_list)
        assert result == [1, 2]
        return parked(asyncio.get_running_loop())

    assert run_with_virtual_time(main()) == {}


def test_with_the_watch_off_a_cycle_waits_until_a_timeout() -> None:
    former = set_deadlock_check_interval(None)
    try:
        with pytest.raises(TimeoutError):
            run_with_virtual_time(asyncio.wait_for(_await_nested(), 60))
    finally:
        set_deadlock_check_interval(former)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "1"])
def test_a_bad_check_interval_is_refused(bad: object) -> None:
    with pytest.raises(StreamLimitError, match="positive, finite number of seconds"):
        set_deadlock_check_interval(bad)  # type: ignore[arg-type]


def test_a_stream_waited_on_in_two_loops_parks_in_each_loops_watch() -> None:
    # an open core made outside any loop has no loop of its own: each wait parks in the
    # watch of the loop it runs in (the core keeps a watch, and changes it with the loop)
    core: ReplayCore[int] = ReplayCore(open_ended=True)

    async def wait_once(piece: int) -> dict[asyncio.Task[object], str]:
        waiter = asyncio.create_task(core.await_change())
        await asyncio.sleep(0)  # the waiter parks
        seen = dict(parked(asyncio.get_running_loop()))
        core.accept(piece)
        await waiter
        assert not parked(asyncio.get_running_loop())  # and leaves when woken
        return seen

    first = asyncio.run(wait_once(1))
    second = asyncio.run(wait_once(2))
    assert list(first.values()) == ["a piece of a stream"]
    assert list(second.values()) == ["a piece of a stream"]
    assert core.pieces == [1, 2]


def test_a_stream_read_in_another_loop_than_its_own_is_a_stream_loop_error() -> None:
    # a stream started by one asyncio.run() belongs to that loop; the next run's reader is
    # told so (it got asyncio's "Event loop is closed" from inside the library)
    source: Subject[int] = Subject()
    stream = StreamedPromise[int, list[int]](source, resolver=_as_list)

    async def start() -> None:
        stream.start()
        source.on_next(1)

    async def read() -> list[int]:
        return await stream

    asyncio.run(start())
    with pytest.raises(StreamLoopError, match="started in another event loop \\(closed by now\\)"):
        asyncio.run(read())


def test_a_stream_waited_on_in_its_loop_then_read_in_another_is_a_stream_loop_error() -> None:
    source: Subject[int] = Subject()
    stream = StreamedPromise[int, list[int]](source, resolver=_as_list)

    async def first() -> None:
        stream.start()
        asyncio.get_running_loop().call_soon(source.on_next, 1)
        async for _piece in stream:  # (it waited for the piece: its loop's watch is known)
            break

    async def read() -> list[int]:
        return await stream

    asyncio.run(first())
    with pytest.raises(StreamLoopError, match="started in another event loop"):
        asyncio.run(read())


def test_a_token_reader_parks_while_it_waits_and_a_failed_wait_stops_counting_it(
    interval: None, caplog: pytest.LogCaptureFixture
) -> None:
    # A message's token reader makes its wait itself (no coroutine of await_change): it
    # parks in the watch while it waits and leaves when woken; when the watch fails its
    # wait (the producer, here the main task, awaits the reader), the stream no longer
    # counts it as a consumer who waits.
    async def main() -> tuple[list[str], list[list[str]], bool]:
        loop = asyncio.get_running_loop()
        appender = MessageTokenAppender()
        core = core_of(appender.promise)
        read: list[str] = []

        async def reader() -> None:
            async for token in appender.promise:
                read.append(token)

        task = asyncio.create_task(reader())
        await asyncio.sleep(0)  # it waits for the first token
        seen = [list(parked(loop).values())]
        appender.append("a")
        await asyncio.sleep(0)  # it reads it, and waits for the next one
        seen.append(list(parked(loop).values()))
        counted = core.consumed()
        with pytest.raises(DeadlockError):
            await task
        assert not parked(loop)
        return read, seen, counted and not core.consumed()

    with caplog.at_level(logging.ERROR, logger="miniagents"):
        read, seen, uncounted = run_with_virtual_time(main())
    assert read == ["a"]
    assert seen == [["a piece of a stream"], ["a piece of a stream"]]
    assert uncounted
    caplog.clear()


# -- found by the topology fuzzer: diamonds the watch never relieved (issue 57) ---------------


@miniagent
async def _both_of_the_input(ctx: InteractionContext) -> None:
    """A fan-out over a live input: the agent's input read by two branches, in order."""
    ctx.reply([_whole.inquire(ctx.message_promises), _each.inquire(ctx.message_promises)])


@pytest.mark.parametrize(
    "way", ["complete messages, outside any agent", "a fan-out over its piped input"]
)
def test_a_diamond_read_by_a_reactive_subscriber_ends_at_once(interval: None, way: str) -> None:
    """The diamond's complete messages awaited with reactivex (``as_message_observable()``,
    ``ops.to_list()``) outside any agent, or a fan-out agent piped after the source (its
    input, the source's replies, read by two branches in order): the loop idle, nothing
    else pending, and it hung for good (the watch never saw it; a plain ``inquire`` of the
    same fan-out is relieved)."""

    async def main() -> tuple[list[str], float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        complete: reactivex.Observable[Message]
        async with MiniAgents(high_water_mark=1):
            if way == "complete messages, outside any agent":
                complete = _diamond.inquire().as_message_observable()
            else:
                complete = reactivex.of("go").pipe(
                    _source.as_operator(), _both_of_the_input.as_operator()
                )
            texts: list[str] = await complete.pipe(ops.map(str), ops.to_list())
        return texts, loop.time() - start

    texts, elapsed = run_with_cut_off(main(), 600)
    assert texts == _DIAMOND_REPLIES
    assert elapsed <= 0.05, f"{elapsed} s of the virtual clock, not at once"
