"""``web_chat_app``: a chat page (one HTML file, no build step) with an agent behind it.

The page (``web_chat.html``, shipped with the package) speaks the AI SDK's UI message
stream with :func:`~miniagents.ext.web.ai_sdk.ai_sdk_app` mounted at ``/api/chat``: it shows
the answer token by token, tool calls with their arguments, each tool's (or sub-agent's)
output streaming inside the answer, Approve and Deny buttons for a call that waits for
approval, and it resumes the answer after a reload (the chat id and the conversation stay
in the browser's ``localStorage``). ``?ask=...`` in its URL sends that question at once.
``miniagents web`` serves it with the model the environment chooses (the offline model
without an API key).
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Mount, Route

from miniagents.ext.web.ai_sdk import ai_sdk_app
from miniagents.messages.message import Message
from miniagents.miniagents.agent import MiniAgent

__all__ = ["WEB_CHAT_PAGE", "web_chat_app"]

WEB_CHAT_PAGE = Path(__file__).with_name("web_chat.html")
"""The chat page: one static HTML file with its script."""


def web_chat_app(agent: MiniAgent[..., Message], *, grace_period: float = 10.0) -> Starlette:
    """The chat page at ``/`` and ``agent`` at ``/api/chat`` (an ``ai_sdk_app``).

    Args:
        agent: The agent that answers.
        grace_period: Seconds a run goes on after the page left it (see ``ai_sdk_app``).
    """

    async def page(_request: Request) -> FileResponse:
        return FileResponse(WEB_CHAT_PAGE, media_type="text/html")

    return Starlette(
        routes=[
            Route("/", page),
            Mount("/api/chat", ai_sdk_app(agent, grace_period=grace_period)),
        ]
    )
