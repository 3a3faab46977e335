"""``pipeline``: one interaction per item, bounded, ordered or not, retried, timed, stoppable."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import gc
import itertools
import pickle
import random
import sys
import threading
import traceback
import weakref
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from contextlib import aclosing
from typing import Any, cast

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.subject import Subject

from miniagents import (
    InteractionContext,
    ItemResult,
    Message,
    MessagePromise,
    MessageSequencePromise,
    MiniAgent,
    MiniAgents,
    StreamedPromise,
    miniagent,
    pipeline,
)
from miniagents.errors import LoopAlreadyRunningError, MessageTypeError, NoActiveContextError
from miniagents.ext.llm.errors import LLMConnectionError, LLMError, LLMTimeoutError
from miniagents.messages import MessageTuple
from miniagents.messages.sequence import MessageType
from miniagents.miniagents.lowlevel import Hook
from miniagents.operators import map_agent
from miniagents.pipeline import (
    PipelineArgumentError,
    PipelineRerunError,
    PipelineTimeoutError,
    durability,
)
from miniagents.pipeline.durability import DurableItems, set_durable_items
from miniagents.pipeline.local import DEFAULT_MAX_BACKOFF
from miniagents.promising.lowlevel import running_tasks
from miniagents.testing import virtual_time
from tests.fakes.eager_tasks import eager_tasks


@miniagent
async def upper(ctx: InteractionContext) -> None:
    """Reply with the input upper-cased."""
    ctx.reply(str(await ctx.message_promises).upper())


@miniagent
async def exclaim(ctx: InteractionContext) -> None:
    """Reply with the input and a mark."""
    ctx.reply(str(await ctx.message_promises) + "!")


class Counting:
    """Items read lazily, counting how many the pipeline has taken."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count = count
        self.fail_at = fail_at
        self.taken = 0

    def __iter__(self) -> Iterator[str]:
        for i in range(self.count):
            if i == self.fail_at:
                raise RuntimeError("the source broke")
            self.taken += 1
            yield f"item {i}"


async def test_a_chain_runs_over_every_item_in_the_input_order() -> None:
    async with MiniAgents():
        results = [r async for r in pipeline([upper, exclaim], Counting(30), max_in_flight=4)]
    assert [r.index for r in results] == list(range(30))
    assert [str(r.get()) for r in results] == [f"ITEM {i}!" for i in range(30)]
    assert all(r.ok and r.attempts == 1 for r in results)


def test_plain_for_runs_in_a_context_of_its_own() -> None:
    results = list(pipeline(upper, [f"x{i}" for i in range(10)], max_concurrency=3))
    assert [str(r.get()) for r in results] == [f"X{i}" for i in range(10)]


async def test_plain_for_inside_an_active_context_is_refused_rather_than_hanging() -> None:
    # (was: the thread's run blocked this loop, so the item, a reply of an agent of this
    # loop, never came, and the program hung for ever)
    async with MiniAgents():
        draft = upper.inquire("draft")
        results = pipeline(exclaim, [draft])
        with pytest.raises(
            LoopAlreadyRunningError, match="async for result in pipeline"
        ) as refused:
            next(iter(results))
        assert "would block the context's event loop" in str(refused.value)
        assert [str(r.get()) async for r in results] == ["DRAFT!"]  # (not claimed: runs on)


async def test_plain_for_in_async_code_outside_of_every_context_runs() -> None:
    results = list(pipeline(upper, ["a", "b"]))  # (as in a notebook's cell: nothing waits)
    assert [str(r.get()) for r in results] == ["A", "B"]


async def test_items_are_read_lazily_and_concurrency_is_bounded() -> None:
    gate = asyncio.Event()
    two_running = asyncio.Event()
    running = 0
    peak = 0

    @miniagent
    async def slow(ctx: InteractionContext) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 2:
            two_running.set()
        await gate.wait()
        running -= 1
        ctx.reply(str(await ctx.message_promises))

    items = Counting(100)
    async with MiniAgents():
        run = pipeline(slow, items, max_in_flight=5, max_concurrency=2, ordered=False)
        async with aclosing(run.__aiter__()) as results:
            first = asyncio.ensure_future(anext(results))
            await two_running.wait()
            assert items.taken == 5
            gate.set()
            rest = [await first] + [r async for r in results]
    assert peak == 2
    assert sorted(r.index for r in rest) == list(range(100))


@pytest.mark.parametrize(
    ("kwargs", "at_once"),
    [
        ({"max_concurrency": 100}, 100),  # (the batch mode's docs: max_concurrency=1_000 alone)
        ({}, 64),
        ({"max_in_flight": 30}, 30),
        ({"max_concurrency": 40, "max_in_flight": 100}, 40),  # (both given: both hold)
    ],
)
async def test_a_max_concurrency_above_64_runs_that_many_items_at_once(
    kwargs: dict[str, int], at_once: int
) -> None:
    # max_in_flight was 64 by default, whatever max_concurrency said: every item that runs is
    # in flight, so max_concurrency=100 alone ran 64 items at once (and a batch held 64 calls)
    gate = asyncio.Event()
    all_running = asyncio.Event()
    running = 0
    peak = 0

    @miniagent
    async def waits(ctx: InteractionContext) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == at_once:
            all_running.set()
        await gate.wait()
        running -= 1
        ctx.reply(str(await ctx.message_promises))

    with virtual_time():  # capped below at_once, the wait is a TimeoutError at once
        async with MiniAgents():
            run = pipeline(waits, Counting(150), **kwargs)  # type: ignore[arg-type]
            async with aclosing(run.__aiter__()) as results:
                first = asyncio.ensure_future(anext(results))
                await asyncio.wait_for(all_running.wait(), 60)
                gate.set()
                handed = [await first] + [r async for r in results]
    assert peak == at_once
    assert [r.index for r in handed] == list(range(150))


async def test_unordered_results_come_as_they_complete() -> None:
    releases = {i: asyncio.Event() for i in range(3)}

    @miniagent
    async def waits(ctx: InteractionContext) -> None:
        text = str(await ctx.message_promises)
        await releases[int(text)].wait()
        ctx.reply(text)

    run = pipeline(waits, ["0", "1", "2"], ordered=False)
    async with MiniAgents(), aclosing(run.__aiter__()) as it:
        releases[2].set()
        assert (await anext(it)).index == 2
        releases[0].set()
        assert (await anext(it)).index == 0
        releases[1].set()
        assert (await anext(it)).index == 1


async def test_a_failed_item_holds_its_error_and_the_others_go_on() -> None:
    @miniagent
    async def picky(ctx: InteractionContext) -> None:
        text = str(await ctx.message_promises)
        if text == "bad":
            raise ValueError("bad item")
        ctx.reply(text)

    async with MiniAgents():
        results = [r async for r in pipeline(picky, ["a", "bad", "c"])]
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, ValueError)
    with pytest.raises(ValueError, match="bad item"):
        results[1].get()
    assert str(results[2].get()) == "c"


def _frames(error: BaseException) -> list[str]:
    return [frame.name for frame in traceback.extract_tb(error.__traceback__)]


async def test_get_raises_the_error_with_the_same_traceback_however_often_it_is_called() -> None:
    # it raised the same exception object again: each call added its frames to the error's
    # traceback, which grew without end (and kept every caller's frame alive)
    @miniagent
    async def refuses(ctx: InteractionContext) -> None:
        try:
            raise KeyError("key")
        except KeyError as error:
            raise ValueError("bad item") from error

    async with MiniAgents():
        [result] = [r async for r in pipeline(refuses, ["x"])]
    assert result.error is not None
    made = _frames(result.error)
    assert "refuses" in made
    raised: list[list[str]] = []
    for _ in range(50):
        with pytest.raises(ValueError, match="bad item") as caught:
            result.get()
        raised.append(_frames(caught.value))
    here = test_get_raises_the_error_with_the_same_traceback_however_often_it_is_called
    once = [here.__name__, "get", *made]  # this test's frame and get's, then the agent's
    assert raised == [once] * 50
    assert isinstance(caught.value.__cause__, KeyError)  # `raise ... from` is kept


def test_a_result_with_an_error_pickles_and_raises_it_after() -> None:
    try:
        raise ValueError("bad item")
    except ValueError as error:
        result: ItemResult[str] = ItemResult(0, "x", error=error)
    copied = pickle.loads(pickle.dumps(result))
    assert isinstance(copied.error, ValueError)
    with pytest.raises(ValueError, match="bad item"):
        copied.get()
    assert isinstance(dataclasses.asdict(result)["error"], ValueError)  # (a deep copy)


async def test_retryable_errors_are_retried_with_backoff() -> None:
    tries = 0

    @miniagent
    async def flaky(ctx: InteractionContext) -> None:
        nonlocal tries
        tries += 1
        if tries < 3:
            raise ConnectionError("try again")
        ctx.reply("fine")

    with virtual_time() as clock:
        async with MiniAgents():
            [result] = [
                r async for r in pipeline(flaky, ["x"], retries=2, backoff=1.0, jitter=False)
            ]
    assert result.ok
    assert result.attempts == 3
    assert clock.elapsed == 1.0 + 2.0  # the backoff doubles


async def test_the_backoff_doubles_up_to_max_backoff_and_stays_there() -> None:
    starts: list[float] = []

    @miniagent
    async def flaky(ctx: InteractionContext) -> None:
        starts.append(asyncio.get_running_loop().time())
        raise ConnectionError("try again")

    with virtual_time():
        async with MiniAgents():
            run = pipeline(flaky, ["x"], retries=6, backoff=1.0, max_backoff=5.0, jitter=False)
            [result] = [r async for r in run]
    assert result.attempts == 7
    between = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert between == pytest.approx([1.0, 2.0, 4.0, 5.0, 5.0, 5.0])  # capped from the 4th


async def test_thirty_retries_wait_at_most_the_default_max_backoff_each() -> None:
    # uncapped, the 30th retry of the default 0.5 s backoff waited 8.5 years (17 in all)
    tries = 0

    @miniagent
    async def flaky(ctx: InteractionContext) -> None:
        nonlocal tries
        tries += 1
        if tries <= 30:
            raise ConnectionError("try again")
        ctx.reply("fine")

    with virtual_time() as clock:
        async with MiniAgents():
            [result] = [r async for r in pipeline(flaky, ["x"], retries=30, jitter=False)]
    assert result.ok
    assert result.attempts == 31
    doubling = 0.5 + 1.0 + 2.0 + 4.0 + 8.0 + 16.0 + 32.0 + 64.0  # then 120 s, the default cap
    assert DEFAULT_MAX_BACKOFF == 120.0
    assert clock.elapsed == pytest.approx(doubling + (30 - 8) * DEFAULT_MAX_BACKOFF)


async def test_more_than_a_thousand_retries_do_not_overflow() -> None:
    # Uncapped, the wait was backoff * 2 ** (attempts - 1), and 2 ** 1024 does not fit in a
    # float whatever it multiplies: the 1,025th retry failed the run with an OverflowError.
    # The smallest backoff there is gets there in little virtual time.
    starts: list[float] = []

    @miniagent
    async def flaky(ctx: InteractionContext) -> None:
        starts.append(asyncio.get_running_loop().time())
        if len(starts) <= 1100:
            raise ConnectionError("try again")
        ctx.reply("fine")

    with virtual_time():
        async with MiniAgents():
            [result] = [
                r async for r in pipeline(flaky, ["x"], retries=1100, backoff=5e-324, jitter=False)
            ]
    assert result.ok
    assert result.attempts == 1101
    waits = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert max(waits) == pytest.approx(DEFAULT_MAX_BACKOFF)
    # 5e-324 is 2 ** -1074: the doubling reaches the cap at the 1,082nd retry
    assert waits[1081:] == pytest.approx([DEFAULT_MAX_BACKOFF] * 19)
    assert waits[1080] == pytest.approx(64.0)


async def _retry_times(items: int, jitter: bool | random.Random) -> list[float]:
    """When each of ``items`` items, all failing at 0 on one rate limit, tried again."""
    retried: list[float] = []
    failed: set[str] = set()

    @miniagent
    async def limited(ctx: InteractionContext) -> None:
        item = str(await ctx.message_promises)
        if item not in failed:
            failed.add(item)
            raise ConnectionError("rate limited")
        retried.append(asyncio.get_running_loop().time())
        ctx.reply("fine")

    with virtual_time() as clock:
        async with MiniAgents():
            run = pipeline(
                limited,
                [str(number) for number in range(items)],
                max_in_flight=items,
                retries=1,
                backoff=8.0,
                jitter=jitter,
            )
            assert all([result.ok async for result in run])
    started = clock.start
    return [when - started for when in retried]


async def test_items_that_failed_together_retry_spread_out_not_in_lock_step() -> None:
    # issue 62, item 10: a thousand items failing on one rate limit all retried at 8 s
    times = await _retry_times(1000, random.Random(2026))
    assert len(times) == 1000
    assert all(0.0 <= when <= 8.0 for when in times)
    per_second = collections.Counter(int(when) for when in times)
    assert sorted(per_second) == list(range(8))  # every second of the 8 has some
    assert max(per_second.values()) < 200  # about 125 each; in lock-step, 1,000 in one
    assert len(set(times)) > 990  # hardly two at the same instant
    again = await _retry_times(1000, random.Random(2026))
    assert again == pytest.approx(times, abs=1e-9)  # a seed repeats them (the clock sums)
    assert set(await _retry_times(50, False)) == {8.0}  # without jitter: all at once


async def test_each_wait_is_drawn_below_its_doubling_capped_ceiling() -> None:
    ceilings: list[float] = []

    class Highest(random.Random):
        def uniform(self, a: float, b: float) -> float:
            ceilings.append(b)
            assert a == 0.0
            return b

    starts: list[float] = []

    @miniagent
    async def flaky(ctx: InteractionContext) -> None:
        starts.append(asyncio.get_running_loop().time())
        raise ConnectionError("try again")

    with virtual_time():
        async with MiniAgents():
            run = pipeline(flaky, ["x"], retries=5, backoff=1.0, max_backoff=5.0, jitter=Highest())
            [result] = [r async for r in run]
    assert result.attempts == 6
    assert ceilings == [1.0, 2.0, 4.0, 5.0, 5.0]
    between = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert between == pytest.approx(ceilings)  # the wait drawn is the wait waited


@pytest.mark.parametrize("error", [LLMConnectionError, LLMTimeoutError])
async def test_an_llm_connection_or_timeout_error_is_retried_by_default(
    error: type[LLMError],
) -> None:
    """They are a ConnectionError and a TimeoutError: the default retry_on takes them."""
    tries = 0

    @miniagent
    async def model(ctx: InteractionContext) -> None:
        nonlocal tries
        tries += 1
        if tries < 2:
            raise error("The model could not be reached.")
        ctx.reply("fine")

    async with MiniAgents():
        [result] = [r async for r in pipeline(model, ["x"], retries=1, backoff=0.0)]
    assert result.ok
    assert result.attempts == 2


async def test_a_non_retryable_error_is_not_retried() -> None:
    @miniagent
    async def broken(ctx: InteractionContext) -> None:
        raise KeyError("no")

    async with MiniAgents():
        [result] = [r async for r in pipeline(broken, ["x"], retries=5, backoff=0.0)]
    assert not result.ok
    assert result.attempts == 1


async def test_fail_fast_raises_the_first_error_and_cancels_the_rest() -> None:
    cancelled = 0

    @miniagent
    async def one_fails(ctx: InteractionContext) -> None:
        nonlocal cancelled
        text = str(await ctx.message_promises)
        if text == "0":
            raise ValueError("first")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled += 1
            raise

    async with MiniAgents():
        with pytest.raises(ValueError, match="first"):
            async for _ in pipeline(one_fails, ["0", "1", "2"], fail_fast=True):
                pass
    assert cancelled == 2


async def test_a_hanging_agent_ends_with_a_typed_timeout() -> None:
    @miniagent
    async def hangs(ctx: InteractionContext) -> None:
        await asyncio.Event().wait()

    with virtual_time() as clock:
        async with MiniAgents():
            [result] = [r async for r in pipeline(hangs, ["x"], timeout=30.0)]
    assert isinstance(result.error, PipelineTimeoutError)
    assert isinstance(result.error, TimeoutError)
    assert "took longer than the pipeline's timeout of 30.0 s" in str(result.error)
    assert clock.elapsed == 30.0


async def test_a_source_that_raises_midway_gives_the_results_before_it_then_its_error() -> None:
    seen: list[int] = []

    async def consume() -> None:
        async for result in pipeline(upper, Counting(10, fail_at=4), max_in_flight=2):
            seen.append(result.index)

    async with MiniAgents():
        with pytest.raises(RuntimeError, match="the source broke"):
            await consume()
    assert seen == [0, 1, 2, 3]


async def test_an_async_iterable_of_items_works() -> None:
    async def texts() -> AsyncIterator[str]:
        for i in range(5):
            yield f"a{i}"

    async with MiniAgents():
        results = [str(r.get()) async for r in pipeline(upper, texts())]
    assert results == [f"A{i}" for i in range(5)]


async def test_stopping_early_cancels_the_items_in_flight() -> None:
    started = 0
    cancelled = 0

    @miniagent
    async def hangs_after_first(ctx: InteractionContext) -> None:
        nonlocal started, cancelled
        text = str(await ctx.message_promises)
        started += 1
        if text != "item 0":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled += 1
                raise
        ctx.reply(text)

    async with MiniAgents():
        async with aclosing(
            pipeline(hangs_after_first, Counting(50), max_in_flight=4).__aiter__()
        ) as it:
            assert (await anext(it)).index == 0
        # closed: the items in flight were cancelled, and their interactions have stopped
        assert cancelled == started - 1 >= 3
        assert asyncio.all_tasks() == {asyncio.current_task()}


def test_plain_for_left_early_stops_the_thread() -> None:
    items = Counting(1000)
    for result in pipeline(upper, items, max_in_flight=3):
        assert isinstance(result, ItemResult)
        break
    # the loop's generator is closed as it is dropped: the thread has ended, few items read
    assert not [t for t in threading.enumerate() if t.name == "miniagents-pipeline"]
    assert items.taken <= 3 + 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_in_flight": 0},
        {"max_concurrency": 0},
        {"max_concurrency": -2},
        {"retries": -1},
        {"timeout": 0},
        {"timeout": "30"},
        {"timeout": float("nan")},
        {"backoff": "1"},
        {"backoff": -0.5},
        {"max_backoff": -1.0},
        {"max_backoff": "60"},
        {"max_backoff": float("nan")},
        {"max_backoff": float("inf")},
        {"jitter": 0.5},
        {"jitter": None},
        {"retry_on": ConnectionError},
        {"retry_on": ("ValueError",)},
        {"retry_on": (ValueError, "x")},
        {"retry_on": None},
        {"total": "10"},
        {"total": -1},
        {"description": 5},
        {"batch": 5},
        {"ordered": "no"},
        {"fail_fast": "yes"},
        {"fail_fast": 1},
        {"progress": "on"},
    ],
)
def test_bad_arguments_are_refused_with_a_clear_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(PipelineArgumentError, match="pipeline\\(\\) needs"):
        pipeline(upper, ["x"], **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "fix"),
    [
        ({"max_concurrency": 0}, "Pass e.g. max_concurrency=8, or leave it out (None) for as "),
        ({"max_concurrency": 0, "max_in_flight": 5}, "Pass e.g. max_concurrency=8, or leave it"),
        ({"max_in_flight": 0}, "Pass e.g. max_in_flight=64, or leave it out (None) for 64"),
        ({"retries": -1}, "Pass e.g. retries=2 (each item tried up to 3 times), or leave it"),
        ({"ordered": "no"}, "Pass True or False, or leave it out for the default."),
        ({"backoff": -1}, "pass e.g. backoff=0.5, or 0 for none."),
    ],
    ids=["concurrency", "concurrency-and-in-flight", "in-flight", "retries", "flag", "backoff"],
)
def test_a_count_flag_or_backoff_refused_says_how_to_give_it(
    kwargs: dict[str, object], fix: str
) -> None:
    # (was: "pipeline() needs max_concurrency to be a whole number of at least 1; got 0."
    # and no more: no sentence said what to give)
    makers: dict[str, Callable[[], object]] = {
        "pipeline": lambda: pipeline(upper, ["x"], **kwargs),  # type: ignore[arg-type]
        "map_agent": lambda: map_agent(upper, **kwargs),  # type: ignore[arg-type]
    }
    for make, made in makers.items():
        with pytest.raises(PipelineArgumentError) as refused:
            made()
        said = str(refused.value)
        assert said.startswith(f"{make}() needs ")
        assert fix in said


@pytest.mark.parametrize("make", ["pipeline", "map_agent"])
def test_a_max_concurrency_above_the_max_in_flight_given_is_refused(make: str) -> None:
    # (was: taken, and bounded by max_in_flight: every item that runs is in flight, so
    # max_concurrency=100 with max_in_flight=40 ran 40 items at once, and said nothing)
    if make == "pipeline":
        with pytest.raises(PipelineArgumentError) as refused:
            pipeline(upper, ["x"], max_concurrency=100, max_in_flight=40)
    else:
        with pytest.raises(PipelineArgumentError) as refused:
            map_agent(upper, max_concurrency=100, max_in_flight=40)
    assert str(refused.value) == (
        f"{make}() needs max_concurrency to be at most max_in_flight (40); got 100. Every "
        "item that runs is in flight, so at most 40 would run at once: raise max_in_flight "
        "to at least 100 (or leave it out: it follows max_concurrency), or lower "
        "max_concurrency to 40."
    )
    assert refused.value.parameter == "max_concurrency"
    pipeline(upper, ["x"], max_concurrency=40, max_in_flight=40)  # (equal: taken)


def test_a_description_that_is_not_a_str_is_refused_naming_it_as_the_other_arguments() -> None:
    with pytest.raises(PipelineArgumentError) as refused:
        pipeline(upper, ["x"], description=5)  # type: ignore[arg-type]
    assert str(refused.value) == (
        "pipeline() needs description to be a str (the text before the progress bar), or None "
        "for the last agent's alias; got 5."
    )
    assert refused.value.parameter == "description"  # (was: "", unlike every other argument)


def test_no_agents_is_refused() -> None:
    with pytest.raises(PipelineArgumentError, match="at least one agent"):
        pipeline([], ["x"])
    with pytest.raises(PipelineArgumentError, match=r"at least one agent.*got None"):
        pipeline(None, ["x"])  # type: ignore[arg-type]


def test_a_plain_function_is_refused_with_the_way_to_make_it_an_agent() -> None:
    async def summarize(ctx: InteractionContext) -> None:
        ctx.reply(str(await ctx.message_promises))

    hint = "summarize is a function, not an agent: decorate it with @miniagent"
    with pytest.raises(PipelineArgumentError, match=hint):
        pipeline(summarize, ["x"])  # type: ignore[arg-type]
    with pytest.raises(PipelineArgumentError, match=hint):
        pipeline([upper, summarize], ["x"])  # type: ignore[list-item]


@pytest.mark.parametrize("chain", ["one", "list"])
def test_the_items_given_first_are_refused_naming_the_order(chain: str) -> None:
    # a slip: pipeline(items, agent); on main the error said the items were no agents
    agents: object = upper if chain == "one" else [upper, upper]
    with pytest.raises(PipelineArgumentError) as raised:
        pipeline(cast(Any, ["x"]), cast(Any, agents))
    assert str(raised.value) == (
        "pipeline() takes the agents first, then the items, but got the items (['x']) first "
        "and the agents second: swap them, pipeline(agents, items)."
    )


@pytest.mark.parametrize(("items", "shown"), [(5, r"an int \(5\)"), (None, r"a NoneType \(None\)")])
def test_items_that_are_not_iterable_are_refused_at_once(items: object, shown: str) -> None:
    with pytest.raises(
        PipelineArgumentError, match=rf"needs its items as an iterable.*; got {shown}\."
    ):
        pipeline(upper, items)  # type: ignore[arg-type]


def test_a_string_as_the_items_is_refused_not_run_a_character_at_a_time() -> None:
    # (a str is an Iterable[str]: mypy lets it pass, and each character was an item)
    with pytest.raises(PipelineArgumentError, match=r"not the string 'one document' .*\['one"):
        pipeline(upper, "one document")


@pytest.mark.parametrize(
    ("items", "index", "shown"),
    [
        (range(1000), 0, "an int (0)"),
        (["a", "b", 5, "c"], 2, "an int (5)"),
        ([b"bytes"], 0, "a bytes (b'bytes')"),
        ([["a", 3.5]], 0, "a list (['a', 3.5]), holding a float (3.5)"),
    ],
    ids=["range", "a-later-int", "bytes", "a-list-holding-a-float"],
)
@pytest.mark.parametrize("loop", ["async for", "for"])
async def test_an_item_that_cannot_be_an_agents_input_is_refused_naming_its_type(
    items: object, index: int, shown: str, loop: str
) -> None:
    # issue 58, item 9: every item ended with ok == False (a MessageTypeError each)
    started: list[object] = []

    @miniagent
    async def counting(ctx: InteractionContext) -> None:
        started.append(ctx.message_promises)
        ctx.reply(ctx.message_promises)

    run = pipeline(counting, cast("list[str]", items))  # (what mypy refuses: the user's code)

    async def read_all() -> None:
        if loop == "for":
            await asyncio.to_thread(list, run)
        else:
            async with MiniAgents():
                [_ async for _ in run]

    with pytest.raises(MessageTypeError) as raised:
        await read_all()
    assert str(raised.value).startswith(
        f"pipeline() got item {index}, {shown}, which cannot be an agent's input: each item is "
        "one interaction's input, a MessageType (str, dict, Message, a pydantic model, "
        "MessagePromise, MessageSequencePromise, or an (async) iterable or Observable of "
        "these). Turn each item into one first, e.g. "
    )
    assert len(started) <= index  # nothing started for it, nor after it


@pytest.mark.parametrize("ordered", [True, False])
async def test_a_bad_item_takes_its_place_after_the_results_before_it_even_in_flight(
    ordered: bool,
) -> None:
    # the error ended the run at once: the results of the items before it, finished or in
    # flight, were lost
    gate = asyncio.Event()
    started: list[str] = []

    @miniagent
    async def waits_on_b(ctx: InteractionContext) -> None:
        text = str(await ctx.message_promises)
        started.append(text)
        if text == "b":
            await gate.wait()  # in flight while the bad item is read
        ctx.reply(text.upper())

    items = cast("list[str]", ["a", "b", "c", 5, "d"])
    seen: list[str] = []

    async def consume() -> None:
        async for result in pipeline(waits_on_b, items, ordered=ordered):
            seen.append(str(result.get()))
            gate.set()  # (b ends once a result before the error is out)

    async with MiniAgents():
        with pytest.raises(MessageTypeError, match=r"got item 3, an int \(5\)"):
            await consume()
        assert not [task for task in running_tasks() if not task.done()]
    assert (seen if ordered else sorted(seen)) == ["A", "B", "C"]
    assert "d" not in started  # nothing after it starts


@pytest.mark.parametrize("ordered", [True, False])
async def test_a_bad_item_deep_in_a_long_run_loses_no_result_before_it(ordered: bool) -> None:
    items = cast("list[str]", [f"m{n}" for n in range(3_000)])
    items[2_500] = cast("str", 2_500)
    seen: list[int] = []

    async def consume() -> None:
        async for result in pipeline(upper, items, ordered=ordered, max_in_flight=64):
            assert result.ok
            seen.append(result.index)

    async with MiniAgents():
        with pytest.raises(MessageTypeError, match=r"got item 2500, an int \(2500\)"):
            await consume()
        assert not [task for task in running_tasks() if not task.done()]
    assert (seen if ordered else sorted(seen)) == list(range(2_500))


async def test_every_kind_of_input_is_an_item_none_included() -> None:
    async def streamed() -> AsyncIterator[str]:
        yield "streamed"

    items: list[MessageType | None] = [
        "text",
        {"text": "a dict"},
        Message(text="a message"),
        ["a", ("list", "of"), "texts"],
        streamed(),
        reactivex.of("observed"),
        (text for text in ["generated"]),
        None,  # (no input)
    ]
    async with MiniAgents():
        results = [result async for result in pipeline(upper, cast("list[MessageType]", items))]
    assert all(result.ok for result in results), [result.error for result in results]
    assert [str(result.get()).split("\n\n") for result in results] == [
        ["TEXT"],
        ["A DICT"],
        ["A MESSAGE"],
        ["A", "LIST", "OF", "TEXTS"],
        ["STREAMED"],
        ["OBSERVED"],
        ["GENERATED"],
        [""],
    ]


async def test_a_pipeline_runs_once() -> None:
    run = pipeline(upper, ["x"])
    async with MiniAgents():
        [_ async for _ in run]
        with pytest.raises(PipelineRerunError):
            [_ async for _ in run]


def test_ray_pipeline_gives_the_same_item_results() -> None:
    from miniagents.ext.ray import ItemResult as RayItemResult

    assert RayItemResult is ItemResult


async def test_an_observable_of_items_works() -> None:
    source: Observable[str] = reactivex.from_iterable([f"o{i}" for i in range(5)])
    async with MiniAgents():
        results = [str(r.get()) async for r in pipeline(upper, source, max_in_flight=2)]
    assert results == [f"O{i}" for i in range(5)]


async def test_a_hot_observable_is_subscribed_to_as_the_iteration_starts() -> None:
    subject: Subject[str] = Subject()
    async with MiniAgents(), aclosing(pipeline(upper, subject).__aiter__()) as it:
        first = asyncio.ensure_future(anext(it))
        await asyncio.sleep(0)  # the iteration has started (and waits for a result)
        for i in range(3):
            subject.on_next(f"h{i}")
        subject.on_completed()
        results = [await first] + [r async for r in it]
    assert [str(r.get()) for r in results] == ["H0", "H1", "H2"]


async def test_an_agents_own_timeout_error_is_not_the_pipelines() -> None:
    @miniagent
    async def times_out(ctx: InteractionContext) -> None:
        raise TimeoutError("the agent's own")

    async with MiniAgents():
        [result] = [r async for r in pipeline(times_out, ["x"], timeout=60.0)]
    assert type(result.error) is TimeoutError


async def test_a_timed_out_item_is_retried_as_a_timeout_error() -> None:
    tries = 0

    @miniagent
    async def hangs_once(ctx: InteractionContext) -> None:
        nonlocal tries
        tries += 1
        if tries == 1:
            await asyncio.Event().wait()
        ctx.reply("fine")

    with virtual_time() as clock:
        async with MiniAgents():
            run = pipeline(hangs_once, ["x"], timeout=30.0, retries=1, backoff=0.5, jitter=False)
            [result] = [r async for r in run]
    assert (str(result.get()), result.attempts) == ("fine", 2)
    assert clock.elapsed == 30.5


async def test_async_for_outside_a_context_fails_at_once() -> None:
    run = pipeline(upper, ["x"])
    with pytest.raises(NoActiveContextError, match="No MiniAgents context is active"):
        await anext(aiter(run))


@pytest.mark.parametrize("fail_fast", [False, True])
async def test_an_ordered_pipeline_held_back_by_its_first_item_waits_without_spinning(
    monkeypatch: pytest.MonkeyPatch, fail_fast: bool
) -> None:
    first_may_end = asyncio.Event()

    @miniagent
    async def slow_first(ctx: InteractionContext) -> None:
        text = str(await ctx.message_promises)
        if text == "item 0":
            await first_may_end.wait()
        ctx.reply(text)

    waits = 0
    real_wait = asyncio.wait

    async def counted_wait(*args: object, **kwargs: object) -> object:
        nonlocal waits
        waits += 1
        return await real_wait(*args, **kwargs)  # type: ignore[arg-type]

    async def release_later() -> None:
        for _ in range(500):  # many loop turns while the other items have ended
            await asyncio.sleep(0)
        first_may_end.set()

    monkeypatch.setattr(asyncio, "wait", counted_wait)
    async with MiniAgents():
        releaser = asyncio.ensure_future(release_later())
        results = [
            r.index
            async for r in pipeline(slow_first, Counting(10), max_in_flight=10, fail_fast=fail_fast)
        ]
        await releaser
    assert results == list(range(10))
    # one wait per item at most (ended items held back for the order are not waited on);
    # the busy loop this guards against waited once per loop turn, hundreds of times
    assert waits <= 12


# -- a source that waits, and the run's bookkeeping ---------------------------------------


async def test_a_result_is_handed_out_while_the_source_waits_for_the_next_item() -> None:
    # a crawler: the source yields the next item only once the consumer has a result
    found: asyncio.Queue[str] = asyncio.Queue()
    found.put_nowait("seed")

    async def frontier() -> AsyncIterator[str]:
        for _ in range(3):
            yield await found.get()

    texts: list[str] = []
    with virtual_time():  # a hang is a TimeoutError at once, not a stuck test
        async with MiniAgents(), asyncio.timeout(60):
            async for result in pipeline(upper, frontier()):
                texts.append(str(result.get()))
                found.put_nowait(f"after {result.index}")
    assert texts == ["SEED", "AFTER 0", "AFTER 1"]


@pytest.mark.parametrize("ordered", [True, False])
async def test_handing_out_a_result_does_not_revisit_every_item_in_flight(
    monkeypatch: pytest.MonkeyPatch, ordered: bool
) -> None:
    # items end one at a time while many are in flight: the run must not look at (or wait
    # on) all of them for each result, which made a large max_in_flight quadratic
    @miniagent
    async def staggered(ctx: InteractionContext) -> None:
        text = str(await ctx.message_promises)
        await asyncio.sleep(int(text.split()[1]) * 7 % 50)
        ctx.reply(text)

    watched = 0
    real_wait = asyncio.wait

    async def counted_wait(
        tasks: Collection[asyncio.Future[object]],
        timeout: float | None = None,
        return_when: str = asyncio.ALL_COMPLETED,
    ) -> tuple[set[asyncio.Future[object]], set[asyncio.Future[object]]]:
        nonlocal watched
        watched += len(tasks)
        return await real_wait(tasks, timeout=timeout, return_when=return_when)

    monkeypatch.setattr(asyncio, "wait", counted_wait)
    with virtual_time():
        async with MiniAgents():
            run = pipeline(staggered, Counting(400), max_in_flight=200, ordered=ordered)
            indexes = [r.index async for r in run]
    assert sorted(indexes) == list(range(400))
    assert watched <= 3 * 400  # a few per item, not the 200 in flight per item (~40,000)


# -- stopping early: the source is closed and let go of -----------------------------------


async def test_a_pipeline_stopped_early_closes_its_async_generator_source() -> None:
    events: list[str] = []

    async def texts() -> AsyncIterator[str]:
        try:
            for i in range(1000):
                yield f"item {i}"
        finally:
            events.append("source closed")

    async with MiniAgents():
        async with aclosing(pipeline(upper, texts(), max_in_flight=4).__aiter__()) as it:
            assert (await anext(it)).index == 0
        events.append("pipeline closed")
    assert events == ["source closed", "pipeline closed"]


def test_a_pipeline_stopped_early_closes_its_generator_source() -> None:
    events: list[str] = []

    def texts() -> Iterator[str]:
        try:
            for i in range(1000):
                yield f"item {i}"
        finally:
            events.append("source closed")

    source = texts()  # held by the caller: only the pipeline can close it in time
    for _ in pipeline(upper, source, max_in_flight=4):
        break
    events.append("pipeline closed")
    assert events == ["source closed", "pipeline closed"]


async def test_a_caller_cancelled_while_its_stopped_pipeline_cleans_up_still_exits() -> None:
    # the caller stops reading (its run then cancels its reader, which closes the source,
    # and waits for it), and is cancelled while the source still cleans up (the sync
    # ``for ... break`` does this from its thread): the run ends once the source has, and
    # the context exits (it waited for the run forever before)
    cleaning = asyncio.Event()
    release = asyncio.Event()

    async def texts() -> AsyncIterator[str]:
        try:
            yield "first"
            await asyncio.Event().wait()
            yield "never"
        finally:
            cleaning.set()
            await release.wait()  # its clean-up takes a while

    async def caller() -> str:
        async with MiniAgents():
            try:
                async with aclosing(pipeline(upper, texts()).__aiter__()) as run:
                    async for _ in run:
                        break
            except asyncio.CancelledError:  # (as the sync iteration's thread does)
                return "cancelled as the run stopped"
        return "not cancelled"

    task = asyncio.ensure_future(caller())
    await cleaning.wait()
    task.cancel()
    release.set()
    assert await task == "cancelled as the run stopped"


async def test_a_pipeline_stopped_early_unsubscribes_from_a_hot_observable() -> None:
    emitted = 0
    disposed = False

    def subscribe(observer: abc.ObserverBase[str], scheduler: object = None) -> Disposable:
        loop = asyncio.get_running_loop()
        timer: list[asyncio.TimerHandle] = []

        def tick() -> None:
            nonlocal emitted
            observer.on_next(f"item {emitted}")
            emitted += 1
            timer[:] = [loop.call_later(1.0, tick)]

        def dispose() -> None:
            nonlocal disposed
            disposed = True
            timer[0].cancel()

        timer.append(loop.call_later(1.0, tick))
        return Disposable(dispose)

    source: Observable[str] = Observable(subscribe)
    with virtual_time():
        async with MiniAgents():
            async with aclosing(pipeline(upper, source, max_in_flight=2).__aiter__()) as it:
                assert (await anext(it)).index == 0
            assert disposed
            emitted_when_closed = emitted
            await asyncio.sleep(100)
    assert emitted == emitted_when_closed  # nothing ticks on after the run


async def test_a_source_whose_clean_up_fails_as_the_pipeline_stops_early_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def texts() -> AsyncIterator[str]:
        try:
            for i in range(1000):
                yield f"item {i}"
        finally:
            raise OSError("the file would not close")

    async with MiniAgents(), aclosing(pipeline(upper, texts(), max_in_flight=4).__aiter__()) as it:
        assert (await anext(it)).index == 0
    [record] = [r for r in caplog.records if r.name == "miniagents"]
    assert "The items of a pipeline, closed as it stopped," in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], OSError)
    caplog.clear()  # (heard: not a lost error)


async def test_a_pipeline_stopped_early_gives_up_the_agent_replies_it_read() -> None:
    stopped: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @miniagent
    async def numbers(ctx: InteractionContext) -> None:
        try:
            for i in range(100_000):
                await ctx.areply(str(i))
        except asyncio.CancelledError:
            stopped.set_result("cancelled")
            raise
        stopped.set_result("ran to its end")

    async with MiniAgents():
        async with aclosing(pipeline(upper, numbers.inquire(), max_in_flight=4).__aiter__()) as it:
            assert (await anext(it)).index == 0
        assert await stopped == "cancelled"


async def _nothing(pieces: tuple[str, ...]) -> None:
    return None


@pytest.mark.parametrize("given", ["stream", "its observable"])
async def test_a_pipeline_stopped_early_gives_up_a_hot_stream_nobody_else_reads(given: str) -> None:
    # a stream over a hot source, given up on by the run as it stopped, kept its subscription
    subject: Subject[str] = Subject()
    stream: StreamedPromise[str, None] = StreamedPromise(subject, resolver=_nothing)
    stream.start()  # subscribed now
    items = stream if given == "stream" else stream.as_observable()
    subject.on_next("a")
    async with MiniAgents():
        async with aclosing(pipeline(upper, items, max_in_flight=2).__aiter__()) as it:
            assert (await anext(it)).index == 0
            assert len(subject.observers) == 1
        assert not subject.observers
    assert stream.done


async def test_a_pipeline_stopped_early_leaves_an_observed_stream_to_its_other_readers() -> None:
    go_on = asyncio.Event()

    @miniagent
    async def numbers(ctx: InteractionContext) -> None:
        for i in range(10):
            if i == 5:
                await go_on.wait()  # (still running when the pipeline stops)
            await ctx.areply(str(i))

    async with MiniAgents():
        replies = numbers.inquire()
        whole = asyncio.ensure_future(replies.aresolve_messages())  # another reader
        run = pipeline(upper, replies.as_observable(), max_in_flight=2)
        async with aclosing(run.__aiter__()) as it:
            assert (await anext(it)).index == 0
        go_on.set()
        # the pipeline let go of the replies it observed: they go on for the other reader
        assert [str(message) for message in await whole] == [str(i) for i in range(10)]


async def test_an_item_failing_as_the_pipeline_stops_is_not_logged_as_a_lost_error() -> None:
    # (the autouse no_lost_errors fixture fails the test on the log)
    fail_now = asyncio.Event()

    @miniagent
    async def fails_on_b(ctx: InteractionContext) -> None:
        text = str(await ctx.message_promises)
        if text == "b":
            await fail_now.wait()
            raise ValueError("b failed")
        ctx.reply(text)

    async with MiniAgents(), aclosing(pipeline(fails_on_b, ["a", "b"]).__aiter__()) as it:
        assert (await anext(it)).index == 0
        fail_now.set()  # b fails as the consumer stops: nobody wants its result any more


async def test_a_retry_starts_once_the_timed_out_try_has_stopped() -> None:
    events: list[tuple[str, float]] = []

    @miniagent
    async def hangs(ctx: InteractionContext) -> None:
        await ctx.message_promises
        events.append(("start", clock.elapsed))
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.sleep(3.0))  # a clean-up that takes a while
            events.append(("stopped", clock.elapsed))
            raise

    with virtual_time() as clock:
        async with MiniAgents():
            run = pipeline(hangs, ["x"], timeout=10.0, retries=1, backoff=0.0, max_concurrency=1)
            [result] = [r async for r in run]
    assert isinstance(result.error, PipelineTimeoutError)
    # never two tries of the item at once (max_concurrency=1): the retry waits for the clean-up
    assert events == [("start", 0.0), ("stopped", 13.0), ("start", 13.0), ("stopped", 26.0)]


# -- the context's exit waits until the run has stopped (issue 58, item 5) ---------------


class Boom(Exception):
    """An error of the test's own."""


class EndlessRun:
    """An endless source and an agent whose items (all but the first) never end."""

    def __init__(self) -> None:
        self.source_closed = False
        self.running = 0

    async def items(self) -> AsyncIterator[str]:
        try:
            for i in itertools.count():
                yield f"item {i}"
        finally:
            self.source_closed = True

    def agent(self) -> MiniAgent[[]]:
        @miniagent
        async def stuck_after_first(ctx: InteractionContext) -> None:
            text = str(await ctx.message_promises)
            if text != "item 0":
                self.running += 1
                try:
                    await asyncio.Event().wait()
                finally:
                    self.running -= 1
            ctx.reply(text)

        return stuck_after_first


def others() -> set[asyncio.Task[object]]:
    """The tasks alive besides the test's own."""
    return asyncio.all_tasks() - {asyncio.current_task()}


async def test_leaving_the_context_after_a_break_leaves_no_task_of_the_pipeline() -> None:
    # two were left: Pipeline._one (cancelling) and the generator's aclose
    run = EndlessRun()
    with virtual_time():  # a hang is a TimeoutError at once, not a stuck test
        async with asyncio.timeout(60), MiniAgents():
            async for result in pipeline(run.agent(), run.items(), max_concurrency=4):
                assert result.index == 0
                break
        assert others() == set()  # right after the exit
    assert run.source_closed
    assert run.running == 0


async def test_leaving_the_context_closes_a_pipeline_still_held_but_not_read() -> None:
    run = EndlessRun()
    with virtual_time():
        async with asyncio.timeout(60), MiniAgents():
            results = aiter(pipeline(run.agent(), run.items(), max_concurrency=4))
            assert (await anext(results)).index == 0
            await asyncio.sleep(1)  # (the items in flight are stuck)
            assert run.running == 4
        assert others() == set()
    assert run.source_closed
    assert run.running == 0
    with pytest.raises(StopAsyncIteration):  # closed
        await anext(results)


async def test_leaving_the_context_after_an_error_leaves_no_task_of_the_pipeline() -> None:
    run = EndlessRun()

    async def fail_in_the_block() -> None:
        async with asyncio.timeout(60), MiniAgents():
            results = aiter(pipeline(run.agent(), run.items(), max_concurrency=4))
            assert (await anext(results)).index == 0
            await asyncio.sleep(1)
            raise Boom("the block failed")

    with virtual_time(), pytest.raises(Boom):
        await fail_in_the_block()
    assert others() == set()
    assert run.source_closed
    assert run.running == 0


async def test_leaving_the_context_waits_for_a_pipeline_another_task_reads() -> None:
    release = asyncio.Event()

    @miniagent
    async def waits(ctx: InteractionContext) -> None:
        await release.wait()
        ctx.reply(str(await ctx.message_promises))

    got: list[str] = []

    async def read() -> None:
        async for result in pipeline(waits, ["a", "b"]):
            got.append(str(result.get()))

    async def release_later() -> None:
        await asyncio.sleep(5)
        release.set()

    with virtual_time():
        async with asyncio.timeout(60):
            async with MiniAgents():
                reader = asyncio.ensure_future(read())  # (not a task of the context)
                releaser = asyncio.ensure_future(release_later())
                await asyncio.sleep(0.1)
            assert got == ["a", "b"]  # the exit waited for the run
            await reader
            await releaser


# -- memory --------------------------------------------------------------------------------


Feed = Observable[MessagePromise]


@pytest.mark.parametrize(
    ("source", "ordered"),
    [
        ("generator", True),
        ("async generator", False),
        ("agent replies", True),
        ("observable", False),
    ],
)
async def test_memory_stays_flat_whatever_feeds_the_pipeline(source: str, ordered: bool) -> None:
    # (allocated blocks, sampled as the results are read: keeping anything per item, an
    # ItemResult, a task, its replies, costs tens of blocks per item; a run in flight costs
    # the same at any point)
    count = 3000

    def texts() -> Iterator[str]:
        for i in range(count):
            yield f"item {i:07d}"

    async def atexts() -> AsyncIterator[str]:
        for i in range(count):
            yield f"item {i:07d}"

    @miniagent
    async def produce(ctx: InteractionContext) -> None:
        for i in range(count):
            await ctx.areply(f"item {i:07d}")

    async with MiniAgents():
        items: (
            Iterator[str] | AsyncIterator[str] | MessageSequencePromise | Observable[MessagePromise]
        )
        if source == "generator":
            items = texts()
        elif source == "async generator":
            items = atexts()
        elif source == "agent replies":
            items = produce.inquire()
        else:
            items = MessageSequencePromise(atexts()).as_observable()
        read = 0
        base = growth = 0
        async for result in pipeline(upper, items, ordered=ordered, progress=False):
            assert result.ok
            read += 1
            if read == 500:
                gc.collect()
                base = sys.getallocatedblocks()
            elif read > 500 and read % 100 == 0:
                growth = max(growth, sys.getallocatedblocks() - base)
    assert read == count
    assert growth < 2 * (count - 500)  # flat: under two blocks per item read after the base


async def test_a_run_stopped_while_a_timed_out_try_cleans_up_does_not_retry_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (a durable try, stood in for here, may take a while to stop once it is cancelled)
    tries: list[tuple[int, float]] = []

    async def run_try(index: int, attempt: int, item: MessageType) -> MessageTuple[Message]:
        tries.append((attempt, clock.elapsed))
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.sleep(5.0))  # the try's clean-up
            raise
        return MessageTuple()

    async def ready() -> None:
        return None

    # (DBOS's factory, if imported, comes back after)
    monkeypatch.setattr(durability, "_factory", Hook("the durable items of this test"))
    set_durable_items(lambda pipeline_id, chain: DurableItems(run_try, ready))
    with virtual_time() as clock:
        async with MiniAgents():
            run = pipeline(upper, ["x"], durable=True, timeout=10.0, retries=3, backoff=1.0)
            first = asyncio.ensure_future(anext(aiter(run)))
            await asyncio.sleep(12.0)  # the try timed out at 10; its clean-up ends at 15
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            stopped_at = clock.elapsed
    assert tries == [(1, 0.0)]  # no retry started after the run stopped
    assert stopped_at == 15.0  # once the try's clean-up was done, not after three retries


async def test_no_item_starts_after_the_run_stopped_even_if_the_source_yields_on() -> None:
    started: list[str] = []

    @miniagent
    async def records(ctx: InteractionContext) -> None:
        started.append(str(await ctx.message_promises))

    async def stubborn() -> AsyncIterator[str]:
        yield "a"
        with contextlib.suppress(asyncio.CancelledError):  # (swallows the reader's cancel)
            await asyncio.Event().wait()
        yield "late"

    async with MiniAgents(), aclosing(pipeline(records, stubborn()).__aiter__()) as it:
        assert (await anext(it)).index == 0
    assert started == ["a"]


class _RecordedBatching:
    """A batch mode that records how its one run ended (nothing is batched)."""

    def __init__(self) -> None:
        self.endings: list[str] = []

    def start(self, name: str, journal: object) -> _RecordedBatching:
        return self

    async def aopen(self) -> None:
        pass

    def activate(self) -> None:
        pass

    def item(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()

    async def aclose(self, ending: str) -> None:
        self.endings.append(ending)


async def test_a_progress_bar_that_cannot_be_made_ends_the_batch_run_and_closes_the_items(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed: list[str] = []

    async def lines() -> AsyncIterator[str]:
        try:
            yield "header"
            yield "a"
        finally:  # e.g. the cursor the items are read from, closed
            closed.append("closed")

    items = lines()
    assert await anext(items) == "header"  # (begun: only an explicit close ends it)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # not installed
    batching = _RecordedBatching()
    async with MiniAgents():
        run = pipeline(upper, items, progress=True, batch=batching)
        with pytest.raises(ImportError, match="tqdm"):
            async for _ in run:
                pass
    assert batching.endings == ["stopped"]
    assert closed == ["closed"]


class _ItemFailure(ValueError):
    """An item's failure that a test counts while it lives (a weak reference to each)."""


async def test_the_failed_items_of_a_long_run_are_not_kept_once_their_results_are_dropped() -> None:
    # (was: the context kept every failed interaction's replies, and with them the error,
    # its traceback and the locals of its frames, until 1,024 had failed: a run of a
    # million items failing 1 in 1,000 grew by each failure to its end)
    failures: weakref.WeakSet[_ItemFailure] = weakref.WeakSet()

    @miniagent
    async def failing(ctx: InteractionContext) -> None:
        error = _ItemFailure(f"cannot take {await ctx.message_promises}")
        failures.add(error)
        raise error

    async with MiniAgents():
        failed = 0
        async for result in pipeline(failing, (f"item {n}" for n in range(1000)), progress=False):
            failed += not result.ok
            del result  # the caller keeps no result
        gc.collect()
        assert failed == 1000
        # at most those of the items in flight at once (64), whose errors the run had not
        # received yet as they failed: not one per failed item
        assert len(failures) <= 64


async def test_stop_ends_the_run_at_once_from_plain_code() -> None:
    """``Pipeline.stop()``: no item is read and no interaction starts after it."""
    reads: list[int] = []
    starts: list[str] = []
    at_stop: list[tuple[int, int]] = []

    def items() -> Iterator[str]:
        for i in range(20):
            reads.append(i)
            yield str(i)

    @miniagent
    async def first_replies(ctx: InteractionContext) -> None:
        starts.append("entered")
        if str(await ctx.message_promises) != "0":
            await asyncio.Event().wait()
        ctx.reply("done")

    async with MiniAgents():
        run = pipeline(first_replies, items(), max_concurrency=2, max_in_flight=4, progress=False)
        indexes = []
        async for result in run:
            at_stop.append((len(reads), len(starts)))
            run.stop()  # (the loop goes on to the generator's next step: it ends there)
            indexes.append(result.index)
        assert indexes == [0]
    assert at_stop == [(4, 3)]  # 4 read (in flight); 0 ended, 1 and 2 started in its slots
    assert (len(reads), len(starts)) == at_stop[0]  # none after, the context's exit waited


async def test_a_pipeline_stopped_before_it_is_iterated_gives_no_result() -> None:
    reads: list[str] = []

    def items() -> Iterator[str]:
        reads.append("x")
        yield "x"

    run = pipeline(upper, items(), progress=False)
    run.stop()
    async with MiniAgents():
        assert [result async for result in run] == []
    assert reads == []


async def test_a_stop_from_the_runs_first_step_ends_it_with_eager_tasks() -> None:
    """A ``stop()`` made inside the reader's first step (its tasks started eagerly) ends the run.

    With eager tasks the reader reads, and an item's agent runs, inside the task's creation,
    before the run had been made the pipeline's: its ``stop()`` only marked the pipeline,
    and the run went on to the last item.
    """
    reads: list[int] = []
    stops: list[Callable[[], None]] = []
    at_stop: list[int] = []

    def items() -> Iterator[str]:
        for i in range(20):
            reads.append(i)
            yield str(i)

    @miniagent
    async def stopping(ctx: InteractionContext) -> None:
        if not at_stop:  # (its first step: no wait before it)
            at_stop.append(len(reads))
            stops[0]()
        ctx.reply("done")

    async with MiniAgents():
        run = pipeline(stopping, items(), max_concurrency=2, max_in_flight=4, progress=False)
        stops.append(run.stop)
        with eager_tasks():
            results = [result async for result in run]
    assert at_stop == [1]  # stopped by the first item's agent, in the reader's first step
    assert results == []
    assert len(reads) == at_stop[0]  # nothing read after it
