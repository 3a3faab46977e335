"""Static typing tests for tools: ``ToolLike``, ``as_tool``, ``ToolSet`` and the tool messages.

The ``check_*`` functions are never called: mypy checks them (strict, with
``warn_unused_ignores``), ``assert_type`` pins the inferred types and each line that must
be rejected carries a precise ``# type: ignore[code]``. :func:`test_tool_types_pass_mypy`
runs mypy on this file.

``takes_tools`` stands for the future ``tools=[...]`` parameter of the LLM agents: a
``Sequence[ToolLike]`` accepts agents, typed functions (sync, async, async generators) and
``Tool`` objects, and rejects other objects, a class among them (a class is callable, but
no tool; ``as_tool`` refuses it at run time too).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from functools import partial
from typing import assert_type

from miniagents import InteractionContext, MessagePromise, MessageSequencePromise, miniagent
from miniagents.ext.tools import (
    AgentTool,
    FunctionTool,
    Tool,
    ToolCallMessage,
    ToolLike,
    ToolResultMessage,
    ToolSet,
    as_tool,
    run_tool_call,
)
from tests.fakes.typecheck import assert_passes_mypy


@miniagent
async def researcher(ctx: InteractionContext, question: str, depth: int = 1) -> None:
    ctx.reply(question * depth)


def add(a: int, b: int) -> int:
    return a + b


async def greet(name: str) -> str:
    return f"Hello, {name}"


async def count(to: int) -> AsyncIterator[str]:
    for number in range(to):
        yield str(number)


class Clock(Tool):
    async def run(self, arguments: Mapping[str, object]) -> AsyncIterator[str]:
        yield "12:00"


def takes_tools(tools: Sequence[ToolLike]) -> None:
    """The future ``tools=[...]`` parameter."""


def check_tool_likes() -> None:
    takes_tools([researcher, add, greet, count, Clock(name="clock")])
    takes_tools([researcher.fork(depth=2), researcher.bind(question="Why?"), lambda: "x"])
    takes_tools(())
    ToolSet([researcher, add, Clock(name="clock")])


def check_tool_like_errors() -> None:
    takes_tools([42])  # type: ignore[list-item]
    takes_tools(["add"])  # type: ignore[list-item]
    takes_tools([None])  # type: ignore[list-item]
    takes_tools([researcher.inquire(None, question="Why?")])  # type: ignore[list-item]
    takes_tools(add)  # type: ignore[arg-type]
    ToolSet([researcher, 42])  # type: ignore[list-item]
    takes_tools([Clock])  # type: ignore[list-item]
    takes_tools([ToolResultMessage])  # type: ignore[list-item]
    as_tool(Clock)  # type: ignore[call-overload]


def check_partials_and_methods_are_tools() -> None:
    takes_tools([partial(add, 1), Clock(name="clock").run])
    assert_type(as_tool(partial(add, 1)), FunctionTool)


def check_as_tool() -> None:
    assert_type(as_tool(researcher), AgentTool)
    assert_type(as_tool(add), FunctionTool)
    assert_type(as_tool(count), FunctionTool)
    assert_type(as_tool(Clock(name="clock")), Clock)
    assert_type(as_tool(FunctionTool(add)), FunctionTool)
    as_tool(42)  # type: ignore[call-overload]


def check_tool_attributes(tool: Tool) -> None:
    assert_type(tool.name, str)
    assert_type(tool.description, str)
    assert_type(tool.parameters, dict[str, object])
    assert_type(tool.validate({"a": 1}), Mapping[str, object])
    assert_type(tool.run({}), AsyncIterator[str])
    tool.name = 42  # type: ignore[assignment]
    assert_type(tool.timeout, float | None)


def check_a_tool_timeout() -> None:
    assert_type(FunctionTool(add, timeout=30).timeout, float | None)
    assert_type(FunctionTool(add, timeout=0.5), FunctionTool)
    FunctionTool(add, timeout=None)
    FunctionTool(add, timeout="30")  # type: ignore[arg-type]


def check_running(tools: ToolSet, call: ToolCallMessage) -> None:
    assert_type(tools.run(call), MessagePromise[ToolResultMessage])
    assert_type(tools.run_all([call, call]), MessageSequencePromise[ToolResultMessage])
    assert_type(run_tool_call(tools["add"], call), MessagePromise[ToolResultMessage])
    assert_type(tools["add"], Tool)
    run_tool_call(add, call)  # type: ignore[call-overload]
    tools.run("add")  # type: ignore[call-overload]


def check_tool_messages() -> None:
    call = ToolCallMessage(tool_name="add", arguments={"a": 1}, call_id="c1")
    assert_type(call.tool_name, str)
    assert_type(call.arguments, Mapping[str, object])
    assert_type(call.call_id, str)
    assert_type(call.arguments_error, str | None)
    result = ToolResultMessage(text="2", tool_name="add", call_id="c1", is_error=False)
    assert_type(result.is_error, bool)
    assert_type(result.call_id, str)
    ToolResultMessage(text="2", tool_name="add", call_id=1)  # type: ignore[arg-type]
    # a result always has text (a result made without any: ""), so it is a str, not str | None
    assert_type(result.text, str)
    assert_type(ToolResultMessage(tool_name="add", call_id="c1").text, str)
    ToolResultMessage(text=None, tool_name="add", call_id="c1")  # type: ignore[arg-type]


async def check_the_text_of_a_run_result(tools: ToolSet, call: ToolCallMessage) -> None:
    result = await run_tool_call(tools["add"], call)
    assert_type(result.text, str)
    print(result.text[:40])
    assert_type((await tools.run(call)).text.upper(), str)
    ToolCallMessage(tool_name="add", arguments={})  # type: ignore[call-arg]


def check_the_cancellation_flag_of_a_sync_tool() -> None:
    from miniagents.ext.tools import ToolCancellation, tool_cancellation

    flag = tool_cancellation()
    assert_type(flag, ToolCancellation)
    assert_type(flag.cancelled, bool)
    assert_type(flag.wait(0.5), bool)
    assert_type(flag.wait(), bool)
    flag.wait("soon")  # type: ignore[arg-type]
    flag.cancelled = True  # type: ignore[misc]


def check_a_refusal_is_typed() -> None:
    from miniagents.errors import LLMRefusalError
    from miniagents.ext.llm import LLMError, Refusal
    from miniagents.ext.llm.offline import Refuse, ScriptedReply

    try:
        pass
    except LLMRefusalError as refused:
        assert_type(refused.text, str)
        error: LLMError = refused
        print(error)
    assert_type(Refusal("No.").text, str)
    scripted: ScriptedReply = Refuse("Not that.")
    print(scripted)
    Refusal(1)  # type: ignore[arg-type]


# --- The test that pytest runs --------------------------------------------------------


def test_tool_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
