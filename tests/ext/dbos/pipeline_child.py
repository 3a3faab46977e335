"""A program the durable pipeline test runs (and kills -9): a durable agent over six items.

``python pipeline_child.py``, with ``DB_URL`` (the database of runs). One item at a time,
in order; it prints ``RESULT <index> <reply>`` (flushed) as each item's result comes.
"""

from __future__ import annotations

import asyncio
import os

from miniagents import MiniAgents
from miniagents.ext.dbos import durable
from miniagents.ext.llm.openai import openai_agent
from miniagents.pipeline import pipeline

ITEMS = [f"item {index}" for index in range(6)]

echo = durable(
    openai_agent.fork(alias="ECHO", model="echo-model", stream=True),
    database_url=os.environ["DB_URL"],
    ids_by_input=True,
)


async def amain() -> None:
    async with MiniAgents():
        async for result in pipeline(echo, ITEMS, max_concurrency=1):
            print("RESULT", result.index, result.replies[-1], flush=True)


if __name__ == "__main__":
    asyncio.run(amain())
