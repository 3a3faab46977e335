"""A WebSocket message its client compresses (``permessage-deflate``), under ``server_config``.

Zeros compress about a thousand to one: a message of megabytes is sent in kilobytes. Each
protocol ``server_config`` can choose must cut it as it inflates past ``ws_max_size``
(code 1009), not inflate it whole first; where uvicorn's protocol would (wsproto's, which
``"auto"`` takes without the ``websockets`` library), the compression is declined.
"""

from __future__ import annotations

import asyncio
import struct
import sys
import tracemalloc
import zlib

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.types import Message
from starlette.websockets import WebSocket

from miniagents.ext.web.serving import WS_MAX_SIZE, server_config
from tests.ext.web.serving import SERVED_WS, running, until
from tests.fakes.fixtures import WAIT

_SLICE = 1024 * 1024
"""The zeros compressed at a time (the message is never held whole by the test either)."""

_LEAST_MESSAGE = 16 * 1024 * 1024
"""The least message sent inflated (16 MiB: about 16 KiB compressed)."""

_NOISE = 1024 * 1024
"""The memory the test's own client and the loop may take while the message is refused."""


def _deflated_zeros(size: int) -> bytes:
    """``size`` zero bytes as one compressed message's payload (RFC 7692, section 7.2.1).

    Compressed a slice at a time, flushed, and its empty block's last four bytes dropped.
    """
    # (a window of 4 KiB: the least uvicorn's protocols ask of a client, 12 bits)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -12)
    zeros = bytes(_SLICE)
    parts = [compressor.compress(zeros) for _ in range(size // _SLICE)]
    parts.append(compressor.flush(zlib.Z_SYNC_FLUSH))
    payload = b"".join(parts)
    assert payload.endswith(b"\x00\x00\xff\xff")
    return payload[:-4]


def _compressed_frame(payload: bytes) -> bytes:
    """A client's one binary frame of a compressed message (FIN and RSV1 set), masked.

    Written on the connection as it is: the client library would compress what it sends,
    and to send one frame of a message it would hold the message whole. Its mask is all
    zeros (any key is one), so the payload is sent as it is.
    """
    if len(payload) < 126:
        length = bytes([0x80 | len(payload)])
    elif len(payload) < 1 << 16:
        length = bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    else:
        length = bytes([0x80 | 127]) + struct.pack("!Q", len(payload))
    return bytes([0x80 | 0x40 | 0x2]) + length + bytes(4) + payload


_CHOICES = [
    pytest.param(None, id="default"),  # (ws_max_size left out: WS_MAX_SIZE)
    pytest.param(64 * 1024, id="bounded"),
]


@pytest.mark.parametrize("ws_max_size", _CHOICES)
async def test_a_message_deflated_past_the_bound_is_cut_before_it_is_inflated_whole(
    ws_max_size: int | None,
) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    received: list[Message] = []

    async def sink(websocket: WebSocket) -> None:
        await websocket.accept()
        received.append(await websocket.receive())

    config = server_config(Starlette(routes=[WebSocketRoute("/ws", sink)]), ws_max_size=ws_max_size)
    assert config.ws == SERVED_WS
    bound = config.ws_max_size
    size = max(4 * bound, _LEAST_MESSAGE)
    payload = _deflated_zeros(size)
    assert len(payload) * 500 < size  # (kilobytes sent, megabytes inflated)
    async with running(config) as run:
        url = f"ws://127.0.0.1:{run.port}/ws"
        async with connect(url, compression="deflate", max_size=None) as websocket:
            assert [type(each).__name__ for each in websocket.protocol.extensions] == [
                "PerMessageDeflate"
            ]  # (negotiated: the server inflates what the client compressed)
            tracemalloc.start()
            try:
                assert websocket.transport is not None
                websocket.transport.write(_compressed_frame(payload))
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(websocket.recv(), WAIT)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009  # (message too big)
        await until(lambda: bool(received))
    assert received[0]["type"] == "websocket.disconnect"  # (the app never got it)
    assert received[0]["code"] == 1009
    # (never held whole: the protocol inflates at most what the bound leaves, and its
    # buffer may double as it grows)
    assert peak < 3 * bound + _NOISE < size, (peak, bound, size)


def test_the_compression_is_declined_where_uvicorn_would_inflate_a_message_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = Starlette()
    config = server_config(app)
    assert (config.ws, config.ws_per_message_deflate) == (SERVED_WS, True)
    # without the websockets library (the web extra does not bring it), "auto" is wsproto's
    # protocol where installed, which inflates each compressed read whole before it counts
    # the message: 16 KiB sent held as 16 MiB (and more) past a bound of 64 KiB
    monkeypatch.setitem(sys.modules, "websockets", None)
    config = server_config(app)
    assert (config.ws, config.ws_per_message_deflate) == ("auto", False)  # (was: True)


_UNDER_UVICORNS = 8 * 1024 * 1024
"""A message past the default bound, within uvicorn's own (16 MiB): 8 KiB compressed."""


@pytest.mark.parametrize(
    ("ws_max_size", "cut"),
    [pytest.param(None, True, id="default"), pytest.param(2 * _UNDER_UVICORNS, False, id="raised")],
)
async def test_the_default_bound_cuts_megabytes_sent_as_kilobytes_and_a_callers_own_wins(
    ws_max_size: int | None, cut: bool
) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    received: list[Message] = []

    async def sink(websocket: WebSocket) -> None:
        await websocket.accept()
        received.append(await websocket.receive())
        if received[0]["type"] == "websocket.receive":
            await websocket.close()  # (1000: the message was taken)

    config = server_config(Starlette(routes=[WebSocketRoute("/ws", sink)]), ws_max_size=ws_max_size)
    payload = _deflated_zeros(_UNDER_UVICORNS)
    assert len(payload) < 16 * 1024  # (kilobytes sent)
    async with running(config) as run:
        url = f"ws://127.0.0.1:{run.port}/ws"
        async with connect(url, compression="deflate", max_size=None) as websocket:
            tracemalloc.start()
            try:
                assert websocket.transport is not None
                websocket.transport.write(_compressed_frame(payload))
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(websocket.recv(), WAIT)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        await until(lambda: bool(received))
    assert closed.value.rcvd is not None
    assert config.ws_max_size == (ws_max_size or WS_MAX_SIZE)
    if not cut:  # (the caller's own bound: the message read whole)
        assert closed.value.rcvd.code == 1000
        assert received[0].get("bytes") == bytes(_UNDER_UVICORNS)
        return
    # (was: read whole under uvicorn's 16 MiB, held as 4 MiB and more, the close 1000)
    assert closed.value.rcvd.code == 1009  # (message too big)
    assert received[0]["type"] == "websocket.disconnect"  # (the app never got it)
    assert peak < 3 * WS_MAX_SIZE + _NOISE < _UNDER_UVICORNS, peak
