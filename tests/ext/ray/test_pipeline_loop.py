"""``ray_pipeline``'s loops over many batches in flight, on a fake Ray (no cluster).

The fake's object refs count how often they are compared, and its ``ray.wait`` how many
refs it is handed: a loop's work per finished batch must not grow with the number of
batches on their way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Any, cast

import pytest
import ray

from miniagents import Message, MessageTuple, MiniAgents
from miniagents.errors import LoopAlreadyRunningError, MessageSerializationError
from miniagents.ext.ray import _pipeline_run, ray_pipeline
from miniagents.ext.ray._pipeline_run import PipelineRun, Settings
from miniagents.ext.ray._wire import dumps, loads
from miniagents.ext.ray.errors import RayCancelTimeoutError, RayPipelineArgumentError
from tests.ext.ray.remote import upper_agent

pytestmark = pytest.mark.ray


class CountedRef:
    """An object ref whose batch has ended at once, counting the comparisons made with it."""

    compared = 0

    def __init__(self, outcome: list[tuple[bool, bytes]]) -> None:
        self._future: concurrent.futures.Future[list[tuple[bool, bytes]]] = (
            concurrent.futures.Future()
        )
        self._future.set_result(outcome)

    def future(self) -> concurrent.futures.Future[list[tuple[bool, bytes]]]:
        return self._future

    def __eq__(self, other: object) -> bool:
        CountedRef.compared += 1
        return self is other

    def __hash__(self) -> int:
        return id(self)


class FakeTask:
    """A Ray remote function whose batches end at once, each item's reply its text upper."""

    def __init__(self) -> None:
        self.sent = 0

    def remote(self, batch: list[bytes], carrier: object) -> CountedRef:
        self.sent += 1
        replies = [MessageTuple([Message(text=str(loads(item)).upper())]) for item in batch]
        return CountedRef([(True, dumps(reply, "a reply")) for reply in replies])


def _fake_remote(task: FakeTask) -> Callable[..., Callable[[object], FakeTask]]:
    def remote(**options: Any) -> Callable[[object], FakeTask]:
        return lambda function: task

    return remote


async def test_the_async_loops_work_per_batch_does_not_grow_with_the_batches_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    task = FakeTask()
    monkeypatch.setattr(ray, "remote", _fake_remote(task))
    monkeypatch.setattr(CountedRef, "compared", 0)
    items = [f"item {i}" for i in range(2_000)]
    pipeline = ray_pipeline(upper_agent, items, max_in_flight=500, progress=False)
    texts = [str(result.get()) async for result in pipeline]
    assert texts == [item.upper() for item in items]
    assert task.sent == len(items)
    # Before, each wait looked for the batches not yet watched among the watched ones:
    # 500 in flight cost about 500 * 500 / 2 comparisons per 500 results (250,000 here).
    assert CountedRef.compared <= len(items)


def test_the_plain_loops_work_per_batch_does_not_grow_with_the_batches_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    task = FakeTask()
    handed = 0

    def wait(refs: list[CountedRef], num_returns: int = 1) -> tuple[list[CountedRef], list[Any]]:
        nonlocal handed
        handed += len(refs)  # Ray looks at each ref it is handed
        return refs[:num_returns], refs[num_returns:]

    def get(ref: CountedRef) -> list[tuple[bool, bytes]]:
        return ref.future().result()

    monkeypatch.setattr(ray, "remote", _fake_remote(task))
    monkeypatch.setattr(ray, "wait", wait)
    monkeypatch.setattr(ray, "get", get)
    monkeypatch.setattr(CountedRef, "compared", 0)
    items = [f"item {i}" for i in range(2_000)]
    pipeline = ray_pipeline(upper_agent, items, max_in_flight=500, progress=False)
    texts = [str(result.get()) for result in pipeline]
    assert texts == [item.upper() for item in items]
    assert task.sent == len(items)
    # Before, each wait handed ray.wait every batch on its way: 500 in flight cost about
    # 500 refs looked at per result (nearly 1,000,000 here).
    assert handed + CountedRef.compared <= len(items)


class _LateRef:
    """An object ref whose batch ends only when the test says (after the loop has closed)."""

    def __init__(self) -> None:
        self._future: concurrent.futures.Future[list[tuple[bool, bytes]]] = (
            concurrent.futures.Future()
        )

    def future(self) -> concurrent.futures.Future[list[tuple[bool, bytes]]]:
        return self._future


def test_a_batch_that_ends_as_the_async_loops_event_loop_closes_is_let_go_of(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ref = _LateRef()
    task = _LateTask(ref)
    cancelled: list[object] = []
    monkeypatch.setattr(ray, "remote", lambda **options: lambda function: task)
    monkeypatch.setattr(ray, "cancel", cancelled.append)
    monkeypatch.setattr(ray, "wait", lambda refs, **options: ([], list(refs)))  # (runs on)
    loop = asyncio.new_event_loop()

    async def leave_with_the_batch_running() -> None:
        task.sent = asyncio.Event()
        results = aiter(ray_pipeline(upper_agent, ["a"], progress=False))
        first = asyncio.ensure_future(anext(results))
        await task.sent.wait()  # the batch was sent: its end is watched
        first.cancel()  # the consumer leaves: the run closes, Ray's cancel is asked
        with pytest.raises(asyncio.CancelledError):
            await first

    loop.run_until_complete(leave_with_the_batch_running())
    assert cancelled == [ref]
    # The race: Ray's thread looked at the loop just before it closed, and called it after.
    monkeypatch.setattr(loop, "is_closed", lambda: False)
    loop.close()
    with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
        ref.future().set_result([])  # the batch ends late, in "Ray's" thread
    # Before, call_soon_threadsafe's RuntimeError ("Event loop is closed") was raised in
    # the future's callback, which concurrent.futures logs as an error.
    assert caplog.records == []


class _LateTask:
    """A Ray remote function whose one batch is ``ref``; ``sent`` is set as it is sent."""

    def __init__(self, ref: _LateRef) -> None:
        self._ref = ref
        self.sent: asyncio.Event | None = None

    def remote(self, batch: list[bytes], carrier: object) -> _LateRef:
        assert self.sent is not None
        self.sent.set()
        return self._ref


async def test_a_plain_loop_inside_an_active_context_in_async_code_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (was: taken, as it reads its items here and its batches end in Ray's thread, so it
    # waits for nothing of the loop; but it blocked the loop while it ran, every agent of
    # the context stopped meanwhile: refused now, as pipeline()'s plain for is, before
    # anything is sent)
    task = FakeTask()
    monkeypatch.setattr(ray, "remote", _fake_remote(task))
    items = [f"item {i}" for i in range(10)]
    async with MiniAgents():
        results = ray_pipeline(upper_agent, items, progress=False)
        with pytest.raises(LoopAlreadyRunningError, match="async for result in ray_pipeline"):
            next(iter(results))
        assert task.sent == 0
        texts = [str(result.get()) async for result in results]
        reply = upper_agent.inquire("x")  # (a live reply: refused as an item, not waited for)
        [result] = [r async for r in ray_pipeline(upper_agent, [reply], progress=False)]
        assert isinstance(result.error, MessageSerializationError)
        assert "cannot be pickled" in str(result.error)
        await reply
    assert texts == [item.upper() for item in items]


@pytest.mark.parametrize(
    ("options", "fix"),
    [
        ({"max_in_flight": 0}, "got 0. Pass e.g. max_in_flight=64 (the default), at least"),
        ({"batch_size": 0}, "got 0. Pass e.g. batch_size=8 (items sent to a worker at once)"),
        ({"ordered": "no"}, "got 'no'. Pass True or False, or leave it out for True"),
    ],
    ids=["max_in_flight", "batch_size", "ordered"],
)
def test_a_count_or_flag_refused_says_how_to_give_it(options: dict[str, Any], fix: str) -> None:
    # (was: "ray_pipeline() needs batch_size to be a whole number of at least 1; got 0." and
    # no more; checked as it is made: no cluster needed)
    with pytest.raises(RayPipelineArgumentError) as refused:
        ray_pipeline(upper_agent, ["a"], **options)
    assert fix in str(refused.value)


class _Heard(logging.Handler):
    """The records of a logger, with a thread's event set at each (Ray's cancel logs in its own)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.event.set()


def test_a_cancel_of_the_batches_failing_after_the_wait_gave_up_is_logged_as_the_pipelines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()

    def failing_late(tasks: object) -> None:
        release.wait()  # Ray's cancel hangs until the wait for it has given up
        raise RuntimeError("Ray's cancel failed.")

    monkeypatch.setattr(_pipeline_run, "cancel_running", failing_late)
    settings = Settings(1, 1, True, 0, False, "", None, cancel_timeout=0)
    run: PipelineRun[str, Any] = PipelineRun(None, [], settings, lambda ref, future: None)
    run.pending[object()] = cast(Any, None)  # a batch still running
    heard = _Heard()
    miniagents_logger = logging.getLogger("miniagents")
    miniagents_logger.addHandler(heard)
    try:
        with pytest.raises(RayCancelTimeoutError):
            run.close()
        assert heard.records == []
        release.set()  # Ray's cancel fails now: nobody waits for it
        assert heard.event.wait(60)
    finally:
        release.set()
        miniagents_logger.removeHandler(heard)
    (record,) = heard.records
    # on main: "Stopping a remote interaction failed ..." (for a pipeline's batches)
    assert record.getMessage().startswith(
        "Stopping the running batches of a Ray pipeline failed after it had been given up on "
        '(RuntimeError("Ray\'s cancel failed.")): it may go on running.'
    )
