"""Static typing tests for ``miniagents.ext.dbos.runs``: finding and replaying durable runs.

The ``check_*`` functions are never called: they exist to be type-checked by mypy
(``mypy.ini`` is strict, with ``warn_unused_ignores``). ``assert_type`` pins the exact
inferred types, and each line that must be rejected carries a precise
``# type: ignore[code]``. :func:`test_dbos_runs_types_pass_mypy` runs mypy on this file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import assert_type

from miniagents import MessageSequencePromise
from miniagents.ext.dbos import (
    DurableRunInfo,
    aapprovals_open,
    acancel_run,
    afind_runs,
    aname_run,
    anote_run,
    arecover,
    arun_named,
    arun_notes,
    durable,
    is_durable,
    replay,
)
from miniagents.ext.llm.messages import LLMReply
from miniagents.ext.llm.openai import OpenAIMessage, openai_agent
from tests.fakes.typecheck import assert_passes_mypy

agent = durable(openai_agent.fork(model="gpt-4o-mini"))


async def check_runs() -> None:
    assert_type(is_durable(agent), bool)
    assert_type(await arecover(agent), None)
    assert_type(await acancel_run(agent, "chat-7/1"), None)
    await acancel_run(agent)  # type: ignore[call-arg]
    found = await afind_runs(agent, "chat-7/", running_only=True, limit=10)
    assert_type(found, list[DurableRunInfo])
    assert_type(found[0].workflow_id, str)
    assert_type(found[0].ended, bool)
    assert_type(found[0].decided, frozenset[str])
    assert_type(found[0].notes, Mapping[str, object])
    assert_type(found[0].cancelled, bool)
    assert_type(await anote_run(agent, "chat-7/1", {"pause.0": {"run": "r2"}}), None)
    await anote_run(agent, "chat-7/1", ["pause.0"])  # type: ignore[arg-type]
    assert_type(await aname_run(agent, "r2", "chat-7/1"), None)
    assert_type(await arun_named(agent, "r2"), str | None)
    assert_type(await arun_notes(agent, "chat-7/1"), dict[str, object] | None)
    assert_type(await aapprovals_open("chat-7/1", [], seconds=1.0), bool)
    await aapprovals_open("chat-7/1", ["call_1"])  # type: ignore[list-item]
    await arun_notes(agent)  # type: ignore[call-arg]
    await arun_named(agent)  # type: ignore[call-arg]
    assert_type(replay(agent, "chat-7/1"), MessageSequencePromise[LLMReply[OpenAIMessage]])
    replay(agent, 7)  # type: ignore[arg-type]
    replay("AGENT", "chat-7/1")  # type: ignore[arg-type]
    await afind_runs(agent, "chat-7/", True)  # type: ignore[call-arg]
    is_durable(None)  # type: ignore[arg-type]


def test_dbos_runs_types_pass_mypy() -> None:
    assert_passes_mypy(__file__)
