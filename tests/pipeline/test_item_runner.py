"""A local pipeline given an item runner: each try of an item goes through it, not the chain."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest

from miniagents import InteractionContext, Message, MiniAgents, miniagent
from miniagents.errors import PipelineTimeoutError
from miniagents.messages import MessageTuple
from miniagents.messages.sequence import MessageType
from miniagents.pipeline import ItemResult, Pipeline
from miniagents.pipeline.durability import DurableItems
from miniagents.pipeline.item_runner import ItemRunner
from miniagents.pipeline.local import PipelineSettings, pipeline_settings
from miniagents.testing import virtual_time

inquired: list[str] = []


@miniagent
async def chain_agent(ctx: InteractionContext) -> None:
    inquired.append(str(await ctx.message_promises))
    ctx.reply("from the chain")


def _settings(
    *, retries: int = 0, backoff: float = 0.0, timeout: float | None = None
) -> PipelineSettings:
    _, settings = pipeline_settings(
        chain_agent,
        caller="pipeline",
        max_in_flight=4,
        max_concurrency=2,
        ordered=True,
        retries=retries,
        retry_on=(ConnectionError, TimeoutError),
        backoff=backoff,
        timeout=timeout,
        fail_fast=False,
        overflow="buffer",
        jitter=False,  # (the waits whole: the tests count them)
    )
    return settings


async def _results(
    runner: ItemRunner, items: list[str], settings: PipelineSettings
) -> list[ItemResult[str, Message]]:
    run: Pipeline[str, Message] = Pipeline([chain_agent], items, settings, runner)
    return [result async for result in run]


async def test_every_try_and_retry_goes_through_the_runner_once_it_is_ready() -> None:
    inquired.clear()
    events: list[tuple[str, float, int, int, object]] = []

    async def aready() -> None:
        events.append(("ready", clock.elapsed, -1, 0, None))
        await asyncio.sleep(5.0)  # (e.g. an engine's launch: not part of any try's timeout)

    async def run(index: int, attempt: int, item: MessageType) -> MessageTuple[Message]:
        events.append(("try", clock.elapsed, index, attempt, item))
        if index == 1 and attempt < 3:
            raise ConnectionError(f"try {attempt} of item 1 failed")
        return MessageTuple([Message(text=f"{item} (try {attempt})")])

    with virtual_time() as clock:
        async with MiniAgents():
            results = await _results(
                ItemRunner(run, aready),
                ["a", "b", "c"],
                _settings(retries=2, backoff=1.0, timeout=1.0),
            )
    assert [(result.index, result.ok, result.attempts) for result in results] == [
        (0, True, 1),
        (1, True, 3),
        (2, True, 1),
    ]
    assert [str(result.get()) for result in results] == ["a (try 1)", "b (try 3)", "c (try 1)"]
    assert inquired == []  # the chain itself was never inquired
    assert [event[0] for event in events].count("ready") == 1
    assert events[0][:2] == ("ready", 0.0)
    tries = [event[1:] for event in events[1:]]
    assert all(elapsed >= 5.0 for elapsed, *_ in tries)  # every try after the runner was ready
    assert [(index, attempt, item) for _, index, attempt, item in tries if index == 1] == [
        (1, 1, "b"),
        (1, 2, "b"),
        (1, 3, "b"),
    ]
    # retried after the pipeline's backoff (1 s, then 2 s), the attempt numbers counted
    assert [elapsed for elapsed, index, *_ in tries if index == 1] == [5.0, 6.0, 8.0]
    assert sorted((index, attempt) for _, index, attempt, _ in tries if index != 1) == [
        (0, 1),
        (2, 1),
    ]


async def test_a_runners_try_is_timed_out_cancelled_and_retried_by_the_pipeline() -> None:
    tries: list[tuple[int, float]] = []
    cancelled: list[int] = []

    async def run(index: int, attempt: int, item: MessageType) -> MessageTuple[Message]:
        tries.append((attempt, clock.elapsed))
        if attempt == 1:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(attempt)
                raise
        return MessageTuple([Message(text="done")])

    with virtual_time() as clock:
        async with MiniAgents():
            (result,) = await _results(
                ItemRunner(run), ["x"], _settings(retries=1, backoff=1.0, timeout=2.0)
            )
    assert result.ok
    assert result.attempts == 2
    assert str(result.get()) == "done"
    assert tries == [(1, 0.0), (2, 3.0)]  # timed out at 2 s, retried after 1 s of backoff
    assert cancelled == [1]


async def test_a_try_that_fails_past_its_retries_gives_a_result_holding_the_error() -> None:
    async def run(index: int, attempt: int, item: MessageType) -> MessageTuple[Message]:
        raise TimeoutError(f"attempt {attempt}")

    async with MiniAgents():
        (result,) = await _results(ItemRunner(run), ["x"], _settings(retries=2))
    assert not result.ok
    assert result.attempts == 3
    assert isinstance(result.error, TimeoutError)
    assert str(result.error) == "attempt 3"
    assert not isinstance(result.error, PipelineTimeoutError)


async def test_a_runner_that_cannot_get_ready_ends_the_run_before_any_try() -> None:
    tries: list[int] = []

    async def aready() -> None:
        raise ConnectionRefusedError("the engine cannot be reached")

    async def run(index: int, attempt: int, item: MessageType) -> MessageTuple[Message]:
        tries.append(index)
        return MessageTuple()

    async with MiniAgents():
        with pytest.raises(ConnectionRefusedError, match="cannot be reached"):
            await _results(ItemRunner(run, aready), ["a", "b"], _settings(retries=3))
    assert tries == []


async def test_stop_gives_up_on_what_a_runners_try_started_before_its_code_runs() -> None:
    """``Pipeline.stop()`` stops a runner's tries as the chain's: no agent's code runs after.

    The runner inquires an agent, then plain code on the loop stops the pipeline (queued
    there, as an observable's ``dispose`` is, as ``map_agent`` does) while the agent's code
    is held on an event that the stop sets: its code has not run at the stop, whenever its
    task starts (at its first turn, or at once under eager tasks). The pipeline cancelled
    the item's task alone: the agent, already inquired, ran its code after the stop. The
    try's interactions are given up on now, whoever started them.
    """
    entered: list[str] = []
    stopped_at: list[int] = []
    held = asyncio.Event()

    @miniagent
    async def answer(ctx: InteractionContext) -> None:
        await held.wait()  # (its code runs past here only once the stop has come)
        entered.append(str(await ctx.message_promises))
        ctx.reply("answered")

    def stop() -> None:
        stopped_at.append(len(entered))
        held.set()  # (its code goes on at its next turn, unless the stop below gives it up)
        run_of_items.stop()  # (in the same step: the agent's code runs after it, if at all)

    async def run(index: int, attempt: int, item: MessageType) -> MessageTuple[Message]:
        replies = answer.inquire(item)  # (its task starts at its first turn, or eagerly)
        asyncio.get_running_loop().call_soon(stop)  # plain code, before the agent's code ran
        return await replies

    async def items() -> AsyncIterator[str]:
        # the item comes once the pipeline's start has handed over to the loop: under eager
        # tasks its try would begin inside that start, which does not know its tries yet
        started = asyncio.Event()
        asyncio.get_running_loop().call_soon(started.set)
        await started.wait()
        yield "a"

    async with MiniAgents():
        run_of_items: Pipeline[str, Message] = Pipeline(
            [chain_agent], items(), _settings(), ItemRunner(run)
        )
        assert [result async for result in run_of_items] == []
    assert stopped_at == [0]
    assert entered == []  # the context's exit waited: it never ran


def test_the_durable_layers_items_are_an_item_runner_built_as_before() -> None:
    async def run(index: int, attempt: int, item: MessageType) -> MessageTuple[Message]:
        return MessageTuple()

    async def aready() -> None:
        return None

    durable = DurableItems(run, aready)
    assert isinstance(durable, ItemRunner)
    assert (durable.run, durable.aready, durable.journal) == (run, aready, None)
    assert repr(durable).startswith("DurableItems(run=")
    with pytest.raises(dataclasses.FrozenInstanceError):
        durable.journal = None  # type: ignore[misc]
