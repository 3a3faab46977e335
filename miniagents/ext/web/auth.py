"""Who asks: the web apps' identity, as Starlette applications learn it (``request.user``).

Every app takes ``authentication=``, and must be given it (an app made without it is a
``WebConfigurationError``, made as the app is):

- a Starlette ``AuthenticationBackend``: the app puts Starlette's
  ``AuthenticationMiddleware`` in front of its routes, with it (:class:`BearerTokenAuth` is
  a small one: a fixed set of bearer tokens, each naming its principal);
- ``"request.user"``: an enclosing application's ``AuthenticationMiddleware`` has set
  ``request.user`` already (a FastAPI or Starlette application that guards its other
  routes the same way);
- :class:`NoAuthentication`: nobody is known, on purpose (local development). Runs are
  then nobody's, every request counts as one principal's against the per-principal
  limits, and the app serves only the hosts of its settings (this machine's names by
  default, see :class:`~miniagents.ext.web.settings.WebSettings`); with only those, it
  serves only this machine's clients too (one of another address is a 403, whatever
  ``Host`` it sends).

The principal is ``request.user.identity``; a request whose user is not authenticated is a
401 and starts nothing.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
    SimpleUser,
)
from starlette.requests import HTTPConnection

from miniagents.arguments import a_class
from miniagents.ext.errors import WebConfigurationError

__all__ = ["MIN_TOKEN_LENGTH", "Authentication", "BearerTokenAuth", "NoAuthentication"]

MIN_TOKEN_LENGTH = 16
"""The fewest characters :class:`BearerTokenAuth` takes in a token (a shorter one is guessed)."""


@dataclass(frozen=True)
class NoAuthentication:
    """No identity, chosen by name: every request is the one local user's.

    For local development only. An app made with it knows nobody: its runs are nobody's
    (any client that reaches it may follow, cancel and decide any run whose id it knows),
    and every request counts as one principal's against ``max_live_runs_per_principal``
    and ``max_streams_per_principal``. It is safe where every client is you: keep the
    settings' ``allowed_hosts`` to this machine's names (the default) and listen on
    ``127.0.0.1``. With those names only, the app refuses a client of another address (a
    403: a client on the network may send ``Host: localhost`` to an app that listens on
    every address). An app that serves other hosts with it says so, as a warning, when it
    starts, and serves any client.
    """


Authentication: TypeAlias = AuthenticationBackend | Literal["request.user"] | NoAuthentication
"""How a web app learns who asks (see the module docstring)."""


class BearerTokenAuth(AuthenticationBackend):
    """Who asks, by the bearer token of the request (``Authorization: Bearer <token>``).

    A request without the header has no user (the app answers 401); one with a token this
    backend does not know is refused (401, the message says so). Tokens are ASCII, and are
    compared as bytes, in constant time.

    Args:
        tokens: Each token, with the principal it names (e.g. ``{token: "ada"}``, ``token``
            of at least :data:`MIN_TOKEN_LENGTH` characters: ``secrets.token_urlsafe(32)``).

    Attributes:
        challenge: The ``WWW-Authenticate`` value a 401 of the apps carries.
    """

    challenge = "Bearer"

    def __init__(self, tokens: Mapping[str, str]) -> None:
        """A backend that knows ``tokens``.

        Raises:
            WebConfigurationError: for an empty token (a request of ``Bearer `` and nothing
                after it would be its principal's), one with spaces around it (never
                matched), a token of no principal, or one shorter than
                :data:`MIN_TOKEN_LENGTH` characters (guessed), or one that is not ASCII
                (a header's bytes never match it); for ``tokens`` that are
                no mapping of str tokens to str principals (a token alone, say).
        """
        given: object = tokens  # (typed; untyped code may give anything)
        if not isinstance(given, Mapping) or not all(
            isinstance(token, str) and isinstance(principal, str)
            for token, principal in given.items()
        ):
            # (was: an AttributeError; the value is not shown: it may be a token)
            raise WebConfigurationError(
                f"BearerTokenAuth needs tokens to be a mapping of each token (a str) to the "
                f"principal it names (a str); got {a_class(type(given))}"
                + (" that holds others." if isinstance(given, Mapping) else ".")
                + " Pass e.g. BearerTokenAuth({token: 'ada'}), the token a secret of at least "
                f'{MIN_TOKEN_LENGTH} characters (python -c "import secrets; '
                'print(secrets.token_urlsafe(32))").',
                parameter="tokens",
            )
        for token, principal in tokens.items():
            problem = (
                "an empty token (a request that sends no token would be its principal's)"
                if not token.strip()
                else "spaces around it (a request's token is read without them)"
                if token != token.strip()
                else "no principal (the runs it starts would be nobody's)"
                if not principal
                else f"a token of {len(token)} characters (one so short is guessed)"
                if len(token) < MIN_TOKEN_LENGTH
                else "a token that is not ASCII (a request's header is read as Latin-1 bytes: "
                "it could never match; use ASCII characters only)"
                if not token.isascii()
                else None
            )
            if problem is not None:
                raise WebConfigurationError(
                    f"BearerTokenAuth was given {problem}: give each token (a secret of at "
                    f"least {MIN_TOKEN_LENGTH} characters; make a random one with python -c "
                    f'"import secrets; print(secrets.token_urlsafe(32))") with the principal '
                    f"it names, {{token: 'ada'}}.",
                    parameter="tokens",
                )
        self._tokens = [(token.encode("ascii"), principal) for token, principal in tokens.items()]

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
        # (the header's bytes as sent: Starlette decodes headers as Latin-1, one byte a character)
        given = token.strip().encode("latin-1")
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
