"""``a2a_agent``'s bounds against encoded bodies: none is asked for, one that comes is refused.

The bounds of a remote's answers (``max_event_bytes``, ``max_event_values``, the card's own,
an HTTP error's) count a body's bytes as they come, before httpx decodes them. httpx asks
for gzip by default, so a few kB of gzip (a zip bomb) were counted as a few kB and read as
the megabytes they decode to. The client now asks for ``Accept-Encoding: identity``, and a
body that comes encoded anyway is refused before a byte of it is read (a remote on
127.0.0.1, uvicorn, that sends its bodies gzipped whatever it is asked): its error names
the encoding, and the memory the refusal takes is far below the decoded body's size.
"""

from __future__ import annotations

import asyncio
import json
import struct
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from miniagents import MiniAgents
from miniagents.ext.a2a import a2a_agent, afetch_agent_card
from miniagents.ext.a2a.client import DEFAULT_MAX_EVENT_BYTES
from miniagents.ext.a2a.errors import (
    A2ACardError,
    A2AError,
    A2AHTTPError,
    A2AProtocolError,
    A2AReplyTooLargeError,
)
from tests.ext.a2a.rpc import serving
from tests.ext.a2a.sdk_server import sdk_card

SAFETY = 30.0
"""Seconds before a test that would hang fails instead (never reached when the code works)."""

Answer = Callable[[dict[str, Any]], Response]
"""How the remote answers a JSON-RPC request, given its JSON."""


def pressed(data: bytes, coding: str = "gzip") -> bytes:
    """``data`` compressed as ``coding`` says (``gzip``, or ``deflate``: zlib's stream)."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31 if coding == "gzip" else 15)
    return squeeze.compress(data) + squeeze.flush()


def encoded(
    data: bytes, coding: str = "gzip", *, status: int = 200, media_type: str = "application/json"
) -> Response:
    """A response whose body is ``data`` compressed, its ``Content-Encoding`` saying ``coding``."""
    body = pressed(data, coding)
    return Response(body, status, {"Content-Encoding": coding}, media_type=media_type)


def rpc_answer(sent: dict[str, Any], result: object) -> bytes:
    """The JSON-RPC answer to ``sent`` whose result is ``result``."""
    return json.dumps({"jsonrpc": "2.0", "id": sent["id"], "result": result}).encode()


def done(sent: dict[str, Any], parts: object = ({"text": "Done."},)) -> bytes:
    """The answer to ``sent`` (``SendMessage``): its task, completed, its artifact of ``parts``."""
    task = {
        "id": "t1",
        "contextId": "c1",
        "status": {"state": "TASK_STATE_COMPLETED"},
        "artifacts": [{"artifactId": "a", "parts": list(parts)}],  # type: ignore[call-overload]
    }
    return rpc_answer(sent, {"task": task})


def plainly(sent: dict[str, Any]) -> Response:
    """The answer to ``sent``: its task completed (``Done.``), not encoded."""
    return Response(done(sent), media_type="application/json")


def remote(
    answer: Answer,
    *,
    card: Callable[[bytes], Response] | None = None,
    streaming: bool = False,
    asked: list[str] | None = None,
) -> Callable[[str], ASGIApp]:
    """A remote whose card is the SDK's agent's (sent as ``card`` makes a response of its
    JSON, else as it is), and whose every JSON-RPC request is answered by ``answer``; the
    ``Accept-Encoding`` of each request goes in ``asked``."""

    def make(url: str) -> ASGIApp:
        async def card_route(request: Request) -> Response:
            if asked is not None:
                asked.append(request.headers.get("accept-encoding", ""))
            body = json.dumps(MessageToDict(sdk_card(url, streaming=streaming))).encode()
            return Response(body, media_type="application/json") if card is None else card(body)

        async def rpc(request: Request) -> Response:
            if asked is not None:
                asked.append(request.headers.get("accept-encoding", ""))
            return answer(await request.json())

        routes = [
            Route("/.well-known/agent-card.json", card_route),
            Route("/", rpc, methods=["POST"]),
        ]
        return Starlette(routes=routes)

    return make


async def refused(run: Awaitable[object]) -> tuple[A2AError, int]:
    """The error ``run`` fails with, and the peak of the memory traced while it ran."""
    tracemalloc.start()
    try:
        with pytest.raises(A2AError) as raised:
            await asyncio.wait_for(run, SAFETY)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return raised.value, peak


async def test_every_request_asks_for_bodies_unencoded_whatever_the_headers_say() -> None:
    # (was: httpx's default, "gzip, deflate", or the caller's own header)
    asked: list[str] = []
    async with serving(remote(plainly, asked=asked)) as url, MiniAgents():
        await afetch_agent_card(url, headers={"accept-encoding": "gzip"})
        agent = a2a_agent(url, headers={"Accept-Encoding": "gzip, br"})
        reply = await asyncio.wait_for(agent.inquire("Hi"), SAFETY)
    assert "".join(str(message) for message in reply) == "Done."
    assert asked == ["identity"] * 3  # (the card twice, SendMessage)


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_an_event_over_max_event_bytes_that_comes_encoded_is_refused_unread(
    coding: str,
) -> None:
    # (was: its bytes were counted compressed, about 1 kB: the event of 200 kB was read
    # whole, past max_event_bytes=10,000, and the reply held it)
    def answer(sent: dict[str, Any]) -> Response:
        head = f'data: {{"jsonrpc":"2.0","id":{json.dumps(sent["id"])},"result":'
        task = {"id": "t1", "contextId": "c1", "status": {"state": "TASK_STATE_WORKING"}}
        artifact = {"artifactId": "a", "parts": [{"text": "x" * 200_000}]}
        update = {"taskId": "t1", "contextId": "c1", "artifact": artifact}
        status = {"taskId": "t1", "contextId": "c1", "status": {"state": "TASK_STATE_COMPLETED"}}
        events = "".join(
            f"{head}{json.dumps(event)}}}\n\n"
            for event in ({"task": task}, {"artifactUpdate": update}, {"statusUpdate": status})
        )
        return encoded(events.encode(), coding, media_type="text/event-stream")

    async with serving(remote(answer, streaming=True)) as url, MiniAgents():
        agent = a2a_agent(url, alias="REMOTE", max_event_bytes=10_000)
        with pytest.raises(A2AProtocolError) as raised:
            await asyncio.wait_for(agent.inquire("Hi"), SAFETY)
    assert str(raised.value) == (
        f'The remote agent REMOTE answered HTTP 200 with its body encoded as "{coding}" though '
        "it was asked for none (Accept-Encoding: identity), not read. Check that the remote, "
        "or a proxy before it, sends its bodies unencoded when asked so: an encoded body is "
        "not read, so that the bounds on what is read (max_event_bytes, max_event_values) "
        "hold. The task it started may still run: the remote named no task before, so none "
        "was cancelled."
    )


def deflated(data: bytes, *, last: bool = False) -> bytes:
    """``data`` as raw deflate blocks, compressed alone: the last ones if ``last``, else ended
    on a byte (a sync flush), so that the blocks of other data can follow them."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    return squeeze.compress(data) + squeeze.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class Bomb:
    """A gzipped answer whose artifact is ``parts``: a few MB decoded, a few kB sent.

    ``streamed``: the answer to ``SendStreamingMessage`` (the task, the artifact's update,
    the task completed); else to ``SendMessage`` (the task, completed, with its artifact).
    The parts are compressed once, before the test reads them; each request's answer puts
    its own head and end around them (gzip's header and trailer too), so that the remote
    holds no more than their compressed bytes.
    """

    def __init__(self, parts: object, *, streamed: bool) -> None:
        self.streamed = streamed
        self._middle = json.dumps(parts).encode()
        self._pressed = deflated(self._middle)
        self.size = len(self._middle)

    def answer(self, sent: dict[str, Any]) -> Response:
        rpc = f'{{"jsonrpc":"2.0","id":{json.dumps(sent["id"])},"result":'
        working = {"id": "t1", "contextId": "c1", "status": {"state": "TASK_STATE_WORKING"}}
        if self.streamed:
            completed = {
                "taskId": "t1",
                "contextId": "c1",
                "status": {"state": "TASK_STATE_COMPLETED"},
            }
            head = (
                f"data: {rpc}{json.dumps({'task': working})}}}\n\n"
                f'data: {rpc}{{"artifactUpdate":{{"taskId":"t1","contextId":"c1",'
                '"artifact":{"artifactId":"a","parts":'
            )
            end = f"}}}}}}}}\n\ndata: {rpc}{json.dumps({'statusUpdate': completed})}}}\n\n"
        else:
            head = (
                f'{rpc}{{"task":{{"id":"t1","contextId":"c1",'
                '"status":{"state":"TASK_STATE_COMPLETED"},"artifacts":[{"artifactId":"a","parts":'
            )
            end = "}]}}}"
        front, back = head.encode(), end.encode()
        crc = zlib.crc32(back, zlib.crc32(self._middle, zlib.crc32(front)))
        length = len(front) + len(self._middle) + len(back)
        body = b"".join(
            [
                b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff",  # (gzip's header)
                deflated(front),
                self._pressed,
                deflated(back, last=True),
                struct.pack("<II", crc, length & 0xFFFFFFFF),  # (its trailer)
            ]
        )
        media_type = "text/event-stream" if self.streamed else "application/json"
        return Response(body, headers={"Content-Encoding": "gzip"}, media_type=media_type)


BOMBS = {
    "values": ([{"text": "x"}] * 400_000, DEFAULT_MAX_EVENT_BYTES),  # (800,000 values)
    "bytes": ([{"text": "x" * 6_000_000}], 1_000_000),
}
"""An artifact's parts of a few MB, a few kB gzipped, and the ``max_event_bytes`` they pass
(the first: over ``max_event_values``)."""


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "answered"])
@pytest.mark.parametrize("bomb", list(BOMBS))
async def test_a_zip_bomb_is_refused_before_it_is_decoded(bomb: str, streamed: bool) -> None:
    # (was, streamed: its few kB were counted, then decoded to 5 MB and more, which the
    # SDK read and parsed whole: max_event_values saw no value of it (no data line in its
    # compressed bytes), max_event_bytes a few kB; answered, its compressed bytes were
    # refused as "not A2A's JSON", quoted as they came)
    parts, max_bytes = BOMBS[bomb]
    answers = Bomb(parts, streamed=streamed)
    size = answers.size
    assert size > 5_000_000
    assert len(answers.answer({"id": 1}).body) < 30_000

    async with serving(remote(answers.answer, streaming=streamed)) as url, MiniAgents():
        card = await afetch_agent_card(url)  # (sent as it is)
        error, peak = await refused(
            a2a_agent(card, alias="REMOTE", max_event_bytes=max_bytes).inquire("Hi")
        )
    assert isinstance(error, A2AProtocolError)
    assert str(error).startswith(
        'The remote agent REMOTE answered HTTP 200 with its body encoded as "gzip" though'
    )
    assert peak < size // 5, peak


async def test_a_card_over_its_bound_that_comes_gzipped_is_a_card_error_unread() -> None:
    # (was: the card of 5 MB, a few kB gzipped, was read whole past its bound, 1 MB)
    made: list[Response] = []  # (made once, at the first fetch, outside the traced one)

    def card(body: bytes) -> Response:
        if not made:
            shown = json.loads(body)
            shown["description"] = "x" * 5_000_000
            made.append(encoded(json.dumps(shown).encode()))
        return made[0]

    async with serving(remote(plainly, card=card)) as url, MiniAgents():
        with pytest.raises(A2ACardError) as fetched:
            await asyncio.wait_for(afetch_agent_card(url), SAFETY)
        error, peak = await refused(a2a_agent(url).inquire("Hi"))
    for told in (fetched.value, error):
        assert isinstance(told, A2ACardError)
        assert str(told).startswith(
            f"The agent card at {url}.well-known/agent-card.json could not be read: it was "
            'answered with HTTP 200 and its body encoded as "gzip" though it was asked for '
            "none (Accept-Encoding: identity), which is not read. Check that the remote"
        )
    assert peak < 5_000_000 // 5, peak


PAGE = ("<html><body><p>" + "word " * 1_000_000 + "</p></body></html>").encode()
"""An HTTP error's page of 5 MB, a few kB gzipped."""


async def test_an_http_errors_gzipped_body_is_the_http_error_its_body_unread() -> None:
    # (was: its few kB were counted, and the SDK read it decoded, 5 MB, as the error's text)
    def answer(_: dict[str, Any]) -> Response:
        return encoded(PAGE, status=502, media_type="text/html")

    async with serving(remote(answer)) as url, MiniAgents():
        card = await afetch_agent_card(url)
        error, peak = await refused(a2a_agent(card, alias="REMOTE").inquire("Hi"))
    assert isinstance(error, A2AHTTPError)
    assert error.status == 502
    assert str(error).startswith(
        'The remote agent REMOTE answered HTTP 502 (its body encoded as "gzip" though it was '
        "asked for none (Accept-Encoding: identity), not read). Check that the remote"
    )
    assert peak < len(PAGE) // 5, peak


async def test_a_cards_gzipped_http_error_body_is_a_card_error_its_body_unread() -> None:
    def card(_: bytes) -> Response:
        return encoded(PAGE, status=404, media_type="text/html")

    async with serving(remote(plainly, card=card)) as url, MiniAgents():
        error, peak = await refused(afetch_agent_card(url))
    assert isinstance(error, A2ACardError)
    assert str(error).startswith(
        f"The agent card at {url}.well-known/agent-card.json could not be read: it was "
        'answered with HTTP 404 and its body encoded as "gzip" though'
    )
    assert peak < len(PAGE) // 5, peak


async def test_a_cancel_answered_gzipped_is_logged_and_the_reply_fails_as_it_did(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # (was: the refusal of the CancelTask's answer, an A2AProtocolError, was raised from
    # the cancel, in place of the error the reply failed with: an event over max_event_bytes)
    cancels: list[str] = []

    def answer(sent: dict[str, Any]) -> Response:
        if sent["method"] == "CancelTask":
            cancels.append(sent["params"]["id"])
            task = {"id": "t1", "contextId": "c1", "status": {"state": "TASK_STATE_CANCELED"}}
            return encoded(rpc_answer(sent, task))
        head = f'data: {{"jsonrpc":"2.0","id":{json.dumps(sent["id"])},"result":'
        task = {"id": "t1", "contextId": "c1", "status": {"state": "TASK_STATE_WORKING"}}
        artifact = {"artifactId": "a", "parts": [{"text": "x" * 20_000}]}
        update = {"taskId": "t1", "contextId": "c1", "artifact": artifact}
        events = "".join(
            f"{head}{json.dumps(event)}}}\n\n"
            for event in ({"task": task}, {"artifactUpdate": update})
        )
        return Response(events, media_type="text/event-stream")

    caplog.set_level("INFO", logger="miniagents.ext.a2a")
    async with serving(remote(answer, streaming=True)) as url, MiniAgents():
        agent = a2a_agent(url, alias="REMOTE", max_event_bytes=10_000)
        with pytest.raises(A2AReplyTooLargeError) as raised:
            await asyncio.wait_for(agent.inquire("Hi"), SAFETY)
    assert raised.value.limit == "max_event_bytes"
    assert cancels == ["t1"]
    [said] = [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("Cancelling the task")
    ]
    assert said.startswith(
        'Cancelling the task "t1" of REMOTE failed (A2AProtocolError: "The remote agent '
        'REMOTE answered HTTP 200 with its body encoded as \\"gzip\\"'
    )
