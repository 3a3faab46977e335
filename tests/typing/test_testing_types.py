"""Static typing tests for the testing kit: scripted agents are offline agents, exactly typed.

The ``check_*`` functions are never called: mypy checks them (strict, with
``warn_unused_ignores``), and each line that must be rejected carries a precise
``# type: ignore[code]``. :func:`test_testing_types_pass_mypy` runs mypy on this file.
"""

from __future__ import annotations

import asyncio
from typing import assert_type

from miniagents import MessageSequencePromise
from miniagents.ext.llm import LLMCall, LLMReply
from miniagents.ext.llm.offline import CallTool, OfflineMessage
from miniagents.testing import (
    ChatHistoryContract,
    VirtualClock,
    VirtualTimeLoop,
    function_agent,
    manual_time,
    run_with_virtual_time,
    scripted_agent,
    virtual_time,
)
from miniagents.testing.virtual_time import EXECUTOR_SECONDS
from tests.fakes.typecheck import assert_passes_mypy
from tests.typing.llm_agents import OfflineAgent


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def check_scripted_agents_are_offline_agents() -> None:
    calls: list[LLMCall] = []
    assert_type(scripted_agent("Hi", CallTool("add", {"a": 1}), tools=[add]), OfflineAgent)
    assert_type(scripted_agent([CallTool("add")], KeyError("x"), calls=calls), OfflineAgent)
    assert_type(function_agent(lambda call: call.model, model="m"), OfflineAgent)
    agent = scripted_agent("Hi")
    assert_type(
        agent.inquire("hi", temperature=0.5, system="Be brief."),
        MessageSequencePromise[LLMReply[OfflineMessage]],
    )
    assert_type(agent.fork(token_delay=1.0), OfflineAgent)


def check_misused_scripted_agents() -> None:
    scripted_agent(42)  # type: ignore[arg-type]
    scripted_agent("Hi", tools=add)  # type: ignore[arg-type]
    scripted_agent("Hi").inquire("hi", temprature=0.5)  # type: ignore[call-arg]
    function_agent("Hi")  # type: ignore[arg-type]
    function_agent(lambda call: 42)  # type: ignore[arg-type,return-value]
    function_agent(reply=lambda call: "x")  # type: ignore[call-arg]


async def answer() -> int:
    await asyncio.sleep(60)
    return 42


def check_virtual_time() -> None:
    assert_type(run_with_virtual_time(answer()), int)
    assert_type(run_with_virtual_time(answer(), start=5.0, auto_advance=False), int)
    with virtual_time(auto_advance=True) as clock, manual_time() as same:
        assert_type(clock, VirtualClock)
        assert_type(same, VirtualClock)
    assert_type(VirtualTimeLoop().clock, VirtualClock)
    run_with_virtual_time(asyncio.sleep(1), start="0")  # type: ignore[arg-type]
    VirtualClock().advance("1")  # type: ignore[arg-type]
    assert_type(EXECUTOR_SECONDS, float)


def check_a_contracts_wait_is_a_number_of_seconds() -> None:
    assert_type(ChatHistoryContract.wait, float)


async def check_virtual_time_is_no_async_with() -> None:
    async with virtual_time():  # type: ignore[attr-defined]  # (a plain `with`)
        pass
    async with manual_time():  # type: ignore[attr-defined]
        pass


# --- The test that pytest runs --------------------------------------------------------


def test_testing_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
