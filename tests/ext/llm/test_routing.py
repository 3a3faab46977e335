"""The routing hook: the calls of the model go through the routes set where they are made,
nearest the agent by rank, whatever order they were set in; without one, straight through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from miniagents import MiniAgents
from miniagents.ext.llm.provider import Finish, LLMCall, LLMEvent, LLMOptions, LLMProvider
from miniagents.ext.llm.routing import (
    Proceed,
    install_llm_route,
    llm_routes,
    route_llm_calls,
)
from miniagents.testing import scripted_agent


class Marking:
    """A route that notes the calls it is given and marks the text of their replies."""

    def __init__(self, rank: int, mark: str, seen: list[str]) -> None:
        self.rank = rank
        self.mark = mark
        self.seen = seen

    def llm_call(
        self, provider: LLMProvider[Any, Any], call: LLMCall, options: LLMOptions, proceed: Proceed
    ) -> AsyncIterator[LLMEvent]:
        self.seen.append(self.mark)
        return self._events(proceed(replace(call, model=call.model + self.mark), options))

    async def _events(self, events: AsyncIterator[LLMEvent]) -> AsyncIterator[LLMEvent]:
        async for event in events:
            yield f"{self.mark}{event}" if isinstance(event, str) and event else event


async def test_routes_nest_by_rank_whatever_order_they_were_set_in() -> None:
    seen: list[str] = []
    near, far = Marking(0, "<near>", seen), Marking(10, "<far>", seen)
    calls: list[LLMCall] = []
    agent = scripted_agent("hi", "hi", calls=calls)
    async with MiniAgents():
        with route_llm_calls(far), route_llm_calls(near):
            assert llm_routes() == (near, far)
            reply = await agent.inquire("x")
        plain = await agent.inquire("x")
    assert seen == ["<near>", "<far>"]
    assert str(reply[-1]) == "<near><far>hi"  # the near route sees what the far one gave
    assert calls[0].model.endswith("<near><far>")  # and the far one the near one's call
    assert str(plain[-1]) == "hi"  # outside the block: straight to the provider
    assert llm_routes() == ()


async def test_an_installed_route_is_given_every_call_until_removed() -> None:
    seen: list[str] = []
    remove = install_llm_route(Marking(5, "<all>", seen))
    try:
        async with MiniAgents():
            reply = await scripted_agent("hi").inquire("x")
    finally:
        remove()
    async with MiniAgents():
        after = await scripted_agent("hi").inquire("x")
    assert str(reply[-1]) == "<all>hi"
    assert str(after[-1]) == "hi"
    assert seen == ["<all>"]


async def test_a_route_may_answer_without_the_provider() -> None:
    class Answering:
        rank = 0

        def llm_call(
            self,
            provider: LLMProvider[Any, Any],
            call: LLMCall,
            options: LLMOptions,
            proceed: Proceed,
        ) -> AsyncIterator[LLMEvent]:
            return self._events()

        async def _events(self) -> AsyncIterator[LLMEvent]:
            yield "from the route"
            yield Finish("stop", 1, 1, replayed=True)

    calls: list[LLMCall] = []
    async with MiniAgents():
        with route_llm_calls(Answering()):
            reply = await scripted_agent("unused", calls=calls).inquire("x")
    assert str(reply[-1]) == "from the route"
    assert reply[-1].usage is not None
    assert reply[-1].usage.cost_usd == 0.0
    assert calls == []  # the provider was never asked
