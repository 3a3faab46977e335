"""The main part of the child programs of one durable run, followed by its reader.

``durable_child.py`` and ``failover_child.py`` each make a durable agent and hand it to
:func:`follow`, which runs it once under the workflow id of the command line and prints what
the tests' ``Child`` (``test_durable_kills.py``) reads: ``TOKEN <json>`` per token the
reader of the reply sees, then ``REPLY <json>`` with the reply's messages (each line
flushed, so that a test reads it before it kills the program).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable

from miniagents import MiniAgent, MiniAgents
from miniagents.ext.dbos import workflow_id
from miniagents.messages import Message


def follow(
    agent: MiniAgent[..., Message], on_message: Callable[[Message], None] | None = None
) -> None:
    """Run ``agent`` on ``"Go."`` under the workflow id ``sys.argv[1]``; print what it does.

    ``on_message`` is given each message of the reply once its tokens are printed.
    """
    asyncio.run(_afollow(agent, sys.argv[1], on_message))


async def _afollow(
    agent: MiniAgent[..., Message], chosen: str, on_message: Callable[[Message], None] | None
) -> None:
    async with MiniAgents():
        with workflow_id(chosen):
            reply = agent.inquire("Go.")
        async for promise in reply:
            async for token in promise:
                print("TOKEN", json.dumps(token), flush=True)
            if on_message is not None:
                on_message(await promise)
        messages = await reply
        print(
            "REPLY",
            json.dumps([[type(message).__name__, str(message)] for message in messages]),
            flush=True,
        )
