"""A model that calls tools when its agent has none fails the reply with an ``LLMResponseError``.

The API was sent no tools, so there is nothing to run the calls: the reply must not end
as an empty answer, nor the loop answer the calls with errors and ask the model again.
Against the fake server with the real SDKs (OpenAI Chat Completions, the Responses API,
Anthropic Messages), streamed and not; and with the offline model.
"""

from __future__ import annotations

import pytest

from miniagents import Message, MessagePromise, MessageSequencePromise, MiniAgents
from miniagents.errors import LLMResponseError, MiniAgentsError
from miniagents.ext.llm.offline import CallTool, offline_agent
from miniagents.ext.llm.structured import structured
from miniagents.testing import FakeLLMServer, ToolCall
from tests.ext.llm.providers import LLM, SDKClient
from tests.fakes.fixtures import fake_llm  # noqa: F401


class Weather(Message):
    city: str
    celsius: float


def no_tools_error(alias: str, model: str, tools: str, said: str = "") -> str:
    """The error's message for an agent ``alias`` whose model called ``tools``."""
    return (
        f"The agent {alias} got no answer: the model {model!r} called {tools}, but the agent "
        f"has no tools, so none was run.{said} Give the agent the tools the model may call, "
        f"with {alias.lower()}.fork(tools=[...]) or inquire(..., tools=[...]), or tell the "
        "model (e.g. in the system prompt) to answer without calling tools."
    )


async def collect(reply: MessageSequencePromise, promises: list[MessagePromise]) -> None:
    """Keep the reply's message promises in ``promises``; then wait for the whole reply."""
    async for promise in reply:
        promises.append(promise)
    await reply


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_a_reply_of_tool_calls_only_fails_every_message_of_the_reply(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    stream: bool,
) -> None:
    fake_llm.reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3})])
    fake_llm.reply(["5"])  # what asking the model again would get
    agent = llm.agent.fork(model=llm.model, async_client=client, stream=stream)
    async with MiniAgents():
        reply = agent.inquire("2 + 3?")
        promises: list[MessagePromise] = []
        with pytest.raises(LLMResponseError) as raised:
            await collect(reply, promises)
        for promise in promises:  # the text message too: never an empty answer
            with pytest.raises(LLMResponseError) as failed:
                await promise
            assert failed.value is raised.value
    assert isinstance(raised.value, MiniAgentsError)
    assert str(raised.value) == no_tools_error(llm.alias, llm.model, "the tool 'add'")
    assert promises  # the reply had its messages, each failed
    assert len(fake_llm.requests) == 1  # the model is not asked again


async def test_what_the_model_said_before_its_calls_is_in_the_error(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(
        tokens=["Let me ", "check."],
        tool_calls=[
            ToolCall("weather", {"city": "Paris"}),
            ToolCall("clock", {}),
            ToolCall("weather", {"city": "Rome"}),
        ],
    )
    agent = llm.agent.fork(model=llm.model, async_client=client)
    async with MiniAgents():
        with pytest.raises(LLMResponseError) as raised:
            await agent.inquire("Weather and time?")
    assert str(raised.value) == no_tools_error(
        llm.alias,
        llm.model,
        "the tools 'weather', 'clock'",
        " Before its calls it said: 'Let me check.'.",
    )
    assert len(fake_llm.requests) == 1


async def test_a_structured_answer_of_tool_calls_is_not_retried(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.reply(tool_calls=[ToolCall("weather", {"city": "Paris"})])
    fake_llm.reply(['{"city": "Paris", "celsius": 21}'])  # what asking again would get
    agent = structured(llm.agent.fork(model=llm.model, async_client=client), Weather)
    async with MiniAgents():
        with pytest.raises(LLMResponseError) as raised:
            await agent.inquire("Weather in Paris?")
    assert str(raised.value) == no_tools_error(llm.alias, llm.model, "the tool 'weather'")
    assert len(fake_llm.requests) == 1


async def test_the_offline_model_fails_the_same_way() -> None:
    agent = offline_agent.fork(token_delay=0, reply=CallTool("add", {"a": 2, "b": 3}))
    async with MiniAgents():
        with pytest.raises(LLMResponseError) as raised:
            await agent.inquire("2 + 3?")
    assert str(raised.value) == no_tools_error("OFFLINE_AGENT", "offline", "the tool 'add'")


async def test_the_error_names_few_tools_and_cuts_their_names_whatever_the_model_wrote(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # a prompt injection may write names of any length, and any number of calls
    long_name = "n" * 200_000
    fake_llm.reply(tool_calls=[ToolCall(f"{index:02}{long_name}") for index in range(12)])
    agent = llm.agent.fork(model=llm.model, async_client=client)
    async with MiniAgents():
        with pytest.raises(LLMResponseError) as raised:
            await agent.inquire("Go.")
    shown = ", ".join(f"'{index:02}{'n' * 97}…'" for index in range(10))
    assert str(raised.value) == no_tools_error(llm.alias, llm.model, f"the tools {shown}, 2 more")
