"""``map_agent``: each item of an observable its own interaction, with bounded reading."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar, cast

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.notification import OnError
from reactivex.subject import Subject

from miniagents import InteractionContext, ItemResult, MiniAgents, miniagent
from miniagents.errors import MessageTypeError, NoActiveContextError, PipelineArgumentError
from miniagents.operators import map_agent
from miniagents.promising import StreamedPromise
from miniagents.testing import virtual_time
from tests.fakes.fixtures import WAIT

T = TypeVar("T")


@miniagent
async def upper(ctx: InteractionContext) -> None:
    """Reply with the input upper-cased."""
    ctx.reply(str(await ctx.message_promises).upper())


@miniagent
async def picky(ctx: InteractionContext) -> None:
    """Reply with the input, or fail on ``"bad"``."""
    text = str(await ctx.message_promises)
    if text == "bad":
        raise ValueError("the item 'bad' is refused")
    ctx.reply(text)


async def collect(observable: Observable[T]) -> list[T]:
    return list(await observable.pipe(ops.to_list()))


async def test_each_item_is_one_interaction_and_the_results_keep_the_order() -> None:
    source: Observable[str] = reactivex.from_iterable([f"item {i}" for i in range(10)])
    async with MiniAgents():
        results = await collect(source.pipe(map_agent(upper, max_concurrency=3)))
    assert [result.index for result in results] == list(range(10))
    assert [result.item for result in results] == [f"item {i}" for i in range(10)]
    assert [str(result.get()) for result in results] == [f"ITEM {i}" for i in range(10)]


async def test_a_chain_runs_per_item() -> None:
    @miniagent
    async def exclaim(ctx: InteractionContext) -> None:
        ctx.reply(str(await ctx.message_promises) + "!")

    source: Observable[str] = reactivex.of("a", "b")
    async with MiniAgents():
        results = await collect(source.pipe(map_agent([upper, exclaim])))
    assert [str(result.get()) for result in results] == ["A!", "B!"]


async def test_unordered_results_come_as_they_complete() -> None:
    releases = {i: asyncio.Event() for i in range(3)}

    @miniagent
    async def waits(ctx: InteractionContext) -> None:
        text = str(await ctx.message_promises)
        await releases[int(text)].wait()
        ctx.reply(text)

    emitted: asyncio.Queue[int] = asyncio.Queue()
    source: Observable[str] = reactivex.of("0", "1", "2")
    async with MiniAgents():
        source.pipe(map_agent(waits, ordered=False)).subscribe(
            on_next=lambda result: emitted.put_nowait(result.index)
        )
        for index in (2, 0, 1):
            releases[index].set()
            assert await asyncio.wait_for(emitted.get(), WAIT) == index


async def test_a_failed_item_is_a_result_holding_its_error() -> None:
    source: Observable[str] = reactivex.of("a", "bad", "c")
    async with MiniAgents():
        results = await collect(source.pipe(map_agent(picky)))
    assert [result.ok for result in results] == [True, False, True]
    assert isinstance(results[1].error, ValueError)


async def test_fail_fast_ends_the_result_with_the_first_error() -> None:
    source: Observable[str] = reactivex.of("a", "bad", "c")
    async with MiniAgents():
        with pytest.raises(ValueError, match="'bad' is refused"):
            await collect(source.pipe(map_agent(picky, fail_fast=True)))


@pytest.mark.parametrize("ordered", [True, False])
async def test_fail_fast_drops_the_results_not_emitted_when_an_item_fails(ordered: bool) -> None:
    """As the docstring says: the first to fail in time ends it; what was not emitted is dropped.

    "first" is emitted before anything fails; "quick" finishes behind "slow" (held back when
    ordered: "bad" fails once its agent is done; emitted when not: "bad" fails after that);
    "slow" is cancelled.
    """
    quick_done = asyncio.Event()
    quick_emitted = asyncio.Event()
    first_emitted = asyncio.Event()
    cancelled: list[str] = []

    @miniagent
    async def check(ctx: InteractionContext) -> None:
        text = str(await ctx.message_promises)
        if text == "slow":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(text)
                raise
        elif text == "quick":
            await first_emitted.wait()
            quick_done.set()
        elif text == "bad":
            await (quick_done if ordered else quick_emitted).wait()
            raise ValueError("the item 'bad' is refused")
        ctx.reply(text)

    emitted: list[str] = []
    errors: list[Exception] = []
    done = asyncio.Event()

    def on_next(result: ItemResult[str]) -> None:
        emitted.append(result.item)
        first_emitted.set()
        if result.item == "quick":
            quick_emitted.set()

    def on_error(error: Exception) -> None:
        errors.append(error)
        done.set()

    source: Observable[str] = reactivex.of("first", "slow", "quick", "bad")
    async with MiniAgents():
        source.pipe(map_agent(check, ordered=ordered, fail_fast=True)).subscribe(
            on_next=on_next, on_error=on_error, on_completed=done.set
        )
        await asyncio.wait_for(done.wait(), WAIT)
    assert [str(error) for error in errors] == ["the item 'bad' is refused"]
    assert emitted == (["first"] if ordered else ["first", "quick"])
    assert cancelled == ["slow"]


@pytest.mark.parametrize("high_water_mark", [1, 4, 64, None])
async def test_a_pulled_upstream_is_read_no_further_than_max_in_flight_ahead(
    high_water_mark: int | None,
) -> None:
    """Items pulled and not yet emitted never exceed ``max_in_flight``, whatever the HWM.

    Before the source was read on demand, the upstream ran one high-water mark ahead of
    what the pipeline had read: 3 + HWM items in flight here (all 30 with HWM = 64).
    """
    emitted: list[ItemResult[str]] = []
    in_flight: list[int] = []
    running = 0
    three_running = asyncio.Event()

    async def texts() -> AsyncIterator[str]:
        for i in range(30):
            in_flight.append(i + 1 - len(emitted))  # read (this one too), not yet emitted
            yield f"t{i}"

    @miniagent
    async def slow(ctx: InteractionContext) -> None:
        nonlocal running
        running += 1
        if running == 3:
            three_running.set()
        await three_running.wait()  # the first three wait for each other
        ctx.reply(str(await ctx.message_promises))

    done = asyncio.Event()
    async with MiniAgents(high_water_mark=high_water_mark):
        upstream: StreamedPromise[str, None] = StreamedPromise(texts(), resolver=nothing)
        upstream.as_observable().pipe(map_agent(slow, max_in_flight=3)).subscribe(
            on_next=emitted.append, on_completed=done.set
        )
        await asyncio.wait_for(done.wait(), WAIT)
    assert [result.index for result in emitted] == list(range(30))
    assert max(in_flight) == 3  # max_in_flight, and no more


async def test_a_max_concurrency_above_64_runs_that_many_items_at_once() -> None:
    # max_in_flight was 64 by default whatever max_concurrency said: 64 ran at once, not 100
    all_running = asyncio.Event()
    running = 0

    @miniagent
    async def waits(ctx: InteractionContext) -> None:
        nonlocal running
        running += 1
        if running == 100:
            all_running.set()
        await all_running.wait()  # the first hundred wait for each other
        ctx.reply(str(await ctx.message_promises))

    source: Observable[str] = reactivex.from_iterable([f"t{i}" for i in range(150)])
    with virtual_time():  # fewer than 100 at once: a TimeoutError at once, not a stuck test
        async with MiniAgents(), asyncio.timeout(60):
            results = await collect(source.pipe(map_agent(waits, max_concurrency=100)))
    assert [result.index for result in results] == list(range(150))


async def test_a_subscription_outside_a_context_is_refused_and_leaves_the_source_alone() -> None:
    # it subscribed to the source first, then failed to start its run: a hot source kept the
    # subscription (every item it emitted kept for nobody), a cold one was read to its end
    subject: Subject[str] = Subject()
    read: list[int] = []
    cold: Observable[str] = reactivex.from_iterable(range(3)).pipe(
        ops.do_action(read.append), ops.map(str)
    )
    for source in (subject, cold):
        with pytest.raises(NoActiveContextError, match="No MiniAgents context is active"):
            source.pipe(map_agent(upper)).subscribe()
    assert not subject.observers
    assert read == []
    results: list[ItemResult[str]] = []
    done = asyncio.Event()
    async with MiniAgents():  # (in one, the same operator runs)
        subject.pipe(map_agent(upper)).subscribe(results.append, on_completed=done.set)
        subject.on_next("x")
        subject.on_completed()
        await asyncio.wait_for(done.wait(), WAIT)
    assert [str(result.get()) for result in results] == ["X"]


async def nothing(pieces: tuple[str, ...]) -> None:
    return None


async def test_disposing_of_the_subscription_cancels_the_items_in_flight() -> None:
    started = asyncio.Event()
    cancelled = 0
    all_cancelled = asyncio.Event()

    @miniagent
    async def hangs(ctx: InteractionContext) -> None:
        nonlocal cancelled
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled += 1
            if cancelled == 2:
                all_cancelled.set()
            raise

    source: Observable[str] = reactivex.of("a", "b")
    async with MiniAgents():
        subscription = source.pipe(map_agent(hangs)).subscribe()
        await asyncio.wait_for(started.wait(), WAIT)
        subscription.dispose()
        await asyncio.wait_for(all_cancelled.wait(), WAIT)
    assert cancelled == 2


async def test_after_dispose_no_item_is_read_and_no_agent_starts() -> None:
    """Disposed of from the first result's ``on_next`` (as ``take(1)`` does), it stops there.

    The task's cancellation lands only at its next step: until then, the run read one more
    item (room freed by the result handed out) and started the agents of the items it had
    read but not started yet.
    """
    reads: list[int] = []
    starts: list[str] = []
    at_dispose: tuple[int, int] | None = None

    async def texts() -> AsyncIterator[str]:
        for i in range(20):
            reads.append(i)
            yield str(i)

    @miniagent
    async def first_replies(ctx: InteractionContext) -> None:
        starts.append("entered")  # (before its first await: any step of it counts)
        if str(await ctx.message_promises) != "0":
            await asyncio.Event().wait()
        ctx.reply("done")

    subscription: list[abc.DisposableBase] = []

    def on_next(_: ItemResult[str]) -> None:
        nonlocal at_dispose
        at_dispose = (len(reads), len(starts))
        subscription[0].dispose()

    async with MiniAgents():
        upstream: StreamedPromise[str, None] = StreamedPromise(texts(), resolver=nothing)
        subscription.append(
            upstream.as_observable()
            .pipe(map_agent(first_replies, max_concurrency=4, max_in_flight=4))
            .subscribe(on_next=on_next)
        )
    # the context's exit waited for the run to stop: whatever it would have done is done
    assert at_dispose is not None
    reads_then, starts_then = at_dispose
    assert reads_then == 4  # max_in_flight, and among them one not started yet (or two,
    assert starts_then < reads_then  # by the Python's scheduling): it never starts now
    assert (len(reads), len(starts)) == at_dispose


async def test_a_hot_source_is_subscribed_to_at_once_and_no_item_is_lost() -> None:
    subject: Subject[str] = Subject()
    results: list[ItemResult[str]] = []
    done = asyncio.Event()
    async with MiniAgents():
        subject.pipe(map_agent(upper)).subscribe(on_next=results.append, on_completed=done.set)
        for i in range(3):  # at once, before the operator's task has run
            subject.on_next(f"item {i}")
        subject.on_completed()
        await asyncio.wait_for(done.wait(), WAIT)
    assert [str(result.get()) for result in results] == ["ITEM 0", "ITEM 1", "ITEM 2"]


async def test_a_hot_source_past_the_window_before_the_task_runs_keeps_its_newest_items() -> None:
    # overflow="drop_oldest": what came before the operator's task runs, past the replay
    # window, is dropped from the oldest on; the run reads the newest (it failed with a
    # ReplayWindowError for the dropped ones, and no item ran)
    subject: Subject[str] = Subject()
    results: list[ItemResult[str]] = []
    errors: list[Exception] = []
    done = asyncio.Event()

    def failed(error: Exception) -> None:
        errors.append(error)
        done.set()

    async with MiniAgents(replay_window=10, high_water_mark=2):
        subject.pipe(map_agent(upper, overflow="drop_oldest")).subscribe(
            on_next=results.append, on_error=failed, on_completed=done.set
        )
        for i in range(30):  # at once, before the operator's task has run
            subject.on_next(f"item {i}")
        subject.on_completed()
        await asyncio.wait_for(done.wait(), WAIT)
    assert errors == []
    assert [str(result.get()) for result in results] == ["ITEM 28", "ITEM 29"]


async def test_taken_from_it_unsubscribes_from_a_hot_source_and_stops_its_interactions() -> None:
    subject: Subject[str] = Subject()
    cancelled: list[str] = []
    both_cancelled = asyncio.Event()

    @miniagent
    async def hangs_after_two(ctx: InteractionContext) -> None:
        text = str(await ctx.message_promises)
        if text not in ("0", "1"):
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(text)
                if len(cancelled) == 2:
                    both_cancelled.set()
                raise
        ctx.reply(text)

    done = asyncio.Event()
    async with MiniAgents():
        subject.pipe(map_agent(hangs_after_two), ops.take(2)).subscribe(on_completed=done.set)
        for i in range(4):
            subject.on_next(str(i))
        await asyncio.wait_for(done.wait(), WAIT)
        # the run has stopped: its interactions cancelled, the hot source let go of
        await asyncio.wait_for(both_cancelled.wait(), WAIT)
    assert sorted(cancelled) == ["2", "3"]
    assert not subject.observers  # (the context has waited for the operator's task)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_in_flight": 0},
        {"max_concurrency": -1},
        {"retries": -1},
        {"timeout": 0.0},
        {"max_backoff": -1.0},
        {"jitter": 1.0},
        {"batch": 3},  # (refused when the operator is made, not at each subscription)
    ],
)
def test_bad_arguments_are_refused_when_the_operator_is_made(kwargs: dict[str, float]) -> None:
    with pytest.raises(PipelineArgumentError, match="map_agent\\(\\) needs"):
        map_agent(upper, **kwargs)  # type: ignore[arg-type]


async def test_a_bad_item_is_the_error_after_the_results_of_the_items_before_it() -> None:
    # the error ended the run at once: the results before it were not emitted
    async with MiniAgents():
        source = cast("Observable[str]", reactivex.from_iterable(["a", "b", 5, "c"]))
        told = await asyncio.wait_for(
            source.pipe(map_agent(upper), ops.materialize(), ops.to_list()), WAIT
        )
    assert [str(note.value.get()) for note in told if note.kind == "N"] == ["A", "B"]
    assert [note.kind for note in told] == ["N", "N", "E"]
    error = told[-1]
    assert isinstance(error, OnError)
    assert isinstance(error.exception, MessageTypeError)
    assert "map_agent() got item 2, an int (5)" in str(error.exception)
