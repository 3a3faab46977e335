"""A program the durable pipeline tests run (and kill -9): an agent over six items, durably.

``python pipeline_child.py``, with ``DB_URL`` (the database of runs) and ``MODE``: ``agent``
(the default) runs ``pipeline(durable(agent, ids_by_input=True), items)``; ``switch`` runs
``pipeline(agent, items, durable=...)``: ``True``, or ``PIPELINE_ID`` if given. ``ITEMS``
(``|``-separated) replaces the six items. One item at a time, in order; it prints
``RESULT <index> <reply>`` (flushed) as each item's result comes.
"""

from __future__ import annotations

import asyncio
import os

from miniagents import MiniAgents
from miniagents.ext.dbos import durable, use_database
from miniagents.ext.llm.openai import openai_agent
from miniagents.pipeline import pipeline

ITEMS = os.environ.get("ITEMS", "|".join(f"item {index}" for index in range(6))).split("|")
SWITCH = os.environ.get("MODE", "agent") == "switch"
DURABLE: bool | str = os.environ.get("PIPELINE_ID") or SWITCH

echo = openai_agent.fork(alias="ECHO", model="echo-model", stream=True)
if SWITCH:
    use_database(os.environ["DB_URL"])
else:
    echo = durable(echo, database_url=os.environ["DB_URL"], ids_by_input=True)


async def amain() -> None:
    async with MiniAgents():
        async for result in pipeline(echo, ITEMS, max_concurrency=1, durable=DURABLE):
            print("RESULT", result.index, result.replies[-1], flush=True)


if __name__ == "__main__":
    asyncio.run(amain())
