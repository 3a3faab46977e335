"""``max_retries`` and ``timeout`` of the OpenAI and Anthropic agents, over real HTTP.

The real SDK clients talk to the fake provider server; the clients are made with other
settings (5 retries, a long timeout), so that what the test sees is the agent's own.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import AsyncIterator
from typing import Any, Literal

import anthropic
import openai
import pytest

from miniagents import MiniAgent, MiniAgents
from miniagents.ext.llm.anthropic import anthropic_agent
from miniagents.ext.llm.errors import LLMConfigurationError, LLMServerError, LLMTimeoutError
from miniagents.ext.llm.openai import openai_agent
from miniagents.testing import FAST_RETRY, FakeLLMServer
from tests.fakes.fixtures import fake_llm  # noqa: F401

SDKClient = openai.AsyncOpenAI | anthropic.AsyncAnthropic


@pytest.fixture(params=["openai", "responses", "anthropic"])
async def agent(
    request: pytest.FixtureRequest,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> AsyncIterator[MiniAgent[..., Any]]:
    """An LLM agent of each API, with a client of the fake server (5 retries, 60 s)."""
    settings: dict[str, Any] = {"api_key": "test", "max_retries": 5, "timeout": 60.0}
    client: SDKClient
    if request.param == "anthropic":
        client = anthropic.AsyncAnthropic(base_url=fake_llm.anthropic_base_url, **settings)
        made: MiniAgent[..., Any] = anthropic_agent.fork(model="claude-test", async_client=client)
    else:
        client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, **settings)
        api: Literal["chat_completions", "responses"] = (
            "chat_completions" if request.param == "openai" else "responses"
        )
        made = openai_agent.fork(model="gpt-test", async_client=client, api=api)
    async with client:
        yield made


@pytest.mark.parametrize("retries", [0, 2])
async def test_max_retries_is_how_many_times_the_sdk_tries_again(
    agent: MiniAgent[..., Any],
    fake_llm: FakeLLMServer,  # noqa: F811
    retries: int,
) -> None:
    fake_llm.fail(500, headers=FAST_RETRY, times=6)  # more than any setting here tries
    async with MiniAgents():
        with pytest.raises(LLMServerError):
            await agent.inquire("hi", max_retries=retries)
    assert [request.status for request in fake_llm.requests] == [500] * (1 + retries)


async def test_the_clients_own_retries_without_max_retries(
    agent: MiniAgent[..., Any],
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.fail(500, headers=FAST_RETRY, times=2)
    fake_llm.reply(["Hi"])
    async with MiniAgents():
        answer = (await agent.inquire("hi"))[0]
    assert answer.text == "Hi"
    assert [request.status for request in fake_llm.requests] == [500, 500, 200]


@pytest.mark.parametrize("where", ["before-the-reply", "mid-reply"])
async def test_timeout_fails_a_request_that_waits_longer(
    agent: MiniAgent[..., Any],
    fake_llm: FakeLLMServer,  # noqa: F811
    where: str,
) -> None:
    # the server sends nothing more until the client leaves: only the timeout ends it
    fake_llm.reply(["Hel", "lo"], hang_after=0 if where == "before-the-reply" else 1)
    async with MiniAgents():
        with pytest.raises(LLMTimeoutError, match="did not answer in time"):
            await agent.inquire("hi", timeout=0.2, max_retries=0)
    assert len(fake_llm.requests) == 1
    assert await fake_llm.wait_disconnected_async(0)


async def test_the_settings_are_per_agent_on_one_client(
    agent: MiniAgent[..., Any],
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    fake_llm.fail(500, headers=FAST_RETRY, times=2)
    fake_llm.reply(["Hi"])
    async with MiniAgents():
        with pytest.raises(LLMServerError):
            await agent.fork(max_retries=0).inquire("hi")
        answer = (await agent.fork(max_retries=1).inquire("hi"))[0]  # the same client
    assert answer.text == "Hi"
    assert [request.status for request in fake_llm.requests] == [500, 500, 200]


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("max_retries", -1, r"max_retries must be a whole number of at least 0; got -1"),
        ("max_retries", 1.5, r"max_retries must be a whole number of at least 0; got 1\.5"),
        ("max_retries", True, r"max_retries must be a whole number of at least 0; got True"),
        ("timeout", 0, r"timeout must be a positive, finite number of seconds; got 0"),
        ("timeout", float("nan"), r"timeout must be a positive, finite number of seconds; got nan"),
        ("timeout", "5", r"timeout must be a positive, finite number of seconds; got '5'"),
    ],
)
async def test_bad_settings_are_refused(
    agent: MiniAgent[..., Any],
    fake_llm: FakeLLMServer,  # noqa: F811
    option: str,
    value: object,
    says: str,
) -> None:
    async with MiniAgents():
        with pytest.raises(LLMConfigurationError, match=says):
            await agent.inquire("hi", **{option: value})
    assert fake_llm.requests == []


def test_the_client_is_copied_once_per_setting_and_left_as_it_was() -> None:
    from miniagents.ext.llm.sdk_calls import client_with_options

    client = openai.AsyncOpenAI(api_key="test", max_retries=5, timeout=60.0)
    copy = client_with_options(client, 0, 2.5, "openai_agent")
    assert client_with_options(client, 0, 2.5, "openai_agent") is copy
    assert client_with_options(client, None, None, "openai_agent") is client
    assert (copy.max_retries, copy.timeout) == (0, 2.5)
    assert (client.max_retries, client.timeout) == (5, 60.0)
    retries_only = client_with_options(client, 1, None, "openai_agent")
    assert (retries_only.max_retries, retries_only.timeout) == (1, 60.0)


def test_a_timeout_per_call_keeps_a_bounded_number_of_copies_of_the_client() -> None:
    from miniagents.ext.llm.sdk_calls import client_with_options

    client = openai.AsyncOpenAI(api_key="test")
    kept = client_with_options(client, None, 1.0, "openai_agent")
    refs = [weakref.ref(client_with_options(client, None, 2 + n / 1000, "x")) for n in range(200)]
    assert client_with_options(client, None, 1.0, "openai_agent") is not kept  # let go of
    gc.collect()
    alive = [ref for ref in refs if ref() is not None]
    assert 0 < len(alive) <= 32  # the latest used, not one per timeout ever given
    latest = client_with_options(client, None, 2.199, "openai_agent")
    assert latest is refs[-1]()  # the latest used is still the same copy
