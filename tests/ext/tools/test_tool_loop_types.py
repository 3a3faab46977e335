"""Static typing tests for ``tools=[...]`` on the LLM agents, and the tool loop's types.

The ``check_*`` functions are never called: mypy checks them (strict, with
``warn_unused_ignores``), ``assert_type`` pins the inferred types and each line that must be
rejected carries a precise ``# type: ignore[code]``. :func:`test_tool_loop_types_pass_mypy`
runs mypy on this file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import assert_type

from miniagents import InteractionContext, MessageSequencePromise, miniagent
from miniagents.ext.llm import (
    LLMCall,
    LLMReply,
    PromptItem,
    PromptText,
    ToolCallDelta,
    ToolCallMessage,
    ToolCallStart,
    ToolResultMessage,
)
from miniagents.ext.llm.anthropic import anthropic_agent, create_anthropic_agent
from miniagents.ext.llm.from_env import llm_agent_from_env
from miniagents.ext.llm.offline import (
    CallTool,
    ToolRule,
    create_offline_agent,
    offline_agent,
    one_per_call,
)
from miniagents.ext.llm.openai import OpenAIMessage, create_openai_agent, openai_agent
from miniagents.ext.tools import Tool
from tests.fakes.typecheck import assert_passes_mypy


@miniagent
async def researcher(ctx: InteractionContext, question: str) -> None:
    ctx.reply(question)


def add(a: int, b: int) -> int:
    return a + b


async def greet(name: str) -> str:
    return f"Hello, {name}"


class Clock(Tool):
    async def run(self, arguments: Mapping[str, object]) -> AsyncIterator[str]:
        yield "12:00"


def check_tools_accepted() -> None:
    openai_agent.inquire("Hi", tools=[researcher, add, greet, Clock(name="clock")])
    anthropic_agent.inquire("Hi", tools=(add,), max_tool_rounds=3)
    offline_agent.inquire("Hi", tools=[researcher.fork(question="x"), lambda: "now"])
    assert_type(
        openai_agent.fork(tools=[add]).inquire("Hi"),
        MessageSequencePromise[LLMReply[OpenAIMessage]],
    )
    create_openai_agent(model="gpt-4o", tools=[add, researcher], max_tool_rounds=5)
    create_anthropic_agent(model="claude", tools=[greet])
    create_offline_agent(
        tools=[add],
        tool_rules=[ToolRule(r"(?P<a>\d+)\+(?P<b>\d+)", "add")],
        reply=one_per_call(CallTool("add", {"a": 1, "b": 2}), [CallTool("add")], "3"),
    )
    llm_agent_from_env(tools=[add], max_tool_rounds=2, offline_tool_rules=[ToolRule("x", "add")])


def check_tools_refused() -> None:
    openai_agent.inquire("Hi", tools=[42])  # type: ignore[list-item]
    anthropic_agent.inquire("Hi", tools=["add"])  # type: ignore[list-item]
    offline_agent.inquire("Hi", tools=[researcher.inquire(None, question="?")])  # type: ignore[list-item]
    create_openai_agent(tools=add)  # type: ignore[arg-type]
    openai_agent.inquire("Hi", max_tool_rounds="3")  # type: ignore[arg-type]
    create_offline_agent(tool_rules=["x"])  # type: ignore[list-item]
    create_offline_agent(reply=[42])  # type: ignore[list-item]
    one_per_call("a", 42)  # type: ignore[arg-type]
    llm_agent_from_env(tools=[None])  # type: ignore[list-item]


def check_provider_types(call: LLMCall, item: PromptItem) -> None:
    assert_type(call.messages, tuple[PromptText | ToolCallMessage | ToolResultMessage, ...])
    assert_type(call.tools, tuple[Tool, ...])
    assert_type(item.text, str | None)
    assert_type(item.role, str)
    assert_type(ToolCallStart("c1", "add").tool_name, str)
    assert_type(ToolCallDelta("c1", '{"a"').text, str)
    if isinstance(item, PromptText):
        role, text = item
        assert_type((role, text), tuple[str, str])
    item[1]  # type: ignore[index]  # not every item is a pair: read .text


# --- The test that pytest runs --------------------------------------------------------


def test_tool_loop_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
