"""``server_config``: the one uvicorn configuration every app MiniAgents serves itself runs under.

``miniagents web``, ``miniagents studio``, :func:`~miniagents.ext.realtime.web.voice_server`
and the examples that serve an A2A app run uvicorn with it, so that each is bounded the
same way, whatever a client does with its connection:

- at most ``max_connections`` connections (or requests) at once (:data:`MAX_CONNECTIONS`;
  a request on one more is answered 503), the lingering ones left out (counted by the
  serving itself: uvicorn's ``limit_concurrency`` would serve one connection fewer), and
  at most ``max_connections_per_address`` of them from one client
  (:data:`MAX_CONNECTIONS_PER_ADDRESS`), so that one client cannot hold them all: an IPv4
  address, or an IPv6 address's /64 network (one machine, or one subscriber, may take any
  address of it); a trusted proxy's connection counted, while it serves a request, as the
  client its ``X-Forwarded-For`` names;
- a connection whose next request's line and headers have not all arrived within
  ``headers_seconds`` (:data:`HEADERS_SECONDS`) of its opening, or of the end of its last
  answer, is closed: uvicorn has no timeout of its own for them, so a client that sends
  its headers a byte a minute (a "slowloris") would hold its connection, one of the
  bounded many, for ever (uvicorn's keep-alive timer starts again at each byte);
- a request's line and headers of at most :data:`MAX_HEADER_BYTES` (a 400 past them), read
  with h11, whose bound it is, even where httptools is installed;
- an idle connection closed :data:`KEEP_ALIVE_SECONDS` after its last answer (aborted,
  like one past its headers' deadline, if some of that answer is still unsent: a client
  that does not read);
- a connection closed after an answer given before its request's body was all read (a
  refusal, a 413): the rest of that body would otherwise hold it, a byte at a time;
- a connection aborted when its answer has waited ``send_seconds`` (:data:`SEND_SECONDS`)
  for its client to read some of it (asyncio's write buffer full, and the kernel's): a
  client that stops reading a stream would otherwise hold the answer's task, and one of the
  bounded many connections, for ever (uvicorn waits for the buffer to drain without a
  bound; nginx's ``send_timeout``);
- a connection closed while its client may still be sending (an answer given before the
  request's body was all read, headers past their deadline or their bound) closed
  lingering: its answer sent, the server's side of it is shut (the client reads the
  answer's end), and what the client still sends is read and dropped, for at most
  ``linger_seconds`` (:data:`LINGER_SECONDS`) and :data:`LINGER_BYTES`, before it is
  closed: closed at once, with bytes of the client's still unread, it would be reset,
  and a reset can lose the answer before the client reads it (nginx's
  ``lingering_close``); a connection over TLS is closed at once. A lingering connection
  is not one of the ``max_connections`` (at most as many more linger; past them one is
  closed at once), and the server's shutdown closes it at once (and closes at once, not
  lingering, those it closes after);
- a shutdown waiting at most ``shutdown_seconds`` (:data:`SHUTDOWN_SECONDS`) for the
  answers under way (and the WebSockets open) to end, then cancelling them: an app stuck
  mid-answer would hold it for ever (uvicorn's own waits without a bound);
- a WebSocket message of at most ``ws_max_size`` bytes (:data:`WS_MAX_SIZE`, 1 MiB, where
  uvicorn's own is 16 MiB), counted as the server inflates it when its client compresses
  it (``permessage-deflate``; past it: code 1009): the compression is declined where
  uvicorn's protocol would inflate a message whole before counting it (wsproto's, which
  ``"auto"`` takes without the ``websockets`` library), so that a few kilobytes sent are
  never held as many megabytes (a protocol's buffer doubles as it grows: a message just
  under 16 MiB, about 16 KiB compressed, was held as 32 MiB per connection);
- a WebSocket's client pinged every ``ws_ping_seconds`` (:data:`WS_PING_SECONDS`), and its
  connection closed if a ping is not answered within ``ws_ping_timeout_seconds``
  (:data:`WS_PING_TIMEOUT_SECONDS`): a page that vanished without a close is noticed so;
- a client's ``X-Forwarded-For`` and ``X-Forwarded-Proto`` read only from the proxies named
  in ``trusted_proxies`` (none by default; uvicorn's own default trusts 127.0.0.1), and
  only once the request is matched to its connection, so that every connection keeps its
  bounds whatever its client says it is;
- a shutdown told to the requests of its own connections only (:func:`server_stop`): a
  run's stream sends its ending as its own server stops, never as another server of the
  same process does.

The deadline is kept by a small protocol in front of uvicorn's (it watches the bytes that
arrive for the blank line that ends the headers, and closes the connection if it has not
come in time), told by the served app when an answer has ended; an ASGI middleware alone
could not: it runs once the headers are read. A request's body is the app's to bound: the
web apps read at most ``max_body_bytes`` of it, within ``body_seconds`` of its arrival at
the app (their ``WebSettings``; a 408 past them). A
deployment open to the internet puts a reverse proxy in front (nginx's
``client_header_timeout``, ``client_body_timeout``, ``limit_conn``), which bounds those too
(see the docs' deployment page).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import sys
from collections.abc import Collection, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, ClassVar, Literal, TypedDict

from miniagents.arguments import check_count, check_seconds, check_text, refused_argument
from miniagents.ext.errors import MissingExtraError, WebConfigurationError

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import BaseRoute
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "HEADERS_SECONDS",
    "KEEP_ALIVE_SECONDS",
    "LINGER_BYTES",
    "LINGER_SECONDS",
    "MAX_CONNECTIONS",
    "MAX_CONNECTIONS_PER_ADDRESS",
    "MAX_HEADER_BYTES",
    "SEND_SECONDS",
    "SHUTDOWN_SECONDS",
    "WS_MAX_SIZE",
    "WS_PING_SECONDS",
    "WS_PING_TIMEOUT_SECONDS",
    "ServingBounds",
    "listening_socket",
    "server_config",
    "server_stop",
]

MAX_CONNECTIONS = 128
"""The most connections a server of ``server_config`` serves at once (past them: a 503)."""

MAX_CONNECTIONS_PER_ADDRESS = 32
"""The most of them a server of ``server_config`` serves at once from one client address
(a quarter of :data:`MAX_CONNECTIONS`; past them: a 503 to that address alone)."""

HEADERS_SECONDS = 10.0
"""Seconds a connection has to send a request's line and headers, all of them, from its
opening or from the end of its last answer."""

KEEP_ALIVE_SECONDS = 5
"""How long an idle connection is kept between two requests."""

MAX_HEADER_BYTES = 16 * 1024
"""The most bytes of a request's line and headers read before they are refused (a 400)."""

LINGER_SECONDS = 2.0
"""Seconds a connection closed while its client may still be sending is read (and what is
read dropped) after its answer, so that the answer is not lost to a reset."""

SEND_SECONDS = 60.0
"""Seconds an answer may wait for its client to read some of it before the connection is
aborted (a client that stops reading)."""

SHUTDOWN_SECONDS = 5.0
"""Seconds a shutdown waits for the answers under way to end before it cancels them."""

LINGER_BYTES = 1024 * 1024
"""The most bytes read and dropped from a client while its connection lingers; past them
it is closed at once."""

WS_MAX_SIZE = 1024 * 1024
"""The largest WebSocket message read, in bytes, inflated (``server_config``'s default
``ws_max_size``): far above what the voice page sends (its ``max_message_bytes``, 64 KiB by
default, which :func:`~miniagents.ext.realtime.web.voice_server` makes its bound), far below
uvicorn's own 16 MiB, which a client could fill from a few kilobytes compressed."""

WS_PING_SECONDS = 20.0
"""Seconds between two pings of a WebSocket's client (uvicorn's own ``ws_ping_interval``)."""

WS_PING_TIMEOUT_SECONDS = 20.0
"""Seconds a WebSocket's client has to answer a ping before its connection is closed
(uvicorn's own ``ws_ping_timeout``): a page that vanished without a close is noticed so."""

_logger = logging.getLogger("miniagents.ext.web")

_OWNER = "server_config"
"""Who takes the serving's arguments, in the message of a refused one."""

_WSProtocol = Literal["auto", "websockets-sansio"]
"""The uvicorn WebSocket protocols ``server_config`` chooses from (uvicorn's ``ws``)."""

_HEADERS_END = re.compile(b"\n\r?\n")
"""The blank line that ends a request's headers, as h11 finds it (a bare LF taken too)."""

_CONNECTION: ContextVar[_HeadersInTime | None] = ContextVar("_CONNECTION", default=None)
"""The connection whose request the current task serves (set as uvicorn calls the app)."""


class ServingBounds(TypedDict, total=False):
    """The connections' bounds of ``server_config``, for a function that passes them on.

    Each is ``server_config``'s argument of the same name (its default when left out):
    :func:`~miniagents.ext.realtime.web.voice_server` takes them as
    ``**bounds: Unpack[ServingBounds]``, so that they are named and documented once.
    """

    max_connections: int
    max_connections_per_address: int | None
    headers_seconds: float
    linger_seconds: float
    trusted_proxies: Sequence[str]
    ws_ping_seconds: float
    ws_ping_timeout_seconds: float
    shutdown_seconds: float
    send_seconds: float


def server_config(
    app: Starlette,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "warning",
    max_connections: int = MAX_CONNECTIONS,
    max_connections_per_address: int | None = MAX_CONNECTIONS_PER_ADDRESS,
    headers_seconds: float = HEADERS_SECONDS,
    ws_max_size: int | None = None,
    trusted_proxies: Sequence[str] = (),
    linger_seconds: float = LINGER_SECONDS,
    ws_ping_seconds: float = WS_PING_SECONDS,
    ws_ping_timeout_seconds: float = WS_PING_TIMEOUT_SECONDS,
    shutdown_seconds: float = SHUTDOWN_SECONDS,
    send_seconds: float = SEND_SECONDS,
) -> uvicorn.Config:
    """The uvicorn configuration that serves ``app`` bounded (see the module's docstring).

    Run it with ``uvicorn.Server(server_config(app)).run()`` (or ``await ....serve()``).

    Args:
        app: The app to serve.
        host: The address to listen on (unless the server is given its sockets).
        port: The port to listen on (likewise).
        log_level: uvicorn's log level.
        max_connections: The most connections served at once.
        max_connections_per_address: The most of them served at once from one client
            (one more is answered 503, a WebSocket closed 1013, saying so), so that one
            client cannot take every connection from the others; ``None``: no such bound.
            A client is an IPv4 address, or an IPv6 address's /64 network (one machine may
            take any address of it); a trusted proxy's connection (``trusted_proxies``)
            counts, while it serves a request, as the client its ``X-Forwarded-For`` names
            (else as none: it carries many clients).
        headers_seconds: Seconds a connection has to send a request's headers, from its
            opening or from the end of its last answer.
        ws_max_size: The largest WebSocket message read, in bytes (one bigger is cut as it
            arrives, code 1009; a compressed one as it is inflated); ``None``:
            :data:`WS_MAX_SIZE` (1 MiB; uvicorn's own is 16 MiB). Given, it needs the
            ``websockets`` library (the realtime extra's); raise it for an app whose
            clients send bigger messages (``ws_max_size=16 * 1024 * 1024``: uvicorn's).
        trusted_proxies: The addresses of the reverse proxies in front (``"127.0.0.1"``
            for one on this machine, ``"*"`` for any), whose ``X-Forwarded-For`` and
            ``X-Forwarded-Proto`` headers name a request's client and scheme to the app
            (uvicorn's ``forwarded_allow_ips``). None by default: a request's client is
            the connection's own address, whatever headers it sends. ``"*"`` (or networks
            that hold every address) is refused for an app that knows nobody (it serves
            this machine's clients only), and a proxy on another machine in front of it is
            warned of in the log (``miniagents.ext.web``): any process there could name
            127.0.0.1.
        linger_seconds: Seconds a connection closed while its client may still be
            sending is read after its answer (what is read dropped, :data:`LINGER_BYTES`
            at most), so that a reset does not lose the answer.
        ws_ping_seconds: Seconds between two pings of a WebSocket's client.
        ws_ping_timeout_seconds: Seconds a WebSocket's client has to answer a ping before
            its connection is closed (how a page that vanished is noticed).
        shutdown_seconds: Seconds a shutdown waits for the answers under way to end
            before it cancels them (uvicorn's ``timeout_graceful_shutdown``).
        send_seconds: Seconds an answer may wait for its client to read some of it (the
            connection's write buffers full) before the connection is aborted.

    Returns:
        The configuration, its server not started.

    Raises:
        WebConfigurationError: for a count or a number of seconds that is not one, a
            ``host`` that is not a non-empty str, a ``port`` that is not a whole number
            from 0 to 65535, a ``log_level`` that is not one of uvicorn's (``"critical"``,
            ``"error"``, ``"warning"``, ``"info"``, ``"debug"``, ``"trace"``), proxies that
            are not a list of addresses, or proxies of any address (``"*"``, or networks
            that together hold every address) in front of an app that knows nobody
            (``NoAuthentication``: any client could name 127.0.0.1 and be served as the
            local user).
        MissingExtraError: for a ``ws_max_size`` without the ``websockets`` library, or an
            app with a WebSocket route and no WebSocket library uvicorn serves with
            (``websockets`` or ``wsproto``): the message names what to install.
    """
    import uvicorn
    from uvicorn.config import LOG_LEVELS

    fix = "Pass such a value (or leave it out for its default)."
    for count, name in (
        (max_connections, "max_connections"),
        (max_connections_per_address, "max_connections_per_address"),
        (ws_max_size, "ws_max_size"),
    ):
        if count is not None or name == "max_connections":  # (None: no bound, the default)
            check_count(count, name, owner=_OWNER, fix=fix, error=WebConfigurationError)
    lingering = check_seconds(
        linger_seconds,
        "linger_seconds",
        zero=True,  # (0: closed at once)
        owner=_OWNER,
        fix=fix,
        error=WebConfigurationError,
    )
    seconds, pings, ping_timeout, shutdown, sending = (
        check_seconds(given, name, owner=_OWNER, fix=fix, error=WebConfigurationError)
        for given, name in (
            (headers_seconds, "headers_seconds"),
            (ws_ping_seconds, "ws_ping_seconds"),
            (ws_ping_timeout_seconds, "ws_ping_timeout_seconds"),
            (shutdown_seconds, "shutdown_seconds"),
            (send_seconds, "send_seconds"),
        )
    )
    _check_address(host, port, log_level, LOG_LEVELS)
    served = _behind_proxies(app, trusted_proxies)

    class _Protocol(_HeadersInTime):
        deadline = seconds
        linger = lingering
        unread = sending
        most = max_connections
        most_per_address = max_connections_per_address
        proxies = tuple(trusted_proxies)
        lingering_ones: ClassVar[set[_HeadersInTime]] = set()
        websockets: ClassVar[set[_HeadersInTime]] = set()

    ws, deflate = _ws_protocol(app, given=ws_max_size is not None)
    return uvicorn.Config(
        _Answers(served),
        host=host,
        port=port,
        log_level=log_level.lower(),  # (uvicorn's names, any case taken above)
        http=_Protocol,
        limit_concurrency=None,  # (counted by _Answers: a lingering connection left out)
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        ws=ws,
        ws_max_size=ws_max_size or WS_MAX_SIZE,
        ws_per_message_deflate=deflate,
        ws_ping_interval=pings,
        ws_ping_timeout=ping_timeout,
        # (typed a whole number, but waited for with asyncio.wait_for: seconds, a float's too)
        timeout_graceful_shutdown=shutdown,  # type: ignore[arg-type]
        proxy_headers=False,  # (read inside _Answers, from trusted_proxies only)
    )


def _behind_proxies(app: Starlette, trusted_proxies: Sequence[str]) -> ASGIApp:
    """``app`` as served behind ``trusted_proxies`` (checked), whose forwarded headers it reads.

    Put inside :class:`_Answers`, so that a request is matched to its connection first.
    """
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    _check_proxies(trusted_proxies, app)
    if not trusted_proxies:
        return app
    # (uvicorn types its ASGI callables its own way, Starlette its)
    proxied = list(trusted_proxies)
    forwarded = _ForwardedClients(app)
    return ProxyHeadersMiddleware(forwarded, trusted_hosts=proxied)  # type: ignore[arg-type,return-value]


def _ws_protocol(app: Starlette, *, given: bool) -> tuple[_WSProtocol, bool]:
    """The uvicorn WebSocket protocol of ``server_config`` (its ``ws``), and whether it inflates.

    Where the ``websockets`` library is installed: websockets-sansio, which pings its client
    and drops it as soon as a ping goes unanswered within the ping timeout (the web extra
    takes uvicorn from 0.52.1 on: the legacy protocol, the only one of uvicorn 0.30 to 0.34,
    dropped a vanished page only its close timeout, 10 s, later; the websockets-sansio of
    0.35 to 0.43 did not ping at all). It honours
    ``ws_max_size``, and inflates no more of a compressed (``permessage-deflate``) message
    than it leaves (past it: code 1009). Without the library (the
    web extra does not bring it: none of its apps serves a WebSocket; the realtime extra,
    whose voice page does, brings it) ``"auto"``, which takes wsproto's, where installed:
    it inflates each compressed read whole before it counts the message's size, so a few
    kilobytes a client sends would be held as a thousand times as many, far past the bound.
    There the compression is declined (the client then sends its message as it is, which
    is counted as it arrives).

    ``given``: whether the caller gave a ``ws_max_size``. Only a bound given needs the
    library: the default (:data:`WS_MAX_SIZE`) is served without it too (an app of the web
    extra has no WebSocket; under wsproto's protocol the bound is uvicorn's to keep).

    Raises:
        MissingExtraError: for a ``ws_max_size`` given without the ``websockets`` library
            (uvicorn would fail only as it loads the configuration, a bare ``ImportError``),
            or an app with a WebSocket route and neither ``websockets`` nor ``wsproto``
            (uvicorn would answer each WebSocket's opening as a plain request, and serve
            none).
    """
    from importlib.util import find_spec

    install = (
        'Install it with: pip install "miniagents[realtime]" (which brings it, for the voice '
        "page), or pip install websockets."
    )
    if find_spec("websockets") is not None:
        return "websockets-sansio", True
    if given:
        raise MissingExtraError(
            "server_config(ws_max_size=...) needs the websockets library: the uvicorn "
            f"protocols that bound a WebSocket message are built on it. {install}"
        )
    routes: list[BaseRoute] = getattr(app, "routes", [])
    if find_spec("wsproto") is None and _serves_websockets(routes):
        raise MissingExtraError(
            f"server_config was given an app with a WebSocket route ({app!r}), but neither "
            "the websockets library nor wsproto is installed: uvicorn would serve no "
            f"WebSocket of it. {install}"
        )
    return "auto", False


def _serves_websockets(routes: Sequence[BaseRoute]) -> bool:
    """Whether ``routes`` (or the routes of an app mounted among them) hold a WebSocket's."""
    from starlette.routing import WebSocketRoute

    for route in routes:
        if isinstance(route, WebSocketRoute):
            return True
        inner: object = getattr(route, "routes", None)  # (a Mount's or a Host's app's)
        if isinstance(inner, list) and _serves_websockets(inner):
            return True
    return False


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host`` and ``port``, to give ``uvicorn.Server.run(sockets=)``.

    It is made a TCP socket by name (``IPPROTO_TCP``), so that asyncio sends each write of
    its connections at once (``TCP_NODELAY``): of a socket made with protocol 0, as
    ``socket.socket(AF_INET)`` makes one, the small writes of an event stream wait for the
    client's delayed acknowledgement (about 40 ms on a kept-alive connection). Its address
    is its own (see :func:`_address_option`): on Windows no other socket may bind it.

    Raises:
        OSError: if it cannot listen there (the port in use, the host unknown, ...).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, getattr(socket, _address_option(sys.platform)), 1)
    try:
        listener.bind((host, port))
        listener.listen()
    except OSError:
        listener.close()
        raise
    return listener


def _address_option(platform: str) -> str:
    """The name of the ``SOL_SOCKET`` option a listener of ``platform`` (``sys.platform``) sets.

    ``SO_REUSEADDR`` elsewhere (as uvicorn: it listens again at once on an address whose
    former connections linger in ``TIME_WAIT``). On Windows that option lets another
    process bind the same address and port, and take its connections (their bearer tokens
    too): there ``SO_EXCLUSIVEADDRUSE`` instead, which forbids any other socket to.
    """
    return "SO_EXCLUSIVEADDRUSE" if platform == "win32" else "SO_REUSEADDR"


def server_stop() -> asyncio.Event | None:
    """The event set as the server of the request being answered begins to stop.

    Only a server of :func:`server_config` knows it, and tells it to the requests of its
    own connections: another server of the same process stopping does not set it. A
    stream answered there can so send its ending before the server closes it.

    Returns:
        The event, or ``None`` when the current task does not answer a request of a
        server of :func:`server_config` (another server's, or none).
    """
    connection = _CONNECTION.get()
    return None if connection is None else connection.stopping


def _check_address(host: object, port: object, log_level: object, levels: Collection[str]) -> None:
    """Refuse a ``host``, ``port`` or ``log_level`` uvicorn would fail on only as it serves.

    uvicorn takes them unchecked: a port of ``-1`` or ``"8000"`` fails (or binds) only in
    ``serve()``, and a log level it does not know is a bare ``KeyError``.

    Raises:
        WebConfigurationError: naming the argument and what it takes.
    """
    check_text(
        host,
        "host",
        owner=_OWNER,
        fix='Pass an address to listen on, e.g. host="127.0.0.1" (this machine only).',
        error=WebConfigurationError,
    )
    port_fix = "Pass e.g. port=8000, or port=0 for any free port."
    if (
        check_count(port, "port", least=0, owner=_OWNER, fix=port_fix, error=WebConfigurationError)
        > 65535
    ):
        raise refused_argument(
            port,
            "port",
            "a whole number from 0 to 65535",
            owner=_OWNER,
            fix=port_fix,
            error=WebConfigurationError,
        )
    if not isinstance(log_level, str) or log_level.lower() not in levels:
        raise refused_argument(
            log_level,
            "log_level",
            "one of uvicorn's log levels (" + ", ".join(repr(level) for level in levels) + ")",
            owner=_OWNER,
            fix='Pass e.g. log_level="info" (or leave it out: "warning").',
            error=WebConfigurationError,
        )


def _check_proxies(trusted_proxies: Sequence[str], app: Starlette) -> None:
    """Refuse ``trusted_proxies`` unless it is a list of addresses that ``app`` can be behind.

    An app that knows nobody serves this machine's clients only, told by their address:
    trusting every client's ``X-Forwarded-For`` (``"*"``, a network of every address, or
    networks that together hold every address) would let any client on the network name
    127.0.0.1 and be served as the local user: refused. A proxy on another machine is
    taken (a documented setup), with a warning: whoever runs a process there can name
    127.0.0.1 too.
    """
    if isinstance(trusted_proxies, str) or not all(
        isinstance(proxy, str) and proxy.strip() for proxy in trusted_proxies
    ):
        raise WebConfigurationError(
            f"{_OWNER} needs trusted_proxies to be a list of the proxies' addresses (e.g. "
            f'["127.0.0.1"]), got {trusted_proxies!r}. Pass such a list (or leave it out '
            "when no proxy is in front).",
            parameter="trusted_proxies",
        )
    from miniagents.ext.web._guard import serves_this_machine_only

    if not serves_this_machine_only(app):
        return
    anyone = _anyone_among(trusted_proxies)
    if anyone is not None:
        raise WebConfigurationError(
            f"{_OWNER} was given trusted_proxies={list(trusted_proxies)!r}, which trusts the "
            f"X-Forwarded-For of any client ({anyone}), but the app knows nobody "
            "(NoAuthentication) and serves this machine's clients only: any client on the "
            "network could name 127.0.0.1 there and be served as the local user. List the "
            'proxies\' own addresses instead (e.g. trusted_proxies=["127.0.0.1"]), or give '
            "the app authentication= (e.g. BearerTokenAuth({token: principal})).",
            parameter="trusted_proxies",
        )
    remote = [proxy for proxy in trusted_proxies if _elsewhere(proxy)]
    if remote:
        _logger.warning(
            "%s trusts the X-Forwarded-For of proxies on other machines (%s) in front of an "
            "app that knows nobody (NoAuthentication) and serves this machine's clients only: "
            "any process on those machines can name 127.0.0.1 and be served as the local "
            "user. Give the app authentication= (e.g. BearerTokenAuth({token: principal})), "
            "or put the proxy on this machine.",
            _OWNER,
            ", ".join(remote),
        )


def _anyone_among(proxies: Sequence[str]) -> str | None:
    """The trusted ``proxies`` that are any client, written for a message; ``None``: none are.

    ``"*"``, a network of every address, or networks of one IP version that together hold
    every address of it (``0.0.0.0/1`` and ``128.0.0.0/1``). An IPv4-mapped network is read
    as its IPv4 one: ``::ffff:0:0/96`` is every IPv4 client of a server listening on ``::``.
    """
    for proxy in proxies:
        if proxy.strip() == "*":
            return repr(proxy)
    networks = [_unmapped(network) for network in map(_network, proxies) if network is not None]
    fours = [network for network in networks if isinstance(network, ipaddress.IPv4Network)]
    sixes = [network for network in networks if isinstance(network, ipaddress.IPv6Network)]
    if list(ipaddress.collapse_addresses(fours)) == [ipaddress.IPv4Network("0.0.0.0/0")]:
        return " + ".join(map(str, fours))
    if list(ipaddress.collapse_addresses(sixes)) == [ipaddress.IPv6Network("::/0")]:
        return " + ".join(map(str, sixes))
    return None


def _network(proxy: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The network of the trusted proxy ``proxy`` (``None``: a name, matched as written)."""
    try:
        return ipaddress.ip_network(proxy.strip(), strict=False)
    except ValueError:
        return None


def _elsewhere(proxy: str) -> bool:
    """Whether the trusted proxy ``proxy`` is an address (or network) of other machines.

    A name (uvicorn matches it as written: a Unix socket's, say) is taken as this machine's.
    """
    network = _network(proxy)
    return network is not None and not _unmapped(network).is_loopback


def _unmapped(
    network: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """``network`` as IPv4 if it is IPv4-mapped (``::ffff:127.0.0.1``), else as it is.

    (Python 3.13 tells a mapped address's kind by its IPv4 address, 3.11 not: an
    ``is_loopback`` read on the IPv4 network is the same on both.)
    """
    if not isinstance(network, ipaddress.IPv6Network):
        return network
    first, last = network.network_address.ipv4_mapped, network.broadcast_address.ipv4_mapped
    if first is None or last is None:  # (not all of it in ::ffff:0:0/96)
        return network
    return ipaddress.IPv4Network(f"{first}/{network.prefixlen - 96}")


class _HeadersInTime(asyncio.Protocol):
    """uvicorn's h11 protocol for one connection, which is closed if a request's headers are late.

    Every event of the connection is passed on to uvicorn's protocol as it comes. The
    deadline runs from the connection's opening, and again from the end of each answer
    (told by :class:`_Answers`), until the blank line that ends the next request's headers
    arrives, or the app is called with that request (which uvicorn may have read already).
    A close while the client may still be sending (bytes of it have come since the end of
    the last answer) lingers: see :meth:`close`. The server knows the connection as this
    protocol (in its state's ``connections``, until a WebSocket takes it over), so that its
    shutdown is this protocol's: see :meth:`shutdown`.
    """

    deadline: ClassVar[float] = HEADERS_SECONDS
    linger: ClassVar[float] = LINGER_SECONDS
    unread: ClassVar[float] = SEND_SECONDS
    """Seconds its writing may stay paused (its client reading nothing) before it is aborted."""
    most: ClassVar[int] = MAX_CONNECTIONS
    """The most connections served at once, and the most lingering besides them."""
    most_per_address: ClassVar[int | None] = MAX_CONNECTIONS_PER_ADDRESS
    """The most connections served at once from one client (``None``: no bound)."""
    proxies: ClassVar[Sequence[str]] = ()
    """The trusted proxies, whose connections count as the clients they name (while named)."""
    lingering_ones: ClassVar[set[_HeadersInTime]]
    """The server's lingering connections, not counted among its connections (likewise)."""
    websockets: ClassVar[set[_HeadersInTime]]
    """The server's connections taken over by the WebSockets served (counted by address)."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: uvicorn.server.ServerState,
        app_state: dict[str, object],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        from uvicorn.config import HTTP_PROTOCOLS
        from uvicorn.importer import import_from_string

        http: type[asyncio.Protocol] = import_from_string(HTTP_PROTOCOLS["h11"])
        self._http = http(  # type: ignore[call-arg]
            config=config, server_state=server_state, app_state=app_state, _loop=_loop
        )
        app: ASGIApp = self._http.app  # type: ignore[attr-defined]

        async def served(scope: Scope, receive: Receive, send: Send) -> None:
            _CONNECTION.set(self)  # (in the request's own task: _Answers reads it there)
            await app(scope, receive, send)

        self._http.app = served  # type: ignore[attr-defined]  # (what it calls each request with)
        self._loop = _loop or asyncio.get_event_loop()
        self._server_state = server_state
        self._transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""  # the last bytes received, for a blank line cut between two reads
        self._received = False  # whether bytes came since the end of the last answer
        self._dropping: int | None = None  # while lingering: the bytes it may still drop
        self._lingering: asyncio.TimerHandle | None = None
        self._stalled: asyncio.TimerHandle | None = None  # (while its writing is paused)
        self._shut = False  # whether the server shuts down: a close no longer lingers
        self.stopping = asyncio.Event()
        """Set as the connection's server begins to stop (see :func:`server_stop`)."""
        self._idle = False  # whether it awaits a request's headers, its last answer given
        self.address: str | None = None
        """The client it counts as (:func:`_counted_client`; a trusted proxy's: the one it
        serves a request of, named by its headers), ``None``: none, not bounded so."""
        self.proxy: str | None = None
        """The address of the trusted proxy it comes from (else ``None``)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):  # (an IP's)
            if _among(peer[0], self.proxies):
                self.proxy = peer[0]
            else:
                self.address = _counted_client(peer[0])
        self.awaiting_headers()
        served = transport
        if isinstance(transport, asyncio.Transport):
            served = _Lingering(transport, self)
        self._http.connection_made(served)
        # (the server's connection is this protocol: its shutdown calls shutdown)
        self._server_state.connections.discard(self._http)
        self._server_state.connections.add(self)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self._dropping is not None:  # (lingering: the rest of what the client sends)
            self._dropping -= len(data)
            if self._dropping < 0:
                self._end()
            return
        self._received = True
        if self._timer is not None:
            if _HEADERS_END.search(self._tail + data):
                self.headers_read()
            else:
                self._tail = (self._tail + data)[-2:]
        known = _CONNECTION.set(self)  # (a WebSocket's task, made as it upgrades, knows it)
        try:
            self._http.data_received(data)
        finally:
            _CONNECTION.reset(known)

    def eof_received(self) -> bool | None:
        if self._dropping is not None:  # (lingering: the client has sent all)
            return False  # (closed)
        return self._http.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.headers_read()
        if self._lingering is not None:
            self._lingering.cancel()
            self._lingering = None
        self._reading_again()
        self.lingering_ones.discard(self)
        self._server_state.connections.discard(self)
        self._http.connection_lost(exc)

    def pause_writing(self) -> None:
        """The client reads too slowly for what is written: aborted if it stays so.

        uvicorn's answer waits for the write buffer to drain before it writes more, without
        a bound: a client that reads nothing would hold it, its task and the connection for
        ever. Past ``unread`` seconds of it, the connection is aborted (the rest dropped).
        """
        if self._stalled is None:
            self._stalled = self._loop.call_later(self.unread, self._end)
        self._http.pause_writing()

    def resume_writing(self) -> None:
        self._reading_again()
        self._http.resume_writing()

    def _reading_again(self) -> None:
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None

    def shutdown(self) -> None:
        """Close the connection: the server shuts down (uvicorn calls this).

        A lingering connection is closed at once, and so is every later close of this one
        (its answer given first, uvicorn's way): a shutdown waits for no linger. One closed
        now with some of its answer still unsent (a client that does not read) is aborted.
        """
        self._shut = True
        self.stopping.set()
        if self._dropping is None:  # (closed if its answer was given, else once it is)
            self._http.shutdown()  # type: ignore[attr-defined]
        if self.is_closing():  # (what is still unsent of an answer given is dropped)
            self._end()

    def upgraded(self) -> None:
        """Let the server know the connection as its WebSocket's, which takes it over.

        Its writing is the WebSocket's to bound from now on (its pings): no longer this one's.
        """
        self._reading_again()
        self._server_state.connections.discard(self)

    def crowded(self) -> str | None:
        """The bound a request of this connection is one too many for (it is answered 503).

        Past ``most`` connections (this one too, lingering ones left out) or requests and
        WebSockets served (this request's task one of them): ``max_connections`` are served
        at once, where uvicorn's ``limit_concurrency`` serves one fewer connection. Past
        ``most_per_address`` of them from its client's address:
        ``max_connections_per_address``. ``None``: it is served.
        """
        state = self._server_state
        served = len(state.connections) - len(self.lingering_ones)
        if served > self.most or len(state.tasks) > self.most:
            return "max_connections"
        return self.crowded_client()

    def crowded_client(self) -> str | None:
        """The per-address bound if its client has more connections served than it takes.

        ``"max_connections_per_address"`` past ``most_per_address`` of them (this one too),
        else ``None``.
        """
        state = self._server_state
        most, address = self.most_per_address, self.address
        if most is None or address is None:
            return None
        connections = {*state.connections, *self.websockets, self} - self.lingering_ones
        mine = sum(getattr(each, "address", None) == address for each in connections)
        return "max_connections_per_address" if mine > most else None

    def awaiting_headers(self) -> None:
        """Start the deadline of the next request's headers (none while the connection closes)."""
        transport = self._transport
        if transport is not None and not self.is_closing() and self._timer is None:
            self._tail = b""
            self._received = False
            self._idle = True
            self._timer = self._loop.call_later(self.deadline, self._late)

    def headers_read(self) -> None:
        """Stop the deadline: the request's headers are all here.

        Bytes of the client's have come since the last answer's end, then: a pipelined
        request's, read before that end (uvicorn reads them as they come), count too, so
        that its answer given before its body was all read closes lingering.
        """
        self._received = True
        self._idle = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def is_closing(self) -> bool:
        """Whether the connection is closed, or closing (lingering included)."""
        transport = self._transport
        return transport is None or transport.is_closing() or self._dropping is not None

    def close(self) -> None:
        """Close the connection, lingering if its client may still be sending.

        Closed at once with bytes of the client's unread, the connection would be reset,
        and a reset can lose the answer before the client reads it. So the server's side
        is shut once the answer is sent (the client reads its end), and what the client
        still sends is read and dropped until it shuts its side, for at most ``linger``
        seconds and :data:`LINGER_BYTES`; then the connection is closed.
        A connection closed idle (awaiting its next request's headers: at their deadline or
        uvicorn's keep-alive's) is aborted if some of its last answer is still unsent: a
        client that does not read would otherwise hold it, and one of the most connections.
        """
        transport = self._transport
        if transport is None or self.is_closing():
            return
        if (
            not self._received
            or self._shut
            or not self.linger
            or transport.get_protocol() is not self  # (a WebSocket's)
            or not isinstance(transport, asyncio.Transport)
            or not transport.can_write_eof()  # (over TLS)
            or len(self.lingering_ones) >= self.most
        ):
            if self._idle:  # (past a deadline: the unsent output dropped)
                self._end()
            else:
                transport.close()
            return
        self.headers_read()
        self._dropping = LINGER_BYTES
        transport.write_eof()  # (once what is written is sent)
        transport.resume_reading()  # (uvicorn's, paused while the app reads slowly)
        self._lingering = self._loop.call_later(self.linger, self._end)
        self.lingering_ones.add(self)  # (not counted: see crowded)

    def _end(self) -> None:
        """Close the connection now: aborted if some of its answer is still unsent.

        A close waits for what is written to be sent, and a client that does not read would
        hold the connection for ever; past its linger, or at the server's shutdown, the rest
        of the answer is dropped.
        """
        transport = self._transport
        if transport is None:
            return
        if isinstance(transport, asyncio.WriteTransport) and transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()

    def _late(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is not None and transport.get_protocol() is self:  # (not a WebSocket's)
            self.close()


class _Lingering(asyncio.Transport):
    """A connection's transport as uvicorn's protocol has it: its close lingers.

    Everything else is the transport's own; :meth:`close` is the connection's
    (:meth:`_HeadersInTime.close`).
    """

    def __init__(self, transport: asyncio.Transport, connection: _HeadersInTime) -> None:
        super().__init__()
        self._transport = transport
        self._connection = connection

    def close(self) -> None:
        self._connection.close()

    def is_closing(self) -> bool:
        return self._connection.is_closing()

    def abort(self) -> None:
        self._transport.abort()

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)  # (a WebSocket's)
        self._connection.upgraded()

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._transport.write(data)

    def write_eof(self) -> None:
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()


_CROWDED = {
    "max_connections": "The server serves as many connections as it takes: try again later.",
    "max_connections_per_address": (
        "The server serves as many connections from this address as it takes: close one, "
        "or try again later."
    ),
}
"""What a client past each bound is told (a WebSocket's close reason: 123 bytes at most)."""


async def _refuse(scope: Scope, receive: Receive, send: Send, bound: str) -> None:
    """Answer a request or a WebSocket past ``bound`` (``max_connections``, or per address).

    A request is answered 503; a WebSocket is closed as it opens with 1013 (try again
    later) and a sentence that says why, which its page reads (a browser hides an HTTP
    answer to its opening: a bare 1006).
    """
    from starlette.responses import PlainTextResponse

    from miniagents.ext.web._guard import close_refused

    what = "A request was" if scope["type"] == "http" else "A WebSocket was"
    _logger.warning("%s answered 503: the server serves its %s already.", what, bound)
    if scope["type"] == "websocket":
        await close_refused(scope, receive, send, 1013, _CROWDED[bound])
        return
    body = "Service Unavailable" if bound == "max_connections" else _CROWDED[bound]
    await PlainTextResponse(body, 503, {"Connection": "close"})(scope, receive, send)


class _Answers:
    """The served app, which tells each request's connection when its answer has ended.

    The connection (:class:`_HeadersInTime`) then waits for the next request's headers
    within its deadline; a request the app is called with has its headers read. An answer
    given before the request's body was all read (a refusal, a 413) closes its connection
    (``Connection: close``): the rest of that body is no request's, and a client sending it
    slowly would otherwise hold the connection past every deadline.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        """The app served."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connection = _CONNECTION.get()  # (its own, over any transport: an IP or Unix socket)
        if connection is None:  # (the lifespan, or a WebSocket's own protocol)
            await self.app(scope, receive, send)
            return
        connection.headers_read()
        bound = connection.crowded()
        if bound is not None:
            await _refuse(scope, receive, send, bound)
            return
        if scope["type"] != "http":  # (a WebSocket: its connection is the WebSocket's now)
            connection.websockets.add(connection)  # (counted by address while it is served)
            try:
                await self.app(scope, receive, send)
            finally:
                connection.websockets.discard(connection)
            return

        unread = _has_body(scope)

        async def reading() -> Message:
            nonlocal unread
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                unread = False
            return message

        async def answering(message: Message) -> None:
            if message["type"] == "http.response.start" and unread:
                message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                connection.awaiting_headers()

        await self.app(scope, reading, answering)


class _ForwardedClients:
    """The app behind trusted proxies: a proxy's request counts as its client's connection.

    Put inside uvicorn's ``ProxyHeadersMiddleware``, which has read the client that a
    trusted proxy's ``X-Forwarded-For`` names: while the request (or WebSocket) is served,
    the proxy's connection counts as that client's (:func:`_counted_client`), and one past
    ``max_connections_per_address`` is refused as a direct one is (was: a proxy's
    connections counted as nobody's, so that behind one the bound was off). A request the
    proxy names no other client of counts as nobody's (the proxy carries many clients).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connection = _CONNECTION.get()
        client = scope.get("client")
        if connection is None or connection.proxy is None or not client:
            await self.app(scope, receive, send)
            return
        if client[0] == connection.proxy:  # (no other client named)
            await self.app(scope, receive, send)
            return
        connection.address = _counted_client(client[0])
        try:
            bound = connection.crowded_client()
            if bound is not None:
                await _refuse(scope, receive, send, bound)
                return
            await self.app(scope, receive, send)
        finally:
            connection.address = None


def _counted_client(host: str) -> str:
    """The client a connection from ``host`` counts as, for ``max_connections_per_address``.

    An IPv4 address is one client (an IPv4 address mapped into IPv6 too); an IPv6 address
    counts as its /64 network, which one machine (or one subscriber) may take any address
    of: counted by address, one client would have as many as it likes. A host that is no
    address (a name, a Unix socket's path) is itself.

    Args:
        host: The client's host, as the connection (or a trusted proxy) names it.

    Returns:
        The client: an IPv4 address, or an IPv6 network such as ``"2001:db8::/64"``.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))


_CLOSE = (b"connection", b"close")
"""The header of an answer after which its connection is closed."""


def _among(address: str, proxies: Sequence[str]) -> bool:
    """Whether the client ``address`` is one of ``proxies`` (addresses, networks or ``"*"``)."""
    for proxy in proxies:
        if proxy in ("*", address):
            return True
        try:
            if ipaddress.ip_address(address) in ipaddress.ip_network(proxy, strict=False):
                return True
        except ValueError:  # (a name, or a Unix socket's path: not an address's network)
            continue
    return False


def _has_body(scope: Scope) -> bool:
    """Whether the request of ``scope`` has a body (a length above 0, or chunks)."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False
