"""Static typing tests for the Gemini, Bedrock, OpenAI-compatible and provider authors' agents.

The ``check_*`` functions are never called: mypy checks them (``mypy.ini`` is strict,
with ``warn_unused_ignores``). ``assert_type`` pins the exact inferred types, and each
line that must be rejected carries a precise ``# type: ignore[code]``, so a line that stops
failing fails mypy too. :func:`test_provider_types_pass_mypy` runs mypy on this file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, ParamSpec, TypeAlias, assert_type

from google import genai
from mypy_extensions import DefaultNamedArg
from types_aiobotocore_bedrock_runtime import BedrockRuntimeClient

from miniagents import Message, MessageSequencePromise, MiniAgent, MiniAgents
from miniagents.ext.llm import (
    AssistantMessage,
    Budget,
    ForkArguments,
    LLMAgent,
    LLMOptions,
    LLMProvider,
    LLMReply,
    TokenUsage,
    TypedFork,
    make_llm_agent,
)
from miniagents.ext.llm.anthropic import AnthropicMessage, anthropic_agent, create_anthropic_agent
from miniagents.ext.llm.bedrock import BedrockAgent as BedrockAgentClass
from miniagents.ext.llm.bedrock import bedrock_agent, create_bedrock_agent
from miniagents.ext.llm.compatible import (
    CompatibleMessage,
    ServerName,
    azure_openai_agent,
    compatible_agent,
    groq_agent,
    ollama_agent,
)
from miniagents.ext.llm.gemini import GeminiAgent as GeminiAgentClass
from miniagents.ext.llm.gemini import GeminiOptions, create_gemini_agent, gemini_agent
from miniagents.ext.llm.llm_agent import AnyLLMAgent
from miniagents.ext.llm.offline import CallTool, ScriptedReply, in_order, offline_agent
from miniagents.ext.llm.openai import create_openai_agent, openai_agent
from miniagents.ext.llm.sdk_calls import SDKOptions
from miniagents.ext.tools import ToolLike
from miniagents.promising.sentinels import Sentinel
from miniagents.testing import scripted_agent
from tests.fakes.typecheck import assert_passes_mypy

GeminiAgent: TypeAlias = """GeminiAgentClass[[
    DefaultNamedArg(str | None, 'model'),
    DefaultNamedArg(bool | None, 'stream'),
    DefaultNamedArg(str | None, 'system'),
    DefaultNamedArg(float | Literal[Sentinel.DEFAULT] | None, 'stall_timeout'),
    DefaultNamedArg(Mapping[str, object] | None, 'extra_options'),
    DefaultNamedArg(Sequence[ToolLike] | None, 'tools'),
    DefaultNamedArg(int, 'max_tool_rounds'),
    DefaultNamedArg(int, 'max_tool_calls'),
    DefaultNamedArg(type[Message] | None, 'output_type'),
    DefaultNamedArg(int, 'output_retries'),
    DefaultNamedArg(Budget | None, 'budget'),
    DefaultNamedArg(genai.Client | genai.client.AsyncClient | None, 'async_client'),
    DefaultNamedArg(float | None, 'temperature'),
    DefaultNamedArg(float | None, 'top_p'),
    DefaultNamedArg(int | None, 'max_retries'),
    DefaultNamedArg(float | None, 'timeout'),
    DefaultNamedArg(int | None, 'max_tokens'),
    DefaultNamedArg(int | None, 'top_k'),
    DefaultNamedArg(Sequence[str] | None, 'stop_sequences'),
    DefaultNamedArg(int | None, 'seed'),
    DefaultNamedArg(float | None, 'presence_penalty'),
    DefaultNamedArg(float | None, 'frequency_penalty'),
]]"""

BedrockAgent: TypeAlias = """BedrockAgentClass[[
    DefaultNamedArg(str | None, 'model'),
    DefaultNamedArg(bool | None, 'stream'),
    DefaultNamedArg(str | None, 'system'),
    DefaultNamedArg(float | Literal[Sentinel.DEFAULT] | None, 'stall_timeout'),
    DefaultNamedArg(Mapping[str, object] | None, 'extra_options'),
    DefaultNamedArg(Sequence[ToolLike] | None, 'tools'),
    DefaultNamedArg(int, 'max_tool_rounds'),
    DefaultNamedArg(int, 'max_tool_calls'),
    DefaultNamedArg(type[Message] | None, 'output_type'),
    DefaultNamedArg(int, 'output_retries'),
    DefaultNamedArg(Budget | None, 'budget'),
    DefaultNamedArg(BedrockRuntimeClient | None, 'async_client'),
    DefaultNamedArg(float | None, 'temperature'),
    DefaultNamedArg(float | None, 'top_p'),
    DefaultNamedArg(int | None, 'max_retries'),
    DefaultNamedArg(float | None, 'timeout'),
    DefaultNamedArg(str | None, 'region'),
    DefaultNamedArg(int | None, 'max_tokens'),
    DefaultNamedArg(Sequence[str] | None, 'stop_sequences'),
]]"""


def check_agent_types() -> None:
    assert_type(gemini_agent, GeminiAgent)
    assert_type(bedrock_agent, BedrockAgent)
    assert_type(gemini_agent.fork(model="gemini-2.5-flash"), GeminiAgent)
    assert_type(create_gemini_agent(model="gemini-2.5-flash", top_k=40), GeminiAgent)
    assert_type(
        create_bedrock_agent(model="amazon.nova-lite-v1:0", region="us-east-1"), BedrockAgent
    )
    create_gemini_agent(model="g", temprature=0.5)  # type: ignore[call-arg]
    create_bedrock_agent(model="m", region=1)  # type: ignore[arg-type]
    create_bedrock_agent(model="m", seed=1)  # type: ignore[call-arg]


def check_sdk_options_types() -> None:
    # each provider's options narrow SDKOptions' async_client to its SDK's clients
    options = GeminiOptions(model="m", temperature=0.5, max_retries=0)
    assert_type(options.async_client, genai.Client | genai.client.AsyncClient | None)
    assert_type(options.temperature, float | None)
    assert_type(SDKOptions.client_classes, tuple[str, ...])
    sdk_options: SDKOptions = options
    assert_type(sdk_options.async_client, object)
    GeminiOptions(model="m", async_client="client")  # type: ignore[arg-type]


def check_compatible_types(name: ServerName) -> None:
    reply_type: TypeAlias = LLMReply[CompatibleMessage]
    assert_type(compatible_agent(name), MiniAgent[..., reply_type])
    groq_agent.inquire("Hi", model="llama", temprature=0.5)  # type: ignore[call-arg]
    ollama_agent.inquire("Hi", model="llama3.2", api="responses")
    azure_openai_agent.inquire("Hi", model="deployment", api="nope")  # type: ignore[arg-type]
    compatible_agent("nope")  # type: ignore[arg-type]


async def check_reply_types() -> None:
    async with MiniAgents():
        gemini_reply = await gemini_agent.inquire("Hi", model="g")
        assert_type(gemini_reply[0].usage, TokenUsage | None)
        bedrock_reply = await bedrock_agent.inquire("Hi", model="m")
        assert_type(bedrock_reply[0].finish_reason, str | None)
        async for promise in groq_agent.inquire("Hi", model="llama"):
            message = await promise
            if isinstance(message, CompatibleMessage):
                assert_type(message.model, str | None)


def check_a_list_of_every_provider_agent_joins_to_any_llm_agent() -> None:
    # issue 62, item 4: mypy joined agents of different providers to object ('"object"
    # has no attribute "inquire"'); it joins them to AnyLLMAgent, exactly typed
    every = [
        openai_agent,
        openai_agent.fork(api="responses"),
        anthropic_agent,
        gemini_agent,
        bedrock_agent,
        ollama_agent,
        groq_agent,
        offline_agent,
        scripted_agent("Hi"),
    ]
    assert_type(every, list[AnyLLMAgent[AssistantMessage]])
    pairs = [
        (gemini_agent, "a"),
        (bedrock_agent.fork(model="amazon.nova-lite-v1:0"), "b"),
        (create_openai_agent(model="gpt-4o-mini"), "c"),
        (create_anthropic_agent(model="claude-haiku-4-5", max_tokens=100), "d"),
    ]
    assert_type(pairs, list[tuple[AnyLLMAgent[AssistantMessage], str]])
    for agent, question in pairs:
        replies = agent.inquire(question, model="m", system="Be brief.", budget=Budget())
        assert_type(replies, MessageSequencePromise[LLMReply[AssistantMessage]])
        assert_type(agent.fork(model="m"), AnyLLMAgent[AssistantMessage])
        assert_type(agent.bind(model="m", stream=False), AnyLLMAgent[AssistantMessage])
        assert_type(agent.alias, str)
        agent.inquire(question, modl="m")  # type: ignore[call-arg]
        agent.inquire(question, model=1)  # type: ignore[arg-type]
        agent.inquire(question, region="us-east-1")  # type: ignore[call-arg]  # (Bedrock's own)
    assert_type([*(gemini_agent, bedrock_agent)], list[AnyLLMAgent[AssistantMessage]])
    # agents of one provider keep their class, and its own parameters
    geminis = [gemini_agent, create_gemini_agent(model="gemini-2.5-flash")]
    assert_type(geminis, list[GeminiAgent])
    geminis[0].inquire("Hi", top_k=40)
    # a provider's answers stay its own where the list is of one provider's agents
    answers = [anthropic_agent, anthropic_agent.fork(model="claude-haiku-4-5")]
    assert_type(answers[0].inquire(), MessageSequencePromise[LLMReply[AnthropicMessage]])


def check_each_agents_fork_is_typed_by_its_options() -> None:
    # fork took any keyword of any type (``**kwargs: object``): each agent's forks are
    # checked by name and type as its bind is, besides fork's own alias, description, ...
    ollama_agent.fork(temperature="x")  # type: ignore[arg-type]
    ollama_agent.fork(temprature=0.5)  # type: ignore[call-arg]
    openai_agent.fork(alias="A", model="gpt-4o-mini", api="chat")  # type: ignore[arg-type]
    anthropic_agent.fork(max_tokens="100")  # type: ignore[arg-type]
    anthropic_agent.fork(seed=1)  # type: ignore[call-arg]  # (not Anthropic's)
    gemini_agent.fork(top_k="40")  # type: ignore[arg-type]
    bedrock_agent.fork(region=1)  # type: ignore[arg-type]
    offline_agent.fork(token_delay="0")  # type: ignore[arg-type]
    offline_agent.fork(top_k=3)  # type: ignore[call-arg]  # (not the offline model's)
    gemini_agent.fork(alias=1)  # type: ignore[arg-type]
    gemini_agent.fork(max_concurrency="2")  # type: ignore[arg-type]
    # the right ones, with fork's own keywords beside them, give an agent of its class
    assert_type(
        gemini_agent.fork(alias="G", description="d", max_concurrency=2, top_k=40), GeminiAgent
    )
    assert_type(bedrock_agent.fork(start_asap=False, region="us-east-1"), BedrockAgent)
    local = ollama_agent.fork(alias="LOCAL", temperature=3.0)
    assert_type(local.inquire("Hi"), MessageSequencePromise[LLMReply[CompatibleMessage]])
    local = ollama_agent
    # an agent of any provider forks with the arguments every LLM agent takes
    for agent in [gemini_agent, bedrock_agent]:
        assert_type(agent.fork(alias="A", model="m"), AnyLLMAgent[AssistantMessage])
        agent.fork(model=1)  # type: ignore[arg-type]
        agent.fork(region="us-east-1")  # type: ignore[call-arg]  # (Bedrock's own)


P = ParamSpec("P")


@dataclass(frozen=True, kw_only=True)
class LoudOptions(LLMOptions):
    """The arguments of a provider author's agent.

    Attributes:
        loudness: How loud its replies are.
    """

    loudness: int = 1


class LoudMessage(AssistantMessage):
    """A reply of the provider author's model."""


@dataclass(frozen=True, kw_only=True)
class _LoudFork(LoudOptions, ForkArguments): ...  # (made at run time too: it costs little)


class LoudAgent(LLMAgent[P, LoudMessage], AnyLLMAgent[LoudMessage]):
    """A provider author's class of agents, its ``fork`` typed (at run time, MiniAgent's)."""

    __slots__ = ()
    fork = TypedFork(_LoudFork)  # type: ignore[assignment]  # (narrower: see TypedFork)


def check_a_provider_authors_fork_is_typed_with_typed_fork(
    provider: LLMProvider[LoudOptions, LoudMessage],
) -> None:
    loud = LoudAgent.of(LoudOptions, provider, alias="LOUD", summary="Speaks up.")
    louder = loud.fork(alias="LOUDER", max_concurrency=2, loudness=3, model="m")
    loud = louder  # (the agent's own class and parameters)
    assert_type(louder.inquire("Hi"), MessageSequencePromise[LLMReply[LoudMessage]])
    loud.fork(loudness="3")  # type: ignore[arg-type]
    loud.fork(loudnes=3)  # type: ignore[call-arg]
    loud.fork(alias=1)  # type: ignore[arg-type]
    for agent in [loud, gemini_agent]:
        assert_type(agent.fork(model="m"), AnyLLMAgent[AssistantMessage])
    # without a class of its own, make_llm_agent's agent forks as MiniAgent does (any
    # keyword): bind is its typed fork, as it is a @miniagent's
    plain = make_llm_agent(LoudOptions, provider, alias="PLAIN", summary="Speaks.")
    plain.bind(loudness="3")  # type: ignore[arg-type]


def check_the_offline_agents_replies_are_typed_with_in_order() -> None:
    # mypy joins a tool call and a text to ``object``: ``iter([...])`` of them is refused
    offline_agent.fork(reply=iter([CallTool("add", {}), "It is 5."]))  # type: ignore[arg-type]
    offline_agent.fork(reply=in_order(CallTool("add", {"a": 2, "b": 3}), "It is 5."))
    offline_agent.inquire("Hi", reply=in_order([CallTool("a", {}), CallTool("b", {})], "Done."))
    assert_type(in_order("a", "b"), Iterator[ScriptedReply])
    in_order(CallTool("add", {}), 5)  # type: ignore[arg-type]


def test_provider_types_pass_mypy() -> None:
    assert_passes_mypy(__file__)
