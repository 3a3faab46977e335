"""``ray_pipeline`` against a real local Ray cluster: bounds, order, retries, errors, data."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import uuid
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from typing import Any, cast

import pytest
import ray

from miniagents import InteractionContext, Message, MessageTuple, MiniAgent, MiniAgents
from miniagents.errors import LoopAlreadyRunningError, MessageTypeError
from miniagents.ext.ray import (
    ItemResult,
    MessageSerializationError,
    RayAgentError,
    RayCancelTimeoutError,
    RayWorkerDiedError,
    ray_pipeline,
)
from miniagents.ext.ray.errors import RayPipelineArgumentError
from miniagents.pipeline import PipelineTimeoutError
from tests.ext.ray.remote import (
    CustomError,
    SignalsHandle,
    echo_agent,
    item_agent,
    upper_agent,
)

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]

WITHIN = 60.0


class CountingItems:
    """Items read lazily, counting how many the pipeline has taken."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.taken = 0

    def __iter__(self) -> Iterator[str]:
        for text in self.texts:
            self.taken += 1
            yield text


def test_a_chain_runs_over_the_items_and_the_results_keep_the_input_order() -> None:
    items = [f"item {i}" for i in range(12)]
    chain: list[MiniAgent[...]] = [echo_agent.fork(prefix="> "), upper_agent]
    results = list(ray_pipeline(chain, items, max_in_flight=4, batch_size=2, num_cpus=0.5))
    assert [result.index for result in results] == list(range(12))
    assert [result.item for result in results] == items
    assert [str(result.get()) for result in results] == [f"> ITEM {i}" for i in range(12)]
    assert all(result.ok and result.attempts == 1 for result in results)


def test_cancel_timeout_is_the_pipelines_own_option_not_rays() -> None:
    results = list(ray_pipeline(upper_agent, ["a"], num_cpus=0.5, cancel_timeout=5.0))
    assert [str(result.get()) for result in results] == ["A"]


async def test_plain_for_inside_an_active_context_is_refused_naming_async_for() -> None:
    # (was: the plain for ran, blocking the context's event loop until the pipeline ended:
    # every agent of the context stopped meanwhile; pipeline()'s plain for refused it)
    async with MiniAgents():
        results = ray_pipeline(upper_agent, ["a", "b"], num_cpus=0.5, progress=False)
        with pytest.raises(
            LoopAlreadyRunningError, match=r"async for result in ray_pipeline\(\.\.\.\)"
        ) as refused:
            next(iter(results))
        assert "would block the context's event loop" in str(refused.value)
        assert [str(r.get()) async for r in results] == ["A", "B"]  # (not claimed: runs)
    # in async code outside of every context (a notebook's cell), plain for runs
    outside = list(ray_pipeline(upper_agent, ["c"], num_cpus=0.5, progress=False))
    assert [str(r.get()) for r in outside] == ["C"]


@pytest.mark.parametrize("ordered", [True, False])
async def test_at_most_max_in_flight_items_are_on_their_way_in_either_order(
    signals: SignalsHandle, ordered: bool
) -> None:
    key = uuid.uuid4().hex
    # Item 0 finishes only after item 1: in the input's order, item 1 waits for it;
    # in completion order, item 1 comes first (the test tells item 0 when it has it).
    first = "wait:one-finished" if ordered else "wait:one-received"
    texts = [first, "finish:one-finished", *(f"item {i}" for i in range(2, 10))]
    items = CountingItems(texts)
    pipeline = ray_pipeline(
        item_agent.fork(signals=signals, key=key),
        items,
        max_in_flight=3,
        ordered=ordered,
        num_cpus=0.5,
    )
    indexes: list[int] = []
    async for result in pipeline:
        assert result.ok, result.error
        assert items.taken - len(indexes) <= 3  # taken from the input, not yet handed out
        indexes.append(result.index)
        if result.index == 1 and not ordered:
            await signals.set.remote(f"{key}:one-received")
    assert items.taken == len(texts)
    if ordered:
        assert indexes == list(range(10))
    else:  # item 0 was still running when item 1 (and maybe others) came out
        assert indexes.index(1) < indexes.index(0)
        assert sorted(indexes) == list(range(10))


async def test_an_item_whose_worker_is_killed_mid_item_is_retried(signals: SignalsHandle) -> None:
    key = uuid.uuid4().hex
    results = await _kill_mid_item(signals, key, max_retries=3)
    assert [str(result.get()) for result in results] == ["BEFORE", "DIE-ONCE", "AFTER"]
    assert [result.attempts for result in results] == [1, 2, 1]
    assert await signals.counted.remote(f"{key}:attempts") == 2


async def test_an_item_whose_worker_keeps_dying_fails_alone(signals: SignalsHandle) -> None:
    before, died, after = await _kill_mid_item(signals, uuid.uuid4().hex, max_retries=0)
    assert isinstance(died.error, RayWorkerDiedError)
    assert died.replies == MessageTuple()
    assert "it was tried 1 time(s). Check the worker's logs" in str(died.error)
    assert before.ok
    assert after.ok


async def _kill_mid_item(
    signals: SignalsHandle, key: str, max_retries: int
) -> list[ItemResult[str]]:
    """Run three items; kill the worker of the middle one while it runs."""
    texts = ["before", "die-once", "after"]
    agent = item_agent.fork(signals=signals, key=key)
    pipeline = ray_pipeline(agent, texts, num_cpus=0.5, max_retries=max_retries)
    running = asyncio.create_task(_collect(pipeline))
    pid = await asyncio.wait_for(signals.wait.remote(f"{key}:started"), WITHIN)
    assert isinstance(pid, int)
    os.kill(pid, signal.SIGKILL)  # the worker dies in the middle of the item
    return await asyncio.wait_for(running, WITHIN)


def test_an_item_that_fails_gives_its_error_and_the_other_items_go_on(
    signals: SignalsHandle,
) -> None:
    key = uuid.uuid4().hex
    texts = ["one", "fail", "three"]
    results = list(ray_pipeline(item_agent.fork(signals=signals, key=key), texts, num_cpus=0.5))
    assert [result.ok for result in results] == [True, False, True]
    assert isinstance(results[1].error, CustomError)
    assert str(results[1].error) == "item 'fail' failed"
    with pytest.raises(CustomError):
        results[1].get()
    assert str(results[2].get()) == "THREE"


@pytest.mark.parametrize("ordered", [True, False])
async def test_a_bad_item_takes_its_place_after_the_results_before_it_even_in_flight(
    signals: SignalsHandle, ordered: bool
) -> None:
    # the error ended the run at once: the results of the items before it were lost
    key = uuid.uuid4().hex
    # item 0 runs until item 2 has finished: item 2 is sent with the bad item's batch (the
    # items before it in the batch go on), so item 0 is in flight when the bad item is read.
    # Unordered, "finished" is "its result was read here": item 2's agent setting the signal
    # as it ends would let item 0's batch end before item 2's does (a race, not an order)
    two = "finish:go two" if ordered else "two"
    texts = ["wait:go zero", "one", two, cast("str", 3), "four"]
    items = CountingItems(texts)
    pipeline = ray_pipeline(
        item_agent.fork(signals=signals, key=key),
        items,
        max_in_flight=4,
        batch_size=2,
        ordered=ordered,
        num_cpus=0.5,
    )
    seen: list[str] = []

    async def consume() -> None:
        async for result in pipeline:
            seen.append(str(result.get()))
            if seen[-1] == "TWO":  # (unordered: item 2's result read, item 0 may end)
                await signals.set.remote(f"{key}:go")

    with pytest.raises(MessageTypeError, match=r"^ray_pipeline\(\) got item 3, an int \(3\)"):
        await consume()
    zero_one = ["WAIT:GO ZERO", "ONE"]  # (a batch's results: at once)
    assert seen == ([*zero_one, "FINISH:GO TWO"] if ordered else ["TWO", *zero_one])
    assert items.taken == 4  # nothing after it is read, so nothing after it is sent


@pytest.mark.parametrize("ordered", [True, False])
def test_a_bad_item_deep_in_a_run_loses_no_result_before_it(ordered: bool) -> None:
    items = [f"m{n}" for n in range(200)]
    items[150] = cast("str", b"150")
    pipeline = ray_pipeline(
        upper_agent, items, max_in_flight=8, batch_size=4, ordered=ordered, num_cpus=0.5
    )
    seen: list[int] = []

    def consume() -> None:
        for result in pipeline:
            assert result.ok, result.error
            seen.append(result.index)

    with pytest.raises(
        MessageTypeError, match=r"^ray_pipeline\(\) got item 150, a bytes \(b'150'\)"
    ):
        consume()
    assert (seen if ordered else sorted(seen)) == list(range(150))


# ray.data's own DataContext sets settings it deprecates itself (Ray 2.60).
@pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")
def test_the_rows_of_a_dataset_are_the_items() -> None:
    import ray.data

    rows = [{"text": f"row {i}", "number": i} for i in range(6)]
    dataset = ray.data.from_items(rows)
    results: list[ItemResult[dict[str, Any]]] = list(
        ray_pipeline(echo_agent, dataset, max_in_flight=4, num_cpus=0.5)
    )
    assert [result.get() for result in results] == [(Message.model_validate(row),) for row in rows]


def test_the_progress_bar_is_shown_when_asked_and_not_when_stderr_is_no_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    items = ["a", "b", "c"]
    list(ray_pipeline(upper_agent, items, num_cpus=0.5))
    assert capsys.readouterr().err == ""
    list(ray_pipeline(upper_agent, items, progress=True, description="shouting", num_cpus=0.5))
    shown = capsys.readouterr().err
    assert "shouting: 100%" in shown
    assert "3/3" in shown


class _UnsizableRows:
    """Rows that iterate but whose ``__len__`` fails (as a lazy query's may)."""

    def __iter__(self) -> Iterator[str]:
        return iter(["a", "b", "c"])

    def __len__(self) -> int:
        raise TypeError("this query does not know its length before it runs")


def test_items_whose_len_fails_run_every_item_with_the_total_unknown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the TypeError of __len__ ended the run before (from the bar's total), as the local
    # pipeline's did before it read its total with known_total
    results = list(ray_pipeline(upper_agent, _UnsizableRows(), progress=True, num_cpus=0.5))
    assert [str(result.get()) for result in results] == ["A", "B", "C"]
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert re.search(r"\b3item \[", last), last  # a count with no total ("3/3" with one)


def test_a_pipeline_runs_once_and_checks_its_settings() -> None:
    pipeline = ray_pipeline(upper_agent, ["a"], num_cpus=0.5)
    assert [str(result.get()) for result in pipeline] == ["A"]
    with pytest.raises(RuntimeError, match="runs once"):
        list(pipeline)
    with pytest.raises(ValueError, match="batch_size <= max_in_flight"):
        ray_pipeline(upper_agent, ["a"], batch_size=8, max_in_flight=4)
    with pytest.raises(ValueError, match="at least one agent"):
        ray_pipeline([], ["a"])


async def forgot_the_decorator(ctx: InteractionContext) -> None:
    """An agent function without @miniagent: not an agent."""


@pytest.mark.parametrize(
    ("arguments", "options", "message"),
    [
        (
            (forgot_the_decorator, ["a"]),
            {},
            r"an agent, but forgot_the_decorator is a function, not an agent: decorate it "
            r"with @miniagent [^@]*$",
        ),
        (
            ([upper_agent, forgot_the_decorator], ["a"]),
            {},
            r"an agent, but forgot_the_decorator is a function, not an agent: decorate it "
            r"with @miniagent [^@]*$",
        ),
        (("upper_agent", ["a"]), {}, r"at least one agent .*; got 'upper_agent'\.$"),
        (
            (upper_agent, 5),
            {},
            r"its items as an iterable .*; got an int \(5\)\. For one item, pass",
        ),
        ((upper_agent, "a document"), {}, r"its items as .*, not the string 'a document'"),
        ((upper_agent, ["a"]), {"batch_size": "2"}, r"batch_size to be a whole .*; got '2'"),
        ((upper_agent, ["a"]), {"max_in_flight": 1.5}, r"max_in_flight to be a whole number"),
        ((upper_agent, ["a"]), {"max_retries": "2"}, r"max_retries to be a whole .* 0; got '2'"),
        ((upper_agent, ["a"]), {"max_retries": -1}, r"max_retries to be a whole .* 0; got -1"),
        ((upper_agent, ["a"]), {"cancel_timeout": "5"}, r"cancel_timeout to be a positive"),
        ((upper_agent, ["a"]), {"cancel_timeout": 0}, r"cancel_timeout to be a positive"),
        ((upper_agent, ["a"]), {"ordered": "no"}, r"ordered to be True or False; got 'no'"),
        ((upper_agent, ["a"]), {"total": -1}, r"total to be a whole number .* 0; got -1\. Or None"),
    ],
)
def test_arguments_it_cannot_use_are_refused_at_the_call_naming_them(
    arguments: tuple[Any, ...], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(RayPipelineArgumentError, match=rf"^ray_pipeline\(\) needs {message}"):
        ray_pipeline(*arguments, **options)


@pytest.mark.parametrize(
    ("option", "value", "instead"),
    [
        ("retries", 2, r"only when its worker died \(max_retries=, 3 by default\)"),
        ("retry_on", (TimeoutError,), r"only items whose worker died \(max_retries=\)"),
        ("backoff", 1.0, r"only items whose worker died \(max_retries=\)"),
        ("max_backoff", 60.0, r"only items whose worker died \(max_retries=\)"),
        ("jitter", False, r"only items whose worker died \(max_retries=\)"),
        ("max_concurrency", 8, r"bounded by max_in_flight= and by the cluster's resources"),
        ("fail_fast", True, r"call result\.get\(\) in the loop"),
        ("overflow", "drop", r"never an observable"),
        ("durable", True, r"use pipeline\(agents, items, durable=\.\.\.\)"),
    ],
)
def test_an_option_of_the_local_pipeline_is_refused_saying_what_to_use(
    option: str, value: object, instead: str
) -> None:
    options: dict[str, Any] = {option: value}
    with pytest.raises(RayPipelineArgumentError) as raised:
        ray_pipeline(upper_agent, ["a"], **options)
    assert str(raised.value).startswith(f"ray_pipeline() has no {option}= option (pipeline() has)")
    assert re.search(instead, str(raised.value))


def test_an_item_that_takes_longer_than_timeout_is_cancelled_and_fails_alone(
    signals: SignalsHandle,
) -> None:
    key = uuid.uuid4().hex
    agent = item_agent.fork(signals=signals, key=key)
    [result] = list(ray_pipeline(agent, ["wait:never"], timeout=0.5, num_cpus=0.5))
    assert isinstance(result.error, PipelineTimeoutError)
    assert "longer than the pipeline's timeout of 0.5 s, so it was cancelled" in str(result.error)
    ray.get(signals.wait.remote(f"{key}:cancelled:wait:never"), timeout=WITHIN)


def test_leaving_the_loop_early_cancels_the_items_still_running(signals: SignalsHandle) -> None:
    key = uuid.uuid4().hex
    texts = ["first", "wait:never a", "wait:never b"]
    pipeline = ray_pipeline(item_agent.fork(signals=signals, key=key), texts, num_cpus=0.5)
    for result in pipeline:
        assert str(result.get()) == "FIRST"
        for text in texts[1:]:
            ray.get(signals.wait.remote(f"{key}:waiting:{text}"), timeout=WITHIN)
        break  # the loop ends: the pipeline's generator is closed
    for text in texts[1:]:  # each running item saw CancelledError in its worker
        ray.get(signals.wait.remote(f"{key}:cancelled:{text}"), timeout=WITHIN)


def test_leaving_the_loop_early_while_rays_cancel_hangs_is_a_timeout_error(
    signals: SignalsHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real_cancel = ray.cancel

    def hanging_cancel(ref: Any, **options: Any) -> None:  # Ray's cancel, stuck
        release.wait()
        real_cancel(ref, **options)

    key = uuid.uuid4().hex
    texts = ["first", "wait:never a"]
    pipeline = ray_pipeline(
        item_agent.fork(signals=signals, key=key), texts, num_cpus=0.5, cancel_timeout=0.5
    )
    results = iter(pipeline)
    assert isinstance(results, Generator)  # closed when a loop over it is left early
    try:
        assert str(next(results).get()) == "FIRST"
        ray.get(signals.wait.remote(f"{key}:waiting:wait:never a"), timeout=WITHIN)
        monkeypatch.setattr(ray, "cancel", hanging_cancel)
        with pytest.raises(RayCancelTimeoutError, match=r"longer than 0\.5 s"):
            results.close()  # leaving the loop early: the running batch is to be cancelled
    finally:
        release.set()  # the real cancel goes on
    ray.get(signals.wait.remote(f"{key}:cancelled:wait:never a"), timeout=WITHIN)


async def test_leaving_an_async_loop_early_waits_for_rays_cancel_off_the_event_loop(
    signals: SignalsHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    cancelling = asyncio.Event()
    release = threading.Event()
    real_cancel = ray.cancel

    def stuck_cancel(ref: Any, **options: Any) -> None:  # Ray's cancel, stuck until released
        loop.call_soon_threadsafe(cancelling.set)
        release.wait()
        real_cancel(ref, **options)

    async def other_task() -> str:  # another task of the loop: it runs while the run closes
        await cancelling.wait()
        release.set()
        return "ran"

    key = uuid.uuid4().hex
    texts = ["first", "wait:never a"]
    pipeline = ray_pipeline(
        item_agent.fork(signals=signals, key=key), texts, num_cpus=0.5, cancel_timeout=WITHIN
    )
    results = aiter(pipeline)
    assert isinstance(results, AsyncGenerator)
    other = asyncio.create_task(other_task())
    try:
        assert str((await anext(results)).get()) == "FIRST"
        await asyncio.wait_for(signals.wait.remote(f"{key}:waiting:wait:never a"), WITHIN)
        monkeypatch.setattr(ray, "cancel", stuck_cancel)
        # leaving the loop early: Ray's cancel returns only once the other task has run
        # (a close that blocked the loop would wait cancel_timeout, then fail with
        # RayCancelTimeoutError)
        await results.aclose()
        assert other.done()
        assert other.result() == "ran"
    finally:
        release.set()  # (the real cancel goes on)
        other.cancel()
    await asyncio.wait_for(signals.wait.remote(f"{key}:cancelled:wait:never a"), WITHIN)


class CleanUpError(Exception):
    """The error of the items' own clean-up (e.g. the file they are read from)."""


def _items_whose_clean_up_fails(texts: list[str]) -> Iterator[str]:
    try:
        yield from texts
    finally:  # (closed by the run, left early)
        raise CleanUpError("the items' file could not be closed")


def _left_early_with_a_batch_running(
    signals: SignalsHandle, key: str, cancel_timeout: float = WITHIN
) -> Any:
    """A pipeline over items whose clean-up fails; its 2nd item runs until cancelled."""
    texts = ["first", "wait:never a"]
    return ray_pipeline(
        item_agent.fork(signals=signals, key=key),
        _items_whose_clean_up_fails([*texts, "never read"]),
        max_in_flight=2,  # (the third item is never read: the items are only closed)
        num_cpus=0.5,
        cancel_timeout=cancel_timeout,
    )


def _noting_cancel(noted: list[str], fails: bool) -> Callable[..., None]:
    """Ray's cancel, noting in ``noted`` when it has returned (or failing after it ran)."""
    real_cancel = ray.cancel

    def cancel(ref: Any, **options: Any) -> None:
        real_cancel(ref, **options)
        noted.append("cancelled")
        if fails:
            raise ValueError("the cancel was refused")

    return cancel


@pytest.mark.parametrize("cancel_fails", [False, True])
def test_closing_raises_the_items_clean_up_error_after_rays_cancel(
    signals: SignalsHandle, monkeypatch: pytest.MonkeyPatch, cancel_fails: bool
) -> None:
    key = uuid.uuid4().hex
    results = iter(_left_early_with_a_batch_running(signals, key))
    assert isinstance(results, Generator)
    assert str(next(results).get()) == "FIRST"
    ray.get(signals.wait.remote(f"{key}:waiting:wait:never a"), timeout=WITHIN)
    noted: list[str] = []
    monkeypatch.setattr(ray, "cancel", _noting_cancel(noted, cancel_fails))
    with pytest.raises(CleanUpError, match="could not be closed") as raised:
        results.close()  # leaving the loop early: the items are closed, the batch cancelled
    assert noted == ["cancelled"]  # Ray's cancel was started and waited for, before it
    _assert_the_cancels_failure_is_its_context(raised.value, cancel_fails)
    ray.get(signals.wait.remote(f"{key}:cancelled:wait:never a"), timeout=WITHIN)


@pytest.mark.parametrize("cancel_fails", [False, True])
async def test_closing_an_async_loop_raises_the_items_clean_up_error_after_rays_cancel(
    signals: SignalsHandle, monkeypatch: pytest.MonkeyPatch, cancel_fails: bool
) -> None:
    key = uuid.uuid4().hex
    results = aiter(_left_early_with_a_batch_running(signals, key))
    assert isinstance(results, AsyncGenerator)
    assert str((await anext(results)).get()) == "FIRST"
    await asyncio.wait_for(signals.wait.remote(f"{key}:waiting:wait:never a"), WITHIN)
    noted: list[str] = []
    monkeypatch.setattr(ray, "cancel", _noting_cancel(noted, cancel_fails))
    with pytest.raises(CleanUpError, match="could not be closed") as raised:
        await results.aclose()  # leaving the loop early: the items are closed, the batch cancelled
    assert noted == ["cancelled"]  # Ray's cancel was started and waited for, before it
    _assert_the_cancels_failure_is_its_context(raised.value, cancel_fails)
    await asyncio.wait_for(signals.wait.remote(f"{key}:cancelled:wait:never a"), WITHIN)


def _stuck_cancel(release: threading.Event) -> Callable[..., None]:
    """Ray's cancel, stuck until ``release`` is set (then it runs)."""
    real_cancel = ray.cancel

    def cancel(ref: Any, **options: Any) -> None:
        release.wait()
        real_cancel(ref, **options)

    return cancel


class _Loop:
    """A loop over a pipeline's results, ``for`` or ``async for``, stepped by a test."""

    def __init__(self, pipeline: Any, asynchronous: bool) -> None:
        self._results = aiter(pipeline) if asynchronous else iter(pipeline)
        assert isinstance(self._results, AsyncGenerator | Generator)

    async def next(self) -> ItemResult[str]:
        if isinstance(self._results, Generator):
            return cast(ItemResult[str], next(self._results))
        return cast(ItemResult[str], await anext(self._results))

    async def close(self) -> None:
        """Leave the loop early (its generator is closed)."""
        if isinstance(self._results, Generator):
            self._results.close()
        else:
            await self._results.aclose()


@pytest.mark.parametrize("asynchronous", [False, True], ids=["for", "async for"])
async def test_closing_while_rays_cancel_hangs_raises_the_items_clean_up_error_after_the_timeout(
    signals: SignalsHandle, monkeypatch: pytest.MonkeyPatch, asynchronous: bool
) -> None:
    key = uuid.uuid4().hex
    release = threading.Event()
    loop = _Loop(_left_early_with_a_batch_running(signals, key, cancel_timeout=0.5), asynchronous)
    try:
        assert str((await loop.next()).get()) == "FIRST"
        await asyncio.wait_for(signals.wait.remote(f"{key}:waiting:wait:never a"), WITHIN)
        monkeypatch.setattr(ray, "cancel", _stuck_cancel(release))
        with pytest.raises(CleanUpError, match="could not be closed") as raised:
            await loop.close()  # the cancel never returns: the wait for it times out first
    finally:
        release.set()  # (the real cancel goes on)
    context = raised.value.__context__
    assert isinstance(context, RayCancelTimeoutError)  # (the wait's own failure, kept)
    assert re.match(r"Ray's cancel of the 1 batch\(es\) .* longer than 0\.5 s", str(context))
    await asyncio.wait_for(signals.wait.remote(f"{key}:cancelled:wait:never a"), WITHIN)


def _assert_the_cancels_failure_is_its_context(error: BaseException, cancel_fails: bool) -> None:
    context = error.__context__
    if not cancel_fails:
        assert not isinstance(context, RayAgentError)
        return
    assert isinstance(context, RayAgentError)  # (the wait's own failure, kept)
    assert str(context).startswith("Ray could not run the cancel of the pipeline's running")
    assert isinstance(context.__cause__, ValueError)


async def _collect(pipeline: Any) -> list[ItemResult[str]]:
    return [result async for result in pipeline]


def test_an_item_that_cannot_be_pickled_gives_an_error_naming_its_field() -> None:
    items = [Message(text="fine"), Message(text="locked", lock=threading.Lock())]
    fine, locked = ray_pipeline(echo_agent, items, num_cpus=0.5)
    assert fine.get() == (Message(text="fine"),)
    assert isinstance(locked.error, MessageSerializationError)
    assert str(locked.error).startswith(
        "The field 'lock' of the item 1 of the pipeline (Message) cannot be sent"
    )
    assert locked.attempts == 0
