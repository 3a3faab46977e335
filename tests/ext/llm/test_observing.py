"""An LLM call observer that fails: logged once per place, and the calls go on unobserved
(by it; the observers beside it are told everything)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from miniagents import MiniAgents
from miniagents.ext.llm import observing
from miniagents.ext.llm.observing import (
    LLMCallWatch,
    end_llm_call,
    llm_call_observers,
    observe_llm_calls,
    watch_llm_call,
)
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.llm.provider import LLMCall, LLMEvent, LLMProvider

_LOGGED = [
    f"An LLM call observer ({__name__}._Broken) failed in llm_call_started (RuntimeError: "
    "no watch for FIRST); the calls go on unobserved by it there. This is logged once for "
    "its class.",
    f"An LLM call observer ({__name__}._Broken) failed in call_ended (RuntimeError: no end); "
    "the calls go on unobserved by it there. This is logged once for its class.",
]
"""What a broken observer's calls log (each once), the first call's agent named FIRST."""


@pytest.fixture(autouse=True)
def _logged_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """The failures logged before (once per class and place for the process) forgotten."""
    monkeypatch.setattr(observing._failures, "_logged", set())


class _Broken:
    """An observer and its watch, each of whose methods raises."""

    def llm_call_started(
        self, agent_alias: str, provider: LLMProvider[Any, Any], call: LLMCall
    ) -> LLMCallWatch | None:
        raise RuntimeError(f"no watch for {agent_alias}")

    def events(self, events: AsyncIterator[LLMEvent]) -> AsyncIterator[LLMEvent]:
        return events

    def call_ended(self, error: BaseException | None) -> None:
        raise RuntimeError("no end")


def test_a_failing_observer_is_logged_once_per_method_and_the_calls_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = cast("LLMProvider[Any, Any]", object())
    call = cast("LLMCall", object())
    before = observe_llm_calls(_Broken())
    try:
        assert watch_llm_call("FIRST", provider, call) is None
        assert watch_llm_call("SECOND", provider, call) is None
        end_llm_call(_Broken(), None)
        end_llm_call(_Broken(), None)
    finally:
        observe_llm_calls(before)
    messages = [record.getMessage() for record in caplog.records]
    assert messages == _LOGGED


class _Told:
    """An observer that is its own watch, and notes what it is told."""

    def __init__(self) -> None:
        self.told: list[str] = []

    def llm_call_started(
        self, agent_alias: str, provider: LLMProvider[Any, Any], call: LLMCall
    ) -> LLMCallWatch | None:
        self.told.append(f"start {agent_alias}")
        return self

    async def events(self, events: AsyncIterator[LLMEvent]) -> AsyncIterator[LLMEvent]:
        async for event in events:
            self.told.append(f"event {event}")
            yield event

    def call_ended(self, error: BaseException | None) -> None:
        self.told.append("end")


class _EndsBroken:
    """An observer whose watch fails as its call ends."""

    def llm_call_started(
        self, agent_alias: str, provider: LLMProvider[Any, Any], call: LLMCall
    ) -> LLMCallWatch | None:
        return _Broken()


async def test_failing_observers_beside_another_are_logged_once_and_it_is_told_everything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = cast("LLMProvider[Any, Any]", object())
    call = cast("LLMCall", object())

    async def provided() -> AsyncIterator[LLMEvent]:
        yield "Hi"

    told, broken, ends_broken = _Told(), _Broken(), _EndsBroken()
    for observer in (broken, told, ends_broken):
        llm_call_observers.add(observer)
    try:
        for alias in ("FIRST", "SECOND"):
            watch = watch_llm_call(alias, provider, call)
            assert watch is not None
            assert [event async for event in watch.events(provided())] == ["Hi"]
            end_llm_call(watch, None)
    finally:
        observe_llm_calls(None)
    assert told.told == ["start FIRST", "event Hi", "end", "start SECOND", "event Hi", "end"]
    messages = [record.getMessage() for record in caplog.records]
    assert messages == _LOGGED


class _EventsBroken:
    """An observer whose watch's ``events`` raises (it is no generator: the call raises)."""

    def __init__(self) -> None:
        self.ended: list[BaseException | None] = []

    def llm_call_started(
        self, agent_alias: str, provider: LLMProvider[Any, Any], call: LLMCall
    ) -> LLMCallWatch | None:
        return self

    def events(self, events: AsyncIterator[LLMEvent]) -> AsyncIterator[LLMEvent]:
        raise RuntimeError("no events")

    def call_ended(self, error: BaseException | None) -> None:
        self.ended.append(error)


async def test_a_watch_whose_events_raises_is_logged_once_and_the_call_replies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent = offline_agent.fork(reply=iter(["Hello", "Again"]), token_delay=0)
    broken, told = _EventsBroken(), _Told()
    observe_llm_calls(broken)  # alone, then beside another observer
    try:
        async with MiniAgents():
            assert str(await agent.inquire("hi")) == "Hello"
            llm_call_observers.add(told)
            assert str(await agent.inquire("hi")) == "Again"
    finally:
        observe_llm_calls(None)
    assert broken.ended == [None, None]  # (told each call's end all the same)
    assert told.told[0] == "start OFFLINE_AGENT"
    assert told.told[-1] == "end"
    assert "event Again" in told.told
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        f"An LLM call observer ({__name__}._EventsBroken) failed in events (RuntimeError: "
        "no events); the calls go on unobserved by it there. This is logged once for its class."
    ]
