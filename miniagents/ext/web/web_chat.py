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
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Mount, Route

from miniagents.ext.errors import WebChatPageError
from miniagents.ext.web.ai_sdk import ai_sdk_app
from miniagents.messages.message import Message
from miniagents.miniagents.agent import MiniAgent

__all__ = ["web_chat_app"]


def web_chat_app(
    agent: MiniAgent[..., Message],
    *,
    page: str | os.PathLike[str],
    grace_period: float = 10.0,
) -> Starlette:
    """The chat page ``page`` at ``/`` and ``agent`` at ``/api/chat`` (an ``ai_sdk_app``).

    Args:
        agent: The agent that answers.
        page: The HTML file of the page (e.g. ``examples/web_chat/index.html``).
        grace_period: Seconds a run goes on after the page left it (see ``ai_sdk_app``).

    Raises:
        WebChatPageError: if ``page`` is not a file.
    """
    path = Path(page)
    if not path.is_file():
        raise WebChatPageError(
            f"The chat page {str(path)!r} is not a file; give the path of an HTML page, e.g. "
            "examples/web_chat/index.html of the MiniAgents repository."
        )

    async def serve_page(_request: Request) -> FileResponse:
        return FileResponse(path, media_type="text/html")

    return Starlette(
        routes=[
            Route("/", serve_page),
            Mount("/api/chat", ai_sdk_app(agent, grace_period=grace_period)),
        ]
    )
