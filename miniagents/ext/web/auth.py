"""Who asks: the web apps' identity, as Starlette applications learn it (``request.user``).

The apps take ``authentication=``: a Starlette ``AuthenticationBackend`` (the app puts
Starlette's ``AuthenticationMiddleware`` in front of its routes, with it), or
``"request.user"`` (an enclosing application's ``AuthenticationMiddleware`` has set
``request.user`` already, as a FastAPI or Starlette application that guards its other
routes does), or ``None`` (nobody is known: for local development; runs are unowned, and
the app says so once, as a server starts it). The principal is ``request.user.identity``;
a request whose user is not authenticated is a 401 and starts nothing.

:class:`BearerTokenAuth` is a small backend: a fixed set of bearer tokens, each naming its
principal.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Literal, TypeAlias

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
    SimpleUser,
)
from starlette.requests import HTTPConnection

__all__ = ["Authentication", "BearerTokenAuth"]

Authentication: TypeAlias = AuthenticationBackend | Literal["request.user"] | None
"""How a web app learns who asks (see the module docstring)."""


class BearerTokenAuth(AuthenticationBackend):
    """Who asks, by the bearer token of the request (``Authorization: Bearer <token>``).

    A request without the header has no user (the app answers 401); one with a token this
    backend does not know is refused (401, the message says so). Tokens are compared in
    constant time.

    Args:
        tokens: Each token, with the principal it names (e.g. ``{"s3cr3t": "ada"}``).

    Attributes:
        challenge: The ``WWW-Authenticate`` value a 401 of the apps carries.
    """

    challenge = "Bearer"

    def __init__(self, tokens: Mapping[str, str]) -> None:
        """A backend that knows ``tokens``."""
        self._tokens = [(token.encode(), principal) for token, principal in tokens.items()]

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """The principal of the request's bearer token (``None``: it has none).

        Raises:
            AuthenticationError: if the token is not one of this backend's.
        """
        header = conn.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        given = token.strip().encode()
        found = None
        for known, principal in self._tokens:  # (each compared: the time says nothing)
            if hmac.compare_digest(known, given):
                found = principal
        if found is None:
            raise AuthenticationError(
                "The bearer token of the request is not one this app knows; send the "
                "token you were given (Authorization: Bearer <token>)."
            )
        return AuthCredentials(["authenticated"]), SimpleUser(found)
