"""``current_watch``: the watch a hook's observer gives of some work that starts, if any."""

from __future__ import annotations

from typing import Protocol

import pytest

from miniagents.miniagents.logged_once import LoggedOnce
from miniagents.miniagents.lowlevel import current_watch, observer_hook


class _Starts(Protocol):
    """The protocol of the tests' observers: a watch of the work ``name``, or none."""

    def started(self, name: str) -> str | None:
        """The watch of ``name``."""
        ...


class _Observer:
    """An observer (not a subclass of its protocol) that notes each work and fails on "bad"."""

    def __init__(self) -> None:
        self.told: list[str] = []

    def started(self, name: str) -> str | None:
        self.told.append(name)
        if name == "bad":
            raise RuntimeError("no watch")
        return f"watch of {name}"


def _fanout(observers: tuple[_Starts, ...], failures: LoggedOnce) -> _Starts:
    return observers[-1]  # (one at a time is all these tests plug in)


def test_without_an_observer_there_is_no_watch() -> None:
    hook, failures = observer_hook("a test observer", "the works", _fanout)
    assert current_watch(hook, failures, _Starts.started, "good") is None


def test_the_observers_own_method_gives_the_watch_and_its_failure_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hook, failures = observer_hook("a test observer", "the works", _fanout)
    observer = _Observer()
    hook.set(observer)
    assert current_watch(hook, failures, _Starts.started, "good") == "watch of good"
    assert current_watch(hook, failures, _Starts.started, name="bad") is None
    assert current_watch(hook, failures, _Starts.started, "bad") is None
    assert observer.told == ["good", "bad", "bad"]
    assert [record.getMessage() for record in caplog.records] == [
        f"A test observer ({__name__}._Observer) failed in started (RuntimeError: no watch); "
        "the works go on unobserved by it there. This is logged once for its class."
    ]
