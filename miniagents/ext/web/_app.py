"""The ASGI app of a protocol: its routes over the run manager, its door, and its life.

:func:`runs_app` is the app of the SSE protocols: ``POST /`` starts (or resumes) a run,
``GET`` the resume path follows one, ``POST`` the approvals path decides a call of one;
what the first two read and answer is the protocol's (its handlers), the rest is the run
manager's. :func:`protocol_app` is the same app with the routes a protocol names (A2A's
JSON-RPC endpoint and agent card). Each request passes the app's door first
(:mod:`miniagents.ext.web._guard`: who asks, and what a browser may do), and each handler
is given the principal who asks; a request's W3C trace context (``traceparent``,
``tracestate``) becomes the incoming one of the runs it starts, so that tracing
(:mod:`miniagents.ext.otel`) continues the caller's trace. A durable agent's app launches
DBOS at its start in a ``MiniAgents`` context of its own (at its first request if it is
mounted, its lifespan not run). At its end, the tasks of its live jobs are cancelled, in
this process only: a durable agent's runs are not cancelled in the database, they stay
pending there with the steps they recorded, and the next start recovers them (see
:mod:`miniagents.ext.web._durable`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from miniagents.ext.web._guard import Door
from miniagents.ext.web._http import amethod_not_allowed
from miniagents.ext.web._runs import RunManager
from miniagents.miniagents.lowlevel import adopt_carrier, incoming_carrier

__all__ = ["TRACE_HEADERS", "Handler", "ProtocolRoute", "protocol_app", "runs_app"]

Handler = Callable[[Request, str | None], Awaitable[Response]]
"""A route's handler: the request, and the principal who asks (``None``: the app knows nobody)."""

TRACE_HEADERS = ("traceparent", "tracestate")
"""The W3C trace context headers a request's runs continue (see the module docstring)."""


@dataclass(frozen=True)
class ProtocolRoute:
    """A route of a protocol's app: its path, its handler and its HTTP methods.

    ``public``: served to anyone, without asking who (an A2A agent card: what the agent is
    and how to reach it); every other route's handler is given the principal who asks, and
    a request of nobody known is refused before it.
    """

    path: str
    handler: Handler
    methods: Sequence[str]
    public: bool = False


def runs_app(
    manager: RunManager,
    door: Door,
    start_run: Handler,
    resume_run: Handler,
    *,
    run_key: str,
    resume_path: str,
    approvals_path: str,
) -> Starlette:
    """The ASGI app of a protocol: start a run, resume it, decide its pending approvals.

    Args:
        manager: The runs, closed when the app shuts down (their jobs' tasks cancelled).
        door: Who asks, and the middleware that keeps browsers safe.
        start_run: ``POST /``: the protocol's run input.
        resume_run: ``GET resume_path``: the run's events after ``Last-Event-ID``.
        run_key: The path parameter that names a run (``run_id``, ``chat_id``).
        resume_path: The path of ``resume_run``.
        approvals_path: The path of a call's approval (it names ``run_key`` and ``call_id``);
            its body is read within the manager's ``max_body_bytes``.
    """

    async def decide_call(request: Request, owner: str | None) -> Response:
        key, call_id = request.path_params[run_key], request.path_params["call_id"]
        return await manager.adecide(request, owner, key, call_id)

    routes = [
        ProtocolRoute("/", start_run, ["POST"]),
        ProtocolRoute(resume_path, resume_run, ["GET"]),
        ProtocolRoute(approvals_path, decide_call, ["POST"]),
    ]
    return protocol_app(manager, door, routes)


def protocol_app(manager: RunManager, door: Door, routes: Sequence[ProtocolRoute]) -> Starlette:
    """The ASGI app of a protocol's ``routes`` over ``manager``, behind ``door``.

    Each route but the public ones is given the principal who asks (a request of nobody the
    app knows is the door's 401, and reaches no handler); a durable agent's app is ready
    (DBOS launched, its runs recovered) before any handler runs. The app's lifespan warns
    of unowned runs, and at its end cancels the tasks of the manager's live jobs (as at a
    crash: a durable agent's runs stay pending in the database, and its next start
    recovers them; only a job given up on cancels its durable run). ``app.state.runs`` is
    the manager, ``app.state.door`` the door.
    """
    durable = manager.durable

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        door.warn_unowned()
        if durable is None:
            yield
            await manager.aclose()
            return
        async with durable.recovering(manager.context, manager.aclose):
            yield

    def route(handler: Handler, public: bool) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            owner = None if public else door.owner(request)
            if isinstance(owner, Response):
                return owner  # (nobody it knows: nothing starts, nothing is shown)
            if durable is not None:  # (a mounted app: its lifespan did not launch DBOS)
                await durable.aready(manager.context, manager.aclose)
            headers = request.headers
            carried = {name: found for name in TRACE_HEADERS if (found := headers.get(name))}
            if "traceparent" not in carried:
                return await handler(request, owner)
            before = incoming_carrier()
            adopt_carrier(carried)  # the runs it starts copy it into their tasks
            try:
                return await handler(request, owner)
            finally:  # (an app called in its client's task, as httpx's ASGITransport does)
                adopt_carrier(before or {})

        return handle

    app = Starlette(
        routes=[
            Route(one.path, route(one.handler, one.public), methods=list(one.methods))
            for one in routes
        ],
        middleware=door.middleware(),
        lifespan=lifespan,
        exception_handlers={405: amethod_not_allowed},  # (JSON, as its other refusals)
    )
    app.state.runs = manager
    app.state.door = door
    return app
