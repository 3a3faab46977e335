"""What the A2A tests share besides JSON-RPC: the principals, the agents, a webhook receiver.

- ``ALICE`` and ``BOB`` are the bearer tokens of two principals;
- :func:`reporter`, :func:`greeter` and :func:`approving` are the agents the tests serve;
- :func:`receiving` serves a webhook :class:`Receiver` on 127.0.0.1, :func:`pushing` the
  push settings that allow its URLs.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from miniagents import InteractionContext, Message, MiniAgent, miniagent
from miniagents.ext.a2a import A2AData, A2AFile, A2APushNotifications
from miniagents.ext.input_requests import request_input
from miniagents.ext.llm.offline import CallTool, offline_agent
from miniagents.ext.llm.offline_script import call_count
from miniagents.ext.tools import FunctionTool
from miniagents.messages.image import ImagePart
from tests.ext.a2a.rpc import serving
from tests.ext.web.serving import delete_file

ALICE, BOB = "alice-secret-token", "bob-secret-token"
"""The bearer tokens of the tests' two principals."""

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
"""A 1x1 PNG image."""

ASK = CallTool("delete_file", {"path": "notes.md"})


@miniagent
async def reporter(ctx: InteractionContext) -> None:
    """Replies with a text, a file, a file by URL, data, and a text with an image."""
    ctx.reply("Here is the report.")
    ctx.reply(A2AFile(data=b"tck", filename="output.txt", media_type="text/plain"))
    ctx.reply(A2AFile(url="https://example.com/r.pdf", filename="r.pdf", text="The PDF."))
    ctx.reply(A2AData(data={"key": "value", "count": 42}))
    ctx.reply(Message(text="A chart:", images=[ImagePart(data=PNG)]))


@miniagent
async def greeter(ctx: InteractionContext) -> None:
    """Asks for a name, then greets."""
    question = request_input("What is your name?")
    ctx.reply(question)
    name = await question.aanswer()
    ctx.reply(f"Hello, {name}!")


def approving() -> MiniAgent[..., Message]:
    """An agent whose every task calls ``delete_file``, which waits for approval, then ends."""
    return offline_agent.fork(
        tools=[FunctionTool(delete_file, requires_approval=True)],
        reply=lambda call: "Done." if call_count(call.messages) else ASK,
        token_delay=0,
    )


@dataclass
class Receiver:
    """A webhook receiver: what it was posted, and what it answers (200 unless told)."""

    url: str = ""
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answers: list[Response] = field(default_factory=list)
    hold: asyncio.Event | None = None  # (if set: each post is answered once it is set)

    def states(self) -> list[str]:
        return [json.loads(body)["statusUpdate"]["status"]["state"] for _, body in self.posts]


@asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    receiver = Receiver()

    async def hook(request: Request) -> Response:
        receiver.posts.append((dict(request.headers), await request.body()))
        if receiver.hold is not None:
            await receiver.hold.wait()
        return receiver.answers.pop(0) if receiver.answers else Response(status_code=200)

    def make(url: str) -> Starlette:
        receiver.url = url
        return Starlette(routes=[Route("/hooks/{name}", hook, methods=["POST"])])

    async with serving(make):
        yield receiver


def pushing(receiver: Receiver, **options: Any) -> A2APushNotifications:
    return A2APushNotifications(allowed_urls=[f"{receiver.url}hooks/"], **options)
