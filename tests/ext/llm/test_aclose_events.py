"""``aclose_events``: a provider's stream of events closed as a wrapper of it closes it."""

from __future__ import annotations

from collections.abc import AsyncIterator

from miniagents.ext.llm.provider import LLMEvent, aclose_events


async def test_an_async_generator_is_closed_and_its_finally_runs() -> None:
    closed: list[str] = []

    async def reply() -> AsyncIterator[LLMEvent]:
        try:
            yield "Hel"
            yield "lo"
        finally:
            closed.append("closed")

    events = reply()
    assert await anext(events) == "Hel"
    await aclose_events(events)
    assert closed == ["closed"]
    assert [event async for event in events] == []  # (ended: nothing more streams)


class _NoClose:
    """An iterator of events without ``aclose``: nothing to close."""

    def __aiter__(self) -> _NoClose:
        return self

    async def __anext__(self) -> LLMEvent:
        return "token"


async def test_an_iterator_without_aclose_is_left_as_it_is() -> None:
    events = _NoClose()
    await aclose_events(events)
    assert await anext(events) == "token"
