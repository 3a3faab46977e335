"""An LLM call observer that fails: logged once per place, and the calls go on unobserved."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from miniagents.ext.llm.observing import (
    LLMCallWatch,
    end_llm_call,
    observe_llm_calls,
    watch_llm_call,
)
from miniagents.ext.llm.provider import LLMCall, LLMEvent, LLMProvider


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
    assert messages == [
        "The LLM call observer failed in llm_call_started (RuntimeError: no watch for FIRST); "
        "the calls go on unobserved there. This is logged once.",
        "The LLM call observer failed in call_ended (RuntimeError: no end); the calls go on "
        "unobserved there. This is logged once.",
    ]
