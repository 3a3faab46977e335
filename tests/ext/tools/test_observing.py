"""A tool call observer that fails to watch a call: logged once, the calls go on unwatched."""

from __future__ import annotations

from typing import Any, cast

import pytest

from miniagents.ext.tools import observing
from miniagents.ext.tools.observing import ToolCallWatch, observe_tool_calls, watch_tool_call


@pytest.fixture(autouse=True)
def _logged_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """The failures logged before (once per class and place for the process) forgotten."""
    monkeypatch.setattr(observing._failures, "_logged", set())


class _Broken:
    """An observer whose ``tool_call_started`` raises."""

    def tool_call_started(self, tool: Any, call: Any, result: Any) -> ToolCallWatch | None:
        raise RuntimeError(f"no watch for {call}")


class _Watching:
    """An observer that watches every call with itself."""

    def tool_call_started(self, tool: Any, call: Any, result: Any) -> ToolCallWatch | None:
        self.told = (tool, call, result)
        return self

    def tool_call_ended(self, error: BaseException | None) -> None:
        pass


def test_a_failing_observer_is_logged_once_and_the_calls_go_unwatched(
    caplog: pytest.LogCaptureFixture,
) -> None:
    none = cast("Any", None)
    before = observe_tool_calls(_Broken())
    try:
        assert watch_tool_call(none, cast("Any", "FIRST"), none) is None
        assert watch_tool_call(none, cast("Any", "SECOND"), none) is None
    finally:
        observe_tool_calls(before)
    assert [record.getMessage() for record in caplog.records] == [
        f"A tool call observer ({__name__}._Broken) failed in tool_call_started (RuntimeError: "
        "no watch for FIRST); the calls go on unobserved by it there. This is logged once for "
        "its class."
    ]


def test_the_observers_watch_is_given_the_call() -> None:
    observer = _Watching()
    before = observe_tool_calls(observer)
    try:
        assert (
            watch_tool_call(cast("Any", "tool"), cast("Any", "call"), cast("Any", "result"))
            is observer
        )
    finally:
        observe_tool_calls(before)
    assert observer.told == ("tool", "call", "result")
