"""``web_chat_app``: a chat page (one HTML file) at ``/``, with an agent behind it at ``/api/chat``.

The package ships no page: give yours (``page=``). The one of ``examples/web_chat/``
(``index.html``: one static file with a small script, no build step) speaks the AI SDK's UI
message stream with :func:`~miniagents.ext.web.ai_sdk.ai_sdk_app` mounted at ``/api/chat``,
as ``useChat`` would: the answer token by token, tool calls with their arguments, each
tool's (or sub-agent's) output streaming inside the answer, Approve and Deny buttons for a
call that waits for approval (answered the AI SDK's way: the chat sent again with the
approval response), and it resumes the answer after a reload. ``miniagents web --page
PATH`` serves a page with the model the environment chooses (the offline model without an
API key); run from a clone of the repository, it serves the example's page by default.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from miniagents.ext.errors import WebChatPageError
from miniagents.ext.web._guard import Door, page_policy
from miniagents.ext.web._http import amethod_not_allowed
from miniagents.ext.web._runs import check_agent
from miniagents.ext.web.ai_sdk import ai_sdk_app
from miniagents.ext.web.auth import Authentication
from miniagents.ext.web.settings import WebSettings
from miniagents.messages.message import Message
from miniagents.miniagents.agent import MiniAgent

__all__ = ["web_chat_app"]

_API = "/api/chat"
"""Where the agent's app is mounted: the AI SDK's ``DefaultChatTransport``'s default URL."""


def web_chat_app(
    agent: MiniAgent[..., Message],
    *,
    page: str | os.PathLike[str],
    authentication: Authentication | None = None,
    settings: WebSettings = WebSettings(),
) -> Starlette:
    """The chat page ``page`` at ``/`` and ``agent`` at ``/api/chat`` (an ``ai_sdk_app``).

    The page is served with a Content-Security-Policy that lets only its own inline
    scripts and styles run (by their hashes, read once, when the app is made: an edit of
    the page needs a new app), call only its own origin and be framed by no one, with
    ``X-Content-Type-Options: nosniff``, to the settings' ``allowed_hosts`` only. The runs
    still going when the app stops are cancelled (its lifespan: a server runs it). The page
    itself is public (it holds no data); the agent behind it takes ``authentication`` (the
    page sends ``Authorization: Bearer`` with the token it was opened with,
    ``/#token=...``: see ``miniagents web``).

    Args:
        agent: The agent that answers.
        page: The HTML file of the page (e.g. ``examples/web_chat/index.html``).
        authentication: Who asks, required (see :mod:`miniagents.ext.web.auth`): a
            Starlette ``AuthenticationBackend``, ``"request.user"``, or
            ``NoAuthentication()`` for local development.
        settings: The agent's app's limits, hosts, origins and approval edits
            (:class:`WebSettings`); the page's hosts are the same.

    Raises:
        WebChatPageError: if ``page`` is not a file.
        WebConfigurationError: if ``authentication`` is not given, or ``agent`` is no agent
            (a function not decorated with ``@miniagent``).
    """
    door = Door(authentication, settings, "web_chat_app")
    check_agent(agent, "web_chat_app")
    path = Path(page)
    if not path.is_file():
        raise WebChatPageError(
            f"The chat page {str(path)!r} is not a file; give the path of an HTML page, e.g. "
            "examples/web_chat/index.html of the MiniAgents repository."
        )

    html = path.read_text(encoding="utf-8")
    policy = page_policy(html)

    async def serve_page(_request: Request) -> HTMLResponse:
        return HTMLResponse(html, headers={"Content-Security-Policy": policy})

    api = ai_sdk_app(agent, authentication=door.authentication, settings=settings)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        door.warn_unowned()  # (the mounted app's own lifespan does not run)
        yield
        await api.state.runs.aclose()  # (nor cancel its runs: they end with the page's app)

    return Starlette(
        routes=[
            Route("/", serve_page),
            Route(_API, _MountRoot(api, _API)),
            Mount(_API, api),
        ],
        middleware=door.page_middleware(),
        lifespan=lifespan,
        exception_handlers={405: amethod_not_allowed},  # (JSON, as the apps' refusals)
    )


class _MountRoot:
    """A mounted app (``app`` at ``prefix``) answering its mount's path, ``prefix`` itself.

    A request for it (``POST /api/chat``, where ``useChat`` sends a chat by default) is
    the app's root (``/``), not redirected to ``/api/chat/`` (Starlette's 307).
    """

    __slots__ = ("_app", "_prefix")

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self._app = app
        self._prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        root = scope.get("root_path", "") + self._prefix
        rooted = {**scope, "root_path": root, "path": scope["path"] + "/"}
        if "raw_path" in scope:
            rooted["raw_path"] = scope["raw_path"] + b"/"
        await self._app(rooted, receive, send)
