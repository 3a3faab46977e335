"""A durable run stopped in its process while a call waits for a decision: nothing hangs.

Each program (run by ``run_python``, bounded: a hang fails the test) starts a durable run
whose tool call waits for approval, waits until that call waits in the database
(``aapprovals_open``), and then either stops the run (``Engine.stop``, a reader still
awaiting the reply) or leaves the reply's ``async for`` and the ``MiniAgents`` block. The
run stays pending; a second program recovers it, approves the call and reads the reply.
"""

from __future__ import annotations

from pathlib import Path

from tests.ext.dbos.cleaner_program import CLEANER
from tests.subprocesses import run_python

BOUND = 90.0
"""Seconds a program may take, at most (a hang fails the test instead of blocking it)."""

PROGRAM = (
    """
import asyncio
import sys

from miniagents import MiniAgents
from miniagents.ext.dbos import (
    DurableRunStoppedError,
    aapprovals_open,
    apending_approvals,
    workflow_id,
)
from miniagents.ext.dbos._engine import current_engine
from miniagents.ext.tools import ToolApprovalRequest
"""
    + CLEANER
    + """

async def until_waiting(reply) -> ToolApprovalRequest:
    \"\"\"Read the reply up to its request to approve the call, once the call waits.\"\"\"
    async for promise in reply:
        message = await promise
        if isinstance(message, ToolApprovalRequest):
            assert await aapprovals_open("clean-1", [message])
            return message
    raise AssertionError("no request to approve")


async def stopped() -> None:
    async with MiniAgents():
        with workflow_id("clean-1"):
            reply = cleaner.inquire("Remove a.txt.")
        whole = asyncio.ensure_future(reply)  # a reader of the whole reply
        await until_waiting(reply)
        current_engine().stop("clean-1")
        try:
            await whole
        except DurableRunStoppedError as error:
            print("reader:", error, flush=True)
    print("exited", flush=True)


async def left() -> None:
    async with MiniAgents():
        with workflow_id("clean-1"):
            reply = cleaner.inquire("Remove a.txt.")
        await until_waiting(reply)  # (and then the block ends: nobody here decides)
    print("exited", flush=True)


async def recovered() -> None:
    print("waits:", [call.tool_name for call in await apending_approvals(database_url=URL)])
    async with MiniAgents():
        with workflow_id("clean-1"):
            reply = cleaner.inquire("Remove a.txt.")
        async for promise in reply:
            message = await promise
            if isinstance(message, ToolApprovalRequest):
                message.approve()
        print("reply:", [str(message) for message in await reply][-2:], flush=True)


asyncio.run({"stopped": stopped, "left": left, "recovered": recovered}[sys.argv[1]]())
"""
)


def _run(mode: str, folder: Path) -> tuple[list[str], str]:
    done = run_python(["-c", PROGRAM, mode], folder, timeout=BOUND)
    assert done.returncode == 0, done.stderr
    # (was: DBOS's warning of each of its tasks that the stop cancelled, the run's step that
    # waited and its approval's, as if something had gone wrong)
    assert "Asyncio task cancelled" not in done.stderr
    return done.stdout.splitlines(), done.stderr


def _recovered_and_approved(folder: Path) -> None:
    lines, _ = _run("recovered", folder)
    assert lines == [
        "waits: ['remove']",  # pending while no process ran it
        "removing a.txt",
        "reply: ['removed a.txt', 'Done.']",
    ]


def test_a_run_stopped_while_its_call_waits_ends_its_reader_and_its_context(
    tmp_path: Path,
) -> None:
    # (was: the stop cancelled only the workflow's body; the agent and its call waiting for
    # a decision went on, so the reader's await and the context's exit waited for ever)
    lines, _ = _run("stopped", tmp_path)
    assert lines == [
        "reader: The durable run 'clean-1' stopped in this process before it ended: it was "
        "stopped. It stays pending in the database of durable runs, unrecorded from where it "
        "stopped: the next launch of durable runs recovers it, or ask for it again under the "
        "same workflow id to run it on here.",
        "exited",
    ]
    _recovered_and_approved(tmp_path)


def test_a_context_left_while_a_call_waits_for_a_decision_exits_and_keeps_the_run(
    tmp_path: Path,
) -> None:
    # (was: the exit waited for a decision that nobody in the process could give any more)
    lines, stderr = _run("left", tmp_path)
    assert lines == ["exited"]
    warned = [line for line in stderr.splitlines() if "waited for a decision" in line]
    assert len(warned) == 1, stderr
    assert "durable run 'clean-1'" in warned[0]
    assert "'offline_call_1' of remove" in warned[0]
    _recovered_and_approved(tmp_path)
