"""Static typing tests for ``fallback_agent``: its replies are its agents' replies together.

The ``check_*`` functions are never called: mypy checks them (strict, with
``warn_unused_ignores``), and :func:`test_fallback_types_pass_mypy` runs it on this file.
``assert_type`` pins each inferred type; each line that must be rejected carries a precise
``# type: ignore[code]``.

``fallback_agent(openai_agent, anthropic_agent)`` is a ``FallbackAgent[P, R]`` (a
``MiniAgent[P, R]`` whose ``fork`` is typed as an LLM agent's): ``P`` the
arguments every LLM agent takes but ``model`` and ``extra_options``, and ``R`` the union of
its agents' reply classes, ``LLMReply[OpenAIMessage | AnthropicMessage]`` (the answer is
one of the two, the tool calls and results are the LLM agents' own).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeAlias, assert_type

from mypy_extensions import DefaultNamedArg

from miniagents import InteractionContext, Message, MiniAgent, miniagent
from miniagents.ext.llm import (
    AssistantMessage,
    Budget,
    FallbackAgent,
    LLMReply,
    LLMToolApprovalRequest,
    LLMToolCallMessage,
    LLMToolResultMessage,
    fallback_agent,
    is_provider_failure,
    structured,
)
from miniagents.ext.llm.anthropic import AnthropicMessage, anthropic_agent
from miniagents.ext.llm.errors import LLMRequestError
from miniagents.ext.llm.offline import OfflineMessage, offline_agent
from miniagents.ext.llm.openai import OpenAIMessage, openai_agent
from miniagents.ext.tools import ToolLike
from miniagents.promising.sentinels import Sentinel
from tests.fakes.typecheck import assert_passes_mypy

OpenAIOrAnthropic: TypeAlias = """FallbackAgent[[
    DefaultNamedArg(bool | None, 'stream'),
    DefaultNamedArg(str | None, 'system'),
    DefaultNamedArg(float | Literal[Sentinel.DEFAULT] | None, 'stall_timeout'),
    DefaultNamedArg(Sequence[ToolLike] | None, 'tools'),
    DefaultNamedArg(int, 'max_tool_rounds'),
    DefaultNamedArg(int, 'max_tool_calls'),
    DefaultNamedArg(type[Message] | None, 'output_type'),
    DefaultNamedArg(int, 'output_retries'),
    DefaultNamedArg(Budget | None, 'budget'),
], LLMReply[OpenAIMessage | AnthropicMessage]]"""
"""A fallback agent of the OpenAI and Anthropic agents: every parameter by name, with its type."""

OpenAIOrAnthropicSpelledOut: TypeAlias = """FallbackAgent[[
    DefaultNamedArg(bool | None, 'stream'),
    DefaultNamedArg(str | None, 'system'),
    DefaultNamedArg(float | Literal[Sentinel.DEFAULT] | None, 'stall_timeout'),
    DefaultNamedArg(Sequence[ToolLike] | None, 'tools'),
    DefaultNamedArg(int, 'max_tool_rounds'),
    DefaultNamedArg(int, 'max_tool_calls'),
    DefaultNamedArg(type[Message] | None, 'output_type'),
    DefaultNamedArg(int, 'output_retries'),
    DefaultNamedArg(Budget | None, 'budget'),
], OpenAIMessage | AnthropicMessage | LLMToolCallMessage | LLMToolResultMessage
  | LLMToolApprovalRequest]"""
"""The same, the reply union spelled out (in another order than mypy's)."""

OpenAIOrEcho: TypeAlias = """FallbackAgent[[
    DefaultNamedArg(bool | None, 'stream'),
    DefaultNamedArg(str | None, 'system'),
    DefaultNamedArg(float | Literal[Sentinel.DEFAULT] | None, 'stall_timeout'),
    DefaultNamedArg(Sequence[ToolLike] | None, 'tools'),
    DefaultNamedArg(int, 'max_tool_rounds'),
    DefaultNamedArg(int, 'max_tool_calls'),
    DefaultNamedArg(type[Message] | None, 'output_type'),
    DefaultNamedArg(int, 'output_retries'),
    DefaultNamedArg(Budget | None, 'budget'),
], Message]"""
"""A fallback agent of an LLM agent and a plain agent: its replies are just messages."""

# Referenced so that the names used only inside the string aliases above stay imported.
_USED_IN_ALIASES = (DefaultNamedArg, Sequence, Literal, Sentinel, ToolLike, Message)


class Weather(Message):
    city: str
    celsius: float


async def check_the_reply_class_is_the_agents_together() -> None:
    agent = fallback_agent(openai_agent.fork(model="gpt-4o"), anthropic_agent.fork(model="c"))
    assert_type(agent, OpenAIOrAnthropic)
    assert_type(agent, OpenAIOrAnthropicSpelledOut)
    reply = await agent.inquire("hi")
    assert_type(reply[0], LLMReply[OpenAIMessage | AnthropicMessage])
    assert_type(reply[0].model, str | None)  # every message says which model answered
    assert_type(reply[0].agent_alias, str | None)
    as_answers: MiniAgent[..., LLMReply[AssistantMessage]] = agent
    print(as_answers)
    three = fallback_agent(openai_agent, anthropic_agent, offline_agent, when=is_provider_failure)
    assert_type(
        (await three.inquire("hi"))[0],
        LLMReply[OpenAIMessage | AnthropicMessage | OfflineMessage],
    )
    same = fallback_agent(openai_agent.fork(model="a"), openai_agent.fork(model="b"))
    assert_type((await same.inquire("hi"))[0], LLMReply[OpenAIMessage])
    weather = structured(agent, Weather)
    assert_type((await weather.inquire("Paris?"))[0].celsius, float)


async def check_a_union_is_no_single_agents_reply() -> None:
    agent = fallback_agent(openai_agent, anthropic_agent)
    answer = (await agent.inquire("hi"))[0]
    only_openai: OpenAIMessage = answer  # type: ignore[assignment]
    print(only_openai, answer.city)  # type: ignore[union-attr]
    as_openai: MiniAgent[..., LLMReply[OpenAIMessage]] = agent  # type: ignore[assignment]
    print(as_openai)


def check_the_arguments() -> None:
    agent = fallback_agent(openai_agent, anthropic_agent)
    agent.inquire("hi", system="Be brief.", stream=True, max_tool_rounds=3)
    agent.fork(stall_timeout=None)
    agent.bind(output_type=Weather, output_retries=2)
    agent.inquire("hi", model="gpt-4o")  # type: ignore[call-arg]
    agent.inquire("hi", temperature=0.0)  # type: ignore[call-arg]
    agent.bind(system=1)  # type: ignore[arg-type]


async def check_fork_is_typed_by_the_agents_arguments() -> None:
    # fork took any keyword (MiniAgent's **kwargs: object), so a misspelled or mistyped
    # argument passed mypy and failed at run time; it takes the agent's arguments now
    agent = fallback_agent(openai_agent, anthropic_agent)
    assert_type(agent.fork(system="Be brief.", stall_timeout=None), OpenAIOrAnthropic)
    forked = agent.fork(alias="FIRST_THAT_ANSWERS", max_concurrency=2, start_asap=True)
    assert_type(forked, OpenAIOrAnthropic)
    assert_type(forked.fork(tools=[], budget=None).fork(), OpenAIOrAnthropic)
    assert_type((await forked.inquire("hi"))[0], LLMReply[OpenAIMessage | AnthropicMessage])
    agent.fork(temprature=0.0)  # type: ignore[call-arg]
    agent.fork(model="gpt-4o")  # type: ignore[call-arg]
    agent.fork(system=1)  # type: ignore[arg-type]
    agent.fork(alias=1)  # type: ignore[arg-type]
    agent.fork(max_tool_rounds="2")  # type: ignore[arg-type]
    as_mini: MiniAgent[..., LLMReply[AssistantMessage]] = agent.fork(system="x")
    print(as_mini)


def check_when_and_the_agents() -> None:
    def also_refused(error: BaseException) -> bool:
        return is_provider_failure(error) or isinstance(error, LLMRequestError)

    fallback_agent(openai_agent, anthropic_agent, when=also_refused)
    fallback_agent(openai_agent, when=lambda error: True)
    fallback_agent()  # type: ignore[call-arg]
    fallback_agent(openai_agent, when=lambda: True)  # type: ignore[arg-type, misc]
    fallback_agent(openai_agent, "gpt-4o")  # type: ignore[arg-type]

    @miniagent
    async def echo(ctx: InteractionContext) -> None:
        ctx.reply(ctx.messages)

    assert_type(fallback_agent(openai_agent, echo), OpenAIOrEcho)


# --- The test that pytest runs --------------------------------------------------------


def test_fallback_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
