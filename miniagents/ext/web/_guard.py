"""The apps' door: which hosts they answer to, who asks (the principal), what a browser may do.

- **Hosts** (:meth:`Door.middleware`, first of all): a request whose ``Host`` is not one of
  the settings' ``allowed_hosts`` (any port) is a 400 JSON error, before anything else
  runs; so a page of a name an attacker points at this machine (DNS rebinding) is
  refused, and the same-origin check below, which compares a page's ``Origin`` with the
  ``Host``, compares it with a host the app serves.
- **Clients of an app that knows nobody** (:meth:`Door.middleware`, after the hosts): with
  ``NoAuthentication`` and only this machine's names allowed, a request or WebSocket from a
  client of another address (the connection's, or the one a trusted proxy names) is a 403
  JSON error: the ``Host`` header is the client's to write, so a client on the network that
  sends ``Host: localhost`` to an app listening on every address would otherwise be served
  as the local user. So is one that a proxy of this machine relays for a client of another
  (its ``X-Forwarded-For``, ``X-Real-IP`` or ``Forwarded`` names one), trusted or not: a
  reverse proxy in front that sends ``Host: localhost`` (Apache's default) would otherwise
  serve the whole network as the local user.
- **Identity** (:class:`Door`): every app is given its ``authentication`` (see
  :mod:`miniagents.ext.web.auth`; made without, it is a ``WebConfigurationError``); the
  principal is ``request.user.identity``, and a request whose user is not authenticated is
  a 401 JSON error and starts nothing. With ``NoAuthentication`` runs are nobody's, and an
  app that serves other hosts than this machine's says so once, when it starts (its
  lifespan: a server runs it; an app mounted in another, whose lifespan does not run the
  mounted app's, says nothing).
- **Browser safety** (:meth:`Door.middleware`): every response carries a
  Content-Security-Policy (``default-src 'none'; frame-ancestors 'none'``: an API response
  runs nothing and is framed nowhere), ``X-Content-Type-Options: nosniff``,
  ``X-Frame-Options: DENY`` and ``Referrer-Policy: no-referrer``; a POST must say
  ``Content-Type: application/json`` (415 otherwise: a form or a ``text/plain`` request, which
  a page of any site may send without asking, starts nothing); a request (a POST, or a
  ``GET`` of a run's stream, which would hold one of the user's streams) from a page of
  another origin is a 403 unless that origin is allowed (``allowed_origins``; the app's own
  origin always is), as is one a browser sends with no ``Origin`` but ``Sec-Fetch-Site:
  cross-site`` or ``same-site`` (an image's, a script's, a frame's; a link followed in the
  user's own tab is not refused), and allowed origins get CORS (preflight included) from
  Starlette's ``CORSMiddleware``. A WebSocket (which a browser opens from a page of any
  site, with no CORS) is held to the same hosts and origins, before anything of the app
  runs: refused, it is closed as it opens with 4000 plus the status (4400, 4401, 4403) and a
  sentence that says why, which its page reads (a browser hides an HTTP refusal of a
  WebSocket from its page: a bare 1006).
- **Body deadline** (:meth:`Door.middleware`, before anything else): a request's body has
  the settings' ``body_seconds`` from the request's arrival at the app (its headers read) to
  arrive, all of it, however late the app starts reading it (a 408 past them).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import logging
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    UnauthenticatedUser,
)
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Host, Mount, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from miniagents.arguments import refused_argument
from miniagents.ext.errors import WebConfigurationError
from miniagents.ext.web._http import body_deadline, error_response
from miniagents.ext.web.auth import Authentication, NoAuthentication
from miniagents.ext.web.settings import LOCAL_HOSTS, WebSettings

__all__ = [
    "API_POLICY",
    "Door",
    "SecurityHeaders",
    "close_refused",
    "page_policy",
    "serves_this_machine_only",
]

_logger = logging.getLogger("miniagents.ext.web")

API_POLICY = "default-src 'none'; frame-ancestors 'none'"
"""The Content-Security-Policy of every response that is not a page: nothing runs, no frame."""

_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_METHODS = ("GET", "POST")
_REQUEST_HEADERS = ("authorization", "content-type", "last-event-id")


class Door:
    """Which hosts, who asks, and the middleware that keeps browsers safe (see the module).

    Args:
        authentication: How the app learns who asks (``None``: not given, refused).
        settings: The app's settings: its ``allowed_hosts``, ``allowed_origins`` and
            ``body_seconds``.
        name: The app's name, in its errors and warnings.
        request_headers: The request headers a page of an allowed origin may send besides
            ``Authorization``, ``Content-Type`` and ``Last-Event-ID`` (a protocol's own,
            e.g. A2A's ``A2A-Version``; lower-case).

    Raises:
        WebConfigurationError: if ``authentication`` is ``None``, or none of the three kinds
            (a backend, ``"request.user"``, ``NoAuthentication()``): another str, or a
            backend's class rather than an instance of it.
    """

    def __init__(
        self,
        authentication: Authentication | None,
        settings: WebSettings,
        name: str,
        *,
        request_headers: Sequence[str] = (),
    ) -> None:
        if authentication is None:
            raise WebConfigurationError(
                f"{name} needs authentication= (who asks): give it a Starlette "
                "AuthenticationBackend (e.g. authentication=BearerTokenAuth({token: "
                "principal})) or 'request.user' behind an enclosing AuthenticationMiddleware; "
                "or, for local development, authentication=NoAuthentication() (runs are then "
                "nobody's, and the app answers only this machine's host names: "
                "localhost, 127.0.0.1, [::1]). See docs/web-deployment.md.",
                parameter="authentication",
            )
        given: object = authentication  # (typed; untyped code may give anything)
        if not isinstance(given, AuthenticationBackend | NoAuthentication) and not (
            isinstance(given, str) and given == "request.user"
        ):
            # (was: anything else served as 'request.user', every request then a 401)
            raise refused_argument(
                given,
                "authentication",
                "a Starlette AuthenticationBackend (an instance, such as BearerTokenAuth(...)), "
                "'request.user' or NoAuthentication()",
                owner=name,
                fix="Pass authentication=BearerTokenAuth({token: principal}) for others, "
                "'request.user' behind an enclosing AuthenticationMiddleware, or "
                "authentication=NoAuthentication() for local development. See "
                "docs/web-deployment.md.",
                error=WebConfigurationError,
            )
        self.authentication = authentication
        self.settings = settings
        self.name = name
        self.request_headers = (*_REQUEST_HEADERS, *request_headers)
        self._warned = False

    def _serves_others(self) -> bool:
        """Whether the settings' ``allowed_hosts`` name a host that is not this machine's."""
        return not all(host in LOCAL_HOSTS for host in self.settings.allowed_hosts)

    def warn_unowned(self) -> None:
        """Say once that runs are nobody's, when the app knows nobody and serves other hosts."""
        hosts = self.settings.allowed_hosts
        unowned = isinstance(self.authentication, NoAuthentication)
        if unowned and self._serves_others() and not self._warned:
            self._warned = True
            _logger.warning(
                "%s serves %s with NoAuthentication: anyone who reaches it by those names "
                "can read and decide any run whose id they know. Give it authentication= "
                "(a Starlette AuthenticationBackend, or 'request.user' behind an enclosing "
                "AuthenticationMiddleware) before it is reachable by others; see "
                "docs/web-deployment.md.",
                self.name,
                ", ".join(hosts),
            )

    def owner(self, request: Request) -> str | JSONResponse | None:
        """The principal who asks (``None``: the app knows nobody), or the 401 of nobody."""
        if isinstance(self.authentication, NoAuthentication):
            return None
        user = request.scope.get("user")
        if user is None and not self._warned:  # ("request.user", and no middleware set it)
            self._warned = True
            _logger.error(
                "%s was made with authentication='request.user', but no "
                "AuthenticationMiddleware set request.user: every request is refused (401). "
                "Put Starlette's AuthenticationMiddleware in the enclosing application, or "
                "give the app its own backend (authentication=BearerTokenAuth(...), say).",
                self.name,
            )
        if user is None or not user.is_authenticated:
            return self.unauthenticated(None)
        identity = user.identity
        if not isinstance(identity, str) or not identity:
            return self.unauthenticated("The request's user has no identity (a str) to own runs.")
        return identity

    def unauthenticated(self, why: str | None) -> JSONResponse:
        """The 401 of a request whose user is not known (``why``: the backend's reason)."""
        response = error_response(
            401,
            "unauthenticated",
            why
            or "The request says nobody this app knows (no credentials, or the wrong kind); "
            "send the credentials the app takes (e.g. Authorization: Bearer <token>).",
        )
        challenge = getattr(self.authentication, "challenge", None)
        if isinstance(challenge, str):
            response.headers["WWW-Authenticate"] = challenge
        return response

    def page_middleware(self) -> list[Middleware]:
        """The middleware of a page's app, outermost first: the security headers, the hosts.

        An app that knows nobody and serves only this machine's names serves only this
        machine's clients too (see the module).
        """
        found = [
            Middleware(SecurityHeaders),
            Middleware(_HostCheck, allowed_hosts=self.settings.allowed_hosts),
        ]
        if isinstance(self.authentication, NoAuthentication) and not self._serves_others():
            found.append(Middleware(_LocalClients, name=self.name))
        return found

    def middleware(self) -> list[Middleware]:
        """The app's middleware, outermost first: body deadline, headers, hosts, CORS, identity."""
        origins = self.settings.allowed_origins
        found = [
            Middleware(_BodyDeadline, seconds=self.settings.body_seconds),
            *self.page_middleware(),
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_methods=_METHODS,
                allow_headers=self.request_headers,
                allow_credentials=True,
                expose_headers=("x-vercel-ai-ui-message-stream",),
            ),
            Middleware(_OriginCheck, allowed_origins=origins),
        ]
        if isinstance(self.authentication, AuthenticationBackend):
            found.append(Middleware(_Identity, door=self))
        return found


class _Identity:
    """Sets ``request.user`` by the door's backend; credentials it refuses: a 401.

    Starlette's ``AuthenticationMiddleware`` closes a refused WebSocket with a bare 1000
    before it opens (its page sees neither a refusal nor why): a refused WebSocket is
    closed as it opens with 4401 and a sentence that says why, as the door's other
    refusals are (see :func:`close_refused`).
    """

    def __init__(self, app: ASGIApp, door: Door) -> None:
        self.app = app
        self.door = door

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        backend = self.door.authentication
        if scope["type"] not in ("http", "websocket") or not isinstance(
            backend, AuthenticationBackend
        ):
            await self.app(scope, receive, send)
            return
        try:
            found = await backend.authenticate(HTTPConnection(scope))
        except AuthenticationError as error:
            await _refuse(self.door.unauthenticated(str(error) or None), scope, receive, send)
            return
        scope["auth"], scope["user"] = found or (AuthCredentials(), UnauthenticatedUser())
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Puts the security headers on every response (a page's own policy kept)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", API_POLICY.encode()))
                headers += [(name, value) for name, value in _HEADERS if name not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_secured)


class _BodyDeadline:
    """Starts each request's body deadline as the request reaches the app (see the module)."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            body_deadline(scope, self.seconds)
        await self.app(scope, receive, send)


class _HostCheck:
    """A request or WebSocket whose ``Host`` is not one of ``allowed_hosts`` (any port): a 400."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.any = "*" in allowed_hosts
        self.names = frozenset(host for host in allowed_hosts if not host.startswith("*"))
        self.suffixes = tuple(host[1:] for host in allowed_hosts if host.startswith("*."))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("host", "")
        host = _host_of(given)
        if host is not None and (host in self.names or host.endswith(self.suffixes)):
            await self.app(scope, receive, send)
            return
        refused = error_response(
            400,
            "host_not_allowed",
            f"This app does not answer to the host {given!r}: it serves only the hosts it "
            "was made for (its settings' allowed_hosts: add the name it is reached by, "
            "e.g. WebSettings(allowed_hosts=[..., 'chat.example.com'])).",
        )
        await _refuse(refused, scope, receive, send)


class _LocalClients:
    """A request or WebSocket of a client on another machine: a 403 (see the module).

    A client of this machine's address may be a proxy of this machine relaying another's
    request (one not named in ``trusted_proxies``, whose headers the server does not
    read): a request whose ``X-Forwarded-For``, ``X-Real-IP`` or ``Forwarded`` names a
    client that is not this machine's (or names it in no address) is refused too.
    """

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = _address_of(client[0]) if client else None
        if address is not None and not address.is_loopback:
            comes = f"this request comes from {address}"
        else:
            relayed = _relayed_for(Headers(scope=scope))
            if relayed is None:
                await self.app(scope, receive, send)
                return
            comes = f"this request was relayed by a proxy for {relayed[:64]!r}"
        refused = error_response(
            403,
            "client_not_local",
            f"{self.name} knows nobody (NoAuthentication), so it serves this machine only, "
            f"and {comes}: give the app authentication= (e.g. "
            "BearerTokenAuth({token: principal})) to serve other machines.",
        )
        await _refuse(refused, scope, receive, send)


def serves_this_machine_only(app: ASGIApp) -> bool:
    """Whether ``app``, or an app mounted in it, knows nobody and so serves this machine only.

    Such an app (``NoAuthentication`` and only this machine's host names) tells this
    machine's clients from the others' by their address: the connection's, or the one a
    trusted proxy names. The serving reads that to refuse trusting every client's
    ``X-Forwarded-For`` in front of it (any client could then name 127.0.0.1).

    Args:
        app: The ASGI app to be served (a Starlette app, its mounted apps looked into).

    Returns:
        ``True`` if a door of ``app`` refuses the clients of other machines.
    """
    if isinstance(app, Starlette):
        made: list[object] = [middleware.cls for middleware in app.user_middleware]
        if _LocalClients in made:
            return True
        routes = app.routes
    elif isinstance(app, Router):
        routes = app.routes
    else:
        return False
    return any(
        isinstance(route, Mount | Host) and serves_this_machine_only(route.app) for route in routes
    )


def _relayed_for(headers: Headers) -> str | None:
    """The first client a proxy's headers name that is not this machine's (``None``: none).

    Read from ``X-Forwarded-For`` and ``X-Real-IP`` (addresses, comma-separated) and
    ``Forwarded`` (RFC 7239: each element's ``for=``); a name that is no address (``unknown``,
    an obfuscated ``_id``) is no client of this machine either.
    """
    named: list[str] = []
    for header in ("x-forwarded-for", "x-real-ip"):
        for value in headers.getlist(header):
            named += value.split(",")
    for value in headers.getlist("forwarded"):
        for pair in value.replace(",", ";").split(";"):
            key, equals, given = pair.partition("=")
            if equals and key.strip().lower() == "for":
                named.append(given)
    for given in named:
        host = given.strip().strip('"')
        if host.startswith("["):  # ([::1]:8000, RFC 7239's IPv6 with its port)
            host = host[1:].partition("]")[0]
        elif host.count(":") == 1:  # (an IPv4 address with its port)
            host = host.partition(":")[0]
        address = _address_of(host)
        if address is None or not address.is_loopback:
            return given.strip()
    return None


def _address_of(host: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address of a client's host (an IPv4-mapped one as IPv4), ``None`` if it is none.

    A client of no address (a Unix socket's, a test client's name) is not on the network.
    """
    try:
        address = ipaddress.ip_address(host) if isinstance(host, str) else None
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


async def _refuse(response: JSONResponse, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer with ``response``; a WebSocket with a close that says why (see :func:`close_refused`).

    Its close's code is 4000 plus the response's status (4400, 4401, 4403) and its reason the
    sentence of the response's error code (:data:`_WEBSOCKET_REASONS`).
    """
    if scope["type"] == "websocket":
        error = json.loads(bytes(response.body))["error"]["code"]
        reason = _WEBSOCKET_REASONS[error]
        await close_refused(scope, receive, send, 4000 + response.status_code, reason)
        return
    await response(scope, receive, send)


async def close_refused(scope: Scope, receive: Receive, send: Send, code: int, reason: str) -> None:
    """Refuse a WebSocket so that its page is told why: accepted, then closed at once.

    A browser hides the HTTP answer to a WebSocket's opening from its page, which sees a
    bare 1006 (no reason) for a 403: so the WebSocket is opened, and closed with ``code`` (a
    4xxx) and ``reason`` (a sentence of at most 123 bytes, a close's bound), which its
    page's ``close`` event carries, before anything of the app runs or is sent. It is
    opened with the first protocol its client offered, if any (a browser fails a socket
    whose server takes none of those it offered).
    """
    if (await receive())["type"] != "websocket.connect":
        return  # (gone before it opened)
    offered = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None})
    await send({"type": "websocket.close", "code": code, "reason": reason})


_WEBSOCKET_REASONS = {
    "host_not_allowed": "This app does not answer to this host: add it to WebSettings's "
    "allowed_hosts.",
    "unauthenticated": "This app does not know who opens this WebSocket: send the credentials "
    "it takes (e.g. a bearer token).",
    "client_not_local": "This app knows nobody (NoAuthentication), so it serves this machine "
    "only: give it authentication=.",
    "origin_not_allowed": "A page of this origin may not use this app: add the origin to "
    "WebSettings's allowed_origins.",
}
"""The close reason of a WebSocket the door refuses, by the refusal's error code."""


def _host_of(header: str) -> str | None:
    """The host of a ``Host`` header (lower case, without its port), ``None`` if it is none."""
    found = _HOST_HEADER.fullmatch(header.strip().lower())
    return found.group(1).removesuffix(".") if found is not None else None


_HOST_HEADER = re.compile(r"(\[[0-9a-f:.]+\]|[^\[\]:/@\s]+)(?::\d*)?")


class _OriginCheck:
    """A POST must be JSON (415); any request and a WebSocket, of its own origin or an allowed one.

    A page of another origin is a 403 for a ``GET`` too: its ``EventSource`` or ``fetch``
    of a run's stream reads nothing without CORS, but would hold one of the user's streams
    (``max_streams_per_principal``) for as long as it likes.
    """

    def __init__(self, app: ASGIApp, allowed_origins: Sequence[str]) -> None:
        self.app = app
        self.allowed = frozenset(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        posted = scope["type"] == "http" and scope["method"] == "POST"
        refused = self._foreign(headers) or (_not_json(headers) if posted else None)
        if refused is not None:
            await _refuse(refused, scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _foreign(self, headers: Headers) -> JSONResponse | None:
        """The 403 of a page of an origin that is neither the app's own nor allowed.

        A browser sends no ``Origin`` on some requests of a page of another site (an image,
        a script, a frame) but says ``Sec-Fetch-Site: cross-site`` (or ``same-site``:
        another origin of the same site): such a request is refused too, its origin
        unknown, so not one allowed (a page of an allowed origin calls with ``fetch`` or
        ``EventSource``, which send it). A link followed in the user's own window or tab
        (``Sec-Fetch-Mode: navigate``, ``Sec-Fetch-Dest: document``) is not: it shows the
        user what it opens, and a page an app serves (the voice page, the studio) is
        opened so. A request with none of these headers (no browser's: it has no user's
        credentials to borrow) is not refused.
        """
        origin = headers.get("origin")
        site = headers.get("sec-fetch-site", "").strip().lower()
        opened = (headers.get("sec-fetch-mode"), headers.get("sec-fetch-dest")) == (
            "navigate",
            "document",
        )
        if origin is None and site in ("cross-site", "same-site") and not opened:
            return error_response(
                403,
                "origin_not_allowed",
                f"A page of another origin ({site}) may not use this app, and this request "
                "does not say which origin: only the app's own origin and the "
                "allowed_origins it was made with may (a front end on another origin is "
                "listed there, and calls with fetch or EventSource, which send its Origin).",
            )
        if origin is not None and origin not in self.allowed:
            own = urlsplit(origin).netloc if origin != "null" else None
            if own is None or own != headers.get("host"):
                return error_response(
                    403,
                    "origin_not_allowed",
                    f"A page of {origin} may not use this app: only its own origin and the "
                    "allowed_origins it was made with may (a front end on another origin "
                    "is listed there).",
                )
        return None


def _not_json(headers: Headers) -> JSONResponse | None:
    """The 415 of a POST whose body is not declared JSON."""
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        return error_response(
            415,
            "unsupported_media_type",
            f"The request body is {media_type or 'of no declared type'}; send it as JSON "
            "with Content-Type: application/json.",
        )
    return None


_INLINE = re.compile(r"<(script|style)\b([^>]*)>(.*?)</\1\s*>", re.IGNORECASE | re.DOTALL)


def page_policy(html: str, *, own_scripts: bool = False) -> str:
    """The Content-Security-Policy of a page: its own inline scripts and styles, nothing else.

    Each inline ``<script>`` and ``<style>`` of ``html`` is allowed by its SHA-256 hash
    (a script loaded by ``src`` is not allowed: the page is one file); the page may call
    its own origin (``connect-src 'self'``), show its own and ``data:`` images, and be
    framed by no one.

    Args:
        html: The page.
        own_scripts: Whether the page may also load scripts of its own origin
            (``script-src 'self'``): for an app that serves the page a script of its own
            package, such as the voice page's audio worklet (a worklet's module is loaded
            by its URL, which no hash allows). Its other answers are no scripts:
            ``X-Content-Type-Options: nosniff`` keeps JSON from running as one.
    """
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for kind, attributes, body in _INLINE.findall(html):
        if kind.lower() == "script" and re.search(r"\bsrc\s*=", attributes, re.IGNORECASE):
            continue
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        hashes[kind.lower()].append(f"'sha256-{digest}'")
    scripts = " ".join(hashes["script"] + (["'self'"] if own_scripts else [])) or "'none'"
    styles = " ".join(hashes["style"]) or "'none'"
    return (
        f"default-src 'none'; script-src {scripts}; style-src {styles}; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
