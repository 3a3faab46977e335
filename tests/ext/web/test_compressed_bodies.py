"""A request body sent compressed (``Content-Encoding: gzip``) is never uncompressed.

Starlette hands an app the bytes as sent, and no middleware of the apps (the door's, CORS,
authentication) uncompresses them: ``max_body_bytes`` counts the bytes that are held, so
a few hundred gzipped bytes that would be a hundred kilobytes uncompressed stay a few
hundred bytes, refused as no JSON (400; A2A's parse error), and no run starts. Each app
is served by a real uvicorn on 127.0.0.1; Studio's fork is tested in its own tests.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from miniagents import InteractionContext, miniagent
from miniagents.ext.a2a import a2a_app
from miniagents.ext.web import NoAuthentication, WebSettings
from tests.ext.a2a.rpc import rpc, send_params
from tests.ext.web.serving import PROTOCOLS, Protocol, served

MOST = 1_000
"""The apps' ``max_body_bytes``: above each gzipped body, far below it uncompressed."""

ran: list[str] = []


@miniagent
async def counted(ctx: InteractionContext) -> None:
    """Notes each run."""
    ran.append("ran")
    ctx.reply("ran")


@pytest.fixture(autouse=True)
def nothing_ran() -> None:
    ran.clear()


def gzipped(body: dict[str, Any]) -> bytes:
    """``body`` as JSON of over 100 KB (a pad added), gzipped to under :data:`MOST` bytes."""
    padded = json.dumps({**body, "pad": "x" * 100_000}).encode()
    sent = gzip.compress(padded)
    assert len(sent) < MOST < len(padded)
    return sent


HEADERS = {"content-type": "application/json", "content-encoding": "gzip"}


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_gzipped_body_is_read_as_sent_within_max_body_bytes(protocol: Protocol) -> None:
    app = protocol.app(
        counted, authentication=NoAuthentication(), settings=WebSettings(max_body_bytes=MOST)
    )
    async with served(app) as client:
        response = await client.post("/", content=gzipped(protocol.body("c")), headers=HEADERS)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_json"
        assert app.state.runs.live == 0
    assert ran == []


async def test_a_gzipped_a2a_request_is_read_as_sent_within_max_body_bytes() -> None:
    app = a2a_app(
        counted, authentication=NoAuthentication(), settings=WebSettings(max_body_bytes=MOST)
    )
    async with served(app) as client:
        sent = gzipped(rpc("SendMessage", send_params()))
        response = await client.post("/", content=sent, headers=HEADERS)
        error = response.json()["error"]  # (answered as JSON-RPC answers errors: a 200)
        assert (response.status_code, error["code"]) == (200, -32700)  # (a parse error)
        assert "not JSON" in error["message"]
    assert ran == []
