"""Usage details, cost and budgets over real HTTP: the real SDKs against the fake server.

For every API: OpenAI Chat Completions, the Responses API and Anthropic Messages. The
fake server reports the usage details in each wire format (``cached_tokens``,
``cache_write_tokens``, ``reasoning_tokens``), and records how each response ended, which
proves that a stream stopped by a budget closed its connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, cast

import anthropic
import genai_prices
import openai
import pytest

from miniagents import MessageSequencePromise, MiniAgent, MiniAgents
from miniagents.ext.llm import (
    Budget,
    BudgetExceededError,
    LLMMessage,
    TokenUsage,
    usage_totals,
)
from miniagents.ext.llm.anthropic import anthropic_agent
from miniagents.ext.llm.openai import openai_agent
from miniagents.testing import FAST_RETRY, FakeLLMServer
from miniagents.testing.errors import FakeLLMServerError
from tests.fakes.fixtures import WAIT, fake_llm  # noqa: F401

SDKClient = openai.AsyncOpenAI | anthropic.AsyncAnthropic


@dataclass(frozen=True)
class API:
    """One API under test: its agent, its SDK, a model the price table knows."""

    name: Literal["openai", "responses", "anthropic"]
    agent: MiniAgent[...]
    model: str
    provider: str  # genai-prices' id

    def client(self, server: FakeLLMServer) -> SDKClient:
        if self.name == "anthropic":
            return anthropic.AsyncAnthropic(base_url=server.anthropic_base_url, api_key="test")
        return openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test")


APIS = [
    API("openai", openai_agent, "gpt-4o-mini", "openai"),
    API("responses", openai_agent.fork(api="responses"), "gpt-4o-mini", "openai"),
    API("anthropic", anthropic_agent, "claude-haiku-4-5", "anthropic"),
]


@pytest.fixture(params=APIS, ids=[api.name for api in APIS])
def api(request: pytest.FixtureRequest) -> API:
    return cast(API, request.param)


@pytest.fixture
async def client(api: API, fake_llm: FakeLLMServer) -> AsyncIterator[SDKClient]:  # noqa: F811
    async with api.client(fake_llm) as made:
        yield made


def ask(api: API, client: SDKClient, text: str, **kwargs: Any) -> MessageSequencePromise:
    kwargs.setdefault("model", api.model)
    return api.agent.inquire(text, async_client=client, **kwargs)


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_the_usage_details_and_the_cost_come_through_each_wire_format(
    api: API,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    stream: bool,
) -> None:
    written = 100 if api.name == "anthropic" else 0  # only Anthropic reports cache writes
    reasoning = 0 if api.name == "anthropic" else 20  # only OpenAI reports reasoning tokens
    fake_llm.reply(
        tokens=["Hel", "lo"],
        usage=(1000, 50),
        cached_tokens=200,
        cache_write_tokens=written,
        reasoning_tokens=reasoning,
    )
    async with MiniAgents() as context:
        message = (await ask(api, client, "hi", stream=stream))[0]
    expected = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=1000,
            output_tokens=50,
            cache_read_tokens=200,
            cache_write_tokens=written or None,
        ),
        api.model,
        provider_id=api.provider,
    )
    assert isinstance(message, LLMMessage)
    assert message.usage is not None
    assert message.usage.cost_usd == pytest.approx(float(expected.total_price))
    assert message.usage.model_copy(update={"cost_usd": None}) == TokenUsage(
        input_tokens=1000,  # every prompt token, the cache's included (Anthropic's summed)
        output_tokens=50,
        cached_input_tokens=200,
        cache_write_tokens=100 if api.name == "anthropic" else None,
        reasoning_tokens=None if api.name == "anthropic" else 20,
    )
    totals = usage_totals(context)
    assert (totals.requests, totals.input_tokens, totals.output_tokens) == (1, 1000, 50)
    assert (totals.cached_input_tokens, totals.cache_write_tokens) == (200, written)
    assert totals.reasoning_tokens == reasoning
    assert totals.cost_usd == pytest.approx(float(expected.total_price))


async def test_a_model_the_price_table_does_not_know_has_no_cost(
    api: API,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(tokens=["ok"], usage=(3, 1))
    async with MiniAgents() as context:
        message = (await ask(api, client, "hi", model="no-such-model-v9"))[0]
    assert isinstance(message, LLMMessage)
    assert message.usage is not None
    assert message.usage.cost_usd is None
    assert usage_totals(context).unpriced_requests == 1


async def test_a_budget_stops_the_streams_in_flight_when_a_limit_is_crossed(
    api: API,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # Two calls stream, paused by the server after their first token; a third finishes and
    # crosses the token limit. The two stop at their next token (its connection closed),
    # and a fourth call is not made. Over the limit: the third call's report (its 20
    # prompt tokens come only at its end) and one token per call in flight.
    for model in ("model-b", "model-c"):
        fake_llm.reply(  # then it waits until the client closes the connection
            tokens=["1", "2", "3", "4"], usage=(4, 4), pause_after=1, hang_after=2, for_model=model
        )
    fake_llm.reply(tokens=["a"], usage=(20, 1), for_model="model-a")
    budget = Budget(max_total_tokens=10)
    received: dict[str, list[str]] = {"model-b": [], "model-c": []}
    first_tokens = {model: asyncio.Event() for model in received}

    async def read(model: str) -> BaseException | None:
        try:
            async for promise in ask(api, client, "go", model=model, budget=budget):
                async for token in promise:
                    received[model].append(token)
                    first_tokens[model].set()  # counted before it came here
        except BudgetExceededError as error:
            return error
        return None

    async with MiniAgents():
        streaming = [asyncio.create_task(read(model)) for model in ("model-b", "model-c")]
        paused = [await fake_llm.wait_paused_async(index, WAIT) for index in (0, 1)]
        for event in first_tokens.values():
            await asyncio.wait_for(event.wait(), WAIT)
        assert budget.in_flight == 2
        answer = await ask(api, client, "go", model="model-a", budget=budget)
        assert str(answer[0]) == "a"  # it finished: a call is not stopped by its own end
        assert budget.usage.total_tokens == 2 + 21  # b's and c's first tokens, then a's 20 + 1
        for record in paused:
            record.resume()
        errors = await asyncio.gather(*streaming)
        for index in (0, 1):
            assert await fake_llm.wait_disconnected_async(index, WAIT)
        with pytest.raises(BudgetExceededError, match="used up"):
            await ask(api, client, "go", model="model-a", budget=budget)
    assert all(isinstance(error, BudgetExceededError) for error in errors)
    error = cast(BudgetExceededError, errors[0])
    assert error.limit == "max_total_tokens"
    assert "was exceeded" in str(error)
    assert received == {"model-b": ["1"], "model-c": ["1"]}  # stopped at the next token
    assert [record.outcome for record in fake_llm.requests] == [
        "disconnected",
        "disconnected",
        "complete",
    ]  # and the fourth call was never made
    assert budget.usage.requests == 3
    assert budget.in_flight == 0
    overshoot = budget.usage.total_tokens - 10
    assert budget.usage.total_tokens == 25  # 21 of model-a, and two tokens of each stream
    assert overshoot <= 20 + 2  # model-a's unreported prompt, one token per call in flight


async def test_a_budget_refuses_calls_past_max_requests_without_a_request(
    api: API,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    budget = Budget(max_requests=2)
    fake_llm.reply(tokens=["ok"], times=2)
    async with MiniAgents():
        replies = [ask(api, client, f"q{index}", budget=budget) for index in range(3)]
        outcomes = await asyncio.gather(*replies, return_exceptions=True)
    refused = [outcome for outcome in outcomes if isinstance(outcome, BudgetExceededError)]
    assert len(refused) == 1  # parallel calls: max_requests is exact
    assert len(fake_llm.requests) == 2
    assert budget.usage.requests == 2


async def test_the_sdks_own_retry_is_part_of_one_call(
    api: API,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.fail(500, headers=FAST_RETRY)
    fake_llm.reply(tokens=["ok"], usage=(2, 1))
    budget = Budget(max_requests=1)
    async with MiniAgents():
        await ask(api, client, "hi", budget=budget)
    assert len(fake_llm.requests) == 2  # the SDK retried the 500 by itself
    assert budget.usage.requests == 1
    assert budget.usage.total_tokens == 3


def test_the_fake_server_refuses_usage_details_that_do_not_add_up(
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    with pytest.raises(FakeLLMServerError, match="cached_tokens=8"):
        fake_llm.reply(usage=(5, 1), cached_tokens=8)
    with pytest.raises(FakeLLMServerError, match="reasoning_tokens=-1"):
        fake_llm.reply(reasoning_tokens=-1)
