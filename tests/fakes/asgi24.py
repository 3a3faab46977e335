"""An ASGI app under uvicorn as under a server of ASGI 2.4 or later, for its event streams.

Uvicorn's HTTP scopes say ASGI 2.3; under 2.4 Starlette no longer watches for the client
leaving (its ``send`` raises ``OSError`` then, as the spec has it), and a stream that holds
something while it is sent must give it back all the same. :class:`Asgi24` makes uvicorn
look so to the streams it wraps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Asgi24:
    """``app`` under uvicorn as under a server of ASGI 2.4 or later, for its event streams.

    The scope of each request ``streams(path)`` accepts says 2.4, and once its response
    has started, a send after the client left raises ``OSError``, as the spec has it (the
    client's leaving is watched from then on: a POST's body has been read by then).
    ``ended`` is set once such a request's app call has returned.
    """

    def __init__(self, app: ASGIApp, streams: Callable[[str], bool] = lambda path: True) -> None:
        self.app = app
        self.streams = streams
        self.ended = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.streams(scope["path"]):
            return await self.app(scope, receive, send)
        gone = asyncio.Event()
        watching: list[asyncio.Task[None]] = []

        async def watch() -> None:  # (after the request: its only message is the end)
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        async def sent(message: Message) -> None:
            if gone.is_set():
                raise OSError("The client has gone.")
            if message["type"] == "http.response.start":
                watching.append(asyncio.create_task(watch()))
            await send(message)

        scope = {**scope, "asgi": {**scope.get("asgi", {}), "spec_version": "2.4"}}
        try:
            await self.app(scope, receive, sent)
        finally:
            for task in watching:
                task.cancel()
            self.ended.set()
