"""The agent dummy-a2a's contracts drive: each command word answered as its skills answer it.

``dummy-a2a`` (PyPI, Python 3.12 or newer) holds portable A2A contracts
(``dummy_a2a.contracts``) whose requests name what the server's agent does by the first
word of their text, as its own dummy agent's skills do: ``echo``, ``stream``, ``ask`` (a
question, then a greeting), ``auth`` (a request to authenticate), ``slow``, ``fail``,
``reject``, ``file``, ``data``, ``multi`` (three artifacts). This is that agent in
MiniAgents' own types, served by :func:`app` (push notifications allowed to the URL the
contracts set, on tasks that have ended: nothing is posted).

``python -m tests.ext.a2a.contract_agent 9000`` serves it on 127.0.0.1:9000 for a run of
the contracts by hand (docs/a2a.md, "Conformance"); ``tests/ext/a2a/test_dummy_a2a.py``
runs them in the suite.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette

from miniagents import InteractionContext, MessagePromise, miniagent
from miniagents.ext.a2a import A2AData, A2AFile, A2APushNotifications, A2ATaskRejectedError, a2a_app
from miniagents.ext.input_requests import AuthRequest, request_input
from miniagents.ext.web import NoAuthentication

SLOW_STEPS = 10
"""How many seconds ``slow`` works (a progress text each), as the dummy's slow skill."""


async def _words(text: str) -> AsyncIterator[str]:
    for word in text.split(" "):
        yield f"{word} "


@miniagent
async def contract_agent(ctx: InteractionContext) -> None:
    """Does what the first word of the request says (dummy-a2a's skills)."""
    text = " ".join(str(message) for message in await ctx.message_promises).strip()
    command, _, rest = text.partition(" ")
    if command == "stream":
        ctx.reply(MessagePromise.from_async_iterable(_words(rest or "streamed")))
    elif command == "ask":
        question = request_input("What is your name?")
        ctx.reply(question)
        ctx.reply(f"Hello, {str(await question.aanswer()).strip()}!")
    elif command == "auth":
        request = request_input(
            "Authentication required. Provide a token in your next message.",
            request_class=AuthRequest,
        )
        ctx.reply(request)
        ctx.reply(f"Authenticated with token: {str(await request.aanswer()).strip()}")
    elif command == "slow":
        for step in range(1, SLOW_STEPS + 1):
            await asyncio.sleep(1)
            ctx.reply(f"Progress: {step}/{SLOW_STEPS}")
    elif command == "fail":
        raise RuntimeError("The task failed on purpose (the contracts' fail command).")
    elif command == "reject":
        raise A2ATaskRejectedError("This agent rejects the task, as asked.")
    elif command == "file":
        ctx.reply(A2AFile(data=b"Hello, file!", filename="hello.txt", media_type="text/plain"))
    elif command == "data":
        ctx.reply(A2AData(data={"kind": "structured", "values": [1, 2, 3]}))
    elif command == "multi":
        ctx.reply("First artifact content.")
        ctx.reply(MessagePromise.from_async_iterable(_words("the second artifact content.")))
        ctx.reply(A2AData(data={"artifact": "third", "number": 3}))
    else:  # echo, and any other word
        ctx.reply(rest if command == "echo" and rest else text)


def app() -> Starlette:
    """The contract agent's A2A app (no authentication: the contracts send no credentials)."""
    return a2a_app(
        contract_agent,
        authentication=NoAuthentication(),
        push_notifications=A2APushNotifications(allowed_urls=["http://example.com/"]),
    )


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    uvicorn.run(app(), host="127.0.0.1", port=port, log_level="warning")
