"""BearerTokenAuth's tokens: ASCII only, and a request's token compared as the bytes it sent."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from miniagents.errors import WebConfigurationError
from miniagents.ext.web import BearerTokenAuth
from tests.ext.web.serving import served

TOKEN = "an-ascii-token-of-28-chars-x"


@pytest.mark.parametrize(
    "token", ["clé-secrète-du-serveur", "ключ-доступа-к-серверу"], ids=["latin", "cyrillic"]
)
def test_a_token_that_is_not_ascii_is_refused_as_the_backend_is_made(token: str) -> None:
    """(It was taken, and never matched: a header is read as Latin-1, the token was compared
    as UTF-8; every request of its holder was a 401, nothing said why.)"""
    with pytest.raises(WebConfigurationError) as refused:
        BearerTokenAuth({TOKEN: "ann", token: "ada"})
    said = str(refused.value)
    assert "not ASCII" in said
    assert "secrets.token_urlsafe(32)" in said  # (the fix, said)
    assert refused.value.parameter == "tokens"
    assert token not in said  # (a secret is not shown)


def _app(backend: BearerTokenAuth) -> Starlette:
    @requires("authenticated")
    async def who(request: Request) -> Response:
        return JSONResponse({"principal": request.user.display_name})

    def refused(_request: object, error: Exception) -> Response:
        return JSONResponse({"error": str(error)}, status_code=401)

    middleware = Middleware(AuthenticationMiddleware, backend=backend, on_error=refused)
    return Starlette(routes=[Route("/who", who)], middleware=[middleware])


async def test_a_request_token_is_compared_as_the_bytes_it_sent() -> None:
    """A token whose bytes are not ASCII (UTF-8, or Latin-1) is refused as any wrong one (a
    401, not the server's failure); the ASCII one is matched."""
    async with served(_app(BearerTokenAuth({TOKEN: "ann"}))) as client:
        known = await client.get("/who", headers={"Authorization": f"Bearer {TOKEN}"})
        assert known.json() == {"principal": "ann"}
        for sent in (f"{TOKEN}é".encode(), f"{TOKEN}é".encode("latin-1"), b"\xff" * 28):
            wrong = await client.get("/who", headers=[(b"authorization", b"Bearer " + sent)])
            assert wrong.status_code == 401, sent
            assert "not one this app knows" in wrong.json()["error"]
