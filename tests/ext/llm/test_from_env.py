"""``llm_agent_from_env`` picks OpenAI, then Anthropic (a key or a bearer token), Gemini,
Bedrock, the OpenAI-compatible servers, then offline."""

from __future__ import annotations

import inspect

import pytest

from miniagents import MiniAgents
from miniagents.errors import AgentArgumentError, LLMAuthenticationError, LLMServerError
from miniagents.ext.llm import LLMAgent
from miniagents.ext.llm.anthropic import anthropic_agent
from miniagents.ext.llm.fallback import fallback_agent
from miniagents.ext.llm.from_env import (
    DEFAULT_ANTHROPIC_MODEL,
    DEFAULT_OPENAI_MODEL,
    FromEnvAgent,
    FromEnvAgentOptions,
    llm_agent_from_env,
    provider_from_env,
)
from miniagents.ext.llm.offline import OfflineMessage, offline_agent
from miniagents.ext.llm.openai import openai_agent
from miniagents.promising.sentinels import DEFAULT
from miniagents.testing import FakeLLMServer
from tests.fakes.fixtures import fake_llm  # noqa: F401

VARIABLES = (
    "OPENAI_API_KEY",
    "OPENAI_MODEL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_MODEL",
    "ANTHROPIC_BASE_URL",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GEMINI_MODEL",
    "GOOGLE_GEMINI_BASE_URL",
    "BEDROCK_MODEL",
    "AWS_BEARER_TOKEN_BEDROCK",
    "OPENROUTER_API_KEY",
    "GROQ_API_KEY",
    "GROQ_MODEL",
    "DEEPSEEK_API_KEY",
    "TOGETHER_API_KEY",
    "FIREWORKS_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_DEPLOYMENT",
    "OLLAMA_MODEL",
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


def test_provider_from_env_names_the_provider_llm_agent_from_env_chooses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (the chat command names it when it is one the chat does not talk with)
    assert provider_from_env() is None
    monkeypatch.setenv("OLLAMA_MODEL", "llama3")
    assert provider_from_env() == "ollama"
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    assert provider_from_env() == "gemini"
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "k")
    assert provider_from_env() == "anthropic"
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    assert provider_from_env() == "openai"


async def test_retries_and_timeout_go_to_the_provider_and_the_offline_model_takes_none(
    monkeypatch: pytest.MonkeyPatch,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # (was: not taken, so a fallback's first agent could not be made to fail fast; and
    # llm_agent_from_env().fork(max_retries=0), which mypy passes, failed offline only)
    agent = llm_agent_from_env(max_retries=0, timeout=5.0, token_delay=0)
    assert agent.func is offline_agent.func
    assert "max_retries" not in repr(agent)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm.openai_base_url)
    agent = llm_agent_from_env(max_retries=0, timeout=5.0)
    assert "'max_retries': 0" in repr(agent)
    assert "'timeout': 5.0" in repr(agent)
    fake_llm.fail(503, times=1)
    async with MiniAgents():
        with pytest.raises(LLMServerError):
            await agent.inquire("Hi")
    assert len(fake_llm.requests) == 1  # (the SDK's default: three)


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


@pytest.mark.parametrize("key", [None, "OPENAI_API_KEY", "ANTHROPIC_API_KEY"])
def test_every_argument_mypy_lets_through_is_one_the_chosen_agent_takes(
    monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    """The typed arguments (``FromEnvAgentOptions``): each the chosen agent takes."""
    if key is not None:
        monkeypatch.setenv(key, "k")
    agent = llm_agent_from_env()
    taken = inspect.signature(agent.func).parameters
    typed = FromEnvAgentOptions.__optional_keys__  # (all of them: it is total=False)
    assert set(typed) <= set(taken)
    # those of fallback_agent's agents, and the two options every agent it picks takes
    fallback = set(inspect.signature(fallback_agent(offline_agent).func).parameters) - {"ctx"}
    assert set(typed) == fallback | {"max_tokens", "temperature"}
    # its type, FromEnvAgent, is a type only: the agent is the provider's, an LLMAgent
    assert isinstance(agent, LLMAgent)
    assert FromEnvAgent not in type(agent).__mro__
    assert {"max_tokens", "temperature", "system", "tools", "budget"} <= set(typed)
    assert not {"model", "extra_options"} & set(typed)  # the provider's own


def test_the_function_keeps_its_name_docstring_and_parameters() -> None:
    assert llm_agent_from_env.__name__ == "llm_agent_from_env"
    assert llm_agent_from_env.__doc__ is not None
    assert list(inspect.signature(llm_agent_from_env).parameters)[:2] == [
        "system",
        "offline_reply",
    ]


async def test_a_misspelled_option_is_refused_by_mypy_and_at_run_time() -> None:
    agent = llm_agent_from_env(offline_reply="Hi.", token_delay=0.0)
    async with MiniAgents():
        with pytest.raises(AgentArgumentError, match="temprature"):
            await agent.inquire("Hello", temprature=0.2)  # type: ignore[call-arg]
        # DEFAULT, which the typing allows for max_tokens, is the agent's own.
        replies = agent.inquire("Hello", max_tokens=DEFAULT, temperature=0.2)
        assert str(await replies) == "Hi."


@pytest.mark.parametrize(
    ("variables", "agent_name", "model"),
    [
        ({"GEMINI_API_KEY": "k"}, "GEMINI_AGENT", "gemini-2.5-flash"),
        (
            {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GEMINI_MODEL": "gemini-x"},
            "GEMINI_AGENT",
            "gemini-x",
        ),
        ({"BEDROCK_MODEL": "amazon.nova-lite-v1:0"}, "BEDROCK_AGENT", "amazon.nova-lite-v1:0"),
        ({"GROQ_API_KEY": "k", "GROQ_MODEL": "llama-x"}, "GROQ_AGENT", "llama-x"),
        ({"DEEPSEEK_API_KEY": "k"}, "DEEPSEEK_AGENT", "deepseek-chat"),
        (
            {
                "AZURE_OPENAI_API_KEY": "k",
                "AZURE_OPENAI_ENDPOINT": "https://x",
                "AZURE_OPENAI_DEPLOYMENT": "d",
            },
            "AZURE_OPENAI_AGENT",
            "d",
        ),
        ({"OLLAMA_MODEL": "llama3.2"}, "OLLAMA_AGENT", "llama3.2"),
    ],
)
def test_the_other_providers_in_their_order(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], agent_name: str, model: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    agent = llm_agent_from_env(temperature=0.5)
    assert agent.alias == agent_name
    assert f"'model': '{model}'" in repr(agent)
    assert "'temperature': 0.5" in repr(agent)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")  # an earlier provider wins
    assert llm_agent_from_env().alias == "ANTHROPIC_AGENT"


def test_azure_needs_its_deployment_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "k")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://x")
    assert llm_agent_from_env().alias == "OFFLINE_AGENT"


async def test_gemini_from_the_environment_answers(
    monkeypatch: pytest.MonkeyPatch,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake_llm.gemini_base_url)
    fake_llm.reply(["From ", "Gemini"])
    async with MiniAgents():
        assert str(await llm_agent_from_env().inquire("Hi")) == "From Gemini"
    assert fake_llm.requests[0].model == "gemini-2.5-flash"


def _double(x: int) -> int:
    """Double a number.

    Args:
        x: The number.
    """
    return 2 * x


async def test_max_tool_calls_is_bound_and_runs_at_most_that_many_calls_of_a_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from miniagents.ext.llm.messages import LLMToolResultMessage
    from miniagents.ext.llm.offline_script import ToolRule

    rules = [ToolRule(r"(?P<x>\d+) doubled", "_double"), ToolRule(r"and (?P<x>\d+)", "_double")]
    agent = llm_agent_from_env(
        offline_reply="Done.",
        token_delay=0.0,
        tools=[_double],
        max_tool_calls=1,
        offline_tool_rules=rules,
    )
    async with MiniAgents():
        messages = await agent.inquire("2 doubled and 3")
    results = [m for m in messages if isinstance(m, LLMToolResultMessage)]
    assert [r.is_error for r in results] == [False, True]
    assert results[0].text == "4"
    assert "runs at most 1 of one turn (its max_tool_calls)" in results[1].text
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    assert repr(llm_agent_from_env(max_tool_calls=3)) == repr(
        openai_agent.fork(model=DEFAULT_OPENAI_MODEL, system=None, max_tool_calls=3)
    )
    assert "max_tool_calls" not in repr(llm_agent_from_env())  # (the default: not bound)
