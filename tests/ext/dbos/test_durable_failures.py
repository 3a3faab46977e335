"""A model call that failed in a durable run is recorded with its error, and replayed as such.

A durable agent asks a primary model (the fake LLM server, with the real openai SDK); its
call fails (an error status, an error event after two tokens, a read that times out), the
agent's code catches the error and asks a backup model, whose call is in progress when the
run stops before its end (its context cancelled, as a crash would leave it: pending, its
steps recorded). Asked again by its workflow id, the run replays the failed call (the same
tokens, then an error of the same class and text) without a request to the primary model,
takes the same path, and gives the reply the uninterrupted run gives. These tests launch
DBOS in the test's process, on SQLite and on a real Postgres, and destroy it at their end.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import pickle
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any, cast

import openai
import pytest

from miniagents import InteractionContext, Message, MiniAgent, MiniAgents, miniagent
from miniagents.ext.dbos import DurableFailedCallError, durable, workflow_id
from miniagents.ext.dbos._recording import (
    DurableRun,
    _llm_events,
    _recordable,
    _recordable_call_error,
    _streamed,
    _tool_pieces,
)
from miniagents.ext.llm.errors import LLMError
from miniagents.ext.llm.openai import openai_agent
from miniagents.ext.llm.provider import LLMProvider
from miniagents.ext.tools.errors import ToolError
from miniagents.testing import FakeLLMServer

PRIMARY = "primary-model"
BACKUP = "backup-model"

errors_seen: list[tuple[str, str]] = []
"""The class and text of each error the careful agent caught, in order."""


@miniagent
async def careful(
    ctx: InteractionContext, primary: MiniAgent[..., Message], backup: MiniAgent[..., Message]
) -> None:
    """Ask the primary model; if its call fails, say so and ask the backup model instead."""
    said: list[str] = []
    try:
        async for promise in primary.inquire(ctx.messages):
            async for token in promise:
                said.append(token)
    except LLMError as error:
        errors_seen.append((type(error).__name__, str(error)))
        ctx.reply(f"The primary failed after {''.join(said)!r} with {type(error).__name__}.")
        ctx.reply(backup.inquire(ctx.messages))
        return
    ctx.reply(f"The primary answered {''.join(said)!r}.")


@pytest.fixture
def destroyed() -> Iterator[None]:
    """DBOS destroyed after the test (it launches it in this process)."""
    from dbos import DBOS

    errors_seen.clear()
    try:
        yield
    finally:
        DBOS.destroy(destroy_registry=False)


@pytest.fixture
async def client(fake_llm: FakeLLMServer) -> AsyncIterator[openai.AsyncOpenAI]:
    """An OpenAI client of the fake server: no retries, a read timeout of 1 s."""
    async with openai.AsyncOpenAI(
        base_url=fake_llm.openai_base_url, api_key="test", max_retries=0, timeout=1.0
    ) as made:
        yield made


FAILURES = ["status", "error_event", "timeout", "stall"]
"""How the primary's call fails: a 500, an error event after two tokens, a hung read (the
SDK's read timeout, or the agent's ``stall_timeout`` first)."""

EXPECTED_ERRORS = {
    "status": ("LLMServerError", ""),
    "error_event": ("LLMResponseError", "Partial "),
    "timeout": ("LLMTimeoutError", "Partial "),
    "stall": ("LLMTimeoutError", "Partial "),
}
"""The error each failure gives, and the tokens streamed before it."""


def _script_primary(server: FakeLLMServer, failure: str) -> None:
    if failure == "status":
        server.fail(500, message="The primary is down.", for_model=PRIMARY)
    elif failure == "error_event":
        server.reply(tokens=["Par", "tial ", "never"], error_event_after=2, for_model=PRIMARY)
    else:  # the read times out (or stalls) while the server sends nothing more
        server.reply(tokens=["Par", "tial ", "never"], hang_after=2, for_model=PRIMARY)


def _careful(
    client: openai.AsyncOpenAI, database_url: str, failure: str
) -> MiniAgent[..., Message]:
    stall = 0.4 if failure == "stall" else None  # before the SDK's read timeout (1 s)
    primary = openai_agent.fork(
        alias="PRIMARY", model=PRIMARY, async_client=client, stream=True, stall_timeout=stall
    )
    backup = openai_agent.fork(
        alias="BACKUP", model=BACKUP, async_client=client, stream=True, stall_timeout=None
    )
    return durable(
        careful.fork(alias=f"CAREFUL_{failure.upper()}", primary=primary, backup=backup),
        database_url=database_url,
    )


async def _read(reply: object) -> tuple[list[str], list[str]]:
    """Every token of the reply, as its reader sees them, and its messages' texts."""
    tokens: list[str] = []
    messages: list[str] = []
    async for promise in reply:  # type: ignore[attr-defined]
        async for token in promise:
            tokens.append(token)
        messages.append(str(await promise))
    return tokens, messages


@pytest.mark.parametrize("failure", FAILURES)
async def test_a_failed_call_is_not_made_again_and_the_run_takes_the_same_path(
    fake_llm: FakeLLMServer,
    client: openai.AsyncOpenAI,
    database_url: str,
    destroyed: None,
    failure: str,
) -> None:
    agent = _careful(client, database_url, failure)
    _script_primary(fake_llm, failure)
    fake_llm.reply(tokens=["Back", "up ", "answer."], for_model=BACKUP)
    async with MiniAgents():
        with workflow_id(f"reference-{failure}"):
            reference = await _read(agent.inquire("Question?"))
    error_name, streamed = EXPECTED_ERRORS[failure]
    assert reference[1] == [
        f"The primary failed after {streamed!r} with {error_name}.",
        "Backup answer.",
    ]
    fake_llm.clear_script()
    before = len(fake_llm.requests)

    _script_primary(fake_llm, failure)
    fake_llm.reply(tokens=["Back", "up ", "answer."], pause_after=1, for_model=BACKUP)
    backup_streams: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def crashing() -> None:
        async with MiniAgents():
            with workflow_id(f"failed-{failure}"):
                reply = agent.inquire("Question?")
            async for promise in reply:
                async for token in promise:
                    if token == "Back" and not backup_streams.done():
                        backup_streams.set_result(None)
                        await asyncio.Event().wait()  # until the "crash" cancels everything

    crash = asyncio.create_task(crashing())
    await backup_streams  # the failure was recorded: the backup's call is in progress
    crash.cancel()  # the run stops before its end: pending, its steps recorded
    with pytest.raises(asyncio.CancelledError):
        await crash
    models = [request.json["model"] for request in fake_llm.requests[before:]]
    assert models == [PRIMARY, BACKUP]
    assert len(errors_seen) == 2  # the reference's, the crashed run's

    fake_llm.clear_script()  # the primary would answer now (an echo): it must not be asked
    fake_llm.reply(tokens=["Back", "up ", "answer."], for_model=BACKUP)
    async with MiniAgents():
        with workflow_id(f"failed-{failure}"):
            again = await _read(agent.inquire("Question?"))

    models = [request.json["model"] for request in fake_llm.requests[before:]]
    assert models == [PRIMARY, BACKUP, BACKUP]  # the failed call was replayed, not made
    assert again == reference  # the same tokens (the primary's partial ones) and messages
    assert errors_seen[2] == errors_seen[1]  # the same error class and text, replayed
    if failure == "stall":
        assert "stall_timeout" in errors_seen[2][1]

    async with MiniAgents():
        with workflow_id(f"failed-{failure}"):
            ended = await _read(agent.inquire("Question?"))
    assert ended[1] == reference[1]  # ended: its recorded reply
    assert len(fake_llm.requests) - before == 3


class _Unpicklable(Exception):
    """An error that cannot be recorded (pickling it fails)."""

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("not today")


def test_an_error_that_cannot_be_recorded_is_replaced_by_one_naming_it() -> None:
    error = _Unpicklable("the provider broke")
    recorded = _recordable_call_error(error, error)
    assert isinstance(recorded, DurableFailedCallError)
    assert recorded.error_type == f"{__name__}._Unpicklable"
    assert recorded.text == "the provider broke"
    assert recorded.__cause__ is error
    assert f"failed with {recorded.error_type}: the provider broke." in str(recorded)
    copy = pickle.loads(pickle.dumps(recorded))  # it is recorded, and read back whole
    assert (type(copy), copy.error_type, copy.text) == (
        DurableFailedCallError,
        recorded.error_type,
        "the provider broke",
    )
    kept = LLMError("a model's error")
    assert _recordable_call_error(kept, kept) is kept  # one of ours: recorded as itself


def test_a_tools_error_that_cannot_be_recorded_is_not_told_to_a_web_client_as_ours() -> None:
    # (was a ToolCallError of its text: a web app passes a ToolError's text to its client
    # as written, so the exception's text, the model's alone, reached the client)
    error = _Unpicklable("postgres://admin:hunter2@db")
    recorded = _recordable(error)
    assert isinstance(recorded, DurableFailedCallError)
    assert not isinstance(recorded, ToolError)
    assert recorded.error_type == f"{__name__}._Unpicklable"
    assert str(recorded) == f"{recorded.error_type}: postgres://admin:hunter2@db"  # the model's
    copy = pickle.loads(pickle.dumps(recorded))
    assert (type(copy), copy.text) == (DurableFailedCallError, "postgres://admin:hunter2@db")
    kept = ValueError("a plain error")
    assert _recordable(kept) is kept


async def _a_step_failed_after_its_reader_left(run_id: str, failure: str) -> None:
    """Leave a step of the run ``run_id`` after its first item, its task failing then.

    The step's task fails with ``failure`` (DBOS could not record it) once the reader has
    its first item; the reader leaves without its end, and this returns once the task's
    done callbacks ran.
    """
    failed = asyncio.Event()

    async def step(key: str) -> object:
        body = run.take_body(key)
        assert body is not None
        await body()
        failed.set()
        raise RuntimeError(failure)

    run = DurableRun(run_id, contextvars.copy_context(), step, {})

    async def items() -> AsyncIterator[str]:
        yield "a"
        yield "b"

    stream = _streamed(run, "tool.c1.0", items, lambda items, error: items, lambda e: e)
    assert isinstance(stream, AsyncGenerator)
    assert await anext(stream) == "a"
    await failed.wait()  # (the step's task failed; the reader leaves without its end)
    await stream.aclose()
    turned = asyncio.Event()
    asyncio.get_running_loop().call_soon(turned.set)  # (after the task's done callbacks)
    await turned.wait()


async def test_a_step_that_fails_after_its_reader_left_leaves_no_lost_error() -> None:
    # (was: a step's task that failed (DBOS could not record it) once the reader of its
    # stream had left kept its exception unread: asyncio logged "Task exception was never
    # retrieved" when it was collected)
    loop = asyncio.get_running_loop()
    lost: list[dict[str, object]] = []
    former = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: lost.append(context))
    try:
        await _a_step_failed_after_its_reader_left(
            "failing-step", "The step could not be recorded."
        )
        gc.collect()  # (the stream, gone with the helper's frame)
    finally:
        loop.set_exception_handler(former)
    assert [context["message"] for context in lost] == []


async def test_a_step_not_recorded_after_its_reader_left_is_told_in_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # (was: DBOS's failure to record a step whose reader had left was logged at DEBUG only:
    # a record lost, unseen)
    with caplog.at_level(logging.DEBUG, logger="miniagents.ext.dbos"):
        failure = "The database is locked.\nMore of the driver's words."
        await _a_step_failed_after_its_reader_left("lost-step", failure)
    [warning] = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert warning.getMessage() == (
        "The step tool.c1.0 of the durable run 'lost-step' was not recorded: it failed after "
        "its reader left (RuntimeError: The database is locked.). If the run is recovered, "
        "its call is made again."
    )


@pytest.mark.parametrize("kind", ["tool", "llm"])
async def test_a_calls_step_is_cancelled_as_the_reader_closes_its_pieces_part_way(
    kind: str,
) -> None:
    # (was: closing a tool call's pieces (or a model call's events) part-way left the stream
    # of its step open at its yield: the step ran on, the call with it, until the garbage
    # collector's hook closed that stream later, in a task of its own)
    async def step(key: str) -> object:
        body = run.take_body(key)
        assert body is not None
        return await body()

    run = DurableRun(f"closed-{kind}", contextvars.copy_context(), step, {})

    async def items() -> AsyncIterator[Any]:
        yield "a"
        await asyncio.Event().wait()  # (the call goes on: only its step's cancel ends it)

    if kind == "tool":
        pieces: AsyncIterator[Any] = _tool_pieces(run, "tool.c1.0", items)
    else:
        provider = cast("LLMProvider[Any, Any]", object())  # (asked for nothing: no failure)
        pieces = _llm_events(run, "llm.0", provider, items)
    assert isinstance(pieces, AsyncGenerator)
    assert await anext(pieces) == "a"
    [stepping] = [task for task in asyncio.all_tasks() if "durable step" in task.get_name()]
    await pieces.aclose()
    assert stepping.cancelling()  # (was: 0, running on)
    await asyncio.wait([stepping])
    assert stepping.cancelled()


async def test_a_step_cancelled_before_it_starts_leaves_no_coroutine_never_awaited() -> None:
    # (was: the step's coroutine was made before its task ran: a task cancelled before its
    # start left it unawaited, and Python warned "coroutine ... was never awaited")
    started = asyncio.Event()

    async def step(key: str) -> object:
        started.set()
        return key

    run = DurableRun("cancelled-step", contextvars.copy_context(), step, {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = run.start_step("tool.c1.0", lambda: asyncio.sleep(0))
        task.cancel()  # (before the task's first turn)
        await asyncio.wait([task])
        assert task.cancelled()
        del task
        gc.collect()
    assert not started.is_set()
    assert [str(warning.message) for warning in caught] == []
