"""Spans and metrics of durable agents: one span per interaction, none for a replayed call.

- ``durable(agent)`` is an agent of ``agent``'s alias that runs ``agent`` in a DBOS
  workflow: one ``invoke_agent`` span, the calls under it (not two spans of one alias).
- A run stopped mid-way (as by a crash) and asked for again is recovered by DBOS: its
  recorded model calls are replayed, not made. A replayed call sends no request: it gets
  no ``chat`` span and records no token usage or duration (as it is charged to no budget);
  the calls made after it do.

These tests launch DBOS in the test's process (a SQLite file of their own) and destroy it
at their end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.ext.dbos import durable, workflow_id
from miniagents.ext.llm.offline import CallTool, offline_agent
from miniagents.ext.llm.offline_script import ScriptedReply
from miniagents.ext.llm.provider import LLMCall
from miniagents.ext.tools.messages import ToolResultMessage
from tests.fakes.tracing import Traces, parent_of, traces  # noqa: F401

model_calls: list[str] = []
"""The calls the offline model answered (the last message of each), in this process."""


def _answer(call: LLMCall) -> ScriptedReply:
    """The model: call the tool ``wait`` first, then answer with its result."""
    results = [item for item in call.messages if isinstance(item, ToolResultMessage)]
    model_calls.append("after the tool" if results else "first")
    if not results:
        return CallTool("wait", {"what": "a"})
    return f"Done with {results[-1].text}."


class _Stopped(Exception):
    """Ends a context with an error: its runs are stopped, unrecorded (as at a crash)."""


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    """A SQLite file of runs of its own; DBOS destroyed after the test."""
    from dbos import DBOS

    model_calls.clear()
    try:
        yield f"sqlite:///{tmp_path / 'runs.sqlite'}"
    finally:
        DBOS.destroy(destroy_registry=False)


def _tokens(traces: Traces) -> float:  # noqa: F811
    return sum(point.sum for point in traces.points("gen_ai.client.token.usage"))


def _timed_calls(traces: Traces) -> int:  # noqa: F811
    return sum(point.count for point in traces.points("gen_ai.client.operation.duration"))


async def test_a_replayed_call_of_a_recovered_run_has_no_span_and_no_metrics(
    traces: Traces,  # noqa: F811
    database: str,
) -> None:
    started = asyncio.Event()
    gate = asyncio.Event()

    async def wait(what: str) -> str:
        """Wait for the gate."""
        started.set()
        await gate.wait()
        return f"waited for {what}"

    agent = durable(
        offline_agent.fork(alias="TRACED_RECOVERED", tools=[wait], reply=_answer, token_delay=0),
        database_url=database,
    )
    with contextlib.suppress(_Stopped):  # the first life: it stops while the tool runs
        async with MiniAgents():
            with workflow_id("traced-1"):
                agent.inquire("Go.")
            await started.wait()  # the first call was made, and recorded
            raise _Stopped
    assert model_calls == ["first"]
    chats_before = len(traces.named("chat offline"))
    tokens_before, timed_before = _tokens(traces), _timed_calls(traces)
    assert (chats_before, timed_before) == (1, 1)
    assert tokens_before > 0

    gate.set()
    async with MiniAgents():  # asked for again: recovered, its first call replayed
        with workflow_id("traced-1"):
            reply = await agent.inquire("Go.")
    assert str(reply[-1]) == "Done with waited for a."
    assert model_calls == ["first", "after the tool"]  # the first call was not made again

    chats = traces.named("chat offline")
    assert len(chats) - chats_before == 1  # the call made after the recovery, only
    live = chats[-1]
    assert _timed_calls(traces) - timed_before == 1
    tokens = (live.attributes or {}).get("gen_ai.usage.input_tokens", 0)
    output = (live.attributes or {}).get("gen_ai.usage.output_tokens", 0)
    assert isinstance(tokens, int)
    assert isinstance(output, int)
    assert _tokens(traces) - tokens_before == tokens + output
    # the recovered interaction's span has the live call under it
    agents = traces.named("invoke_agent TRACED_RECOVERED")
    assert parent_of(live, agents[-1])


async def test_a_durable_agent_has_one_span_its_calls_under_it(
    traces: Traces,  # noqa: F811
    database: str,
) -> None:
    @miniagent(alias="TRACED_SUPPORT")
    async def support(ctx: InteractionContext) -> None:
        """Answer with the model."""
        ctx.reply(offline_agent.inquire(ctx.message_promises, reply="Hello.", token_delay=0))

    agent = durable(support, database_url=database)
    async with MiniAgents():
        assert str(await agent.inquire("Hi")) == "Hello."
        with workflow_id("traced-2"):  # and a run that an agent inquires as a tool would
            await agent.inquire("Hi")
        with workflow_id("traced-2"):  # asked again: its recorded reply (no call made)
            await agent.inquire("Hi")
    assert traces.tree() == [
        "invoke_agent TRACED_SUPPORT",
        "  invoke_agent OFFLINE_AGENT",
        "    chat offline",
        "invoke_agent TRACED_SUPPORT",
        "  invoke_agent OFFLINE_AGENT",
        "    chat offline",
        "invoke_agent TRACED_SUPPORT",
    ]


async def test_a_durable_llm_agent_span_names_the_provider_and_the_tokens_of_its_calls(
    traces: Traces,  # noqa: F811
    database: str,
) -> None:
    model = offline_agent.fork(alias="TRACED_MODEL", reply="Hello there.", token_delay=0)
    agent = durable(model, database_url=database)
    async with MiniAgents():
        assert str(await agent.inquire("Hi")) == "Hello there."
    assert traces.tree() == ["invoke_agent TRACED_MODEL", "  chat offline"]
    span = traces.one("invoke_agent TRACED_MODEL").attributes or {}
    chat = traces.one("chat offline").attributes or {}
    assert span["gen_ai.provider.name"] == "offline"  # its one span, though the agent it runs
    assert span["gen_ai.request.model"] == "offline"  # (that has none) makes the call
    assert span["gen_ai.usage.input_tokens"] == chat["gen_ai.usage.input_tokens"]
    assert span["gen_ai.usage.output_tokens"] == chat["gen_ai.usage.output_tokens"]
