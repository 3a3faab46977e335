"""The agent the A2A conformance kits drive: each of their requests answered as they ask.

The official A2A TCK (github a2aproject/a2a-tck, branch ``1.0-dev``) says what its system
under test does by the prefix of each message's ``messageId`` (its ``scenarios/*.feature``):
complete a task with a text, a file (bytes or a URL), data; answer with a message instead
of a task; ask for input; reject; stream a text in chunks. This agent does each, with
MiniAgents' own types (``A2AFile``, ``A2AData``, ``request_input``,
``A2ATaskRejectedError``); the prefix reaches it through ``a2a_app(arguments=...)``, and
``answer_as`` answers the ``tck-message-response`` requests with a message.

``python examples/a2a/tck_agent.py --port 9999`` serves it (its card at
``/.well-known/agent-card.json``); docs/a2a.md ("Conformance") says how to run the kits
against it. Without ``--port``, it serves itself on a free port, asks itself a few of the
kit's requests over A2A (``a2a_agent``), prints what came back, and stops.

Served for the kit it takes no credentials (the kit sends none): run it on a machine of
your own only (it listens on 127.0.0.1). Its self-check asks with a bearer token. It posts
a task's changes only to the receivers ``TCK_PUSH_RECEIVERS`` names, which the kit's run
sets to this machine's ports: never allow those in an app of yours.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
from collections.abc import AsyncIterator

import uvicorn
from a2a.types import SendMessageRequest
from starlette.applications import Starlette

from miniagents import InteractionContext, MessagePromise, MiniAgents, miniagent
from miniagents.ext.a2a import (
    A2AData,
    A2AFile,
    A2AInputRequest,
    A2APushNotifications,
    A2ATaskRejectedError,
    a2a_agent,
    a2a_app,
)
from miniagents.ext.a2a.server import AnswerAs
from miniagents.ext.input_requests import request_input
from miniagents.ext.web import BearerTokenAuth
from miniagents.ext.web.auth import Authentication, NoAuthentication
from miniagents.ext.web.serving import server_config

TEXTS = {
    "tck-complete-task": "Hello from TCK",
    "tck-artifact-text": "Generated text content",
    "tck-message-response": "Direct message response",
    "tck-stream-001": "Stream hello from TCK",
    "tck-stream-003": "Stream task lifecycle",
    "tck-stream-ordering-001": "Ordered output",
    "tck-stream-artifact-text": "Streamed text content",
}
"""The prefixes answered with one text, and the text (the kit's scenarios)."""


@miniagent
async def tck_agent(ctx: InteractionContext, message_id: str = "") -> None:
    """Answers each request of the A2A TCK as its messageId's prefix says."""
    prefix = next((known for known in TEXTS if message_id.startswith(known)), None)
    if message_id.startswith("tck-artifact-file-url"):
        ctx.reply(
            A2AFile(
                url="https://example.com/output.txt", filename="output.txt", media_type="text/plain"
            )
        )
    elif message_id.startswith(("tck-artifact-file", "tck-stream-artifact-file")):
        ctx.reply(A2AFile(data=b"tck", filename="output.txt", media_type="text/plain"))
    elif message_id.startswith("tck-artifact-data"):
        ctx.reply(A2AData(data={"key": "value", "count": 42}))
    elif message_id.startswith("tck-input-required"):
        while message_id.startswith("tck-input-required"):  # (the answer says: ask again)
            question = request_input("The TCK asks for input: send a message to go on.")
            ctx.reply(question)
            answer = await question.aanswer()
            message_id = str(getattr(answer[0], "message_id", ""))  # (the A2A message's id)
        ctx.reply("Hello from TCK")
    elif message_id.startswith("tck-reject-task"):
        raise A2ATaskRejectedError("rejected")
    elif message_id.startswith("tck-stream-artifact-chunked"):
        ctx.reply(MessagePromise.from_async_iterable(chunks()))  # (one artifact, two chunks)
    elif message_id.startswith("tck-stream-002"):
        return  # (it completes with nothing)
    elif message_id.startswith("test-resubscribe-message-id"):
        await asyncio.sleep(4)  # (a long task, for the kit to follow again)
    elif prefix is not None:
        ctx.reply(TEXTS[prefix])
    else:
        ctx.reply(f"Unhandled messageId prefix: {message_id}")


async def chunks() -> AsyncIterator[str]:
    """The two chunks of the kit's chunked artifact."""
    yield "chunk-1 "
    yield "chunk-2"


def arguments(request: SendMessageRequest) -> dict[str, object]:
    """The agent's ``message_id``: the kit's instructions are in it.

    (Or in the message's text, for a client that cannot choose its messages' ids, such as
    ``a2a_agent``: the self-check below.)
    """
    said = request.message.parts[0].text if request.message.parts else ""
    kit = ("tck-", "test-")
    message_id = request.message.message_id
    return {
        "message_id": message_id if message_id.startswith(kit) or not said.startswith(kit) else said
    }


def answer_as(request: SendMessageRequest) -> AnswerAs:
    """A message, not a task, where the kit asks for one."""
    message_id = str(arguments(request)["message_id"])
    return "message" if message_id.startswith("tck-message-response") else "task"


def tck_app(authentication: Authentication | None = None) -> Starlette:
    """The agent's A2A app: the kit sends no credentials (``NoAuthentication()`` by default)."""
    return a2a_app(
        tck_agent,
        name="MiniAgents TCK agent",
        arguments=arguments,
        answer_as=answer_as,
        authentication=NoAuthentication() if authentication is None else authentication,
        push_notifications=push_notifications(),
    )


RECEIVERS_VARIABLE = "TCK_PUSH_RECEIVERS"
"""The variable that names the kit's webhook receivers (URL prefixes, spaces between)."""


def push_notifications() -> A2APushNotifications:
    """Where the app may post a task's changes: the kit's receivers, named by the variable.

    Without :data:`RECEIVERS_VARIABLE`, none: only ``https://example.com/``, where the kit
    sets its other webhooks, on tasks that have ended (nothing is posted there).
    """
    # ######################################################################################
    # NOT FOR AN APP OF YOURS. The kit's receiver listens on this machine, on a port of its
    # own choosing, so the kit's run (docs/a2a.md, "Conformance") sets
    # TCK_PUSH_RECEIVERS="http://localhost:*/ http://127.0.0.1:*/". An app that allows such
    # a prefix lets any caller make it post to any port of its own machine (the services
    # behind its firewall). Allow your receivers' own URLs: one host, one port, one path.
    # ######################################################################################
    kits = os.environ.get(RECEIVERS_VARIABLE, "").split()  # (none unless the kit's run sets it)
    return A2APushNotifications(allowed_urls=[*kits, "https://example.com/"])


async def ask_myself() -> None:
    """Serve on a free port, send a few of the kit's requests over A2A, print the answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    app = tck_app(BearerTokenAuth({"self-check-token-0": "me"}))
    server = uvicorn.Server(server_config(app))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with MiniAgents():
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
            remote = a2a_agent(
                url, alias="TCK", headers={"Authorization": "Bearer self-check-token-0"}
            )
            for asked in KIT_REQUESTS:
                try:
                    async for promise in remote.inquire(asked):
                        message = await promise
                        print(f"{asked}: {type(message).__name__} {message}")
                        if isinstance(message, A2AInputRequest):
                            message.answer("Go on.")
                except A2ATaskRejectedError as error:
                    print(f"{asked}: {type(error).__name__} {error.state}")
    finally:
        server.should_exit = True
        await serving
        sock.close()


KIT_REQUESTS = (
    "tck-artifact-file",
    "tck-artifact-file-url",
    "tck-artifact-data",
    "tck-message-response",
    "tck-input-required",
    "tck-reject-task",
)
"""What the self-check asks (the kit's prefixes, as texts)."""


def main() -> None:
    parser = argparse.ArgumentParser(description="The agent the A2A conformance kits drive.")
    parser.add_argument("--port", type=int, help="serve on this port of 127.0.0.1")
    port = parser.parse_args().port
    if port is None:
        asyncio.run(ask_myself())
        return
    uvicorn.Server(server_config(tck_app(), port=port)).run()


if __name__ == "__main__":
    main()
