"""Ray's cancel of the caller's tasks lets the tasks that have ended be (``ext/ray/_cancel``).

A ``ray.cancel`` that comes while Ray takes in a task's reply aborts the caller's process
(Ray's own race, see the module): the tasks that have ended, or end within the grace, are
not cancelled at all, and the tasks still running are.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
import ray

from miniagents.ext.ray._cancel import cancel_running
from tests.ext.ray.remote import SignalsHandle

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]

WITHIN = 60.0


@ray.remote(num_cpus=0)
def _quick() -> str:
    return "ended"


@ray.remote(num_cpus=0)
def _waiting(signals: SignalsHandle, name: str) -> str:
    ray.get(signals.set.remote(f"{name}:started"))
    ray.get(signals.wait.remote(name))  # never set: only a cancel ends it
    return "ended"


@ray.remote(num_cpus=0, num_returns="streaming")
def _counting() -> Iterator[int]:
    yield 1
    yield 2


@pytest.fixture
def cancelled(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """What ``ray.cancel`` is called for (it still cancels)."""
    calls: list[object] = []
    real = ray.cancel

    def recording(target: Any, **options: Any) -> None:
        calls.append(target)
        real(target, **options)

    monkeypatch.setattr(ray, "cancel", recording)
    return calls


def test_only_the_tasks_still_running_are_cancelled(
    signals: SignalsHandle, cancelled: list[object]
) -> None:
    name = f"cancel:{uuid.uuid4()}"
    ended = _quick.remote()
    assert ray.get(ended, timeout=WITHIN) == "ended"
    running = _waiting.remote(signals, name)
    ray.get(signals.wait.remote(f"{name}:started"), timeout=WITHIN)

    cancel_running([(ended, ended), (running, running)])

    assert cancelled == [running]
    assert ray.get(ended, timeout=WITHIN) == "ended"
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(running, timeout=WITHIN)


def test_a_generator_that_has_ended_is_not_cancelled(cancelled: list[object]) -> None:
    generator = cast(ray.ObjectRefGenerator, _counting.remote())
    assert [ray.get(ref, timeout=WITHIN) for ref in generator] == [1, 2]

    cancel_running([(generator, generator.completed())])

    assert cancelled == []


def test_nothing_to_cancel_waits_for_nothing(cancelled: list[object]) -> None:
    cancel_running([], grace=WITHIN)  # (it would wait a minute, were there a task)
    assert cancelled == []
