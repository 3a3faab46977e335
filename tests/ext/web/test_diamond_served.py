"""Issue 57's diamond served over the web: the client gets every one of its 400 messages.

``REPORT`` splits the 200 rows of ``SRC`` into two per-row agents and replies with both, in
order (a diamond: one reply shared by two branches that meet again in order). Served by
``agui_app`` or ``ai_sdk_app`` under uvicorn (whose loop always holds its sockets and
timers), the client got 128 messages of the 400 and then nothing, for ever: the deadlock
watch relieves a diamond only while the loop is idle. A hang fails here: the client's read
times out (``served``'s httpx client waits 10 s at most for the next bytes), and the whole
POST may take a minute at most.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from miniagents import InteractionContext, miniagent
from miniagents.ext.web import NoAuthentication, agui_app, ai_sdk_app
from tests.ext.web.serving import SSEEvent, post_events, served

POST_WAIT = 60.0
"""Seconds the whole POST may take (it takes well under one)."""


@miniagent
async def src(ctx: InteractionContext) -> None:
    for index in range(200):
        await ctx.areply(f"row {index}")


@miniagent
async def leaf(ctx: InteractionContext) -> None:
    async for promise in ctx.message_promises:
        ctx.reply(f"{await promise} seen")


@miniagent
async def report(ctx: InteractionContext) -> None:
    shared = src.inquire()
    ctx.reply(leaf.inquire(shared))
    ctx.reply(leaf.inquire(shared))


AGUI_RUN: dict[str, Any] = {
    "threadId": "thread-1",
    "runId": "run-1",
    "state": {},
    "messages": [{"id": "u1", "role": "user", "content": "The report, please."}],
    "tools": [],
    "context": [],
    "forwardedProps": {},
}

AI_SDK_CHAT: dict[str, Any] = {
    "id": "chat-1",
    "trigger": "submit-message",
    "messages": [
        {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "The report, please."}]}
    ],
}

PROTOCOLS = {
    # protocol: (the app, the request's body, the end of a text, a text's delta, its id field)
    "agui": (
        agui_app(report, authentication=NoAuthentication()),
        AGUI_RUN,
        "TEXT_MESSAGE_END",
        "TEXT_MESSAGE_CONTENT",
        "messageId",
    ),
    "ai_sdk": (
        ai_sdk_app(report, authentication=NoAuthentication()),
        AI_SDK_CHAT,
        "text-end",
        "text-delta",
        "id",
    ),
}


def texts_of(events: list[SSEEvent], delta: str, key: str) -> list[str]:
    """The texts the events stream, each joined from its deltas, in the order they start."""
    texts: dict[str, str] = {}
    for event in events:
        if event.type == delta:
            texts[event.json[key]] = texts.get(event.json[key], "") + event.json["delta"]
    return list(texts.values())


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
async def test_a_served_diamond_streams_all_its_400_messages(protocol: str) -> None:
    app, body, end, delta, key = PROTOCOLS[protocol]
    async with served(app) as client:
        response, events = await asyncio.wait_for(post_events(client, body), POST_WAIT)
    assert response.status_code == 200
    assert len([event for event in events if event.type == end]) == 400
    assert texts_of(events, delta, key) == [f"row {index} seen" for index in range(200)] * 2
