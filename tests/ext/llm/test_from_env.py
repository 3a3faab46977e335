"""``llm_agent_from_env`` picks OpenAI, then Anthropic (a key or a bearer token), then offline."""

from __future__ import annotations

import pytest

from miniagents import MiniAgents
from miniagents.errors import LLMAuthenticationError
from miniagents.ext.llm.anthropic import anthropic_agent
from miniagents.ext.llm.from_env import (
    DEFAULT_ANTHROPIC_MODEL,
    DEFAULT_OPENAI_MODEL,
    llm_agent_from_env,
)
from miniagents.ext.llm.offline import OfflineMessage, offline_agent
from miniagents.ext.llm.openai import openai_agent
from miniagents.testing import FakeLLMServer
from tests.fakes.fixtures import fake_llm  # noqa: F401

VARIABLES = (
    "OPENAI_API_KEY",
    "OPENAI_MODEL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_MODEL",
    "ANTHROPIC_BASE_URL",
)
"""What the tests set: none of them is set when a test starts, whatever the shell had."""


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_openai_when_its_key_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    agent = llm_agent_from_env(system="Be brief.", max_tokens=10)
    assert agent.func is openai_agent.func
    assert repr(agent) == repr(
        openai_agent.fork(model=DEFAULT_OPENAI_MODEL, system="Be brief.", max_tokens=10)
    )
    monkeypatch.setenv("OPENAI_MODEL", "gpt-x")
    assert "'model': 'gpt-x'" in repr(llm_agent_from_env())


def test_anthropic_when_only_its_key_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    agent = llm_agent_from_env(max_tokens=10)
    assert agent.func is anthropic_agent.func
    assert f"'model': '{DEFAULT_ANTHROPIC_MODEL}'" in repr(agent)
    assert "'max_tokens': 10" in repr(agent)
    monkeypatch.setenv("ANTHROPIC_MODEL", "claude-x")
    assert "'model': 'claude-x'" in repr(llm_agent_from_env())


def test_anthropic_when_only_its_bearer_token_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "t")
    agent = llm_agent_from_env(system="Be brief.")
    assert agent.func is anthropic_agent.func
    assert repr(agent) == repr(
        anthropic_agent.fork(model=DEFAULT_ANTHROPIC_MODEL, system="Be brief.")
    )


def test_openai_first_when_anthropic_has_a_bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "t")
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    assert llm_agent_from_env().func is openai_agent.func


@pytest.mark.parametrize("empty", ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"])
def test_an_empty_anthropic_variable_is_not_a_key(
    monkeypatch: pytest.MonkeyPatch, empty: str
) -> None:
    monkeypatch.setenv(empty, "")
    assert llm_agent_from_env().func is offline_agent.func


async def test_the_bearer_token_alone_reaches_anthropic(
    monkeypatch: pytest.MonkeyPatch,
    fake_llm: FakeLLMServer,  # noqa: F811 - the fixture: a local server, no network
) -> None:
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "secret-token")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_llm.anthropic_base_url)
    fake_llm.reply(["Hi."])
    async with MiniAgents():  # the context's client, made from the environment
        assert str(await llm_agent_from_env().inquire("Hello")) == "Hi."
    [request] = fake_llm.requests
    assert request.path == "/v1/messages"
    assert request.json["model"] == DEFAULT_ANTHROPIC_MODEL
    assert request.headers["authorization"] == "Bearer secret-token"
    assert "x-api-key" not in request.headers


async def test_anthropic_without_a_key_or_a_token_names_both() -> None:
    async with MiniAgents():
        with pytest.raises(LLMAuthenticationError) as raised:
            await anthropic_agent.inquire("Hello", model="claude-x")
    assert str(raised.value) == (
        "No Anthropic API key: set ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN, a bearer "
        "token), or pass async_client=anthropic.AsyncAnthropic(api_key=...) to the agent."
    )


async def test_the_offline_model_without_a_key() -> None:
    agent = llm_agent_from_env(offline_reply="Hi there.", token_delay=0.0, max_tokens=10)
    assert agent.func is offline_agent.func
    async with MiniAgents():
        assert str(await agent.inquire("Hello")) == "Hi there."


def test_the_options_given_are_bound_and_only_those(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    agent = llm_agent_from_env(temperature=0.0, stall_timeout=None)
    assert repr(agent) == repr(
        openai_agent.fork(
            model=DEFAULT_OPENAI_MODEL, system=None, temperature=0.0, stall_timeout=None
        )
    )


async def test_the_offline_model_takes_the_common_options() -> None:
    agent = llm_agent_from_env(
        offline_reply="one two three", token_delay=0.0, max_tokens=2, temperature=0.5
    )
    async with MiniAgents():
        message = (await agent.inquire("Hello"))[0]
    assert isinstance(message, OfflineMessage)
    assert message.text == "one two "
    assert message.finish_reason == "length"
