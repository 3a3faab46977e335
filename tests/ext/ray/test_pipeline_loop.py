"""``ray_pipeline``'s loops over many batches in flight, on a fake Ray (no cluster).

The fake's object refs count how often they are compared, and its ``ray.wait`` how many
refs it is handed: a loop's work per finished batch must not grow with the number of
batches on their way.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

import pytest
import ray

from miniagents import Message, MessageTuple
from miniagents.ext.ray import ray_pipeline
from miniagents.ext.ray._wire import dumps, loads
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
