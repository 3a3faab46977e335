"""No provider's API key follows a redirect to another host (two servers on 127.0.0.1).

The base URL's server answers every request with a ``307`` to another server (another
port: another origin), which notes the headers it gets. httpx takes only ``Authorization``
off a request it sends to another host; the Gemini agent's own client (made from the
environment) sends its key as ``x-goog-api-key``, so it follows no redirect at all.
"""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from miniagents import MiniAgents
from miniagents.ext.llm.errors import LLMError
from miniagents.ext.llm.gemini import gemini_agent
from tests.ext.a2a.rpc import serving

SECRET = "the-api-key"


async def test_the_gemini_agents_own_client_follows_no_redirect_with_its_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (was: the SDK's client followed the 307 to the other host, its x-goog-api-key with it)
    heard: list[dict[str, str]] = []

    def elsewhere(_: str) -> ASGIApp:
        async def note(request: Request) -> Response:
            heard.append(dict(request.headers))
            error = {"code": 401, "message": "Who are you?", "status": "UNAUTHENTICATED"}
            return JSONResponse({"error": error}, status_code=401)

        return Starlette(routes=[Route("/{path:path}", note, methods=["GET", "POST"])])

    async with serving(elsewhere) as other:

        def redirecting(_: str) -> ASGIApp:
            async def redirect(request: Request) -> Response:
                there = f"{other}{request.url.path.lstrip('/')}?{request.url.query}"
                return RedirectResponse(there, status_code=307)

            return Starlette(routes=[Route("/{path:path}", redirect, methods=["GET", "POST"])])

        async with serving(redirecting) as url:
            for name in ("GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_API_KEY", "GOOGLE_CLOUD_PROJECT"):
                monkeypatch.delenv(name, raising=False)
            monkeypatch.setenv("GEMINI_API_KEY", SECRET)
            monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", url)
            async with MiniAgents():
                with pytest.raises(LLMError) as raised:
                    await gemini_agent.inquire("Hi", model="gemini-test", max_retries=0)
    assert not [headers for headers in heard if SECRET in headers.values()]
    assert heard == []  # (not followed at all)
    assert "307 Temporary Redirect" in str(raised.value)
