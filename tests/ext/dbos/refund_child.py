"""A durable run scripted as docs/durability.md scripts one, to be killed in its second tool.

``python refund_child.py <workflow id>``, with ``DB_URL`` (the database of runs) and
``SIDE_EFFECTS`` (the ledger the ``refund`` tool appends to). The offline model is scripted
with ``one_per_call``: it refunds an order, then notifies its customer (which waits forever
with ``HANG_IN_NOTIFY=1``), then answers. It prints ``EVENT <tool> <order>`` as each tool
runs, and what :func:`~tests.ext.dbos.followed_run.follow` prints of the reply.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from miniagents.ext.dbos import durable
from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from tests.ext.dbos.followed_run import follow


def refund(order: str, amount: float) -> str:
    """Refund an order (a side effect: a line in the ledger, which must be written once)."""
    with Path(os.environ["SIDE_EFFECTS"]).open("a", encoding="utf-8") as ledger:
        ledger.write(f"refund {order} {amount}\n")
    print("EVENT refund", order, flush=True)
    return f"refunded {amount} on {order}"


async def notify(order: str) -> str:
    """Tell the customer of an order that it was refunded."""
    print("EVENT notify", order, flush=True)
    if os.environ.get("HANG_IN_NOTIFY") == "1":
        await asyncio.Event().wait()
    return f"notified the customer of {order}"


refunds = durable(
    offline_agent.fork(
        alias="REFUNDS",
        tools=[refund, notify],
        reply=one_per_call(
            CallTool("refund", {"order": "A17", "amount": 12.5}),
            CallTool("notify", {"order": "A17"}),
            "A17 is refunded, and its customer told.",
        ),
        token_delay=0,
    ),
    database_url=os.environ["DB_URL"],
)


if __name__ == "__main__":
    follow(refunds)
