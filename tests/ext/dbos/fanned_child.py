"""A program the durable tests run (and kill -9): one agent's two calls at once, followed.

``python fanned_child.py <workflow id>``, with ``DB_URL`` (the database of runs) and
``ORDER`` (``A,B`` or ``B,A``: the order in which the two calls reach their model). The
durable agent ``FAN_OUT`` inquires its sub-agent ``FANNED`` (``fanned-model``, the real
openai SDK) twice at once, on ``Question A`` then ``Question B``; the call later in
``ORDER`` reaches its model once the other's reply (so its record) is complete. It prints,
flushed, ``TOKEN <json>`` per token the reader of the reply sees, then ``REPLY <json>``.
"""

from __future__ import annotations

import os

from miniagents import InteractionContext, MessageSequencePromise, miniagent
from miniagents.ext.dbos import durable
from miniagents.ext.llm.openai import openai_agent
from tests.ext.dbos.followed_run import follow

ORDER = os.environ.get("ORDER", "A,B").split(",")

asked: dict[str, MessageSequencePromise] = {}
"""The replies of ``FAN_OUT``'s calls of ``FANNED``, by their name."""

fanned = openai_agent.fork(alias="FANNED", model="fanned-model", stream=True, stall_timeout=None)


@miniagent(alias="GATE")
async def _gate(ctx: InteractionContext, name: str) -> None:
    for before in ORDER[: ORDER.index(name)]:  # its sub-agent's call waits for those before
        await asked[before]
    ctx.reply(f"Question {name}")


@miniagent(alias="FAN_OUT")
async def _fan_out(ctx: InteractionContext) -> None:
    for name in ("A", "B"):  # the same agent twice at once, inquired in this order
        asked[name] = fanned.inquire(_gate.inquire(name=name))
        ctx.reply(asked[name])


fan_out = durable(_fan_out, database_url=os.environ["DB_URL"])


if __name__ == "__main__":
    follow(fan_out)
