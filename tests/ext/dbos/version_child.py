"""A program the version tests run (and kill -9): a durable agent made after the first run.

``python version_child.py``, with ``DB_URL`` (the database of runs) and ``LOG`` (a file that
gets a line ``MODEL`` per call of the model and ``TOOL`` per run of the tool, in any
process). It runs the durable agent ``FIRST`` (that launches DBOS), then makes the durable
agent ``LATE`` and asks for its run ``late``: the model calls the ``wait`` tool, which
prints ``EVENT tool`` (flushed) and waits forever with ``HANG=1``, then answers. ``LATE``'s
system prompt is ``LATE_SYSTEM`` (its code, for the version check; ``v1`` by default);
``EXTRA=1`` makes one more durable agent before the first run. It prints ``FIRST <reply>``,
then ``REPLY <json>`` with the late run's messages, or ``REFUSED <error>`` if it is refused.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from miniagents import MiniAgents
from miniagents.ext.dbos import DurableVersionError, durable, workflow_id
from miniagents.ext.llm.offline import CallTool, offline_agent
from miniagents.ext.llm.offline_script import ScriptedReply
from miniagents.ext.llm.provider import LLMCall
from miniagents.ext.tools.messages import ToolResultMessage

URL = os.environ["DB_URL"]


def _log(line: str) -> None:
    with Path(os.environ["LOG"]).open("a", encoding="utf-8") as file:
        file.write(line + "\n")


def answer(call: LLMCall) -> ScriptedReply:
    """The model: call the tool first, then answer with its result."""
    _log("MODEL")
    results = [item for item in call.messages if isinstance(item, ToolResultMessage)]
    if not results:
        return CallTool("wait", {"what": "a"})
    return f"Done with {results[-1].text}."


async def wait(what: str) -> str:
    """Wait for something (forever with HANG=1)."""
    _log("TOOL")
    print("EVENT tool", flush=True)
    if os.environ.get("HANG") == "1":
        await asyncio.Event().wait()
    return f"waited for {what}"


first = durable(offline_agent.fork(alias="FIRST", reply="First.", token_delay=0), database_url=URL)
if os.environ.get("EXTRA") == "1":  # one more durable agent in the program
    durable(offline_agent.fork(alias="EXTRA", reply="Extra.", token_delay=0), database_url=URL)


async def amain() -> None:
    async with MiniAgents():
        with workflow_id("first"):
            print("FIRST", (await first.inquire("Hi"))[-1], flush=True)
        late = durable(  # made after the first durable run of the process
            offline_agent.fork(
                alias="LATE",
                system=os.environ.get("LATE_SYSTEM", "v1"),
                tools=[wait],
                reply=answer,
                token_delay=0,
            ),
            database_url=URL,
        )
        with workflow_id("late"):
            try:
                messages = await late.inquire("Go.")
            except DurableVersionError as error:
                print("REFUSED", error, flush=True)
                return
        print("REPLY", json.dumps([str(message) for message in messages]), flush=True)


if __name__ == "__main__":
    asyncio.run(amain())
