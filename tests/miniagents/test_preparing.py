"""The interaction preparer hook (``miniagents.miniagents.lowlevel.prepare_interactions``)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator

import pytest

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.miniagents.lowlevel import ObservedAgent, prepare_interactions

_number: contextvars.ContextVar[str] = contextvars.ContextVar("number", default="unnumbered")


class _Numbers:
    """A preparer that numbers the interactions as they are inquired, in their own context."""

    def __init__(self) -> None:
        self.inquired: list[str] = []

    def interaction_inquired(self, agent: ObservedAgent) -> Callable[[], object] | None:
        number = f"{agent.alias}.{len(self.inquired)}"
        self.inquired.append(number)
        return lambda: _number.set(number)


@pytest.fixture
def numbers() -> Iterator[_Numbers]:
    made = _Numbers()
    before = prepare_interactions(made)  # (a durable run's, once this process used DBOS)
    try:
        yield made
    finally:
        assert prepare_interactions(before) is made


@miniagent(alias="NUMBERED")
async def _numbered(ctx: InteractionContext) -> None:
    ctx.reply(_number.get())


async def test_each_interaction_runs_with_what_was_prepared_where_it_was_inquired(
    numbers: _Numbers,
) -> None:
    async with MiniAgents():
        lazy = _numbered.fork(start_asap=False).inquire()  # started later, numbered now
        eager = _numbered.fork(start_asap=True).inquire()
        assert numbers.inquired == ["NUMBERED.0", "NUMBERED.1"]
        assert str(await eager) == "NUMBERED.1"
        assert str(await lazy) == "NUMBERED.0"
        assert _number.get() == "unnumbered"  # the caller's own context is left alone


async def test_without_a_preparer_an_interaction_runs_in_its_callers_context() -> None:
    before = prepare_interactions(None)
    try:
        await _runs_in_its_callers_context()
    finally:
        prepare_interactions(before)


async def _runs_in_its_callers_context() -> None:
    async with MiniAgents():
        _number.set("the caller's")
        assert str(await _numbered.inquire()) == "the caller's"
