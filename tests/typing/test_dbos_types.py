"""Static typing tests for ``miniagents.ext.dbos``: ``durable`` and ``workflow_id``.

The ``check_*`` functions are never called: they exist to be type-checked by mypy
(``mypy.ini`` is strict, with ``warn_unused_ignores``). ``assert_type`` pins the exact
inferred types, and each line that must be rejected carries a precise
``# type: ignore[code]``. :func:`test_dbos_types_pass_mypy` runs mypy on this file.
"""

from __future__ import annotations

from typing import assert_type

from mypy_extensions import Arg

from miniagents import InteractionContext, Message, MessageSequencePromise, MiniAgent, miniagent
from miniagents.errors import DurableError, MiniAgentsError
from miniagents.ext.dbos import DurableFailedCallError, durable, use_database, workflow_id
from miniagents.ext.llm.messages import LLMReply
from miniagents.ext.llm.openai import OpenAIMessage, openai_agent
from tests.fakes.typecheck import assert_passes_mypy


@miniagent
async def greet(ctx: InteractionContext, name: str) -> None:
    ctx.reply(f"Hello, {name}!")


def check_durable_keeps_the_agents_type() -> None:
    assert_type(durable(greet), MiniAgent[[Arg(str, "name")], Message])
    assert_type(
        durable(greet, database_url="sqlite:///runs.sqlite"), MiniAgent[[Arg(str, "name")], Message]
    )
    # a durable agent is a MiniAgent of its own (not an OpenAIAgent), its parameters kept
    assert_type(
        durable(openai_agent).inquire("Hi", api="responses"),
        MessageSequencePromise[LLMReply[OpenAIMessage]],
    )
    durable(openai_agent).inquire("Hi", api="nope")  # type: ignore[arg-type]
    durable(openai_agent).inquire("Hi", temprature=0.5)  # type: ignore[call-arg]
    agent = durable(openai_agent.fork(model="gpt-4o-mini"))
    assert_type(
        agent.inquire("Hi", temperature=0.0), MessageSequencePromise[LLMReply[OpenAIMessage]]
    )
    durable(greet).inquire("Hi", nme="Ann")  # type: ignore[call-arg]
    durable(greet, "sqlite:///runs.sqlite")  # type: ignore[call-arg]
    assert_type(durable(greet, ids_by_input=True), MiniAgent[[Arg(str, "name")], Message])
    durable(greet, database_url=1)  # type: ignore[arg-type]
    assert_type(use_database("sqlite:///runs.sqlite"), None)
    use_database(None)  # type: ignore[arg-type]
    durable(greet, ids_by_input="yes")  # type: ignore[arg-type]
    durable("GREET")  # type: ignore[type-var]


def check_workflow_id() -> None:
    with workflow_id("order-42") as chosen:
        assert_type(chosen, str)
    workflow_id(42)  # type: ignore[arg-type]


def check_a_failed_call_that_could_not_be_recorded(error: DurableFailedCallError) -> None:
    assert_type(error.error_type, str)
    assert_type(error.text, str)
    errors: list[DurableError | MiniAgentsError | RuntimeError] = [error]
    assert_type(errors, list[DurableError | MiniAgentsError | RuntimeError])
    error.error_type = 1  # type: ignore[assignment]


def test_dbos_types_pass_mypy() -> None:
    assert_passes_mypy(__file__)
