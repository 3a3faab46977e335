"""A model's refusal is an ``LLMRefusalError`` carrying its text, never retried.

Against the fake server with the real SDKs (OpenAI Chat Completions: ``refusal`` deltas;
the Responses API: a ``refusal`` content part; Anthropic: ``stop_reason="refusal"``),
streamed and not; and with the offline model (``Refuse``).
"""

from __future__ import annotations

import pytest

from miniagents import Message, MiniAgents
from miniagents.errors import LLMError, LLMRefusalError
from miniagents.ext.llm.offline import Refuse, offline_agent, one_per_call
from miniagents.ext.llm.structured import structured
from miniagents.testing import FakeLLMServer
from tests.ext.llm.providers import LLM, SDKClient
from tests.fakes.fixtures import fake_llm  # noqa: F401

REFUSAL = ["I can't ", "help with ", "that."]


class Weather(Message):
    city: str
    celsius: float


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_a_refused_structured_answer_fails_at_once_with_the_refusal(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    stream: bool,
) -> None:
    fake_llm.reply(refusal=REFUSAL)
    fake_llm.reply(['{"city": "Paris", "celsius": 21}'])  # what a retry would get
    agent = structured(llm.agent.fork(model=llm.model, async_client=client), Weather)
    async with MiniAgents():
        with pytest.raises(LLMRefusalError) as raised:
            await agent.inquire("Weather in Paris?", stream=stream)
    assert isinstance(raised.value, LLMError)
    assert raised.value.text == "I can't help with that."
    assert f"{llm.alias} got no answer" in str(raised.value)
    assert "I can't help with that." in str(raised.value)
    assert len(fake_llm.requests) == 1  # not retried as invalid JSON


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
async def test_a_refused_text_answer_fails_its_message_with_the_refusal(
    llm: LLM,
    client: SDKClient,
    fake_llm: FakeLLMServer,  # noqa: F811
    stream: bool,
) -> None:
    fake_llm.reply(refusal=REFUSAL)
    agent = llm.agent.fork(model=llm.model, async_client=client, stream=stream)
    async with MiniAgents():
        reply = agent.inquire("Something bad")
        promise = await anext(aiter(reply))
        with pytest.raises(LLMRefusalError) as raised:
            await promise
    assert raised.value.text == "I can't help with that."
    assert len(fake_llm.requests) == 1


async def test_the_offline_model_refuses_when_its_script_says_so() -> None:
    agent = offline_agent.fork(token_delay=0, reply=one_per_call(Refuse("Not that."), "{}"))
    async with MiniAgents():
        with pytest.raises(LLMRefusalError) as raised:
            await structured(agent, Weather).inquire("Weather?")
        with pytest.raises(LLMRefusalError):
            await offline_agent.inquire("hi", token_delay=0, reply=Refuse("No."))
    assert raised.value.text == "Not that."
