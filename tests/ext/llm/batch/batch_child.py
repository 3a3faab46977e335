"""A program the batch mode kill tests run (and kill -9): an agent over six items, batched.

``python batch_child.py``, against the fake server of ``OPENAI_BASE_URL``, with
``JOURNAL``: the batch run's journal file (a durable pipeline's is in its database), and
``MODE``: ``plain`` (an echoing agent, the default), ``tools`` (an agent with a tool: two
calls of the model per item), or ``durable`` (the plain agent, ``durable=True``, its runs
in ``DB_URL``). It prints ``RESULT <index> <replies as JSON>`` (flushed) as each item's
result comes.
"""

from __future__ import annotations

import asyncio
import json
import os

from miniagents import MiniAgents
from miniagents.ext.llm.batch import BatchMode
from miniagents.ext.llm.openai import openai_agent
from miniagents.pipeline import pipeline

MODE = os.environ.get("MODE", "plain")
ITEMS = [f"item {index}" for index in range(6)]


def shout(text: str) -> str:
    """Say ``text`` louder."""
    return text.upper()


agent = openai_agent.fork(alias="ECHO", model="gpt-4o-mini")
if MODE == "tools":
    agent = agent.fork(tools=[shout])
if MODE == "durable":
    from miniagents.ext.dbos import use_database

    use_database(os.environ["DB_URL"])
    batch = BatchMode(poll_interval=0.02, max_wait=3600)  # its journal: the database's
else:
    batch = BatchMode(poll_interval=0.02, max_wait=3600, journal=os.environ["JOURNAL"])


async def amain() -> None:
    async with MiniAgents():
        run = pipeline(
            agent, ITEMS, batch=batch, max_concurrency=len(ITEMS), durable=MODE == "durable"
        )
        async for result in run:
            replies = [str(message) for message in result.get()]
            print("RESULT", result.index, json.dumps(replies), flush=True)


if __name__ == "__main__":
    asyncio.run(amain())
