"""``pipeline`` over a real LLM agent (the OpenAI SDK against the fake server): no lost calls."""

from __future__ import annotations

from contextlib import aclosing

import openai

from miniagents import MiniAgents, pipeline
from miniagents.ext.llm.openai import openai_agent
from miniagents.testing import FakeLLMServer
from tests.fakes.fixtures import WAIT, fake_llm  # noqa: F401


async def test_every_item_is_one_streamed_call(fake_llm: FakeLLMServer) -> None:  # noqa: F811
    fake_llm.reply(tokens=["a", "b", "c"], times=20)
    async with (
        openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test") as client,
        MiniAgents(),
    ):
        agent = openai_agent.fork(model="gpt-4o-mini", async_client=client)
        results = [r async for r in pipeline(agent, [f"q{i}" for i in range(20)], max_in_flight=4)]
    assert [str(result.get()) for result in results] == ["abc"] * 20
    assert sorted(
        request.json["messages"][-1]["content"] for request in fake_llm.requests
    ) == sorted(f"q{i}" for i in range(20))
    assert all(request.stream for request in fake_llm.requests)


async def test_stopping_early_closes_the_connections_of_the_calls_in_flight(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(tokens=["done"])  # the first call to arrive ends
    fake_llm.reply(tokens=["one", "two"], hang_after=1, times=3)  # the others hang
    async with (
        openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test") as client,
        MiniAgents(),
    ):
        agent = openai_agent.fork(model="gpt-4o-mini", async_client=client)
        run = pipeline(agent, ["a", "b", "c", "d"], ordered=False)
        async with aclosing(run.__aiter__()) as results:
            first = await anext(results)
            assert str(first.get()) == "done"
            await fake_llm.wait_requests_async(4, WAIT)
        # closed: the three calls in flight were cancelled and their connections closed
        for index in range(1, 4):
            assert await fake_llm.wait_disconnected_async(index, WAIT)
