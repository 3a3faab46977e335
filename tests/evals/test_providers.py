"""An eval of each provider's LLM agent, over its real SDK, against the fake server.

The reply tree, the tokens and the cost come from what the API reported; the evaluators
of the text, of the tree and of the cost read them, and the report renders.
"""

from __future__ import annotations

import pytest

from miniagents.evals import (
    Case,
    Contains,
    MaxCost,
    ModelCall,
    NoFailedSteps,
    ToolCalledWith,
    ToolsCalled,
    aevaluate,
)
from miniagents.evals.html import report_html
from miniagents.ext.llm import TokenUsage
from miniagents.ext.llm.pricing import cost_usd
from miniagents.testing import FakeLLMServer, ToolCall
from tests.ext.llm.providers import LLM, SDKClient, client, llm, server  # noqa: F401
from tests.fakes.fixtures import fake_llm  # noqa: F401

MODELS = {"openai": "gpt-4o-mini", "responses": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}
"""Models with a price (the fake server answers whatever model is asked)."""


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}."


async def test_an_eval_of_a_tool_calling_agent_sees_its_calls_tokens_and_cost(
    llm: LLM,  # noqa: F811
    client: SDKClient,  # noqa: F811
    server: FakeLLMServer,  # noqa: F811
) -> None:
    model = MODELS[llm.name]
    server.reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})], usage=(40, 9))
    server.reply(["It is ", "sunny ", "in Paris."], usage=(70, 5))
    agent = llm.agent.fork(model=model, async_client=client, tools=[get_weather])
    evaluators = [
        Contains(),
        ToolsCalled(["get_weather"], order="exact"),
        ToolCalledWith("get_weather", {"city": "Paris"}),
        NoFailedSteps(),
        MaxCost(0.01),
    ]
    report = await aevaluate(
        agent, [Case("Weather in Paris?", "sunny")], evaluators, keep_trees=True
    )
    result = report.results[0]
    assert result.error is None, result.error_message
    assert result.output == "It is sunny in Paris."
    assert all(score.passed for score in result.scores.values()), result.scores
    assert result.tree is not None
    calls = result.tree.model_calls()
    assert [(call.model, call.provider) for call in calls] == [(model, llm.sdk)] * 2
    assert [(call.input_tokens, call.output_tokens) for call in calls] == [(40, 9), (70, 5)]
    expected = sum(
        cost_usd(model, TokenUsage(input_tokens=i, output_tokens=o), llm.sdk) or 0.0
        for i, o in ((40, 9), (70, 5))
    )
    assert expected > 0
    assert result.usage.cost_usd == pytest.approx(expected)
    assert result.usage.unpriced_requests == 0
    assert all(isinstance(call, ModelCall) and call.first_token is not None for call in calls)
    assert result.first_token is not None
    assert result.duration is not None
    assert result.first_token <= result.duration
    assert f"{result.usage.total_tokens:,}" in report.table()
    assert "get_weather" in report_html(report)
