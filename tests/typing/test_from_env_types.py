"""Static typing tests for ``llm_agent_from_env``: its agent's arguments are typed.

The ``check_*`` functions are never called: mypy checks them (strict, with
``warn_unused_ignores``), and :func:`test_from_env_types_pass_mypy` runs it on this file.
``assert_type`` pins each inferred type; each line that must be rejected carries a precise
``# type: ignore[code]``.

``llm_agent_from_env()`` is a ``FromEnvAgent`` (an ``LLMAgent[..., AssistantMessage]`` whose
methods, ``fork`` too, take ``FromEnvAgentOptions``): the arguments every LLM agent
takes but ``model`` and ``extra_options`` (as for ``fallback_agent``), with the
``max_tokens`` and ``temperature`` that the OpenAI, Anthropic and offline agents all take.
It was ``MiniAgent[..., ...]``: a misspelled option (``temprature=0.2``) passed mypy and
failed at run time with ``AgentArgumentError``; its ``fork`` took any keyword until it was
typed too; then it was a private class that no user could name in an annotation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeAlias, assert_type

from mypy_extensions import DefaultNamedArg

from miniagents import Message, MessageSequencePromise, MessageTuple, MiniAgent
from miniagents.ext.llm import (
    AnyLLMAgent,
    AssistantMessage,
    Budget,
    LLMReply,
    fallback_agent,
    structured,
)
from miniagents.ext.llm.from_env import FromEnvAgent, FromEnvAgentOptions, llm_agent_from_env
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.tools import ToolLike, ToolSet
from miniagents.promising.sentinels import DEFAULT, Sentinel
from tests.fakes.typecheck import assert_passes_mypy

MiniAgentSpelledOut: TypeAlias = """MiniAgent[[
    DefaultNamedArg(bool | None, 'stream'),
    DefaultNamedArg(str | None, 'system'),
    DefaultNamedArg(float | Literal[Sentinel.DEFAULT] | None, 'stall_timeout'),
    DefaultNamedArg(Sequence[ToolLike] | None, 'tools'),
    DefaultNamedArg(int, 'max_tool_rounds'),
    DefaultNamedArg(type[Message] | None, 'output_type'),
    DefaultNamedArg(int, 'output_retries'),
    DefaultNamedArg(Budget | None, 'budget'),
    DefaultNamedArg(int | Literal[Sentinel.DEFAULT], 'max_tokens'),
    DefaultNamedArg(float | None, 'temperature'),
], LLMReply[AssistantMessage]]"""
"""What a ``FromEnvAgent`` is a ``MiniAgent`` of: every parameter by name, with its type."""


class Weather(Message):
    """A structured answer."""

    city: str


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


async def check_the_agent_and_its_replies(budget: Budget) -> None:
    # (a FromEnvAgent: a MiniAgentSpelledOut whose methods, fork too, are typed: see below)
    llm: MiniAgentSpelledOut = llm_agent_from_env(system="Be brief.")
    llm = llm_agent_from_env(max_tokens=10, tools=[add])
    replies = llm.inquire("Hi", temperature=0.2, max_tokens=10)
    assert_type(replies, MessageSequencePromise[LLMReply[AssistantMessage]])
    assert_type(await replies, MessageTuple[LLMReply[AssistantMessage]])
    # Every argument every LLM agent takes (but the provider's own model and extra_options).
    llm.inquire(
        "Hi",
        stream=False,
        system="Be briefer.",
        stall_timeout=None,
        tools=[add],
        max_tool_rounds=2,
        output_type=Weather,
        output_retries=0,
        budget=budget,
        max_tokens=100,
        temperature=None,
    )
    llm.inquire("Hi", stall_timeout=DEFAULT, max_tokens=DEFAULT)  # DEFAULT: the agent's own
    as_mini: MiniAgentSpelledOut = llm.bind(temperature=0.0)
    as_mini = llm.fork(alias="WRITER")
    print(as_mini)


async def check_fork_is_typed_by_the_agents_arguments() -> None:
    # fork took any keyword (MiniAgent's **kwargs: object), so a misspelled or mistyped
    # argument passed mypy and failed at run time; it takes the agent's arguments now
    llm = llm_agent_from_env()
    forked = llm.fork(temperature=0.2, max_tokens=10, alias="WRITER", max_concurrency=2)
    assert_type(await forked.inquire("Hi"), MessageTuple[LLMReply[AssistantMessage]])
    forked.fork(system="x").fork(stall_timeout=None).inquire("Hi", temperature=0.0)
    forked.fork(system="x").inquire("Hi", temprature=0.0)  # type: ignore[call-arg]
    llm.fork(temprature=0.2)  # type: ignore[call-arg]
    llm.fork(temperature="hot")  # type: ignore[arg-type]
    llm.fork(max_tokens=None)  # type: ignore[arg-type]
    llm.fork(model="gpt-4o")  # type: ignore[call-arg]
    llm.fork(alias=1)  # type: ignore[arg-type]
    as_mini: MiniAgentSpelledOut = forked.fork(stream=True)
    print(as_mini)


async def check_its_type_is_public() -> None:
    # it was the private _EnvAgent[P, ...] (hover, reveal_type), which no user could import
    # to annotate with; a FromEnvAgent keeps every method typed
    assert_type(llm_agent_from_env(), FromEnvAgent)
    llm: FromEnvAgent = llm_agent_from_env(system="Be brief.")
    assert_type(llm.fork(alias="WRITER", temperature=0.2), FromEnvAgent)
    assert_type(llm.bind(max_tokens=10), FromEnvAgent)
    assert_type(await llm.inquire("Hi"), MessageTuple[LLMReply[AssistantMessage]])
    llm.fork(temprature=0.2)  # type: ignore[call-arg]
    llm.bind(max_tokens="10")  # type: ignore[arg-type]
    llm.as_operator(temprature=0.2)  # type: ignore[call-arg]
    llm.initiate_inquiry(model="gpt-4o")  # type: ignore[call-arg]
    options: FromEnvAgentOptions = {"temperature": 0.2, "max_tokens": 10}
    assert_type(llm.inquire("Hi", **options), MessageSequencePromise[LLMReply[AssistantMessage]])
    as_mini: MiniAgent[..., LLMReply[AssistantMessage]] = llm
    as_any: AnyLLMAgent[AssistantMessage] = llm
    print(as_mini, as_any)


def check_misspelled_or_wrong_arguments() -> None:
    llm = llm_agent_from_env()
    llm.inquire("Hi", temprature=0.2)  # type: ignore[call-arg]
    llm.inquire("Hi", max_tokns=10)  # type: ignore[call-arg]
    llm.bind(sytem="Be brief.")  # type: ignore[call-arg]
    llm.inquire("Hi", max_tokens="10")  # type: ignore[arg-type]
    # The Anthropic agent refuses a max_tokens of None (the Messages API requires one).
    llm.inquire("Hi", max_tokens=None)  # type: ignore[arg-type]
    llm.inquire("Hi", temperature="hot")  # type: ignore[arg-type]
    # The model and its extra options are the provider's own, which the environment picks.
    llm.inquire("Hi", model="gpt-4o")  # type: ignore[call-arg]
    llm.inquire("Hi", extra_options={"seed": 1})  # type: ignore[call-arg]
    # The function's own parameters were typed already.
    llm_agent_from_env(temprature=0.2)  # type: ignore[call-arg]


async def check_it_composes() -> None:
    weather = structured(llm_agent_from_env(), Weather)
    assert_type((await weather.inquire("Oslo?", temperature=0.0))[0], Weather)
    weather.inquire("Oslo?", temprature=0.0)  # type: ignore[call-arg]
    either = fallback_agent(llm_agent_from_env(), offline_agent)
    assert_type(await either.inquire("Hi", system="x"), MessageTuple[LLMReply[AssistantMessage]])
    assert_type(len(ToolSet([llm_agent_from_env()])), int)


# --- The test that pytest runs --------------------------------------------------------


def test_from_env_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
