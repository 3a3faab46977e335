"""Fan-outs wider than the high-water mark end (issue 26): the backlog never blocks its feeders.

The wait cycle that hung: an aggregator replies with one worker's replies per task; the
flattening of its replies follows the first worker and queues the others (its *backlog*).
The backlog counted in the pressure of the aggregator's replies, and a worker's input pull
waits for room there; with more than HWM workers queued, the first worker waited for room
that only its own end could make. The backlog now paces only the producer of the queued
parts (the aggregator's input pull, ``areply``), never a feeder.

Every program runs on a virtual clock: a hang ends at once as a ``DeadlockError`` (the
deadlock watch), and ``asyncio.wait_for`` bounds it as well. The watch would also relieve
a wait by pressure alone after one idle (virtual) second: these programs must end without
it, so each checks that no virtual time passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.messages import Message
from miniagents.testing.virtual_time import run_with_virtual_time
from tests.fakes.unaided import run_unaided


@miniagent
async def worker(ctx: InteractionContext) -> None:
    async for promise in ctx.message_promises:
        ctx.reply(f"reply to {await promise}")


def _aggregator(tasks: int) -> object:
    @miniagent
    async def aggregator(ctx: InteractionContext) -> None:
        for i in range(tasks):
            ctx.reply(worker.inquire(f"task {i}"))

    return aggregator


async def _read_message_by_message(tasks: int, **limits: int) -> list[str]:
    aggregator = _aggregator(tasks)
    texts: list[str] = []
    start = asyncio.get_running_loop().time()
    async with MiniAgents(**limits):  # type: ignore[arg-type]
        async for promise in aggregator.inquire():  # type: ignore[attr-defined]
            texts.append(str(await promise))
    assert asyncio.get_running_loop().time() == start, "the deadlock watch had to step in"
    return texts


@pytest.mark.parametrize("tasks", [65, 1_000, 10_000])
def test_the_issue_program_ends_with_every_reply_in_order(tasks: int) -> None:
    texts = run_with_virtual_time(asyncio.wait_for(_read_message_by_message(tasks), 3600))
    assert texts == [f"reply to task {i}" for i in range(tasks)]


@pytest.mark.parametrize("high_water_mark", [1, 2, 3])
def test_a_fan_out_past_a_tiny_high_water_mark_ends(high_water_mark: int) -> None:
    tasks = 5 * high_water_mark + 1
    texts = run_with_virtual_time(
        _read_message_by_message(tasks, high_water_mark=high_water_mark, replay_window=2)
    )
    assert texts == [f"reply to task {i}" for i in range(tasks)]


def test_async_iterables_queued_past_the_high_water_mark_end() -> None:
    async def part(i: int) -> AsyncIterator[str]:
        yield f"{i}a"
        yield f"{i}b"

    @miniagent
    async def replier(ctx: InteractionContext) -> None:
        ctx.reply([part(i) for i in range(10)])

    async def main() -> list[str]:
        async with MiniAgents(high_water_mark=2):
            return [str(await promise) async for promise in replier.inquire()]

    texts = run_unaided(main())
    assert texts == [f"{i}{x}" for i in range(10) for x in "ab"]


def test_nested_fan_outs_wider_than_the_high_water_mark_end() -> None:
    @miniagent
    async def middle(ctx: InteractionContext, group: int) -> None:
        for i in range(5):
            ctx.reply(worker.inquire(f"{group}.{i}"))

    @miniagent
    async def top(ctx: InteractionContext) -> None:
        for group in range(5):
            ctx.reply(middle.inquire(group=group))

    async def main() -> list[str]:
        async with MiniAgents(high_water_mark=2):
            return [str(await promise) async for promise in top.inquire()]

    texts = run_unaided(main())
    assert texts == [f"reply to {g}.{i}" for g in range(5) for i in range(5)]


def test_the_backlog_still_paces_an_aggregator_that_reads_its_input() -> None:
    """Memory stays bounded: the aggregator queues no more than about HWM workers ahead."""
    high_water_mark = 4
    started: list[int] = []

    @miniagent
    async def counted_worker(ctx: InteractionContext, number: int) -> None:
        started.append(number)
        ctx.reply(f"done {number}")

    @miniagent
    async def aggregator(ctx: InteractionContext) -> None:
        async for promise in ctx.message_promises:
            message: Message = await promise
            ctx.reply(counted_worker.inquire(number=int(str(message))))

    async def main() -> list[tuple[int, int]]:
        seen: list[tuple[int, int]] = []
        async with MiniAgents(high_water_mark=high_water_mark):
            replies = aggregator.inquire([str(i) for i in range(200)])
            read = 0
            async for promise in replies:
                await promise
                read += 1
                seen.append((read, len(started)))
                await asyncio.sleep(0)  # give the producers every chance to run ahead
        return seen

    seen = run_unaided(main())
    assert len(seen) == 200
    assert max(started_ - read for read, started_ in seen) <= 2 * high_water_mark + 1
