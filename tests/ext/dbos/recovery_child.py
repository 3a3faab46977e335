"""A program the recovery tests run: a process that never makes the agent of a pending run.

``python recovery_child.py``, with ``DB_URL`` (the database of runs). It makes one durable
agent, ``OTHER``, and runs it once (that launches DBOS, which recovers every pending run of
the database, whatever its agent), prints ``OTHER <reply>`` (flushed), waits until the
recovered run of ``version_child.py``'s ``LATE`` waits for its agent (which it never
makes), and ends: that run must stay pending, cleanly.
"""

from __future__ import annotations

import asyncio
import os

import miniagents.ext.dbos._engine as engine_module
from miniagents import MiniAgent, MiniAgents
from miniagents.ext.dbos import durable, workflow_id
from miniagents.ext.llm.offline import offline_agent
from miniagents.messages import Message

other = durable(
    offline_agent.fork(alias="OTHER", reply="Other.", token_delay=0),
    database_url=os.environ["DB_URL"],
)


async def amain() -> None:
    waiting = asyncio.Event()
    agents = engine_module._agents
    awaited = agents.await_agent

    async def noted(alias: str) -> MiniAgent[..., Message]:
        if alias == "LATE":
            waiting.set()
        return await awaited(alias)

    agents.await_agent = noted  # type: ignore[method-assign]
    async with MiniAgents():
        with workflow_id("other"):
            print("OTHER", (await other.inquire("Hi"))[-1], flush=True)
    await waiting.wait()  # the run of LATE, recovered at launch, waits for its agent


if __name__ == "__main__":
    asyncio.run(amain())
