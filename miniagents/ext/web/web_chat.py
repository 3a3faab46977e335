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
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route

from miniagents.ext.errors import WebChatPageError
from miniagents.ext.web._guard import SecurityHeaders, page_policy
from miniagents.ext.web._http import DEFAULT_MAX_BODY_BYTES
from miniagents.ext.web._runs import (
    DEFAULT_MAX_ENDED_RUNS,
    DEFAULT_MAX_LIVE_RUNS,
    DEFAULT_MAX_LIVE_RUNS_PER_PRINCIPAL,
)
from miniagents.ext.web.ai_sdk import ai_sdk_app
from miniagents.ext.web.auth import Authentication
from miniagents.messages.message import Message
from miniagents.miniagents.agent import MiniAgent

__all__ = ["web_chat_app"]


def web_chat_app(
    agent: MiniAgent[..., Message],
    *,
    page: str | os.PathLike[str],
    grace_period: float = 10.0,
    authentication: Authentication = None,
    allowed_origins: Sequence[str] = (),
    keep_runs_for: float = 300.0,
    max_live_runs: int = DEFAULT_MAX_LIVE_RUNS,
    max_live_runs_per_principal: int = DEFAULT_MAX_LIVE_RUNS_PER_PRINCIPAL,
    max_ended_runs: int = DEFAULT_MAX_ENDED_RUNS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Starlette:
    """The chat page ``page`` at ``/`` and ``agent`` at ``/api/chat`` (an ``ai_sdk_app``).

    The page is served with a Content-Security-Policy that lets only its own inline
    scripts and styles run (by their hashes, read once, when the app is made: an edit of
    the page needs a new app), call only its own origin and be framed by no one, with
    ``X-Content-Type-Options: nosniff``. The page itself is public (it holds no data); the
    agent behind it takes ``authentication`` (the page sends ``Authorization: Bearer``
    with the token it was opened with, ``/#token=...``: see ``miniagents web``).

    Args:
        agent: The agent that answers.
        page: The HTML file of the page (e.g. ``examples/web_chat/index.html``).
        grace_period: Seconds a run goes on after the page left it (see ``ai_sdk_app``).
        authentication: How the agent's app learns who asks (see ``ai_sdk_app``).
        allowed_origins: Other origins whose pages may call the agent (see ``ai_sdk_app``).
        keep_runs_for: Seconds an ended answer stays for a page that reconnects to it (and
            an answer paused for approvals waits for them; see ``ai_sdk_app``).
        max_live_runs: The most answers streaming (or paused) at once (see ``ai_sdk_app``).
        max_live_runs_per_principal: The most of them one principal has at once (see
            ``ai_sdk_app``).
        max_ended_runs: The most ended answers kept for late readers (see ``ai_sdk_app``).
        max_body_bytes: The largest request body the agent's app takes, in bytes (a bigger
            one is a 413; see ``ai_sdk_app``).

    Raises:
        WebChatPageError: if ``page`` is not a file.
        WebConfigurationError: if an allowed origin is ``"*"`` or not an origin, or a limit
            is not one the app can keep to (see ``ai_sdk_app``).
    """
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

    api = ai_sdk_app(
        agent,
        grace_period=grace_period,
        authentication=authentication,
        allowed_origins=allowed_origins,
        keep_runs_for=keep_runs_for,
        max_live_runs=max_live_runs,
        max_live_runs_per_principal=max_live_runs_per_principal,
        max_ended_runs=max_ended_runs,
        max_body_bytes=max_body_bytes,
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        api.state.door.warn_unowned()  # (the mounted app's own lifespan does not run)
        yield

    return Starlette(
        routes=[Route("/", serve_page), Mount("/api/chat", api)],
        middleware=[Middleware(SecurityHeaders)],
        lifespan=lifespan,
    )
