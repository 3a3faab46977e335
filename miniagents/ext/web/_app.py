"""The ASGI app of a protocol: its three routes over the run manager, its door, and its life.

``POST /`` starts (or resumes) a run, ``GET`` the resume path follows one, ``POST`` the
approvals path decides a call of one; what the first two read and answer is the protocol's
(its handlers), the rest is the run manager's. Each request passes the app's door first
(:mod:`miniagents.ext.web._guard`: who asks, and what a browser may do), and each handler
is given the principal who asks. A durable agent's app launches DBOS at its start in a
``MiniAgents`` context of its own (at its first request if it is mounted, its lifespan not
run), and cancels its runs at its end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from miniagents.ext.web._guard import Door
from miniagents.ext.web._runs import RunManager

__all__ = ["Handler", "runs_app"]

Handler = Callable[[Request, str | None], Awaitable[Response]]
"""A route's handler: the request, and the principal who asks (``None``: the app knows nobody)."""


def runs_app(
    manager: RunManager,
    door: Door,
    start_run: Handler,
    resume_run: Handler,
    *,
    run_key: str,
    resume_path: str,
    approvals_path: str,
    max_body_bytes: int,
) -> Starlette:
    """The ASGI app of a protocol: start a run, resume it, decide its pending approvals.

    Args:
        manager: The runs, closed when the app shuts down.
        door: Who asks, and the middleware that keeps browsers safe.
        start_run: ``POST /``: the protocol's run input.
        resume_run: ``GET resume_path``: the run's events after ``Last-Event-ID``.
        run_key: The path parameter that names a run (``run_id``, ``chat_id``).
        resume_path: The path of ``resume_run``.
        approvals_path: The path of a call's approval (it names ``run_key`` and ``call_id``).
        max_body_bytes: The largest approval body read.
    """
    durable = manager.durable

    async def decide_call(request: Request, owner: str | None) -> Response:
        key, call_id = request.path_params[run_key], request.path_params["call_id"]
        return await manager.adecide(request, owner, key, call_id, max_body_bytes)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        door.warn_unowned()
        if durable is None:
            yield
            await manager.aclose()
            return
        async with durable.recovering(manager.context, manager.aclose):
            yield

    def route(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            owner = door.owner(request)
            if isinstance(owner, Response):
                return owner  # (nobody it knows: nothing starts, nothing is shown)
            if durable is not None:  # (a mounted app: its lifespan did not launch DBOS)
                await durable.aready(manager.context, manager.aclose)
            return await handler(request, owner)

        return handle

    app = Starlette(
        routes=[
            Route("/", route(start_run), methods=["POST"]),
            Route(resume_path, route(resume_run), methods=["GET"]),
            Route(approvals_path, route(decide_call), methods=["POST"]),
        ],
        middleware=door.middleware(),
        lifespan=lifespan,
    )
    app.state.runs = manager
    app.state.door = door
    return app
