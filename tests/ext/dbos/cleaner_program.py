"""The durable cleaner that the approval programs run: each of its tool calls waits for approval."""

from __future__ import annotations

import json

_PROGRAM = """
from miniagents.ext.dbos import durable
from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from miniagents.ext.tools import FunctionTool

URL = <URL>


def remove(name: str) -> str:
    \"\"\"Remove a file.\"\"\"
    print("removing", name, flush=True)
    return f"removed {name}"


cleaner = durable(
    offline_agent.fork(
        alias="CLEANER",
        tools=[FunctionTool(remove, requires_approval=True)],
        reply=one_per_call(<CALLS>, "Done."),
        token_delay=0,
    ),
    database_url=URL,
)
"""


def cleaner_removing(*names: str, url: str = '"sqlite:///runs.sqlite"') -> str:
    """A part of a program (after its imports): ``URL`` and ``cleaner``.

    ``URL`` is the database of its durable runs (``url``, an expression of the program);
    ``cleaner`` is a durable offline agent whose first reply calls ``remove`` once for each
    of ``names``, at once (``{"name": <name>}``: each call waits for approval; ``remove``
    prints ``removing <name>`` when it runs), and whose second says ``Done.``.
    """
    calls = [f'CallTool("remove", {{"name": {json.dumps(name)}}})' for name in names]
    program = _PROGRAM.replace("<URL>", url)
    return program.replace("<CALLS>", calls[0] if len(calls) == 1 else f"[{', '.join(calls)}]")


CLEANER = cleaner_removing("a.txt")
"""The cleaner of one call: ``remove`` of ``a.txt``."""


SAME_PROCESS = (
    """
import asyncio

from miniagents import MiniAgents
from miniagents.ext.dbos import aapprove, apending_approvals, workflow_id
from miniagents.ext.tools import ToolApprovalError, ToolApprovalRequest
"""
    + CLEANER
    + """

async def listed(run: str) -> list[object]:
    for _ in range(1200):  # bounded: 60 s
        found = await apending_approvals(run, database_url=URL)
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("nothing waits")


async def an_approver(run: str) -> None:
    \"\"\"Someone who knows only the run's id (e.g. a web page's handler).\"\"\"
    [call] = await listed(run)
    print("waits:", call.tool_name, dict(call.arguments))
    await aapprove(run, call.call_id, arguments={"name": "b.txt"}, database_url=URL)


async def main() -> None:
    async with MiniAgents():
        with workflow_id("clean-1"):
            reply = cleaner.inquire("Remove a.txt.")
        approver = None
        async for promise in reply:
            message = await promise
            print(type(message).__name__, "|", message)
            if isinstance(message, ToolApprovalRequest):
                request = message
                approver = asyncio.ensure_future(an_approver("clean-1"))
        await approver
        print("request pending:", request.pending)
        try:
            request.approve()
        except ToolApprovalError as error:
            print("approve here:", error)
        print("waits now:", await apending_approvals(database_url=URL))


asyncio.run(main())
"""
)
"""A program whose cleaner's call waits for approval and is approved in its own process,
by an approver that knows only the run's id (``aapprove``), with other arguments."""
