"""The deadlock watch acts from the library's own wait-for relations, whatever the loop holds.

A diamond (one reply read by two branches that meet again in order) fills its bounded
buffers so that every producer waits for a consumer that waits for it. The watch sees it the
moment the last of them parks, from who can end each wait (see
``miniagents/promising/_waitfor.py``), not from an idle loop: a pending timer, a timeout, a
pipeline's own tasks or a server change nothing. Each program runs on the virtual clock
unless it says otherwise, so "at once" is exact: no virtual time passes.
"""

from __future__ import annotations

import asyncio
import logging
import tracemalloc
from collections.abc import Iterator

import pytest
import reactivex
from reactivex import operators as ops

from miniagents import InteractionContext, MiniAgents, miniagent, pipeline
from miniagents.errors import DeadlockError
from miniagents.promising.lowlevel import set_deadlock_check_interval
from miniagents.testing.virtual_time import run_with_virtual_time
from tests.fakes.uvloop_runs import on_uvloop


@pytest.fixture(autouse=True)
def interval() -> Iterator[None]:
    former = set_deadlock_check_interval(1.0)
    yield
    set_deadlock_check_interval(former)


@miniagent
async def src(ctx: InteractionContext, rows: int = 200) -> None:
    for i in range(rows):
        await ctx.areply(f"row {i}")


@miniagent
async def leaf(ctx: InteractionContext) -> None:
    async for mp in ctx.message_promises:
        ctx.reply(f"{await mp} seen")


@miniagent
async def report(ctx: InteractionContext, rows: int = 200) -> None:
    """The program of issue 57: one reply split into two per-row agents, replied in order."""
    shared = src.inquire(rows=rows)
    ctx.reply(leaf.inquire(shared))
    ctx.reply(leaf.inquire(shared))


def _expected(rows: int) -> list[str]:
    return [f"row {i} seen" for i in range(rows)] * 2


async def _timed(
    main: asyncio.Future[list[str]] | asyncio.Task[list[str]],
) -> tuple[list[str], float]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    texts = await main
    return texts, loop.time() - start


async def _awaited(rows: int = 200, **limits: int | None) -> list[str]:
    async with MiniAgents(**limits):  # type: ignore[arg-type]
        return [str(message) for message in await report.inquire(rows=rows)]


def test_a_diamond_ends_at_once_with_an_unrelated_timer_pending() -> None:
    async def main() -> tuple[list[str], float]:
        asyncio.get_running_loop().call_later(30, lambda: None)  # a far-off timer, as any app
        return await _timed(asyncio.ensure_future(_awaited()))

    texts, elapsed = run_with_virtual_time(main())
    assert texts == _expected(200)
    assert elapsed == 0.0  # not at the timer (30 s), nor at the watch's own check (1 s)


def test_a_diamond_ends_at_once_inside_a_timeout() -> None:
    async def main() -> tuple[list[str], float]:
        async with asyncio.timeout(60):
            return await _timed(asyncio.ensure_future(_awaited()))

    texts, elapsed = run_with_virtual_time(main())
    assert texts == _expected(200)
    assert elapsed == 0.0


@pytest.mark.parametrize("rows", [2, 65, 129, 1000])
@pytest.mark.parametrize("high_water_mark", [1, 2, 7, 64])
def test_diamonds_of_any_size_and_mark_end_at_once(rows: int, high_water_mark: int) -> None:
    async def main() -> tuple[list[str], float]:
        asyncio.get_running_loop().call_later(30, lambda: None)
        return await _timed(
            asyncio.ensure_future(_awaited(rows=rows, high_water_mark=high_water_mark))
        )

    texts, elapsed = run_with_virtual_time(main())
    assert texts == _expected(rows)
    assert elapsed == 0.0


def test_a_diamond_under_a_pipeline_ends_at_once() -> None:
    """``pipeline`` has tasks of its own that wait on asyncio's events (the loop is never
    idle with only the library's waits), and it hung for good."""

    async def main() -> tuple[list[str], float]:
        async def run() -> list[str]:
            async with MiniAgents():
                results = [result async for result in pipeline(report, ["x"])]
            assert len(results) == 1
            assert results[0].ok
            return [str(message) for message in results[0].get()]

        return await _timed(asyncio.ensure_future(run()))

    texts, elapsed = run_with_virtual_time(main())
    assert texts == _expected(200)
    assert elapsed == 0.0


def test_a_diamond_under_a_pipe_ends_at_once() -> None:
    async def main() -> tuple[list[str], float]:
        async def run() -> list[str]:
            async with MiniAgents():
                future: asyncio.Future[list[object]] = asyncio.ensure_future(
                    reactivex.of("x").pipe(report.as_operator(), ops.to_list())
                )
                return [str(message) for message in await future]

        return await _timed(asyncio.ensure_future(run()))

    texts, elapsed = run_with_virtual_time(main())
    assert texts == _expected(200)
    assert elapsed == 0.0


def test_a_diamond_on_uvloop_ends_without_the_watchs_check() -> None:
    """uvloop hides its timers and callbacks: the graph needs none of them. (The watch's
    own check comes after an hour here, so only the graph can have relieved it.)"""
    set_deadlock_check_interval(3600.0)
    try:
        assert on_uvloop(_awaited) == _expected(200)
    finally:
        set_deadlock_check_interval(1.0)


# -- memory: the relief grows only what the shape needs ---------------------------------------


def _peak(rows: int, **limits: int | None) -> int:
    tracemalloc.start()
    try:
        texts = run_with_virtual_time(_awaited(rows=rows, **limits))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        assert len(texts) == 2 * rows


def test_a_relieved_diamond_keeps_about_what_an_unbounded_one_keeps() -> None:
    """The second branch must see every row after the first has ended, so the shape needs
    the whole source buffered once; relief doubles one stream at a time, so the peak stays
    within a small factor of a run with no bounds at all (not the program's every stream)."""
    rows = 5000
    unbounded = _peak(rows, high_water_mark=None, replay_window=None)
    relieved = _peak(rows, high_water_mark=1)
    assert relieved < 1.6 * unbounded


# -- no relief where nothing is stuck ---------------------------------------------------------


@miniagent
async def counted(ctx: InteractionContext, made: list[int]) -> None:
    for i in range(1000):
        made.append(i)
        await ctx.areply(str(i))


def test_a_producer_held_back_by_a_sleeping_reader_is_not_relieved() -> None:
    async def main() -> tuple[int, int]:
        made: list[int] = []
        async with MiniAgents(high_water_mark=4):
            reader = aiter(counted.inquire(made=made))
            await anext(reader)
            await asyncio.sleep(100)  # the reader is live (it sleeps): the producer waits
            ahead = len(made)
            rest = [message async for message in reader]
        return ahead, len(rest)

    ahead, rest = run_with_virtual_time(main())
    assert ahead <= 2 * 4 + 1
    assert rest == 999


def test_a_reply_held_unread_while_its_holder_sleeps_is_not_relieved() -> None:
    async def main() -> int:
        made: list[int] = []
        async with MiniAgents(high_water_mark=4):
            replies = counted.inquire(made=made)
            await asyncio.sleep(100)
            ahead = len(made)
            assert len(await replies) == 1000
        return ahead

    assert run_with_virtual_time(main()) <= 4 + 1


@miniagent
async def echoed(ctx: InteractionContext) -> None:
    """Reads each input token by token, echoes it, then replies one message of its own."""
    async for promise in ctx.message_promises:
        ctx.reply("".join([token async for token in promise]))
    ctx.reply("own")


@miniagent
async def doubled(ctx: InteractionContext) -> None:
    """Passes one reply on twice (issue 58's shape: a diamond of one stream)."""
    reply = echoed.inquire(ctx.message_promises)
    ctx.reply([reply, reply])


@miniagent(start_asap=False)
async def two_doubled(ctx: InteractionContext) -> None:
    ctx.reply(doubled.inquire(ctx.message_promises))
    ctx.reply(doubled.inquire(ctx.message_promises))


def test_a_wait_stuck_behind_another_relieved_one_is_looked_at_again_at_once() -> None:
    """Two producers stuck in one look, the second only through the first: the first's
    relief did not free the second, which waited for the watch's check (found by the topology
    fuzzer: a second's wait, not a tick, is the promise)."""

    async def main() -> tuple[list[str], float]:
        asyncio.get_running_loop().call_later(30, lambda: None)

        async def awaited() -> list[str]:
            async with MiniAgents(high_water_mark=2):
                replies = two_doubled.inquire(["y", "y", "x", "y"])
                texts: list[str] = await replies.as_message_observable().pipe(
                    ops.map(str), ops.to_list()
                )  # (complete messages, as they complete)
                return texts

        return await _timed(asyncio.ensure_future(awaited()))

    texts, elapsed = run_with_virtual_time(main())
    assert texts == ["y", "y", "x", "y", "own"] * 4
    assert elapsed == 0.0


# -- wait cycles: a DeadlockError, also with timers pending and on uvloop ---------------------


@miniagent(max_concurrency=1)
async def nested(ctx: InteractionContext, depth: int = 0) -> None:
    """Holds its only slot while it waits for a call of itself: a cycle by construction."""
    if depth < 1:
        ctx.reply(await nested.inquire(depth=depth + 1))
    else:
        ctx.reply("leaf")


@miniagent
async def own(ctx: InteractionContext) -> None:
    """Waits for its own replies: a cycle by construction."""
    ctx.reply("first")
    ctx.reply(await own.inquire())  # (another interaction, which waits for its own, too)


@miniagent
async def selfish(ctx: InteractionContext, replies: list[object]) -> None:
    ctx.reply("first")
    await replies[0]  # type: ignore[misc]


async def _await_nested() -> str:
    async with MiniAgents():
        return str(await nested.inquire())


async def _await_selfish() -> object:
    async with MiniAgents():
        holder: list[object] = []
        replies = selfish.inquire(replies=holder)
        holder.append(replies)
        return await replies


@pytest.mark.parametrize("program", [_await_nested, _await_selfish], ids=["slot", "own replies"])
def test_a_wait_cycle_is_a_deadlock_error_with_a_timer_pending(
    program: object, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        loop.call_later(30, lambda: None)
        start = loop.time()
        with pytest.raises(DeadlockError) as info:
            await program()  # type: ignore[operator]
        assert "in a cycle" in str(info.value)
        return loop.time() - start

    with caplog.at_level(logging.ERROR, logger="miniagents"):
        elapsed = run_with_virtual_time(main())
    assert elapsed == pytest.approx(1.0)  # the watch's first check, not the timer's 30 s
    caplog.clear()


def test_a_wait_cycle_is_a_deadlock_error_on_uvloop(caplog: pytest.LogCaptureFixture) -> None:
    set_deadlock_check_interval(0.01)
    try:
        with caplog.at_level(logging.ERROR, logger="miniagents"), pytest.raises(DeadlockError):
            on_uvloop(_await_nested)
    finally:
        set_deadlock_check_interval(1.0)
    caplog.clear()
