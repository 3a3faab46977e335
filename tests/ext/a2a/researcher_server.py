"""The researcher service of the two-service tests: an agent served over A2A, in its own process.

``python researcher_server.py`` listens on a free port of 127.0.0.1 and prints ``PORT <n>``
(flushed) before it serves. The app at ``/`` is ``a2a_app(RESEARCHER)``: the researcher
streams the tokens the test posts to ``/control/token`` (``{"token": ...}``; ``null`` ends
its reply; the post is answered once the researcher waits for the token), noting the
monotonic clock (``time.monotonic_ns``, the same clock in every process of the machine)
just before it yields each one. ``GET /control/state`` says what it produced (each token
with its time), whether its reply was cancelled, how many tasks are live, and the spans it
made (tracing is on, into OpenTelemetry's in-memory exporter); ``POST /control/idle``
answers once no task is live.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import uvicorn
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from miniagents import InteractionContext, MessagePromise, miniagent
from miniagents.ext.a2a import a2a_app
from miniagents.ext.otel import instrument
from miniagents.ext.web import NoAuthentication

tokens: asyncio.Queue[str | None] = asyncio.Queue()
produced: list[tuple[str, int]] = []
cancelled: list[bool] = []
exporter = InMemorySpanExporter()


waiting = asyncio.Event()
"""Set while the researcher waits for its next token (its reply is open: a token posted then
is produced at once, not queued before the task started)."""


async def _tokens() -> AsyncIterator[str]:
    try:
        while True:
            waiting.set()
            token = await tokens.get()
            waiting.clear()
            if token is None:
                return
            produced.append((token, time.monotonic_ns()))
            yield token
    except asyncio.CancelledError:
        cancelled.append(True)
        raise


@miniagent
async def researcher(ctx: InteractionContext) -> None:
    """Researches a subject and streams what it finds.

    Args:
        ctx: The interaction.
    """
    ctx.reply(MessagePromise.from_async_iterable(_tokens()))


app = a2a_app(researcher, authentication=NoAuthentication())


async def token(request: Request) -> Response:
    given = (await request.json())["token"]
    await waiting.wait()  # (the researcher's reply is open and waits for it)
    tokens.put_nowait(given)
    return JSONResponse({})


async def state(request: Request) -> Response:
    spans = [
        {
            "name": span.name,
            "trace": f"{span.context.trace_id:032x}",
            "span": f"{span.context.span_id:016x}",
            "parent": f"{span.parent.span_id:016x}" if span.parent is not None else None,
        }
        for span in exporter.get_finished_spans()
        if span.context is not None
    ]
    return JSONResponse(
        {
            "produced": produced,
            "cancelled": bool(cancelled),
            "live": app.state.runs.live,
            "spans": spans,
        }
    )


async def idle(request: Request) -> Response:
    while app.state.runs.live:  # noqa: ASYNC110 - (the manager signals no event for it)
        await asyncio.sleep(0.001)
    return JSONResponse({})


def main() -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument(provider)
    server_app = Starlette(
        routes=[
            Route("/control/token", token, methods=["POST"]),
            Route("/control/state", state, methods=["GET"]),
            Route("/control/idle", idle, methods=["POST"]),
            Mount("/", app=app),
        ]
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    print("PORT", sock.getsockname()[1], flush=True)
    server = uvicorn.Server(uvicorn.Config(server_app, log_level="warning", lifespan="on"))
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
