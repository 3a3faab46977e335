"""``llm_agent_from_env`` picks OpenAI, then Anthropic, then the offline model."""

from __future__ import annotations

import pytest

from miniagents import MiniAgents
from miniagents.ext.llm.anthropic import anthropic_agent
from miniagents.ext.llm.from_env import (
    DEFAULT_ANTHROPIC_MODEL,
    DEFAULT_OPENAI_MODEL,
    llm_agent_from_env,
)
from miniagents.ext.llm.offline import OfflineMessage, offline_agent
from miniagents.ext.llm.openai import openai_agent


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_MODEL", "ANTHROPIC_API_KEY", "ANTHROPIC_MODEL"):
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
