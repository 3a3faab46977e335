"""The apps' one serving: a real uvicorn on 127.0.0.1 under ``server_config``, raw sockets."""

from __future__ import annotations

import asyncio
import inspect
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket
from uvicorn.config import HTTP_PROTOCOLS, WS_PROTOCOLS
from uvicorn.importer import import_from_string
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from miniagents.ext.a2a import a2a_app
from miniagents.ext.errors import MissingExtraError, WebConfigurationError
from miniagents.ext.web import BearerTokenAuth, NoAuthentication, WebSettings, ai_sdk_app
from miniagents.ext.web.lowlevel import Door, aread_bounded
from miniagents.ext.web.serving import (
    HEADERS_SECONDS,
    KEEP_ALIVE_SECONDS,
    LINGER_BYTES,
    LINGER_SECONDS,
    MAX_CONNECTIONS,
    MAX_HEADER_BYTES,
    SEND_SECONDS,
    SHUTDOWN_SECONDS,
    WS_MAX_SIZE,
    WS_PING_SECONDS,
    WS_PING_TIMEOUT_SECONDS,
    ServingBounds,
    _address_option,
    _counted_client,
    listening_socket,
    server_config,
)
from miniagents.testing import VirtualClock
from tests.ext.web.serving import (
    SERVED_WS,
    Running,
    aclosed_with,
    answer_of,
    bounded,
    poet,
    running,
    served,
    trickle,
    until,
)
from tests.fakes.fixtures import WAIT

REQUEST = b"GET /held HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _held_app(entered: asyncio.Event, released: asyncio.Event) -> Starlette:
    """An app whose one route answers once ``released`` is set (``entered`` set as it waits)."""

    async def held(_request: Request) -> PlainTextResponse:
        entered.set()
        await released.wait()
        return PlainTextResponse("done")

    return Starlette(routes=[Route("/held", held)])


async def test_a_connection_whose_headers_trickle_in_is_closed_and_one_on_time_is_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    entered, released = asyncio.Event(), asyncio.Event()
    # (a short deadline: the requests on time come well within it, the slow one never)
    config = server_config(_held_app(entered, released), headers_seconds=1.0)
    async with bounded(config) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST)  # (on time: its answer waits for the test, past the deadline)
        await asyncio.wait_for(entered.wait(), WAIT)
        slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", port)
        slow_writer.write(b"GET /held HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # (not ended)
        # (a header at a time, never the blank line that ends them)
        trickling = asyncio.create_task(trickle(slow_writer, b"X-Slow: a\r\n"))
        try:  # (was: read on for ever, the connection held)
            assert await asyncio.wait_for(slow_reader.read(), WAIT) == b""
        finally:
            slow_writer.close()
            await trickling
        released.set()  # the first connection's answer comes after the slow one was cut
        answer = await asyncio.wait_for(reader.read(1024), WAIT)
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert answer.endswith(b"done")
        writer.close()
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


async def test_a_later_request_of_a_kept_alive_connection_has_the_same_deadline() -> None:
    entered, released = asyncio.Event(), asyncio.Event()
    released.set()  # (each answer at once)
    # (a short deadline: the requests on time come well within it, the slow one never)
    config = server_config(_held_app(entered, released), headers_seconds=1.0)
    async with bounded(config) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(2):  # two requests on time, the connection kept alive between them
            writer.write(REQUEST)
            answer = await asyncio.wait_for(reader.readuntil(b"done"), WAIT)
            assert answer.startswith(b"HTTP/1.1 200 ")
        writer.write(b"GET /held HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # (the third: not ended)
        trickling = asyncio.create_task(trickle(writer, b"X-Slow: a\r\n"))
        try:  # (was: uvicorn's keep-alive timer, reset by each byte: held for ever)
            assert await asyncio.wait_for(reader.read(), WAIT) == b""
        finally:
            writer.close()
            await trickling


def _client_app() -> Starlette:
    """An app whose one route answers with the client's address, as the app sees it."""

    async def client(request: Request) -> PlainTextResponse:
        assert request.client is not None
        return PlainTextResponse(f"{request.url.scheme} {request.client.host} done")

    return Starlette(routes=[Route("/held", client)])


@pytest.mark.parametrize(
    ("proxies", "seen"),
    [((), "http 127.0.0.1"), (("127.0.0.1",), "https 203.0.113.9")],
    ids=["no-proxy", "a-trusted-proxy"],
)
async def test_a_client_that_names_another_in_a_forwarded_header_keeps_its_deadline(
    proxies: tuple[str, ...], seen: str
) -> None:
    # (a short deadline: the request on time comes well within it, the slow one never)
    config = server_config(_client_app(), headers_seconds=1.0)
    if proxies:  # (left out, the default, otherwise)
        config = server_config(_client_app(), headers_seconds=1.0, trusted_proxies=proxies)
    async with bounded(config) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /held HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: 203.0.113.9\r\n"
            b"X-Forwarded-Proto: https\r\n\r\n"
        )
        answer = await asyncio.wait_for(reader.readuntil(b"done"), WAIT)
        assert answer.startswith(b"HTTP/1.1 200 ")
        # (was: 203.0.113.9, uvicorn trusting 127.0.0.1's header by default)
        assert answer.endswith(f"{seen} done".encode())
        writer.write(b"GET /held HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # (the second: not ended)
        trickling = asyncio.create_task(trickle(writer, b"X-Slow: a\r\n"))
        try:  # (was: held for ever, the connection not matched to the renamed client)
            assert await asyncio.wait_for(reader.read(), WAIT) == b""
        finally:
            writer.close()
            await trickling


async def test_a_request_past_the_most_connections_is_a_503() -> None:
    entered, released = asyncio.Event(), asyncio.Event()
    config = server_config(_held_app(entered, released), max_connections=1)
    async with bounded(config) as port:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST)  # (held open: the one served)
        await asyncio.wait_for(entered.wait(), WAIT)
        other_reader, other_writer = await asyncio.open_connection("127.0.0.1", port)
        other_writer.write(REQUEST)  # (one too many)
        refused = await asyncio.wait_for(other_reader.read(1024), WAIT)
        assert refused.startswith(b"HTTP/1.1 503 ")  # (was: no limit at all)
        released.set()
        other_writer.close()
        writer.close()


def _echo_app() -> Starlette:
    """An app whose WebSocket at ``/ws`` sends back each text it is sent."""

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(text)

    return Starlette(routes=[WebSocketRoute("/ws", echo)])


def _held_by_address() -> tuple[Starlette, list[str], asyncio.Event, asyncio.Event]:
    """An app whose ``/held`` notes each request's client address (the list) and holds it
    until the second event is set; the first event is set once two came in."""
    entered: list[str] = []
    both, released = asyncio.Event(), asyncio.Event()

    async def held(request: Request) -> PlainTextResponse:
        assert request.client is not None
        entered.append(request.client.host)
        if len(entered) == 2:
            both.set()
        await released.wait()
        return PlainTextResponse("done")

    return Starlette(routes=[Route("/held", held)]), entered, both, released


async def test_one_address_past_its_connections_is_refused_and_another_still_served() -> None:
    """``max_connections_per_address=1`` of 4: a second request from 127.0.0.1 while its
    first is served is a 503 saying why, and one from 127.0.0.2 is still served (was: one
    address could hold every connection, and everyone else got a 503)."""
    app, entered, both, released = _held_by_address()
    config = server_config(app, max_connections=4, max_connections_per_address=1)
    async with bounded(config) as port:
        first = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.1", 0))
        first[1].write(REQUEST)
        await until(lambda: bool(entered))
        again = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.1", 0))
        other = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0))
        try:
            again[1].write(REQUEST)
            refused = await asyncio.wait_for(again[0].read(), WAIT)
            assert refused.startswith(b"HTTP/1.1 503 ")
            assert refused.endswith(
                b"The server serves as many connections from this address as it takes: "
                b"close one, or try again later."
            )
            other[1].write(REQUEST)
            await asyncio.wait_for(both.wait(), WAIT)
            assert entered == ["127.0.0.1", "127.0.0.2"]
            released.set()
            for reader, _writer in (first, other):
                assert (await asyncio.wait_for(reader.readuntil(b"done"), WAIT)).startswith(
                    b"HTTP/1.1 200 "
                )
        finally:
            for _reader, writer in (first, again, other):
                writer.close()


async def test_a_trusted_proxys_clients_are_counted_by_address_an_ipv6_one_by_its_64() -> None:
    """Behind a trusted proxy (127.0.0.1), ``max_connections_per_address=1``: each request
    counts as the client its ``X-Forwarded-For`` names (was: a proxy's connections were
    counted as nobody's, the bound off), an IPv6 client by its /64 network (was: by its
    address, and one /64 holds more addresses than any bound): a second request of
    2001:db8::/64 is a 503 while its first is held, one of 2001:db8:0:1::/64 is served."""
    app, entered, both, released = _held_by_address()

    def relayed(client: str) -> bytes:
        return REQUEST.replace(b"\r\n\r\n", f"\r\nX-Forwarded-For: {client}\r\n\r\n".encode())

    config = server_config(
        app, max_connections=8, max_connections_per_address=1, trusted_proxies=["127.0.0.1"]
    )
    async with bounded(config) as port:
        opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        (first, again, other) = opened
        try:
            first[1].write(relayed("2001:db8::1"))
            await until(lambda: bool(entered))
            again[1].write(relayed("2001:db8::2:3"))  # (the same /64)
            refused = await asyncio.wait_for(again[0].read(), WAIT)
            assert refused.startswith(b"HTTP/1.1 503 ")
            assert refused.endswith(b"close one, or try again later.")
            other[1].write(relayed("2001:db8:0:1::1"))  # (another /64)
            await asyncio.wait_for(both.wait(), WAIT)
            assert entered == ["2001:db8::1", "2001:db8:0:1::1"]
            released.set()
            for reader, _writer in (first, other):
                assert (await asyncio.wait_for(reader.readuntil(b"done"), WAIT)).startswith(
                    b"HTTP/1.1 200 "
                )
        finally:
            for _reader, writer in opened:
                writer.close()


def test_a_client_is_counted_by_its_ipv4_address_or_its_ipv6_addresss_64() -> None:
    for host, client in (
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),  # (an IPv4 client of a dual-stack socket)
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::9", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("/run/app.sock", "/run/app.sock"),  # (no address: itself)
    ):
        assert _counted_client(host) == client, host


async def test_a_websocket_past_its_address_connections_is_refused_saying_why() -> None:
    """``max_connections_per_address=1``: a second WebSocket from one address is closed as
    it opens with 1013 and the per-address sentence; the first goes on."""
    from websockets.asyncio.client import connect

    app = _echo_app()
    async with running(server_config(app, max_connections_per_address=1)) as run:
        url = f"ws://127.0.0.1:{run.port}/ws"
        async with connect(url) as first:
            await first.send("hi")
            assert await first.recv() == "hi"
            async with connect(url) as refused:  # (was: served, one address holding both)
                await aclosed_with(
                    refused,
                    1013,
                    "The server serves as many connections from this address as it takes: "
                    "close one, or try again later.",
                )
            await first.send("still")
            assert await first.recv() == "still"


async def test_max_connections_are_served_at_once() -> None:
    both, released = asyncio.Event(), asyncio.Event()
    entered: list[None] = []

    async def held(_request: Request) -> PlainTextResponse:
        entered.append(None)
        if len(entered) == 2:
            both.set()
        await released.wait()
        return PlainTextResponse("done")

    app = Starlette(routes=[Route("/held", held)])
    config = server_config(app, max_connections=2)
    async with bounded(config) as port:
        try:
            opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
            for _reader, writer in opened:
                writer.write(REQUEST)
            await asyncio.wait_for(both.wait(), WAIT)  # (was: the second refused, a 503)
            third_reader, third_writer = await asyncio.open_connection("127.0.0.1", port)
            third_writer.write(REQUEST)
            refused = await asyncio.wait_for(third_reader.read(1024), WAIT)
            assert refused.startswith(b"HTTP/1.1 503 ")
            released.set()
            for reader, writer in opened:
                assert (await asyncio.wait_for(reader.read(1024), WAIT)).endswith(b"done")
                writer.close()
            third_writer.close()
        finally:
            released.set()  # (the held requests end: the server can stop)


@pytest.mark.parametrize("make_app", [ai_sdk_app, a2a_app], ids=["ai_sdk", "a2a"])
async def test_a_body_that_trickles_in_is_a_408_past_its_deadline(
    make_app: Callable[..., Starlette], caplog: pytest.LogCaptureFixture
) -> None:
    # (a short deadline: the trickle, a byte at a time, never ends the body)
    settings = WebSettings(body_seconds=0.5)
    app = make_app(poet, authentication=NoAuthentication(), settings=settings)
    async with bounded(server_config(app)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n{"
        )
        trickling = asyncio.create_task(trickle(writer, b" "))  # (never the body's end)
        try:  # (was: read on for ever, the connection and the app's task held)
            head, answer = await answer_of(reader)
        finally:
            writer.close()
            await trickling
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"content-type: application/json" in head.lower()
    if make_app is ai_sdk_app:  # (the JSON apps' own error)
        error = answer["error"]
        assert error["code"] == "body_too_slow"
    else:  # (was: Starlette's plain text, which no JSON-RPC client reads)
        assert (answer["jsonrpc"], answer["id"]) == ("2.0", None)
        error = answer["error"]
        assert error["code"] == -32600  # (Invalid Request: none arrived whole)
        assert error["data"][0]["metadata"] == {"bodySeconds": "0.5"}
    assert "did not all arrive within 0.5 seconds" in error["message"]
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


async def test_a2as_408_names_the_deadline_of_the_door_it_is_mounted_under() -> None:
    door = Door(NoAuthentication(), WebSettings(body_seconds=0.5), "outer")
    inner = a2a_app(poet, authentication=NoAuthentication())  # (its own: 30 seconds)
    app = Starlette(routes=[Mount("/agent", inner)], middleware=door.middleware())
    async with bounded(server_config(app)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /agent/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n{"
        )  # (then nothing: nothing unread as the server closes, which a reset would lose)
        try:
            head, answer = await answer_of(reader)
        finally:
            writer.close()
    assert head.startswith(b"HTTP/1.1 408 ")
    error = answer["error"]
    assert "did not all arrive within 0.5 seconds" in error["message"]
    assert error["data"][0]["metadata"] == {"bodySeconds": "0.5"}  # (was: "30", its own)


async def test_a_bodys_deadline_runs_from_the_requests_arrival_not_from_its_reading() -> None:
    reading = asyncio.Event()

    async def late_reader(request: Request) -> Response:
        # an app slow to start reading: it reads once the body's whole deadline has passed
        await asyncio.sleep(0.5)  # (the app's delay, not the test's order: the clock's)
        reading.set()
        try:
            body = await aread_bounded(request, 1000)
        except HTTPException as late:
            return PlainTextResponse(late.detail, status_code=late.status_code)
        return PlainTextResponse(repr(body))

    door = Door(NoAuthentication(), WebSettings(body_seconds=0.5), "late_reader")
    app = Starlette(
        routes=[Route("/", late_reader, methods=["POST"])], middleware=door.middleware()
    )
    async with bounded(server_config(app)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(  # its headers, then nothing until the app reads
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\n\r\n"
        )
        await asyncio.wait_for(reading.wait(), WAIT)
        writer.write(b"{}")  # (was: taken, the client's silence before the reading free)
        answer = await asyncio.wait_for(reader.readuntil(b"seconds"), WAIT)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert answer.endswith(b"did not all arrive within 0.5 seconds")


async def _refused(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to ``port`` whose request was refused (a 401), most of its body unsent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(  # (no token: a 401, its body never read)
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000\r\n\r\n{"
    )
    head, _answer = await answer_of(reader)
    assert head.startswith(b"HTTP/1.1 401 ")
    assert b"connection: close" in head.lower()
    return reader, writer


async def test_a_connection_whose_body_was_refused_unread_is_closed_after_the_answer() -> None:
    authentication = BearerTokenAuth({"a-token-of-twenty-chars": "ann"})
    app = ai_sdk_app(poet, authentication=authentication)
    async with bounded(server_config(app, headers_seconds=1.0, linger_seconds=0.5)) as port:
        reader, writer = await _refused(port)
        # the body goes on, a blank line in it (which once stopped the headers' deadline)
        writer.write(b"\r\n\r\n")
        trickling = asyncio.create_task(trickle(writer, b" "))
        try:  # (was: held for ever, the keep-alive timer reset by each byte)
            assert await asyncio.wait_for(reader.read(), WAIT) == b""
            # closed past its linger, the client sending still: its writes then refused
            await asyncio.wait_for(trickling, WAIT)
        finally:
            writer.close()
            await trickling


@pytest.mark.parametrize(
    ("settings", "token", "status"),
    [(WebSettings(), None, b"401"), (WebSettings(max_body_bytes=1000), "ann", b"413")],
    ids=["401", "413"],
)
async def test_an_answer_given_as_the_client_still_sends_its_body_is_read_whole(
    settings: WebSettings, token: str | None, status: bytes
) -> None:
    authentication = BearerTokenAuth({"a-token-of-twenty-chars": "ann"})
    app = ai_sdk_app(poet, authentication=authentication, settings=settings)
    authorized = b"Authorization: Bearer a-token-of-twenty-chars\r\n" if token else b""
    async with bounded(server_config(app)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(  # (its body sent on at once, most of it unread as the server answers)
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + authorized
            + b"Content-Length: 1000000\r\n\r\n{"
            + b" " * 300_000
        )
        try:  # (was: ConnectionResetError, the server's close with bytes unread a reset)
            head, _answer = await answer_of(reader)
            assert head.startswith(b"HTTP/1.1 " + status + b" ")
            assert b"connection: close" in head.lower()
            assert await asyncio.wait_for(reader.read(), WAIT) == b""
        finally:
            writer.close()


async def test_a_pipelined_request_answered_before_its_body_is_read_is_read_whole() -> None:
    authentication = BearerTokenAuth({"a-token-of-twenty-chars": "ann"})
    app = ai_sdk_app(poet, authentication=authentication)
    async with bounded(server_config(app)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(  # two requests at once: the first's body read whole, keeping the connection
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer a-token-of-twenty-chars\r\nContent-Length: 2\r\n\r\n[]"
            # the second's refused (no token), most of its body unread as the server answers
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000\r\n\r\n{" + b" " * 300_000
        )
        try:
            head, _answer = await answer_of(reader)
            assert head.startswith(b"HTTP/1.1 422 ")
            # (was: ConnectionResetError at times, the second answer's close not lingering:
            # the first answer's end had forgotten the bytes of the second request)
            head, _answer = await answer_of(reader)
            assert head.startswith(b"HTTP/1.1 401 ")
            assert b"connection: close" in head.lower()
            assert await asyncio.wait_for(reader.read(), WAIT) == b""
        finally:
            writer.close()


async def _lingering(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to ``port`` that lingers: its request refused, its body unread, kept open."""
    reader, writer = await _refused(port)
    assert await asyncio.wait_for(reader.read(), WAIT) == b""  # (the server's side shut)
    return reader, writer  # (the client's side left open: the server reads on, lingering)


async def test_a_lingering_connection_is_not_one_of_the_most_connections() -> None:
    authentication = BearerTokenAuth({"a-token-of-twenty-chars": "ann"})
    app = ai_sdk_app(poet, authentication=authentication)
    # (a linger far past the test: the connection lingers all through it)
    config = server_config(app, max_connections=1, linger_seconds=10 * WAIT)
    async with bounded(config) as port:
        _reader, writer = await _lingering(port)
        other_reader, other_writer = await asyncio.open_connection("127.0.0.1", port)
        other_writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await asyncio.wait_for(other_reader.readuntil(b"\r\n\r\n"), WAIT)
        assert head.startswith(b"HTTP/1.1 405 ")  # (was: a 503, the lingering one counted)
        other_writer.close()
        writer.close()


async def test_a_shutdown_ends_a_lingering_connection() -> None:
    authentication = BearerTokenAuth({"a-token-of-twenty-chars": "ann"})
    app = ai_sdk_app(poet, authentication=authentication)
    # (a linger far past the test's wait: the shutdown waiting for it fails the test)
    async with running(server_config(app, linger_seconds=10 * WAIT)) as run:
        _reader, writer = await _lingering(run.port)
        # (was, on Python 3.12 and later: the linger waited for, asyncio's Server.wait_closed
        # waiting for every connection before the lifespan's end, which closed it)
        await run.ashut_down()
        writer.close()


async def test_an_answer_given_as_the_server_shuts_down_does_not_linger() -> None:
    entered = asyncio.Event()
    servers: list[uvicorn.Server] = []

    async def refused(_request: Request) -> Response:  # (its body unread: a close lingers)
        entered.set()
        (server,) = servers
        await until(lambda: not any(listening.is_serving() for listening in server.servers))
        return Response(status_code=401)  # (given once the shutdown has begun)

    app = Starlette(routes=[Route("/", refused, methods=["POST"])])
    async with running(server_config(app, linger_seconds=10 * WAIT)) as run:
        servers.append(run.server)
        _reader, writer = await asyncio.open_connection("127.0.0.1", run.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
        await asyncio.wait_for(entered.wait(), WAIT)
        # (was, on Python 3.12 and later: the linger waited for, the connection closed
        # lingering as the client may still send its body)
        await run.ashut_down()
        writer.close()


@pytest.mark.parametrize("given", ["socket", "uds"])
async def test_connections_over_a_unix_socket_are_bounded_too(given: str, tmp_path: Path) -> None:
    entered, released = asyncio.Event(), asyncio.Event()
    config = server_config(_held_app(entered, released), max_connections=1)
    path = str(tmp_path / "serving.sock")
    sockets = None
    if given == "uds":  # (uvicorn's own setting: the server listens on the path itself)
        config.uds = path
    else:  # (a socket the server is given)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen()
        sockets = [listener]
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=sockets))
    try:
        await until(lambda: server.started)
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(REQUEST)  # (held open: the one served)
        await asyncio.wait_for(entered.wait(), WAIT)
        other_reader, other_writer = await asyncio.open_unix_connection(path)
        other_writer.write(REQUEST)  # (one too many)
        refused = await asyncio.wait_for(other_reader.read(1024), WAIT)
        assert refused.startswith(b"HTTP/1.1 503 ")  # (was: served, nothing counted)
        other_writer.close()
        released.set()
        assert (await asyncio.wait_for(reader.read(1024), WAIT)).endswith(b"done")
        writer.close()
        await until(lambda: not server.server_state.connections)
        # the places freed: a new connection is served
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(REQUEST)
        assert (await asyncio.wait_for(reader.read(1024), WAIT)).startswith(b"HTTP/1.1 200 ")
        writer.close()
    finally:
        released.set()
        server.should_exit = True
        await serving


ANSWER_BYTES = 32 * 1024 * 1024
"""An answer far bigger than what the kernel's buffers of a connection hold."""


def _large_app(answering: asyncio.Event) -> Starlette:
    """An app whose one route answers :data:`ANSWER_BYTES` bytes, the request's body unread.

    ``answering`` is set as the route returns its answer.
    """

    async def large(_request: Request) -> Response:
        answering.set()
        return Response(b"x" * ANSWER_BYTES)

    return Starlette(routes=[Route("/", large, methods=["GET", "POST"])])


async def _unread(run: Running, request: bytes, answering: asyncio.Event) -> socket.socket:
    """A connection to ``run`` that sends ``request`` and never reads (a tiny buffer).

    Returned once the server has given its answer (most of it unsent).
    """
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(client, ("127.0.0.1", run.port))
    await loop.sock_sendall(client, request)
    await asyncio.wait_for(answering.wait(), WAIT)
    await until(lambda: not run.server.server_state.tasks)  # (its answer given)
    assert len(run.server.server_state.connections) == 1
    return client


async def _freed(run: Running) -> None:
    """Wait until ``run`` holds no connection, then check that a new one is served (a 404)."""
    await until(lambda: not run.server.server_state.connections)
    reader, writer = await asyncio.open_connection("127.0.0.1", run.port)
    writer.write(b"GET /missing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    assert head.startswith(b"HTTP/1.1 404 ")  # (served: its connection's place freed)
    writer.close()


LARGE_POST = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"
"""A request for the large answer whose body is not all sent: its close lingers."""


async def test_a_lingering_connection_whose_client_does_not_read_ends_with_its_linger() -> None:
    # (a short linger: the answer is unsent at its end, the client never reading)
    answering = asyncio.Event()
    async with running(server_config(_large_app(answering), linger_seconds=0.5)) as run:
        client = await _unread(run, LARGE_POST, answering)
        try:  # (was: open for ever, its close waiting for the answer to be sent)
            await until(lambda: not run.server.server_state.connections)
        finally:
            client.close()


async def test_an_idle_connection_whose_client_does_not_read_ends_at_its_deadline() -> None:
    # (a short headers deadline, before uvicorn's keep-alive: the answer is unsent at it)
    answering = asyncio.Event()
    config = server_config(_large_app(answering), max_connections=1, headers_seconds=0.5)
    async with running(config) as run:
        client = await _unread(run, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", answering)
        try:  # (was: open for ever, its close waiting for the answer to be sent)
            await _freed(run)
        finally:
            client.close()


@pytest.mark.parametrize(
    "request_sent",
    [LARGE_POST, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"],
    ids=["lingering", "kept-alive"],
)
async def test_a_shutdown_ends_a_connection_whose_client_does_not_read(
    request_sent: bytes,
) -> None:
    # (a linger far past the test's wait: the shutdown waiting for it fails the test)
    answering = asyncio.Event()
    async with running(server_config(_large_app(answering), linger_seconds=10 * WAIT)) as run:
        client = await _unread(run, request_sent, answering)
        try:  # (was: waited for ever, the connection's close waiting for the answer to be sent)
            await run.ashut_down()
        finally:
            client.close()


async def test_a_stream_whose_client_reads_nothing_is_aborted_and_its_task_ends() -> None:
    # (was: held for ever, uvicorn waiting for the write buffer to drain: a client that
    # stopped reading a run's events held the answer's task and one of the most connections)
    written, ended = asyncio.Event(), asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"data: " + b"x" * 16_384 + b"\n\n"
                written.set()
                await asyncio.sleep(0)  # (as a run's events are awaited: its disconnect heard)
        finally:
            ended.set()

    async def events(_request: Request) -> StreamingResponse:
        return StreamingResponse(endless(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/events", events)])
    assert SEND_SECONDS == 60.0
    config = server_config(app, max_connections=1, send_seconds=0.5)
    async with running(config) as run:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(client, ("127.0.0.1", run.port))
        await loop.sock_sendall(client, b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            await asyncio.wait_for(written.wait(), WAIT)
            await asyncio.wait_for(ended.wait(), WAIT)  # (its task ends: the stream is cut)
            await _freed(run)
        finally:
            client.close()
    with pytest.raises(WebConfigurationError, match="send_seconds to be a positive"):
        server_config(app, send_seconds=0)


async def test_a_shutdown_cancels_an_answer_stuck_past_its_bound() -> None:
    entered, never = asyncio.Event(), asyncio.Event()
    assert SHUTDOWN_SECONDS == 5.0
    assert server_config(Starlette()).timeout_graceful_shutdown == SHUTDOWN_SECONDS
    # (a bound well within the test's wait: a shutdown waiting for the answer fails the test)
    async with running(server_config(_held_app(entered, never), shutdown_seconds=0.1)) as run:
        _reader, writer = await asyncio.open_connection("127.0.0.1", run.port)
        writer.write(REQUEST)
        await asyncio.wait_for(entered.wait(), WAIT)
        try:  # (was: waited for ever, uvicorn's shutdown waiting for the stuck answer)
            await run.ashut_down()
        finally:
            writer.close()
    with pytest.raises(WebConfigurationError, match="shutdown_seconds to be a positive"):
        server_config(Starlette(), shutdown_seconds=0)


def test_a_websockets_pings_are_the_servings_bounds() -> None:
    app = Starlette()
    config = server_config(app)
    assert (WS_PING_SECONDS, WS_PING_TIMEOUT_SECONDS) == (20.0, 20.0)  # (uvicorn's own)
    assert (config.ws_ping_interval, config.ws_ping_timeout) == (20.0, 20.0)
    config = server_config(app, ws_ping_seconds=5, ws_ping_timeout_seconds=2.5)
    assert (config.ws_ping_interval, config.ws_ping_timeout) == (5.0, 2.5)  # (was: TypeError)
    bounds: list[ServingBounds] = [{"ws_ping_seconds": 0}, {"ws_ping_timeout_seconds": 0}]
    for bound in bounds:
        (name,) = bound
        with pytest.raises(WebConfigurationError, match=f"{name} to be a positive") as refused:
            server_config(app, **bound)
        assert refused.value.parameter == name


async def test_a_websocket_whose_client_vanished_is_dropped_at_its_pings_timeout(
    virtual_clock: VirtualClock,
) -> None:
    # The loop is on a virtual clock: the server's ping, its timeout and a close timeout come
    # as soon as the loop waits for nothing else, on a fast machine as on a loaded one.
    told = asyncio.Event()

    async def sink(websocket: WebSocket) -> None:
        await websocket.accept()
        assert (await websocket.receive())["type"] == "websocket.disconnect"
        told.set()

    app = Starlette(routes=[WebSocketRoute("/ws", sink)])
    config = server_config(app, ws_ping_seconds=5, ws_ping_timeout_seconds=5)
    async with running(config) as run:
        reader, writer = await asyncio.open_connection("127.0.0.1", run.port)
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
        opened = virtual_clock.elapsed
        try:  # the client vanishes: it reads nothing more, answers no ping, sends no close
            await asyncio.wait_for(told.wait(), 60)
        finally:
            writer.close()
        # dropped as its ping (after 5 s) went unanswered for 5 s (was, under uvicorn 0.32 to
        # 0.34's legacy protocol: 10 s later, its close timeout; under 0.35 to 0.43's
        # websockets-sansio, which did not ping: never)
        assert virtual_clock.elapsed - opened < 5 + 5 + 1


async def test_a_websockets_connection_is_counted_once_and_let_go_as_it_closes() -> None:
    from websockets.asyncio.client import connect

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    async with running(server_config(Starlette(routes=[WebSocketRoute("/ws", echo)]))) as run:
        async with connect(f"ws://127.0.0.1:{run.port}/ws") as websocket:
            await websocket.send("hi")
            assert await websocket.recv() == "hi"
            connections = run.server.server_state.connections
            assert len(connections) == 1  # (the WebSocket's: the HTTP one let go)
        await until(lambda: not connections)  # (none left counted)


def _text_frame(payload: bytes) -> bytes:
    """A masked text frame of ``payload`` (under 126 bytes), written as it is: the client
    library sends no text that is not UTF-8. Its mask is all zeros (any key is one)."""
    return bytes([0x81, 0x80 | len(payload)]) + bytes(4) + payload


@pytest.mark.parametrize(
    ("sent", "code"),
    [
        pytest.param(bytes(4097), 1009, id="too-big"),
        pytest.param(_text_frame(b"caf\xe9"), 1007, id="not-utf-8"),  # (written raw)
        pytest.param(bytes([0x82, 0x01, 0x00]), 1002, id="unmasked"),  # (written raw)
    ],
)
async def test_a_websockets_app_is_told_the_close_its_server_sent(sent: bytes, code: int) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    told: list[tuple[str, object]] = []

    async def sink(websocket: WebSocket) -> None:
        await websocket.accept()
        message = await websocket.receive()
        told.append((message["type"], message.get("code")))

    config = server_config(Starlette(routes=[WebSocketRoute("/ws", sink)]), ws_max_size=4096)
    assert config.ws == SERVED_WS
    async with running(config) as run:
        async with connect(f"ws://127.0.0.1:{run.port}/ws", max_size=None) as websocket:
            if code == 1009:
                await websocket.send(sent)
            else:  # (a frame the client library would not send)
                assert websocket.transport is not None
                websocket.transport.write(sent)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(websocket.recv(), WAIT)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == code
        await until(lambda: bool(told))
    assert told == [("websocket.disconnect", code)]


async def test_a_websocket_past_the_most_connections_is_refused_saying_why() -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    app = _echo_app()
    async with running(server_config(app, max_connections=1)) as run:
        url = f"ws://127.0.0.1:{run.port}/ws"
        async with connect(url) as first:
            await first.send("hi")
            assert await first.recv() == "hi"  # (open and served: the one connection)
            async with connect(url) as refused:  # (was: served too, no limit)
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(refused.recv(), WAIT)
            # (was: a 503 to its opening, which a browser hides from its page: a bare 1006)
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
                1013,
                "The server serves as many connections as it takes: try again later.",
            )
            await first.send("still")
            assert await first.recv() == "still"  # (the first one goes on)
        connections = run.server.server_state.connections
        await until(lambda: not connections)
        async with connect(url) as second:  # (the first closed: room again)
            await second.send("again")
            assert await second.recv() == "again"


async def test_a_kept_alive_connection_serves_a_second_request_after_a_read_body() -> None:
    app = ai_sdk_app(poet, authentication=NoAuthentication())
    async with bounded(server_config(app)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(2):  # (a body read whole keeps its connection open)
            writer.write(
                b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 2\r\n\r\n[]"
            )
            head, _answer = await answer_of(reader)
            assert head.startswith(b"HTTP/1.1 422 ")
            assert b"connection: close" not in head.lower()
        writer.close()


def test_the_serving_says_its_bounds_and_refuses_what_it_cannot_keep_to() -> None:
    app = Starlette()
    config = server_config(app)
    # (counted by the serving, the lingering connections left out, not by uvicorn)
    assert (config.limit_concurrency, config.timeout_keep_alive) == (None, 5)
    assert getattr(config.http, "most", None) == MAX_CONNECTIONS
    assert (MAX_CONNECTIONS, KEEP_ALIVE_SECONDS, HEADERS_SECONDS) == (128, 5, 10.0)
    assert config.h11_max_incomplete_event_size == MAX_HEADER_BYTES == 16 * 1024
    # (uvicorn's own 16 MiB held 32 MiB per connection of a message sent as 16 KiB deflated)
    assert (config.ws, config.ws_max_size) == (SERVED_WS, WS_MAX_SIZE)
    assert WS_MAX_SIZE == 1024 * 1024
    assert server_config(app, ws_max_size=4096).ws_max_size == 4096
    with pytest.raises(WebConfigurationError, match="headers_seconds to be a positive"):
        server_config(app, headers_seconds=0)
    assert (LINGER_SECONDS, LINGER_BYTES) == (2.0, 1024 * 1024)
    assert getattr(config.http, "linger", None) == LINGER_SECONDS
    assert getattr(server_config(app, linger_seconds=0).http, "linger", None) == 0
    with pytest.raises(WebConfigurationError, match="linger_seconds to be"):
        server_config(app, linger_seconds=-1)
    with pytest.raises(WebConfigurationError, match="max_connections to be a whole number"):
        server_config(app, max_connections=0)
    with pytest.raises(WebConfigurationError, match="ws_max_size to be a whole number"):
        server_config(app, ws_max_size=0)
    assert not config.proxy_headers  # (uvicorn's default: 127.0.0.1's headers trusted)
    with pytest.raises(WebConfigurationError, match="trusted_proxies to be a list") as refused:
        server_config(app, trusted_proxies="127.0.0.1")
    assert refused.value.parameter == "trusted_proxies"


def test_the_serving_bounds_are_server_configs_arguments_by_their_names() -> None:
    taken = inspect.signature(server_config).parameters
    assert set(ServingBounds.__annotations__) == set(taken) - {
        "app",
        "host",
        "port",
        "log_level",
        "ws_max_size",  # (the app's own: voice_server reads it from its app)
    }


def test_the_uvicorn_parts_server_config_builds_on_are_still_there() -> None:
    """uvicorn's protocol table and its protocols' arguments, which ``server_config`` uses.

    None of them is documented: a uvicorn that changes them fails here, naming what it
    changed (tested with uvicorn 0.52.1 and 0.54).
    """
    version = uvicorn.__version__

    def pinned(holds: bool, what: str) -> None:
        assert holds, (
            f"uvicorn {version} changed what server_config (miniagents/ext/web/serving.py) "
            f"builds on: {what}. Adapt _HeadersInTime and server_config to it, or bound the "
            "web extra's uvicorn in pyproject.toml below this version."
        )

    named = HTTP_PROTOCOLS.get("h11")
    pinned(named is not None, "uvicorn.config.HTTP_PROTOCOLS has no 'h11' protocol")
    h11_protocol = import_from_string(named)
    pinned(
        isinstance(h11_protocol, type) and issubclass(h11_protocol, asyncio.Protocol),
        f"HTTP_PROTOCOLS['h11'] ({named}) is not an asyncio.Protocol class",
    )
    taken = inspect.signature(h11_protocol.__init__).parameters
    for argument in ("config", "server_state", "app_state", "_loop"):
        pinned(argument in taken, f"its h11 protocol takes no {argument}= argument")
    for method in (
        "connection_made",
        "data_received",
        "eof_received",
        "connection_lost",
        "shutdown",
    ):
        pinned(callable(getattr(h11_protocol, method, None)), f"its h11 protocol has no {method}")
    handling = inspect.getsource(getattr(h11_protocol, "handle_events", lambda: None))
    pinned("= self.app" in handling, "its h11 protocol calls no self.app with each request")
    upgrading = getattr(h11_protocol, "handle_websocket_upgrade", None)
    pinned(
        upgrading is not None and "transport.set_protocol(" in inspect.getsource(upgrading),
        "its h11 protocol hands a WebSocket its connection without transport.set_protocol",
    )
    stopping = inspect.getsource(uvicorn.Server.shutdown)
    pinned(
        "server_state.connections" in stopping and ".shutdown()" in stopping,
        "its server's shutdown does not call shutdown() on each of its state's connections",
    )
    connections = getattr(uvicorn.server.ServerState(), "connections", None)
    pinned(isinstance(connections, set), "its ServerState has no set of connections")
    made = inspect.getsource(uvicorn.Server.startup)
    for argument in ("config=config", "server_state=", "app_state=", "_loop=_loop"):
        pinned(argument in made, f"its server makes a protocol without {argument}")
    configured = inspect.signature(uvicorn.Config).parameters
    for argument in (
        "http",
        "limit_concurrency",
        "timeout_keep_alive",
        "h11_max_incomplete_event_size",
        "ws",
        "ws_max_size",
        "proxy_headers",
        "ws_ping_interval",
        "ws_ping_timeout",
    ):
        pinned(argument in configured, f"uvicorn.Config takes no {argument}= argument")
    proxied = inspect.signature(ProxyHeadersMiddleware).parameters
    pinned("trusted_hosts" in proxied, "its ProxyHeadersMiddleware takes no trusted_hosts=")
    pinned(SERVED_WS in WS_PROTOCOLS, f"uvicorn.config.WS_PROTOCOLS has no {SERVED_WS!r} protocol")


def test_a_ws_max_size_without_the_websockets_library_is_refused_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (the protocols that bound a message are the websockets library's: without it uvicorn
    # failed only as it loaded the configuration, a bare ImportError in serve())
    monkeypatch.setitem(sys.modules, "websockets", None)
    with pytest.raises(MissingExtraError, match=r'pip install "miniagents\[realtime\]"'):
        server_config(Starlette(), ws_max_size=64 * 1024)


def test_a_websocket_route_with_no_websocket_library_is_refused_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def echo(websocket: WebSocket) -> None:
        await websocket.close()

    mounted = Starlette(routes=[Mount("/inner", routes=[WebSocketRoute("/ws", echo)])])
    plain = Starlette(routes=[Route("/", lambda request: PlainTextResponse("hi"))])
    # (uvicorn's "auto" without websockets nor wsproto serves no WebSocket: it answers each
    # opening as a plain request, its warning in the log the only sign)
    monkeypatch.setitem(sys.modules, "websockets", None)
    monkeypatch.setitem(sys.modules, "wsproto", None)
    for app in (Starlette(routes=[WebSocketRoute("/ws", echo)]), mounted):
        with pytest.raises(MissingExtraError, match=r'pip install "miniagents\[realtime\]"'):
            server_config(app)
    assert server_config(plain).ws == "auto"  # (an app without a WebSocket: served as it was)


def test_a_proxy_on_another_machine_in_front_of_an_app_that_knows_nobody_is_warned_of(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # (taken: a documented setup; but any process on the proxy's machine can name 127.0.0.1)
    nobodys = ai_sdk_app(poet, authentication=NoAuthentication())
    with caplog.at_level("WARNING", logger="miniagents.ext.web"):
        server_config(nobodys, trusted_proxies=["127.0.0.1", "::1", "unix:/run/proxy"])
        assert not caplog.records  # (proxies on this machine)
        server_config(nobodys, trusted_proxies=["127.0.0.1", "10.0.0.1", "10.1.0.0/16"])
        known = ai_sdk_app(poet, authentication=BearerTokenAuth({"t" * 32: "ada"}))
        server_config(known, trusted_proxies=["10.0.0.1"])  # (it knows who asks)
    (warned,) = caplog.records
    assert warned.levelname == "WARNING"
    assert "10.0.0.1, 10.1.0.0/16" in warned.getMessage()
    assert "127.0.0.1 and be served as the local user" in warned.getMessage()
    assert "authentication=" in warned.getMessage()


def test_an_ipv4_mapped_proxy_is_of_this_machine_as_its_ipv4_address_on_every_python(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # (was: ::ffff:127.0.0.1 warned of on Python 3.11, whose ipaddress calls no mapped
    # address a loopback one, and not on 3.13, which reads its IPv4 address)
    nobodys = ai_sdk_app(poet, authentication=NoAuthentication())
    with caplog.at_level("WARNING", logger="miniagents.ext.web"):
        server_config(nobodys, trusted_proxies=["::ffff:127.0.0.1", "::ffff:127.0.0.0/104"])
        assert not caplog.records  # (proxies on this machine)
        server_config(nobodys, trusted_proxies=["::ffff:127.0.0.1", "::ffff:10.0.0.1"])
    (warned,) = caplog.records
    assert "other machines (::ffff:10.0.0.1)" in warned.getMessage()


def test_proxies_of_any_address_are_refused_in_front_of_an_app_that_knows_nobody() -> None:
    # trusting every client's X-Forwarded-For, an app that serves this machine's clients
    # only would serve any client on the network that names 127.0.0.1 as the local user
    nobodys = ai_sdk_app(poet, authentication=NoAuthentication())
    mounted = Starlette(routes=[Mount("/chat", app=nobodys)])
    for app in (nobodys, mounted, a2a_app(poet, authentication=NoAuthentication())):
        for anyone in (
            ["*"],
            ["127.0.0.1", "0.0.0.0/0"],
            ["::/0"],
            ["0.0.0.0/1", "128.0.0.0/1"],  # (together, every address)
            ["10.0.0.1", "::/1", "8000::/1"],
            ["::ffff:0:0/96"],  # (every IPv4 client of a server on "::", mapped)
            ["::ffff:0.0.0.0/97", "128.0.0.0/1"],
        ):
            with pytest.raises(WebConfigurationError, match="knows nobody") as refused:
                server_config(app, trusted_proxies=anyone)
            assert refused.value.parameter == "trusted_proxies"
            assert 'trusted_proxies=["127.0.0.1"]' in str(refused.value)
            assert "authentication=" in str(refused.value)
        server_config(app, trusted_proxies=["127.0.0.1", "10.0.0.0/8"])  # (named proxies)
    known = ai_sdk_app(poet, authentication=BearerTokenAuth({"t" * 32: "ada"}))
    public = ai_sdk_app(  # (it serves every client already, and says so as it starts)
        poet, authentication=NoAuthentication(), settings=WebSettings(allowed_hosts=["*"])
    )
    for app in (known, public, Starlette()):
        assert isinstance(
            getattr(server_config(app, trusted_proxies=["*"]).app, "app", None),
            ProxyHeadersMiddleware,
        )


def test_a_host_port_or_log_level_uvicorn_would_fail_on_later_is_refused_as_made() -> None:
    app = Starlette()
    # (any case: uvicorn < 0.35 knew the lowercase names only, a KeyError as it was made)
    config = server_config(app, host="localhost", port=0, log_level="INFO")
    assert (config.host, config.port, config.log_level) == ("localhost", 0, "info")
    assert server_config(app, port=65535).port == 65535
    for port in (-1, 65536, "8000", 80.0, True, None):
        with pytest.raises(WebConfigurationError, match="port to be a whole number") as refused:
            server_config(app, port=port)  # type: ignore[arg-type]
        assert refused.value.parameter == "port"
        assert "port=0 for any free port" in str(refused.value)
    for host in ("", " ", None, 127):
        with pytest.raises(WebConfigurationError, match="host to be a non-empty str") as refused:
            server_config(app, host=host)  # type: ignore[arg-type]
        assert 'host="127.0.0.1"' in str(refused.value)
    for level in ("verbose", "", None, 20):
        with pytest.raises(
            WebConfigurationError, match="log_level to be one of uvicorn"
        ) as refused:
            server_config(app, log_level=level)  # type: ignore[arg-type]
        assert 'log_level="info"' in str(refused.value)
        assert "'debug'" in str(refused.value)


async def test_the_commands_listener_sends_its_connections_writes_at_once() -> None:
    # (was: socket.socket(AF_INET), protocol 0, for which asyncio leaves Nagle's algorithm
    # on: an event stream's small writes waited for the client's delayed acknowledgement)
    with listening_socket("127.0.0.1", 0) as listener:
        assert listener.proto == socket.IPPROTO_TCP
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def note(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            own = writer.get_extra_info("socket")
            accepted.set_result(own.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(note, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
            assert await accepted != 0
            writer.close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="in use"):
            listening_socket("127.0.0.1", taken.getsockname()[1])


async def test_the_tests_servers_listen_as_the_commands_do(monkeypatch: pytest.MonkeyPatch) -> None:
    # (was: socket.socket(AF_INET, SOCK_STREAM), protocol 0: the tests served otherwise than
    # the commands, their streams' small writes held by Nagle's algorithm)
    listeners: list[socket.socket] = []
    serve = uvicorn.Server.serve

    async def noted(server: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
        listeners.extend(sockets or [])
        await serve(server, sockets=sockets)

    monkeypatch.setattr(uvicorn.Server, "serve", noted)
    app = Starlette(routes=[Route("/", lambda _request: PlainTextResponse("up"))])
    async with served(app) as client:
        assert (await client.get("/")).text == "up"
    async with running(server_config(app)) as run:
        _, writer = await asyncio.open_connection("127.0.0.1", run.port)
        writer.close()
    assert [listener.proto for listener in listeners] == [socket.IPPROTO_TCP] * 2


def test_the_listeners_address_is_its_own_on_windows_too() -> None:
    """(Was: ``SO_REUSEADDR`` everywhere; on Windows it lets another local process bind the
    same port and receive its connections, bearer tokens included.)"""
    assert _address_option("win32") == "SO_EXCLUSIVEADDRUSE"
    for platform in ("linux", "darwin", "freebsd14", "cygwin"):
        assert _address_option(platform) == "SO_REUSEADDR", platform
    with listening_socket("127.0.0.1", 0) as listener:  # (this machine's choice, as set)
        option = getattr(socket, _address_option(sys.platform))
        assert listener.getsockopt(socket.SOL_SOCKET, option) != 0


async def test_the_tests_servers_leave_the_signal_handlers_they_found_ending_out_of_order() -> None:
    # uvicorn puts back the handler each server found as it ends: two servers that end in
    # another order than they started left the first one's, of a stopped server, for every
    # later test of the process (was: the helpers left it so)
    import signal

    found = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    first = served(Starlette())
    await first.__aenter__()
    second = running(uvicorn.Config(Starlette(), log_level="warning", lifespan="off"))
    await second.__aenter__()
    await first.__aexit__(None, None, None)
    await second.__aexit__(None, None, None)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == found
