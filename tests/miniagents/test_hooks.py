"""``current_watch``: the watch a hook's observer gives of some work that starts, if any."""

from __future__ import annotations

import pytest

from miniagents.miniagents.logged_once import LoggedOnce
from miniagents.miniagents.lowlevel import current_watch, observer_hook


class _Observer:
    """An observer whose watch of the work ``name`` is the name, or that fails on ``"bad"``."""

    def started(self, name: str) -> str | None:
        if name == "bad":
            raise RuntimeError("no watch")
        return name


def _fanout(observers: tuple[_Observer, ...], failures: LoggedOnce) -> _Observer:
    return observers[-1]  # (one at a time is all these tests plug in)


def test_without_an_observer_no_watch_is_asked_for() -> None:
    hook, failures = observer_hook("a test observer", "the works", _fanout)
    asked: list[_Observer] = []
    assert current_watch(hook, failures, "started", asked.append) is None
    assert asked == []


def test_the_observers_watch_is_given_and_its_failure_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hook, failures = observer_hook("a test observer", "the works", _fanout)
    hook.set(_Observer())
    assert current_watch(hook, failures, "started", lambda told: told.started("good")) == "good"
    assert current_watch(hook, failures, "started", lambda told: told.started("bad")) is None
    assert current_watch(hook, failures, "started", lambda told: told.started("bad")) is None
    assert [record.getMessage() for record in caplog.records] == [
        f"A test observer ({__name__}._Observer) failed in started (RuntimeError: no watch); "
        "the works go on unobserved by it there. This is logged once for its class."
    ]
