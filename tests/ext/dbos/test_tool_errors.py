"""A tool's exception in a durable run: logged once, under the reference its result carries.

The exception is recorded with the reference it was logged under where it was caught, so a
read of the run again (``replay``) tells that reference and logs nothing. These tests launch
DBOS in the test's process (a SQLite file of their own), and destroy it at their end.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.ext.dbos import durable, replay, workflow_id
from miniagents.ext.errors import InputRequestError
from miniagents.ext.tools import FunctionTool, ToolCallError, ToolCallMessage
from miniagents.ext.tools.running import error_part, run_tool_call


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    """A SQLite file of runs of its own; DBOS destroyed after the test."""
    from dbos import DBOS

    try:
        yield f"sqlite:///{tmp_path / 'runs.sqlite'}"
    finally:
        DBOS.destroy(destroy_registry=False)


def _leaky() -> str:
    """Read the orders from the database."""
    raise ConnectionError("connect to postgresql://admin:hunter2@db.internal/prod failed")


@miniagent(alias="LEAKY_TOOL_CALLER")
async def _leaky_tool_caller(ctx: InteractionContext) -> None:
    call = ToolCallMessage(tool_name="_leaky", arguments={}, call_id="c1")
    ctx.reply(run_tool_call(FunctionTool(_leaky), call))


async def test_a_tools_exception_read_again_keeps_the_reference_it_was_logged_under(
    database: str, caplog: pytest.LogCaptureFixture
) -> None:
    # (was: each read of the run logged the exception again, under a new reference, so a
    # client told the first one no longer found its traceback by the one it was told later)
    agent = durable(_leaky_tool_caller, database_url=database)
    async with MiniAgents():
        with workflow_id("leaky-1"):
            [first] = await agent.inquire()
        [again] = await replay(agent, "leaky-1")
    told = error_part(first.model_dump())
    assert told is not None
    assert error_part(again.model_dump()) == told
    assert str(again) == str(first)  # (the model's text, whole)
    [logged] = [r for r in caplog.records if r.name.startswith("miniagents")]
    assert f"(reference {told.reference})" in logged.getMessage()
    assert logged.exc_info is not None


class _Unpicklable(ConnectionError):
    """An exception that cannot be recorded as itself: it holds a lock (not picklable)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def _locked() -> str:
    """Read the orders from the database."""
    raise _Unpicklable("connect to postgresql://admin:hunter2@db.internal/prod failed")


@miniagent(alias="LOCKED_TOOL_CALLER")
async def _locked_tool_caller(ctx: InteractionContext) -> None:
    call = ToolCallMessage(tool_name="_locked", arguments={}, call_id="c1")
    ctx.reply(run_tool_call(FunctionTool(_locked), call))


async def test_an_unpicklable_exception_read_again_keeps_its_reference_and_class(
    database: str, caplog: pytest.LogCaptureFixture
) -> None:
    # (was: the DurableFailedCallError recorded for it lost the reference it was logged
    # under: it was logged again under another as it reached the call, and once more as the
    # run was read again, and the result named DurableFailedCallError, not its class)
    agent = durable(_locked_tool_caller, database_url=database)
    async with MiniAgents():
        with workflow_id("locked-1"):
            [first] = await agent.inquire()
        [again] = await replay(agent, "locked-1")
    told = error_part(first.model_dump())
    assert told is not None
    assert told.error_class == "_Unpicklable"
    assert error_part(again.model_dump()) == told
    assert str(again) == str(first)
    [logged] = [r for r in caplog.records if r.name.startswith("miniagents")]
    assert f"(reference {told.reference})" in logged.getMessage()
    assert "_Unpicklable" in logged.getMessage()


async def test_an_unpicklable_exception_is_told_to_the_model_by_its_own_class_once(
    database: str,
) -> None:
    # (was: "The tool _locked failed: DurableFailedCallError: tests.ext.dbos...._Unpicklable:
    # connect ...": the substitute's class, then the original's path, unlike a plain error)
    agent = durable(_locked_tool_caller, database_url=database)
    async with MiniAgents():
        with workflow_id("locked-2"):
            [first] = await agent.inquire()
        [again] = await replay(agent, "locked-2")
    said = "connect to postgresql://admin:hunter2@db.internal/prod failed"
    assert str(first) == f"The tool _locked failed: _Unpicklable: {said}"
    assert str(again) == str(first)


class _UnpicklableToolError(ToolCallError):
    """A tool's error told as written that cannot be recorded as itself: it holds a lock."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


_WRITTEN = "No city named 'Pari'. Did you mean 'Paris'?"


def _picky() -> str:
    """Find the weather of a city."""
    raise _UnpicklableToolError(_WRITTEN)


@miniagent(alias="PICKY_TOOL_CALLER")
async def _picky_tool_caller(ctx: InteractionContext) -> None:
    call = ToolCallMessage(tool_name="_picky", arguments={}, call_id="c1")
    ctx.reply(run_tool_call(FunctionTool(_picky), call))


async def test_an_unpicklable_error_told_as_written_is_told_as_written_as_in_a_plain_run(
    database: str, caplog: pytest.LogCaptureFixture
) -> None:
    # (was: "The tool _picky failed: DurableFailedCallError: tests....UnpicklableToolError:
    # No city ...", told to a web client by class and reference, an ERROR logged for it,
    # where a run that is not durable tells the tool's sentence as written, logging none)
    async with MiniAgents():
        [plain] = await _picky_tool_caller.inquire()
    assert str(plain) == _WRITTEN
    agent = durable(_picky_tool_caller, database_url=database)
    async with MiniAgents():
        with workflow_id("picky-1"):
            [first] = await agent.inquire()
        [again] = await replay(agent, "picky-1")
    for told in (first, again):
        assert str(told) == _WRITTEN
        assert error_part(told.model_dump()) is None  # (no reference: told as written)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


class _UnpicklableWithdrawal(InputRequestError):
    """A question withdrawn (told as written, after its class's name) that holds a lock."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def _asking() -> str:
    """Ask the user for a city."""
    raise _UnpicklableWithdrawal("Nobody can answer the question here.")


@miniagent(alias="ASKING_TOOL_CALLER")
async def _asking_tool_caller(ctx: InteractionContext) -> None:
    call = ToolCallMessage(tool_name="_asking", arguments={}, call_id="c1")
    ctx.reply(run_tool_call(FunctionTool(_asking), call))


async def test_an_unpicklable_error_told_after_its_class_is_told_so_as_in_a_plain_run(
    database: str,
) -> None:
    # (was: "The tool _asking failed: DurableFailedCallError: tests...: Nobody ...", told to
    # a web client by class and reference)
    async with MiniAgents():
        [plain] = await _asking_tool_caller.inquire()
    assert str(plain) == (
        "The tool _asking failed: _UnpicklableWithdrawal: Nobody can answer the question here."
    )
    agent = durable(_asking_tool_caller, database_url=database)
    async with MiniAgents():
        with workflow_id("asking-1"):
            [first] = await agent.inquire()
        [again] = await replay(agent, "asking-1")
    for told in (first, again):
        assert str(told) == str(plain)
        assert error_part(told.model_dump()) is None
