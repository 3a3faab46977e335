"""The web layer's low level, for protocols of other packages, and what it adds for any protocol.

Its names are the ones the protocol modules of this package use; a request's W3C trace
context (``traceparent``) is the incoming one of the runs it starts, in every web app (so
tracing continues the caller's trace), and is put back after the request (an app called in
its client's own task, as httpx's ``ASGITransport`` does, leaks none of it).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx2

from miniagents import InteractionContext, miniagent
from miniagents.ext.web import NoAuthentication, agui_app, ai_sdk_app, lowlevel
from miniagents.ext.web._runs import RunManager
from miniagents.miniagents.lowlevel import incoming_carrier
from tests.ext.web.serving import agui_input, chat_request

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_the_low_level_names_the_managers_own_classes() -> None:
    assert lowlevel.RunManager is RunManager
    assert set(lowlevel.__all__) >= {"RunManager", "WebProtocol", "protocol_app", "Door"}
    assert all(hasattr(lowlevel, name) for name in lowlevel.__all__)


async def test_a_requests_trace_context_is_the_incoming_one_of_its_runs() -> None:
    seen: list[Mapping[str, str] | None] = []

    @miniagent
    async def traced(ctx: InteractionContext) -> None:
        seen.append(incoming_carrier())
        ctx.reply("ok")

    for app, body in (
        (agui_app(traced, authentication=NoAuthentication()), agui_input),
        (ai_sdk_app(traced, authentication=NoAuthentication()), chat_request),
    ):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://localhost") as client:
            headers = {"traceparent": PARENT, "tracestate": "vendor=1"}
            await client.post("/", json=body("r1"), headers=headers)
            await client.post("/", json=body("r2"))
        assert incoming_carrier() is None  # (put back: the app ran in this task)
    carried = {"traceparent": PARENT, "tracestate": "vendor=1"}
    assert seen == [carried, None, carried, None]
