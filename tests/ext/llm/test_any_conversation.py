"""Any messages, from any agents, are a prompt every provider's API takes (issue 62, item 1).

Each provider's agent (OpenAI's two APIs, Anthropic, Gemini, Bedrock, an OpenAI-compatible
server, the offline model) replies with a tool call, its result and an answer; every
provider's agent is then given every such reply: alone (a conversation that opens with the
model's turn), inside a conversation, and all of them in one conversation, with odd roles,
blank messages and turns of one side in a row besides. The real SDKs send each request to
``miniagents.testing.FakeLLMServer``, whose wires refuse what each API refuses (Bedrock's
and Claude's alternation from the user, Gemini's roles and its function call turns,
OpenAI's roles and call ids of at most 40 characters, ...): a request an API would refuse
fails the test as an ``LLMRequestError``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from miniagents import Message, MessageTuple, MiniAgents
from miniagents.ext.llm import AssistantMessage, LLMToolCallMessage, LLMToolResultMessage
from miniagents.ext.llm.anthropic import anthropic_agent
from miniagents.ext.llm.bedrock import bedrock_agent
from miniagents.ext.llm.compatible import ollama_agent
from miniagents.ext.llm.gemini import gemini_agent
from miniagents.ext.llm.llm_agent import AnyLLMAgent
from miniagents.ext.llm.messages import UserMessage
from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from miniagents.ext.llm.openai import openai_agent
from miniagents.ext.llm.provider import unused_id
from miniagents.testing import AWS_TEST_CREDENTIALS, FakeLLMServer, ToolCall
from tests.fakes.fixtures import fake_llm  # noqa: F401


def lookup(query: str) -> str:
    """Look something up."""
    return f"found {query}"


@dataclass(frozen=True)
class Provider:
    """A provider's agent on the fake server, and the id its API gives a tool call."""

    name: str
    agent: AnyLLMAgent[AssistantMessage]
    model: str
    call_id: str | None = None  # (None: the fake's own, or none, as Gemini may give none)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def offline(self) -> bool:
        return self.name == "offline"


PROVIDERS = [
    Provider("openai", openai_agent, "gpt-test", "call_Xw3fT9kQ0rLm2nB8vC1dE4sA"),
    Provider("responses", openai_agent.fork(api="responses"), "gpt-resp", "call_8uYtR5eW"),
    Provider("anthropic", anthropic_agent, "claude-test", "toolu_01A09q90qw90lq917835lq9"),
    Provider("gemini", gemini_agent, "gemini-test"),
    Provider(
        "bedrock",
        bedrock_agent,
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
        {"max_retries": 0},
    ),
    # a server whose ids the other APIs refuse (Kimi's and others' "functions.name:0")
    Provider("ollama", ollama_agent, "llama-test", "functions.lookup:0"),
    Provider("offline", offline_agent.fork(token_delay=0), "offline"),
]
IDS = [provider.name for provider in PROVIDERS]


@pytest.fixture
def server(
    fake_llm: FakeLLMServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> FakeLLMServer:
    """The fake server, every provider's client pointed at it from the environment."""
    settings = {
        "OPENAI_BASE_URL": fake_llm.openai_base_url,
        "OPENAI_API_KEY": "test",
        "ANTHROPIC_BASE_URL": fake_llm.anthropic_base_url,
        "ANTHROPIC_API_KEY": "test",
        "GOOGLE_GEMINI_BASE_URL": fake_llm.gemini_base_url,
        "GEMINI_API_KEY": "test",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": fake_llm.bedrock_base_url,
        "AWS_ACCESS_KEY_ID": AWS_TEST_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": AWS_TEST_CREDENTIALS["aws_secret_access_key"],
        "AWS_REGION": AWS_TEST_CREDENTIALS["region_name"],
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "OLLAMA_BASE_URL": fake_llm.compatible_base_url("ollama"),
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    for name in (
        "GOOGLE_API_KEY",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_BEARER_TOKEN_BEDROCK",
        "OLLAMA_HOST",
    ):
        monkeypatch.delenv(name, raising=False)
    return fake_llm


async def replied_with_a_tool(server: FakeLLMServer, provider: Provider) -> MessageTuple:
    """``provider``'s reply to "Find q.": a call of ``lookup``, its result, then an answer."""
    if provider.offline:
        script = one_per_call(CallTool("lookup", {"query": "q"}), f"Found q ({provider.name}).")
        scripted = offline_agent.fork(reply=script, token_delay=0)
        return await scripted.inquire("Find q.", tools=[lookup])
    call = ToolCall("lookup", {"query": "q"}, id=provider.call_id)
    server.reply(["Let ", "me ", "look."], tool_calls=[call], for_model=provider.model)
    server.reply([f"Found q ({provider.name})."], for_model=provider.model)
    return await provider.agent.inquire(
        "Find q.", model=provider.model, tools=[lookup], **provider.options
    )


async def answer(server: FakeLLMServer, provider: Provider, messages: Any, **options: Any) -> str:
    """What ``provider`` answers to ``messages`` (a request its API would refuse fails)."""
    if not provider.offline:
        server.reply(["Noted."], for_model=provider.model)
        options = {"model": provider.model, **provider.options, **options}
    replies = await provider.agent.inquire(messages, **options)
    return str(replies[-1])


@pytest.mark.parametrize("given_to", PROVIDERS, ids=IDS)
async def test_every_providers_reply_is_a_prompt_every_provider_takes(
    server: FakeLLMServer, given_to: Provider
) -> None:
    async with MiniAgents():
        replies = {
            provider.name: await replied_with_a_tool(server, provider) for provider in PROVIDERS
        }
        for name, reply in replies.items():
            kinds = [type(message) for message in reply]
            assert LLMToolCallMessage in kinds, name
            assert LLMToolResultMessage in kinds, name
            # alone: the model's turn opens it (another agent's reply, as this one's input)
            alone = await answer(server, given_to, reply, tools=[lookup])
            # inside a conversation, its calls and results as the API's own tool blocks
            conversation = ["Find q.", *reply, "Thanks. And now?"]
            inside = await answer(server, given_to, conversation, tools=[lookup])
            # to an agent without tools: its calls and results as text
            untooled = await answer(server, given_to, ["Find q.", *reply])
            if not given_to.offline:
                assert (alone, inside, untooled) == ("Noted.", "Noted.", "Noted."), name
        everyone: list[Message | str] = []
        for name, reply in replies.items():
            everyone += [f"Ask {name}.", *reply]
        assert await answer(server, given_to, everyone, tools=[lookup])


@pytest.mark.parametrize("given_to", PROVIDERS, ids=IDS)
async def test_odd_roles_blank_messages_and_turns_of_one_side_in_a_row_are_taken(
    server: FakeLLMServer, given_to: Provider
) -> None:
    messages: list[Message | str] = [
        AssistantMessage(text="Hello! How can I help?"),  # the model speaks first
        Message(text="Too long.", role="critic"),  # a role no API has
        UserMessage(text="   "),  # blank
        "Shorter, please.",  # the user, twice in a row
        Message(text="Shorter:", role="model"),  # Gemini's word for the assistant
        AssistantMessage(text="Rivers run.\n"),  # the assistant, twice in a row
    ]
    async with MiniAgents():
        ended_by_the_model = await answer(server, given_to, messages)
        ended_by_the_user = await answer(server, given_to, [*messages, "Thanks.", "Bye."])
    if not given_to.offline:
        assert (ended_by_the_model, ended_by_the_user) == ("Noted.", "Noted.")


def test_every_provider_is_chained_into_every_other() -> None:
    # (the two tests above take each provider's reply to each provider: none left out)
    assert {provider.name for provider in PROVIDERS} == {
        "openai",
        "responses",
        "anthropic",
        "gemini",
        "bedrock",
        "ollama",
        "offline",
    }


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
@pytest.mark.parametrize("provider", PROVIDERS[:-1], ids=IDS[:-1])
async def test_two_calls_of_a_turn_with_one_id_each_run_and_go_back_renamed(
    server: FakeLLMServer, provider: Provider, stream: bool
) -> None:
    # a model that writes its own ids (one for both calls of its turn, as a model behind an
    # OpenAI-compatible server may): each call runs and is answered, the second renamed, so
    # that the next request's calls and results pair up one to one (Anthropic's API refuses
    # two tool_use blocks of one id), whatever the API
    calls = [
        ToolCall("lookup", {"query": "a"}, id="dup"),
        ToolCall("lookup", {"query": "b"}, id="dup"),
    ]
    server.reply(tool_calls=calls, for_model=provider.model)
    server.reply(["Found both."], for_model=provider.model)
    async with MiniAgents():
        reply = await provider.agent.inquire(
            "Find a and b.", model=provider.model, tools=[lookup], stream=stream, **provider.options
        )
    called = [(m.call_id, dict(m.arguments)) for m in reply if isinstance(m, LLMToolCallMessage)]
    answered = [(m.call_id, str(m)) for m in reply if isinstance(m, LLMToolResultMessage)]
    assert called == [("dup", {"query": "a"}), ("dup_2", {"query": "b"})]
    assert answered == [("dup", "found a"), ("dup_2", "found b")]
    assert str(reply[-1]) == "Found both."
    sent = json.dumps(server.requests[-1].body)  # (taken by the fake's checks of the API)
    assert (sent.count('"dup"'), sent.count('"dup_2"')) == (2, 2)  # a call and its result


@pytest.mark.parametrize("provider", PROVIDERS[:1], ids=IDS[:1])
async def test_a_renamed_call_of_a_long_id_keeps_within_openais_40_characters(
    server: FakeLLMServer, provider: Provider
) -> None:
    # the second call of a 40-character id is renamed within the 40 characters OpenAI's API
    # takes (its end gives way to the suffix), and its next request is taken
    long = "call_" + "x" * 35
    calls = [ToolCall("lookup", {"query": q}, id=long) for q in "ab"]
    server.reply(tool_calls=calls, for_model=provider.model)
    server.reply(["Found both."], for_model=provider.model)
    async with MiniAgents():
        reply = await provider.agent.inquire(
            "Find a and b.", model=provider.model, tools=[lookup], **provider.options
        )
    called = [m.call_id for m in reply if isinstance(m, LLMToolCallMessage)]
    assert called == [long, long[:38] + "_2"]
    assert str(reply[-1]) == "Found both."


def test_a_renamed_id_is_unused_and_within_40_characters() -> None:
    long = "y" * 40
    assert unused_id(long, {long, long[:38] + "_2"}) == long[:38] + "_3"
    assert unused_id(long, {long, *(long[:38] + f"_{n}" for n in range(2, 10))}) == (
        long[:37] + "_10"
    )
    assert unused_id("dup", {"dup"}) == "dup_2"
