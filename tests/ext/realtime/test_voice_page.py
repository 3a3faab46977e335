"""The voice page (``voice_app``) in Debian's Chromium, with a fake microphone.

Chromium plays a WAV file the test writes as its microphone (a second of a 440 Hz tone, the
question, then quiet): the page asks for a ticket with its bearer token, opens the
WebSocket, streams the microphone as 16-bit PCM; the fake OpenAI Realtime API hears the
question (its audio reached it: a 440 Hz tone), answers, and the transcript and the audio
come back to the page. Chromium is driven by Playwright on the machine's own Chromium
(``/usr/bin/chromium``; nothing is downloaded). The app's door is tested beside it: the
ticket needs the token, a ticket is good once, another origin and another host are
refused.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import gc
import itertools
import json
import logging
import math
import re
import socket
import wave
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as ASGIMessage

if TYPE_CHECKING:
    from playwright.async_api import Browser, Locator, Page, Playwright
    from playwright.async_api import WebSocket as PlaywrightSocket
    from websockets.asyncio import client
    from websockets.typing import Subprotocol

from miniagents.errors import WebConfigurationError
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.realtime import web
from miniagents.ext.realtime.provider import (
    AudioOut,
    RealtimeEvent,
    ReplyEnded,
    ReplyStarted,
    TextOut,
)
from miniagents.ext.realtime.web import voice_app
from miniagents.ext.tools import FunctionTool
from miniagents.ext.web import BearerTokenAuth, NoAuthentication, WebSettings
from miniagents.ext.web.serving import HEADERS_SECONDS, MAX_CONNECTIONS
from miniagents.messages.image import ImagePart
from miniagents.promising.limits import DEFAULT_HIGH_WATER_MARK
from miniagents.testing import FakeLLMServer, ToolCall, VirtualClock
from tests.ext.realtime.kit import APIS, ScriptedLink, scripted_agent
from tests.ext.web.serving import SERVED_WS, tasks_ended, until
from tests.fakes.fixtures import WAIT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FOUND = CHROMIUM.exists()
ARTIFACTS = Path(__file__).resolve().parents[3] / ".artifacts"


PING_SECONDS = 0.25
"""The keepalive pings' interval of a server that tests them (uvicorn's is 20 s)."""


class Pongs:
    """The pongs that a server of :func:`served` reads, and how long it waits for the next.

    ``read``: one item for each pong the server read. ``timeout``: the seconds the server
    waits for the answer to each ping it sends from now, then closes the connection (1011);
    by default an hour, so that a page that is there never misses it, however slow the
    machine (a window of :data:`PING_SECONDS` closed a loaded machine's page that answered
    late); a test that makes its page vanish sets it short (the next ping's).
    """

    def __init__(self) -> None:
        self.read: asyncio.Queue[None] = asyncio.Queue()
        self.timeout = 3600.0


@asynccontextmanager
async def served(app: ASGIApp, port: int = 0, *, pongs: Pongs | None = None) -> AsyncIterator[str]:
    """``app`` under uvicorn on ``port`` of 127.0.0.1, else a free one (WebSockets on websockets'
    sans-I/O).

    ``pongs``: the app is served by :func:`web.voice_server`, which pings each WebSocket
    every :data:`PING_SECONDS` after the last answer, and closes one that does not answer
    within ``pongs.timeout`` (1011); each answer it reads is put in ``pongs.read``.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # (a port served before)
    sock.bind(("127.0.0.1", port))
    sock.listen(16)
    port = sock.getsockname()[1]
    if pongs is None:
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            ws=SERVED_WS,
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
    else:
        assert isinstance(app, Starlette)
        server = web.voice_server(app, log_level="warning")
        server.config.ws = _counted_pongs(pongs)
        server.config.ws_ping_interval = PING_SECONDS
        server.config.timeout_graceful_shutdown = 5
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def _counted_pongs(pongs: Pongs) -> type[asyncio.Protocol]:
    """uvicorn's WebSocket protocol that ``server_config`` serves with (:data:`SERVED_WS`,
    websockets' sans-I/O), each pong it reads put in ``pongs.read``, each ping it sends
    waiting ``pongs.timeout`` for its answer."""
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from websockets.frames import Frame

    class Counted(WebSocketsSansIOProtocol):
        def send_keepalive_ping(self) -> None:
            self.ping_timeout = pongs.timeout
            super().send_keepalive_ping()

        def handle_pong(self, event: Frame) -> None:
            super().handle_pong(event)
            pongs.read.put_nowait(None)

    return Counted


async def pinged(pongs: Pongs, count: int) -> None:
    """``count`` more pongs read by the server from now (each a ping's interval after the
    last; those read before are let go).

    A connection the server closed answers no more pings: a ``TimeoutError`` after 30 s.
    """
    while not pongs.read.empty():
        pongs.read.get_nowait()
    async with asyncio.timeout(30):
        for _ in range(count):
            await pongs.read.get()


def write_question(path: Path, rate: int = 48000, *, loud: bool = True) -> None:
    """A second of a 440 Hz tone (the user's question), then two seconds of quiet.

    ``loud=False``: three seconds of quiet (a microphone that asks nothing).
    """
    volume = 16000 if loud else 0
    tone = [int(volume * math.sin(2 * math.pi * 440 * n / rate)) for n in range(rate)]
    samples = array.array("h", tone + [0] * (2 * rate))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())


def quiet_microphone(folder: Path) -> str:
    """Chromium's switch for a quiet microphone, of a file written in ``folder`` (the only
    questions are typed)."""
    quiet = folder / "quiet.wav"
    write_question(quiet, loud=False)
    return f"--use-file-for-fake-audio-capture={quiet}"


async def typed_in_a_live_session(page: Page, text: str) -> None:
    """The button pressed until the session is live, then ``text`` typed and sent."""
    from playwright.async_api import expect

    await page.click("#mic")
    await expect(page.locator("body")).to_have_attribute("data-state", "live", timeout=30_000)
    await page.fill("#text", text)
    await page.click("#typed button")


def frequency(pcm: bytes, rate: int) -> float:
    """The frequency of the loud part of ``pcm`` (16-bit mono), from its rising zero crossings.

    It is the typical period (the middle half of the periods between crossings, averaged), not
    the crossings over the whole span: a loaded machine's capture may drop or pad a few
    milliseconds, which stretches the span without changing the tone.
    """
    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    loud = [index for index, value in enumerate(samples) if abs(value) > 2000]
    assert loud, "no loud audio reached the API"
    part = samples[loud[0] : loud[-1]]
    rising = [i for i, (a, b) in enumerate(itertools.pairwise(part)) if a < 0 <= b]
    periods = sorted(b - a for a, b in itertools.pairwise(rising))
    assert len(periods) >= 8, f"too few periods in the loud audio: {len(periods)}"
    middle = periods[len(periods) // 4 : len(periods) - len(periods) // 4]
    return rate / (sum(middle) / len(middle))


async def launch(playwright: Playwright, *extra: str, granted: bool = True) -> Browser:
    """Debian's Chromium, headless, its microphone a fake one (``extra``: more switches).

    ``granted``: whether the browser gives the microphone to a page that asks for it
    without asking the user (else the page's permission decides, as the user set it).
    Its autoplay policy is its own: audio starts only after a user's gesture (the test's
    clicks are real input events), as in the browsers people use.
    """
    assert CHROMIUM_FOUND, "Chromium is missing: apt-get install -y chromium"
    return await playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            *(["--use-fake-ui-for-media-stream"] if granted else []),
            "--use-fake-device-for-media-stream",
            *extra,
        ],
    )


@asynccontextmanager
async def browsed(
    app: ASGIApp,
    *extra: str,
    granted: bool = True,
    scripts: Sequence[str] = (),
    pongs: Pongs | None = None,
) -> AsyncIterator[tuple[str, Page]]:
    """``app`` served, and a page of Chromium (see :func:`launch`): its URL, and the page.

    ``scripts``: run in each document of the page before its own (``add_init_script``);
    ``pongs``: as :func:`served` takes them.
    """
    from playwright.async_api import async_playwright

    async with served(app, pongs=pongs) as base_url, async_playwright() as playwright:
        browser = await launch(playwright, *extra, granted=granted)
        try:
            page = await browser.new_page()
            for script in scripts:
                await page.add_init_script(script)
            yield base_url, page
        finally:
            await browser.close()


async def test_the_pages_spoken_question_reaches_the_api_and_the_answer_comes_back(
    tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    from playwright.async_api import async_playwright, expect

    question = tmp_path / "question.wav"
    write_question(question)
    assert CHROMIUM_FOUND, "Chromium is missing: apt-get install -y chromium"
    fake_llm.speak(["Sunny ", "and ", "warm."], heard="What is the weather?")
    app = voice_app(
        APIS[0].voice(fake_llm, silence_ms=400),
        authentication=BearerTokenAuth({"s3cret-token-of-ada": "ada"}),
    )
    async with served(app) as base_url, async_playwright() as playwright:
        browser = await launch(playwright, f"--use-file-for-fake-audio-capture={question}")
        try:
            page = await browser.new_page()
            opened: list[str] = []
            page.on("websocket", lambda socket: opened.append(socket.url))
            await page.goto(f"{base_url}/#token=s3cret-token-of-ada")
            await page.click("#mic")
            # (the page's own policy forbids eval: Playwright's locators read it instead)
            await expect(page.locator(".assistant")).to_have_text("Sunny and warm.", timeout=30_000)
            await expect(page.locator(".user")).to_have_text("What is the weather?")
            await expect(page.locator("body")).to_have_attribute("data-state", "live")
            stats = await page.evaluate("window.voice")
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "voice_page.png"))
        finally:
            await browser.close()
    # the ticket went in the Sec-WebSocket-Protocol header, not in the URL (access logs keep it)
    assert opened == [base_url.replace("http", "ws") + "/ws"]
    assert stats["audioBytes"] == 3 * 4800  # the three pieces of the answer, 100 ms each
    assert stats["errors"] == []
    record = fake_llm.realtime_sessions[0]
    assert frequency(bytes(record.input_audio), 24000) == pytest.approx(440, rel=0.03)
    assert record.errors == []


async def test_the_door_wants_the_token_a_good_ticket_an_allowed_origin_and_host(
    fake_llm: FakeLLMServer,
) -> None:
    from websockets.asyncio.client import connect
    from websockets.typing import Origin

    app = voice_app(
        APIS[0].voice(fake_llm), authentication=BearerTokenAuth({"s3cret-token-of-ada": "ada"})
    )
    async with served(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        page = await client.get("/")
        assert "script-src 'sha256-" in page.headers["content-security-policy"]
        refused = await client.post("/session", json={})
        assert refused.status_code == 401
        headers = {"Authorization": "Bearer s3cret-token-of-ada"}
        given = (await client.post("/session", json={}, headers=headers)).json()
        assert (given["input_rate"], given["output_rate"]) == (24000, 24000)
        ws_url, ticket = base_url.replace("http", "ws") + "/ws", ticketed(given["ticket"])
        # a page of another site: told why, as its socket opens (was: a 403 to its opening,
        # which a browser hides from its page: a bare 1006)
        foreign = connect(ws_url, subprotocols=ticket, origin=Origin("https://evil.example"))
        assert await closed_at_once(foreign) == (
            4403,
            "A page of this origin may not use this app: add the origin to WebSettings's "
            "allowed_origins.",
        )
        async with connect(ws_url, subprotocols=ticket) as socket:  # (refused above: not taken)
            await socket.send('{"type": "text", "text": "Hi."}')
            events: list[str | bytes] = []
            while '"turn_end"' not in str(events[-1:]):
                events.append(await socket.recv())
        said = [json.loads(event) for event in events if isinstance(event, str)]
        deltas = [event["delta"] for event in said if event["type"] == "transcript"]
        assert "".join(deltas) == "You said: Hi."
        assert any(isinstance(event, bytes) for event in events)  # the audio
        assert await closed_at_once(connect(ws_url, subprotocols=ticket)) == (  # good once
            4403,
            "No ticket, or one that is not good (any more).",
        )
        elsewhere = await client.get("/", headers={"Host": "evil.example"})
        assert elsewhere.status_code == 400
        given = (await client.post("/session", json={}, headers=headers)).json()
        assert await closed_at_once(connect_as("evil.example", base_url, given["ticket"])) == (
            4400,  # DNS rebinding
            "This app does not answer to this host: add it to WebSettings's allowed_hosts.",
        )


async def closed_at_once(opening: client.connect) -> tuple[int, str]:
    """The close's code and reason of a WebSocket that ``opening`` opens, which its app
    closes at once (it reads nothing from it)."""
    from websockets.exceptions import ConnectionClosed

    async with opening as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 30)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_the_ticket_goes_in_the_protocol_header_and_one_in_the_url_is_warned_of(
    fake_llm: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    from websockets.asyncio.client import connect

    app = voice_app(
        APIS[0].voice(fake_llm), authentication=BearerTokenAuth({"s3cret-token-of-ada": "ada"})
    )
    headers = {"Authorization": "Bearer s3cret-token-of-ada"}
    async with served(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        ticket = (await client.post("/session", json={}, headers=headers)).json()["ticket"]
        async with session_socket(base_url, ticket) as socket:
            assert socket.subprotocol == web.VOICE_PROTOCOL  # (the app's answer: not the ticket)
            await socket.send('{"type": "end"}')
            async for _ in socket:  # (to the app's close: the session has ended)
                pass
        assert not [record for record in caplog.records if record.name.endswith("realtime.web")]
        for _ in range(2):  # (a page of before, its ticket in the URL: taken, warned of once)
            ticket = (await client.post("/session", json={}, headers=headers)).json()["ticket"]
            async with connect(base_url.replace("http", "ws") + "/ws?ticket=" + ticket) as socket:
                assert socket.subprotocol is None
                await socket.send('{"type": "end"}')
                async for _ in socket:
                    pass
            assert socket.close_code == 1000
    warned = [record for record in caplog.records if record.name.endswith("realtime.web")]
    assert len(warned) == 1
    assert "send it in the Sec-WebSocket-Protocol header" in warned[0].getMessage()
    assert "until the first release after 2027-06-30" in warned[0].getMessage()


def connect_as(host: str, base_url: str, ticket: str) -> client.connect:
    """A WebSocket to the app at ``base_url`` whose ``Host`` is ``host`` (the app's own port)."""
    from websockets.asyncio.client import connect

    port = int(base_url.rsplit(":", 1)[1])
    uri = f"ws://{host}:{port}/ws"
    return connect(uri, host="127.0.0.1", port=port, proxy=None, subprotocols=ticketed(ticket))


def session_socket(base_url: str, ticket: str) -> client.connect:
    """A WebSocket to the app at ``base_url``, its ticket sent as the page sends it."""
    from websockets.asyncio.client import connect

    return connect(base_url.replace("http", "ws") + "/ws", subprotocols=ticketed(ticket))


def ticketed(ticket: str) -> list[Subprotocol]:
    """The WebSocket protocols the page asks for: the voice protocol, and its ticket."""
    from websockets.typing import Subprotocol

    return [Subprotocol(web.VOICE_PROTOCOL), Subprotocol(web.TICKET_PROTOCOL_PREFIX + ticket)]


async def test_the_settings_name_the_hosts_and_bound_the_sessions(fake_llm: FakeLLMServer) -> None:

    settings = WebSettings(allowed_hosts=["voice.example"], max_live_runs_per_principal=1)
    app = voice_app(
        APIS[0].voice(fake_llm),
        authentication=BearerTokenAuth({"s3cret-token-of-ada": "ada"}),
        settings=settings,
    )
    asked = {"Authorization": "Bearer s3cret-token-of-ada", "Host": "voice.example"}
    async with served(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        assert (await client.get("/")).status_code == 400  # (127.0.0.1 is not listed)
        first = (await client.post("/session", json={}, headers=asked)).json()["ticket"]
        second = (await client.post("/session", json={}, headers=asked)).json()["ticket"]
        async with connect_as("voice.example", base_url, first) as socket:  # ada's one session
            refused = await client.post("/session", json={}, headers=asked)
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "too_many_runs_of_yours"
            assert refused.json()["error"]["message"].startswith(  # (was: "1 sessions")
                "You hold 1 session, the most one user may hold"
            )
            second_socket = connect_as("voice.example", base_url, second)  # given before: no room
            assert (await closed_at_once(second_socket))[0] == 4403
            await socket.send('{"type": "end"}')
            async for _ in socket:  # (to the app's close: the session has ended)
                pass
        again = await client.post("/session", json={}, headers=asked)
        assert again.status_code == 200  # (her session ended: room again)


async def test_one_users_tickets_never_push_out_anothers(fake_llm: FakeLLMServer) -> None:

    app = voice_app(
        APIS[0].voice(fake_llm),
        authentication=BearerTokenAuth(
            {"ada-secret-token": "ada", "eve-secret-token": "eve", "bob-secret-token": "bob"}
        ),
        settings=WebSettings(max_live_runs=1),  # (the app keeps a few tickets: 4)
    )
    async with served(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        ada = {"Authorization": "Bearer ada-secret-token"}
        ticket = (await client.post("/session", json={}, headers=ada)).json()["ticket"]
        eve = {"Authorization": "Bearer eve-secret-token"}
        asked = [(await client.post("/session", json={}, headers=eve)) for _ in range(10)]
        bob = await client.post(
            "/session", json={}, headers={"Authorization": "Bearer bob-secret-token"}
        )
        # (was: a 403, ada's ticket dropped for eve's, the oldest, unused)
        async with session_socket(base_url, ticket) as socket:
            await socket.send('{"type": "end"}')
            async for _ in socket:  # (to the app's close: the session has ended)
                pass
        assert [answer.status_code for answer in asked] == [200] * 10  # (eve's own dropped)
        assert bob.status_code == 503  # (full of others' tickets: none of theirs dropped)
        assert bob.json()["error"]["code"] == "too_many_tickets"
        mine = [(await client.post("/session", json={}, headers=ada)) for _ in range(3)]
        assert [answer.status_code for answer in mine] == [200] * 3  # (her own oldest dropped)


def test_the_app_wants_authentication_a_realtime_agent_and_positive_limits(
    fake_llm: FakeLLMServer,
) -> None:
    with pytest.raises(WebConfigurationError, match="voice_app needs authentication="):
        voice_app(APIS[0].voice(fake_llm))
    local = NoAuthentication()
    voice_app(APIS[0].voice(fake_llm), authentication=local)
    with pytest.raises(WebConfigurationError, match="needs a realtime agent"):
        voice_app(offline_agent, authentication=local)  # type: ignore[arg-type]
    agent = APIS[0].voice(fake_llm)
    refused_limits: list[tuple[str, Callable[[], object]]] = [
        (
            "max_session_seconds",
            lambda: voice_app(agent, authentication=local, max_session_seconds=0),
        ),
        ("ticket_seconds", lambda: voice_app(agent, authentication=local, ticket_seconds=math.nan)),
        ("max_message_bytes", lambda: voice_app(agent, authentication=local, max_message_bytes=0)),
    ]
    for limit, make in refused_limits:
        with pytest.raises(WebConfigurationError, match=f"voice_app needs {limit}") as refused:
            make()
        assert refused.value.parameter == limit


async def test_a_method_a_route_does_not_serve_is_the_apps_json_405_with_its_allow_header(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: Starlette's plain-text "Method Not Allowed", unlike the web apps' JSON 405)
    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        refused = await client.get("/session")
    assert refused.status_code == 405
    assert refused.headers["content-type"] == "application/json"
    assert refused.headers["allow"] == "POST"
    error = refused.json()["error"]
    assert error["code"] == "method_not_allowed"
    assert error["message"] == "/session does not serve GET; send POST."


def test_an_agent_with_a_tool_that_waits_for_approval_is_refused_when_the_app_is_made(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: the page never showed the approval request, so each call of the tool waited
    # until the session ended)
    def remove(path: str) -> str:
        """Removes a file."""
        return f"Removed {path}."

    local = NoAuthentication()
    for rule in (True, lambda arguments: arguments.get("path") == "/"):
        agent = APIS[0].voice(fake_llm, tools=[FunctionTool(remove, requires_approval=rule)])
        with pytest.raises(WebConfigurationError) as refused:
            voice_app(agent, authentication=local)
        assert str(refused.value) == (
            "voice_app cannot serve the agent OPENAI_REALTIME_AGENT: its tool 'remove' needs a "
            "person's approval (requires_approval), which the voice page cannot ask for, so "
            "each of its calls would wait until the session ended. Give the voice app an agent "
            "without that tool, or with requires_approval=False for it."
        )
        assert refused.value.parameter == "agent"
    voice_app(APIS[0].voice(fake_llm, tools=[remove]), authentication=local)


def test_a_message_bound_below_the_pages_microphone_chunk_is_refused_when_the_app_is_made(
    fake_llm: FakeLLMServer,
) -> None:
    agent, local = APIS[0].voice(fake_llm), NoAuthentication()
    with pytest.raises(WebConfigurationError) as refused:  # (was: every session closed, 1009)
        voice_app(agent, authentication=local, max_message_bytes=4095)
    assert str(refused.value) == (
        "voice_app needs max_message_bytes to be a whole number of at least 4096; got 4095. "
        "The page sends its microphone's audio in messages of 4,096 bytes: a smaller bound "
        "would close every session at its first chunk."
    )
    assert refused.value.parameter == "max_message_bytes"
    app = voice_app(agent, authentication=local, max_message_bytes=web.MICROPHONE_CHUNK_BYTES)
    assert app.state.max_message_bytes == 4096


async def test_the_page_shows_why_the_app_closed_its_session(fake_llm: FakeLLMServer) -> None:
    from playwright.async_api import expect

    # the microphone's chunks (4,096 bytes) are taken; a typed text of 5,000 is not
    app = voice_app(
        APIS[0].voice(fake_llm), authentication=NoAuthentication(), max_message_bytes=4096
    )
    async with browsed(app) as (base_url, page):
        await page.goto(base_url)
        await page.click("#mic")
        await expect(page.locator("body")).to_have_attribute("data-state", "live", timeout=30_000)
        await page.fill("#text", "x" * 5_000)
        await page.click("#typed button")
        await expect(page.locator("body")).to_have_attribute("data-state", "error", timeout=30_000)
        await expect(page.locator("#status")).to_have_text(  # (was: "The session ended.")
            "The session ended: A message was bigger than the app takes. (1009). Press the "
            "button to start a new session."  # (was: nothing of what to do)
        )


async def test_the_page_says_the_app_refused_its_connection_and_why(
    fake_llm: FakeLLMServer,
) -> None:
    from playwright.async_api import Route, expect

    async def spent_ticket(route: Route) -> None:  # (the app's answer, its ticket one not good)
        answer = await route.fetch()
        await route.fulfill(response=answer, json={**await answer.json(), "ticket": "spent"})

    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    async with browsed(app) as (base_url, page):
        await page.route("**/session", spent_ticket)
        await page.goto(base_url)
        await page.click("#mic")
        await expect(page.locator("body")).to_have_attribute("data-state", "error", timeout=30_000)
        await expect(page.locator("#status")).to_have_text(  # (was: "The session ended: ...")
            "The connection was refused: the app does not let this page in (4403). No ticket, "
            "or one that is not good (any more). Press the button to try again."
        )


async def test_the_page_says_the_connection_closed_when_the_server_stops_and_starts_again(
    fake_llm: FakeLLMServer,
) -> None:
    from playwright.async_api import async_playwright, expect

    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            page = await browser.new_page()
            async with served(app) as base_url:
                await page.goto(base_url)
                await page.click("#mic")
                await expect(page.locator("body")).to_have_attribute(
                    "data-state", "live", timeout=30_000
                )
            # the server stopped mid-session: no reason (was: "The session ended.", as if done)
            await expect(page.locator("body")).to_have_attribute("data-state", "error")
            await expect(page.locator("#status")).to_have_text(  # (was: "Reload the page ...")
                re.compile(
                    r"^The connection closed without a reason \(10\d\d\)\. Press the button "
                    r"to start a new session\.$"
                )
            )
            await page.click("#mic")  # while it is away
            said = page.locator("#status")
            await expect(said).to_have_text(  # (was: "TypeError: Failed to fetch")
                "The app could not be reached (Failed to fetch): check the network, then press "
                "the button again."
            )
            async with served(app, int(base_url.rsplit(":", 1)[1])):  # the server is back
                await page.click("#mic")  # as the page says
                await expect(page.locator("body")).to_have_attribute(
                    "data-state", "live", timeout=30_000
                )
        finally:
            await browser.close()


HELD_MICROPHONE = """
(() => {
  const devices = navigator.mediaDevices;
  const real = devices.getUserMedia.bind(devices);
  let grant = null;
  const granted = new Promise((given) => { grant = given; });
  let asked = null;
  devices.getUserMedia = (constraints) => {
    asked = granted.then(() => real(constraints));
    return asked.then((stream) => { window.microphone = stream; return stream; });
  };
  // the microphone given, then a task later (the page's own microtasks all run): "given"
  window.grantMicrophone = () => {
    grant();
    return asked.then(() => new Promise((done) => setTimeout(() => done("given"), 0)));
  };
})();
"""
"""A page's microphone that the browser grants only when the test says so."""


async def test_no_session_opens_while_the_microphone_is_asked_for(
    fake_llm: FakeLLMServer,
) -> None:
    from playwright.async_api import expect

    fake_llm.refuse_realtime(401)  # (the session fails as it starts: an error, then a close)
    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    counted = _CountedTickets(app)
    async with browsed(counted, scripts=[HELD_MICROPHONE]) as (base_url, page):
        opened: list[str] = []
        page.on("websocket", lambda socket: opened.append(socket.url))
        await page.goto(base_url)
        await page.click("#mic")
        await expect(page.locator("body")).to_have_attribute("data-state", "connecting")
        # the browser asks the user (was: the session opened first, and failed meanwhile)
        assert (counted.asked, opened, fake_llm.realtime_sessions) == ([], [], [])
        assert await page.evaluate("grantMicrophone()") == "given"
        await expect(page.locator("body")).to_have_attribute("data-state", "error", timeout=30_000)
        said = await page.text_content("#status")
        assert await page.evaluate(  # (the session failed: its microphone let go)
            "window.microphone.getTracks().every((track) => track.readyState === 'ended')"
        )
    assert said is not None
    # (was: "The agent failed with ...", not naming it, as the other web apps name theirs)
    assert said.startswith(
        "Error: The agent OPENAI_REALTIME_AGENT failed with LLMAuthenticationError."
    )
    assert counted.asked == ["POST"]


async def test_a_typed_session_that_ends_while_the_microphone_is_asked_for_is_not_shown_live(
    fake_llm: FakeLLMServer,
) -> None:
    from playwright.async_api import expect

    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    async with relayed(app, scripts=[HELD_MICROPHONE]) as (relay, page):
        body = page.locator("body")
        await page.fill("#text", "Hi.")
        await page.click("#typed button")
        await expect(page.locator(".assistant")).to_have_text("You said: Hi.", timeout=30_000)
        await page.click("#mic")  # the microphone asked for, in the typed session
        await expect(body).to_have_attribute("data-state", "connecting")
        relay.cut()  # the network is lost meanwhile
        await expect(body).to_have_attribute("data-state", "error", timeout=30_000)
        said = await page.text_content("#status")
        assert await page.evaluate("grantMicrophone()") == "given"  # (after the close)
        assert await page.get_attribute("body", "data-state") == "error"
        assert await page.text_content("#status") == said
        assert await page.evaluate(
            "window.microphone.getTracks().every((track) => track.readyState === 'ended')"
        )
    assert said == "The connection was lost (1006). Press the button to start a new session."


async def test_the_voice_server_cuts_a_message_past_the_apps_bound_before_reading_it_whole(
    fake_llm: FakeLLMServer,
) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosedError

    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    server = web.voice_server(app, log_level="warning")
    assert server.config.ws_max_size == 64 * 1024  # (uvicorn's own: 16 MiB)
    assert getattr(server.config.http, "most", None) == MAX_CONNECTIONS  # (was: no limit)
    assert getattr(server.config.http, "deadline", None) == HEADERS_SECONDS  # (was: none)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with httpx.AsyncClient(base_url=base_url) as client:
            ticket = (await client.post("/session", json={})).json()["ticket"]
        url = base_url.replace("http", "ws") + "/ws"
        async with connect(url, max_size=None, subprotocols=ticketed(ticket)) as websocket:
            await websocket.send(bytes(64 * 1024 + 2))  # (one message past the bound)
            with pytest.raises(ConnectionClosedError):
                await websocket.recv()
        assert websocket.close_code == 1009
        # cut by the server as it came, not by the app after it was read whole
        assert websocket.close_reason != "A message was bigger than the app takes."
        assert "65536" in str(websocket.close_reason)  # (the server's bound, named by it)
        await tasks_ended()
    finally:
        server.should_exit = True
        await serving
        sock.close()
    with pytest.raises(WebConfigurationError, match="voice_server needs an app made by voice_app"):
        web.voice_server(Starlette())


def test_the_voice_server_reads_forwarded_headers_from_the_proxies_it_is_given_only(
    fake_llm: FakeLLMServer,
) -> None:
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    unproxied = web.voice_server(app).config
    assert getattr(unproxied.app, "app", None) is app  # (none read by default)
    assert not unproxied.proxy_headers
    proxied = web.voice_server(app, trusted_proxies=["10.0.0.1"]).config  # (was: unexpected)
    assert isinstance(getattr(proxied.app, "app", None), ProxyHeadersMiddleware)
    assert proxied.ws_max_size == 64 * 1024  # (the app's bound kept)
    with pytest.raises(WebConfigurationError, match="trusted_proxies to be a list"):
        web.voice_server(app, trusted_proxies="10.0.0.1")


def test_the_voice_server_takes_the_bounds_of_server_config_by_their_names(
    fake_llm: FakeLLMServer,
) -> None:
    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    config = web.voice_server(  # (was: unexpected keyword arguments, the defaults fixed)
        app, max_connections=3, headers_seconds=2.0, linger_seconds=0.5
    ).config
    assert getattr(config.http, "most", None) == 3
    assert (getattr(config.http, "deadline", None), getattr(config.http, "linger", None)) == (
        2.0,
        0.5,
    )
    assert config.ws_max_size == 64 * 1024  # (the app's bound kept)
    with pytest.raises(WebConfigurationError, match="max_connections to be") as refused:
        web.voice_server(app, max_connections=0)
    assert refused.value.parameter == "max_connections"


def test_the_voice_server_takes_the_websockets_librarys_sans_io_protocol(
    fake_llm: FakeLLMServer,
) -> None:
    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    server = web.voice_server(app)
    assert server.config.ws == SERVED_WS  # (the one that drops a vanished page at its ping)
    assert server.config.ws_max_size == 64 * 1024


async def test_a_page_that_leaves_mid_reply_ends_its_session_and_the_apis(
    fake_llm: FakeLLMServer,
) -> None:

    fake_llm.speak(["One, ", "two, ", "three."], pause_after=1)  # (held: the reply goes on)
    app = voice_app(
        APIS[0].voice(fake_llm), authentication=BearerTokenAuth({"s3cret-token-of-ada": "ada"})
    )
    headers = {"Authorization": "Bearer s3cret-token-of-ada"}
    async with served(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        ticket = (await client.post("/session", json={}, headers=headers)).json()["ticket"]
        async with session_socket(base_url, ticket) as socket:
            await socket.send('{"type": "text", "text": "Count."}')
            while '"transcript"' not in str(await socket.recv()):
                pass  # (the reply has begun; the page closes now)
        # its API session ends (was: open until the session's limit)
        record = await fake_llm.wait_realtime_async(0, lambda record: record.outcome == "closed")
        await tasks_ended()
    assert record.outcome == "closed"


async def test_a_message_the_page_never_sends_closes_the_session_saying_so(
    fake_llm: FakeLLMServer,
) -> None:
    from websockets.exceptions import ConnectionClosed, ConnectionClosedError

    app = voice_app(
        APIS[0].voice(fake_llm), authentication=BearerTokenAuth({"s3cret-token-of-ada": "ada"})
    )
    headers = {"Authorization": "Bearer s3cret-token-of-ada"}
    malformed: list[str | bytes] = [
        "[1]",  # (JSON, not an object: was an AttributeError, lost)
        "not JSON",
        '{"type": "played", "item_id": "item_1", "ms": 1e999}',  # (int(inf): OverflowError)
        '{"type": "played", "item_id": "item_1", "ms": -5}',
        '{"type": "played"}',
        '{"type": "text", "text": {"a": 1}}',
        "[" * 60_000,  # (nested past the parser's depth: a RecursionError)
        b"odd",  # (audio of no whole 16-bit sample: every later one shifted by a byte)
        '{"type": "stop"}',  # (no type the page sends: was ignored, the session went on)
        '{"text": "Hi."}',
        "",
    ]
    async with served(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        for message in malformed:
            ticket = (await client.post("/session", json={}, headers=headers)).json()["ticket"]
            async with session_socket(base_url, ticket) as socket:
                await socket.send(message)
                with contextlib.suppress(ConnectionClosed):  # (the app may have closed first)
                    await socket.send('{"type": "end"}')
                with pytest.raises(ConnectionClosedError):  # (was: a session_end, then 1000)
                    await socket.recv()
            assert socket.close_code == 1007, message
            assert str(socket.close_reason).startswith("A message was not one"), message
        await tasks_ended()
    assert [record.outcome for record in fake_llm.realtime_sessions] == ["closed"] * len(malformed)


class _HeldLink(ScriptedLink):
    """A realtime API that takes the user's audio only once the test lets it, and says nothing."""

    reports_speech = True

    def __init__(self) -> None:
        super().__init__()
        self.taken: list[bytes] = []
        self.let_in = asyncio.Event()

    async def asend_audio(self, audio: bytes) -> None:
        await self.let_in.wait()
        self.taken.append(audio)

    async def arespond(self) -> None:
        return None

    async def atruncate(self, item_id: str, played_ms: int) -> None:
        return None


def held_voice(link: _HeldLink, settings: WebSettings | None = None) -> Starlette:
    """A voice app of the API ``link`` (every session's), of ``settings`` (else the default)."""
    agent = scripted_agent(lambda: link, "HELD_VOICE", "A voice of a held API.")
    return voice_app(
        agent,
        authentication=NoAuthentication(),
        settings=settings or WebSettings(),
    )


SECRET = "https://api.example.com/v1/realtime?key=sk-live-0123456789"
"""What the session's error echoes: a URL with its key."""


class _LeakyLink(_HeldLink):
    """A :class:`_HeldLink` that fails at the first text, as an SDK would: its error names the
    URL it called."""

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        raise ConnectionError(f"Could not reach {SECRET}.")


async def failed_session(app: ASGIApp) -> list[str | bytes]:
    """What the page of a session of ``app`` is told, a text sent to it, until its close (1011)."""
    from websockets.exceptions import ConnectionClosed

    told: list[str | bytes] = []
    async with served(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        ticket = (await client.post("/session", json={})).json()["ticket"]
        async with session_socket(base_url, ticket) as socket:
            await socket.send('{"type": "text", "text": "Hi."}')
            with contextlib.suppress(ConnectionClosed):
                async for message in socket:
                    told.append(message)
        assert socket.close_code == 1011
        await tasks_ended()
    return told


async def test_a_failed_sessions_error_text_never_reaches_the_page_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # (the error's text was told to the page as it is: the URL and its key; then "The agent
    # failed with ...", not naming the agent, as the other web apps name theirs)
    caplog.set_level(logging.INFO)
    told = await failed_session(held_voice(_LeakyLink()))
    assert "api.example.com" not in str(told)
    assert "sk-live" not in str(told)
    [said] = [json.loads(message) for message in told]
    reference = said["reference"]
    assert re.fullmatch(r"[0-9a-f]{32}", reference)
    assert said == {
        "type": "error",
        "message": "The agent HELD_VOICE failed with ConnectionError. The server's log has the "
        f"error under the reference {reference}: ask the agent's operator to look it up there.",
        "error_type": "ConnectionError",
        "reference": reference,
    }
    logged = [record for record in caplog.records if SECRET in logging.Formatter().format(record)]
    assert len(logged) == 1, [record.getMessage() for record in logged]  # (once)
    assert (logged[0].name, logged[0].levelno) == ("miniagents.ext.realtime.web", logging.ERROR)
    assert logged[0].getMessage() == (  # (the operator finds it by its reference)
        f"A voice session failed with ConnectionError (reference {reference})."
    )


async def test_with_error_texts_a_failed_session_tells_the_page_its_errors_text() -> None:
    told = await failed_session(held_voice(_LeakyLink(), WebSettings(error_texts=True)))
    [said] = [json.loads(message) for message in told]
    assert said["message"] == f"Could not reach {SECRET}."
    assert said["error_type"] == "ConnectionError"


def _failing_at(app: ASGIApp, kind: str) -> ASGIApp:
    """``app`` whose sends of the event ``kind`` to a page fail, as a step of its own would."""

    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: ASGIMessage) -> None:
            if message["type"] == "websocket.send" and f'"type": "{kind}"' in str(
                message.get("text")
            ):
                raise RuntimeError("The app could not send the event.")
            await send(message)

        await app(scope, receive, sending)

    return failing


async def test_a_failed_step_of_the_apps_own_is_told_as_the_servers_not_the_agents(
    fake_llm: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    # (was: "The agent OPENAI_REALTIME_AGENT failed with RuntimeError ...: ask the agent's
    # operator", for a send to the page that failed, which the agent had no part in)
    voice = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    told = await failed_session(_failing_at(voice, "turn_end"))
    said = json.loads(told[-1])
    reference = said["reference"]
    assert said == {
        "type": "error",
        "message": "The server, streaming the session, failed with RuntimeError. The server's "
        f"log has the error under the reference {reference}: ask the server's operator to "
        "look it up there.",
        "error_type": "RuntimeError",
        "reference": reference,
    }
    [logged] = [record for record in caplog.records if reference in record.getMessage()]
    assert logged.exc_info is not None
    assert str(logged.exc_info[1]) == "The app could not send the event."


class _EchoLink(ScriptedLink):
    """A realtime API that answers each text with a transcribed reply (ended, if ``ends``)."""

    def __init__(self, *, ends: bool) -> None:
        super().__init__()
        self.ends = ends
        self.texts: asyncio.Queue[str | None] = asyncio.Queue()  # (None: closed)

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        self.texts.put_nowait(text)

    async def arespond(self) -> None:
        return None

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        for turn in itertools.count():
            if (text := await self.texts.get()) is None:
                return
            yield ReplyStarted(f"r{turn}")
            yield TextOut(f"i{turn}", f"You said: {text}")
            if self.ends:
                yield ReplyEnded(f"r{turn}", "completed")

    async def aclose(self) -> None:
        self.texts.put_nowait(None)
        await super().aclose()


def echo_voice(link: _EchoLink) -> Starlette:
    agent = scripted_agent(lambda: link, "ECHO_VOICE", "A voice that echoes.")
    return voice_app(agent, authentication=NoAuthentication())


async def test_a_transcript_the_page_could_not_be_sent_fails_the_session_at_once() -> None:
    # (a transcript's send ran in a task of its own, kept to the session's end: its failure
    # was seen only at its turn's end, or the session's, so a reply that never ended hung)
    told = await asyncio.wait_for(
        failed_session(_failing_at(echo_voice(_EchoLink(ends=False)), "transcript")), WAIT
    )
    said = json.loads(told[-1])
    assert (said["type"], said["error_type"]) == ("error", "RuntimeError")
    assert said["message"].startswith("The server, streaming the session, failed")


async def test_the_transcripts_sent_are_let_go_as_they_end() -> None:
    # (each transcript's sending task was kept for the session's whole life)
    def kept() -> int:
        gc.collect()
        return sum(
            1
            for one in gc.get_objects()
            if isinstance(one, asyncio.Task) and "voice page transcript" in one.get_name()
        )

    async with served(echo_voice(_EchoLink(ends=True))) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            ticket = (await client.post("/session", json={})).json()["ticket"]
        async with session_socket(base_url, ticket) as socket:
            for turn in range(20):
                await socket.send(json.dumps({"type": "text", "text": f"Turn {turn}."}))
                while json.loads(await socket.recv())["type"] != "turn_end":
                    pass
            assert kept() <= 1  # (the last one sent, at most; was: 20, one for each turn)
            await socket.send('{"type": "end"}')
            async for _ in socket:
                pass


async def test_a_page_that_sends_past_held_is_read_no_further_and_closed_saying_so() -> None:
    from websockets.exceptions import ConnectionClosed

    link = _HeldLink()
    app = held_voice(link)
    ahead: list[int] = []  # at each frame the app read: how far ahead of the API it was
    told: list[str | bytes] = []
    closes: list[ASGIMessage] = []

    async def counted(scope: Scope, receive: Receive, send: Send) -> None:
        async def counted_receive() -> ASGIMessage:
            message = await receive()
            if message["type"] == "websocket.receive":
                ahead.append(len(ahead) + 1 - len(link.taken))
            return message

        async def closing(message: ASGIMessage) -> None:
            if message["type"] == "websocket.close":
                closes.append(message)
            await send(message)

        await app(scope, counted_receive, closing)

    past = web.HELD_MORE_BYTES // web.MICROPHONE_CHUNK_BYTES  # (the most read after "held")
    frames = [bytes([index % 256, index // 256]) * 240 for index in range(past + 100)]
    async with served(counted) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        ticket = (await client.post("/session", json={})).json()["ticket"]
        async with session_socket(base_url, ticket) as socket:
            with contextlib.suppress(ConnectionClosed):  # (the app closes it meanwhile)
                for frame in frames:  # (a page that ignores "held")
                    await socket.send(frame)
            with contextlib.suppress(ConnectionClosed):  # (its close, or a reset: the frames
                async for message in socket:  # read after it are dropped unread)
                    told.append(message)
            assert told[0] == '{"type": "held"}'
        assert [closed.get("code") for closed in closes] == [1008]
        assert str(closes[0].get("reason")).startswith("The page sent more than the app keeps")
        await tasks_ended()
    assert link.taken == []
    # 16 read and waiting, the high-water mark pulled ahead, one in the session's hands; then
    # each message counted as a microphone chunk at least, and the one past them (was: all
    # read, or none past the first few dozen, the page's pongs unread)
    assert max(ahead) <= 16 + DEFAULT_HIGH_WATER_MARK + 1 + past + 1
    assert len(ahead) >= 16 + past  # (read on while held)


async def test_a_held_page_is_read_on_so_it_answers_the_servers_pings_and_stays() -> None:
    link = _HeldLink()
    pongs = Pongs()
    frames = [bytes([index % 256, 0]) * 2048 for index in range(60)]  # (past the read-ahead)
    async with (
        served(held_voice(link), pongs=pongs) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        ticket = (await client.post("/session", json={})).json()["ticket"]
        async with session_socket(base_url, ticket) as socket:
            for frame in frames:
                await socket.send(frame)
            assert (await socket.recv()) == '{"type": "held"}'
            # held for 4 pings, each answer read by the server (was: its pongs unread, so
            # closed 1011, "keepalive ping timeout", once a ping's timeout passed)
            await pinged(pongs, 4)
            link.let_in.set()
            assert (await socket.recv()) == '{"type": "reading"}'
            await socket.send('{"type": "end"}')
            async for _ in socket:  # (to the app's close: the session has ended)
                pass
        assert socket.close_code == 1000
        await tasks_ended()
    assert link.taken == frames  # every frame, in order


@pytest.mark.parametrize("state", ["idle", "held", "speaking"])
async def test_a_page_that_vanished_is_noticed_by_the_servers_pings_in_every_state(
    fake_llm: FakeLLMServer, state: str
) -> None:
    link = _HeldLink()
    fake_llm.speak(["One, ", "two, ", "three."], pause_after=1)  # (held: the reply goes on)
    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    pongs = Pongs()
    async with (
        served(app if state == "speaking" else held_voice(link), pongs=pongs) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        ticket = (await client.post("/session", json={})).json()["ticket"]
        async with session_socket(base_url, ticket) as socket:
            if state == "held":
                for index in range(60):
                    await socket.send(bytes([index, 0]) * 2048)
                assert (await socket.recv()) == '{"type": "held"}'
            elif state == "speaking":
                await socket.send('{"type": "text", "text": "Count."}')
                while '"transcript"' not in str(await socket.recv()):
                    pass  # (the reply has begun)
            await pinged(pongs, 1)  # (the page answers while it is there)
            pongs.timeout = PING_SECONDS  # (for the next ping, sent once this step has run)
            # the page vanishes: it reads nothing more, so answers no ping, and sends no close
            assert isinstance(socket.transport, asyncio.ReadTransport)
            socket.transport.pause_reading()
            if state == "speaking":
                # the API's session ended (the fake's waiter wakes at each change of its record)
                await fake_llm.wait_realtime_async(0, lambda record: record.outcome == "closed")
            else:
                await asyncio.wait_for(link.closed.wait(), 30)  # the API's session ended
            await tasks_ended()
            socket.transport.abort()


async def test_a_page_that_leaves_while_held_back_ends_its_session_at_once(
    virtual_clock: VirtualClock,
) -> None:
    # (its messages were not read while the API took none, so its leaving, behind them, was
    # noticed only when the API next took input: the session and its place held meanwhile)
    # The loop is on a virtual clock: a timer of the app's would come as soon as the loop
    # waits for nothing else, on a fast machine as on a loaded one.
    link = _HeldLink()
    app = held_voice(link, WebSettings(max_live_runs=1))
    frames = [bytes([index % 256, 0]) * 240 for index in range(100)]  # (past the read-ahead)
    # (a new connection for each request: the second, 4 s of the virtual clock after the
    # first, near uvicorn's keep-alive of 5 s, at times waited for its answer until httpx's
    # read timeout on the kept-alive one)
    no_pool = httpx.Limits(max_keepalive_connections=0)
    async with (
        served(app) as base_url,
        httpx.AsyncClient(base_url=base_url, limits=no_pool) as client,
    ):
        ticket = (await client.post("/session", json={})).json()["ticket"]
        async with session_socket(base_url, ticket) as socket:
            for frame in frames:
                await socket.send(frame)
            assert (await socket.recv()) == '{"type": "held"}'  # (held back: told so)
            told = virtual_clock.elapsed
            socket.transport.abort()  # the page is gone (its tab closed), its frames unread
        await asyncio.wait_for(link.closed.wait(), 60)  # the API's session ended
        # noticed at once: its messages are read on while it is held, its leaving behind
        # them (was: 3 s, at the held checks a second apart, whose sends at last failed)
        noticed = virtual_clock.elapsed - told
        assert noticed < 1, noticed
        await tasks_ended()
        again = await client.post("/session", json={})
        assert again.status_code == 200  # its place is free (max_live_runs=1)
    assert len(link.taken) == 0


async def test_a_refused_microphone_opens_no_session_and_says_what_to_do(
    fake_llm: FakeLLMServer,
) -> None:
    from playwright.async_api import expect

    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    counted = _CountedTickets(app)
    async with browsed(counted, granted=False) as (base_url, page):
        browsing = await page.context.new_cdp_session(page)
        await browsing.send(  # the user refuses the page the microphone
            "Browser.setPermission",
            {"permission": {"name": "microphone"}, "setting": "denied", "origin": base_url},
        )
        opened: list[str] = []
        page.on("websocket", lambda socket: opened.append(socket.url))
        await page.goto(base_url)
        await page.click("#mic")
        await expect(page.locator("body")).to_have_attribute("data-state", "error", timeout=30_000)
        await expect(page.locator("#status")).to_have_text(  # (was: the error's name only)
            "The microphone was not given (NotAllowedError). Allow this page to use the "
            "microphone (the browser's site settings), then press the button again; or type "
            "below."
        )
    # the microphone is asked for first (was: a ticket, a socket and a session of the
    # realtime API opened, then closed)
    assert counted.asked == []
    assert opened == []
    assert fake_llm.realtime_sessions == []


async def test_a_user_the_browser_gives_no_microphone_types_instead(
    fake_llm: FakeLLMServer,
) -> None:
    from playwright.async_api import expect

    fake_llm.speak(["Sunny ", "and ", "warm."])
    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    async with browsed(app, granted=False) as (base_url, page):
        browsing = await page.context.new_cdp_session(page)
        await browsing.send(  # the user refuses the page the microphone
            "Browser.setPermission",
            {"permission": {"name": "microphone"}, "setting": "denied", "origin": base_url},
        )
        body, status = page.locator("body"), page.locator("#status")
        await page.goto(base_url)
        await page.click("#mic")
        await expect(body).to_have_attribute("data-state", "error", timeout=30_000)
        await page.fill("#text", "What is the weather?")
        await page.click("#typed button")  # (was: nothing, the box needed a live session)
        await expect(body).to_have_attribute("data-state", "typing", timeout=30_000)
        await expect(page.locator(".user")).to_have_text("What is the weather?")
        await expect(page.locator(".assistant")).to_have_text("Sunny and warm.", timeout=30_000)
        await expect(page.locator("#text")).to_have_value("")
        await expect(page.locator("#mic")).to_have_text("Start talking")
        await page.click("#mic")  # the microphone, asked for again: refused, typing goes on
        await expect(status).to_have_text(re.compile(r"^The microphone was not given"))
        await expect(body).to_have_attribute("data-state", "typing")
        await page.fill("#text", "Hi.")
        await page.click("#typed button")
        await expect(page.locator(".assistant").nth(1)).to_have_text(
            "You said: Hi.", timeout=30_000
        )
    assert len(fake_llm.realtime_sessions) == 1  # (one session, typed in twice)
    assert fake_llm.realtime_sessions[0].input_audio_bytes == 0  # (text only)


async def test_the_button_starts_no_second_session_while_one_is_starting(
    fake_llm: FakeLLMServer,
) -> None:
    from playwright.async_api import expect

    counted = _CountedTickets(voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication()))
    async with browsed(counted) as (base_url, page):
        await page.add_init_script(HELD_MICROPHONE)
        opened: list[str] = []
        page.on("websocket", lambda socket: opened.append(socket.url))
        await page.goto(base_url)
        await page.click("#mic")
        await expect(page.locator("body")).to_have_attribute("data-state", "connecting")
        await page.click("#mic")  # again, while the first session starts
        assert await page.evaluate("grantMicrophone()") == "given"
        await expect(page.locator("body")).to_have_attribute("data-state", "live", timeout=30_000)
        await page.click("#mic")  # (its end: the page tells the app, which closes)
        await expect(page.locator("body")).to_have_attribute("data-state", "ended", timeout=30_000)
    assert counted.asked == ["POST"]  # (was: two tickets, two sockets, two sessions)
    assert len(opened) == 1
    assert len(fake_llm.realtime_sessions) == 1


@asynccontextmanager
async def quietly_opened(
    tmp_path: Path, fake_llm: FakeLLMServer, script: str
) -> AsyncIterator[Page]:
    """The page of a voice app of ``fake_llm``, opened, with a quiet microphone and ``script``."""
    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    async with browsed(app, quiet_microphone(tmp_path), scripts=[script]) as (base_url, page):
        await page.goto(base_url)
        yield page


async def test_send_while_a_session_starts_says_when_to_send(
    tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    from playwright.async_api import expect

    # a quiet microphone: Chromium's own fake one beeps every half second, each beep speech to
    # the API's voice detection, so that the user never stops speaking and the typed text is
    # never answered (the session asks for a reply once the user is quiet) once a beep has
    # come before it: the test then failed as often as the capture began early enough
    async with quietly_opened(tmp_path, fake_llm, HELD_MICROPHONE) as page:
        await page.click("#mic")
        await expect(page.locator("body")).to_have_attribute("data-state", "connecting")
        await page.fill("#text", "Hi.")
        await page.click("#typed button")  # (the browser still asks for the microphone)
        await expect(page.locator("#status")).to_have_text(  # (was: "Connecting…", nothing said)
            "The session is starting: press Send again once it is live."
        )
        await expect(page.locator("#text")).to_have_value("Hi.")  # (kept, to send again)
        assert await page.evaluate("grantMicrophone()") == "given"
        await expect(page.locator("body")).to_have_attribute("data-state", "live", timeout=30_000)
        await page.click("#typed button")  # as the page says
        await expect(page.locator(".assistant")).to_have_text("You said: Hi.", timeout=30_000)
    assert len(fake_llm.realtime_sessions) == 1


GESTURE_AUDIO = """
(() => {
  // as WebKit's policy: an audio context made outside a user's gesture (a click, a key, a
  // form sent by them, being handled) starts suspended, silent, and only a gesture resumes it
  const Real = window.AudioContext;
  const gestures = ["click", "keydown", "keyup", "mousedown", "mouseup", "pointerup", "submit"];
  const gesture = () => gestures.includes(window.event?.type) && navigator.userActivation.isActive;
  window.players = [];
  window.AudioContext = function (options) {
    const made = new Real(options);
    if (!gesture()) made.suspend();
    const resume = made.resume.bind(made);
    made.resume = () => (gesture() ? resume() : Promise.resolve());
    window.players.push(made);
    return made;
  };
})();
"""
"""A page whose audio starts only from a user's gesture, as Safari's; ``players``: its
audio contexts."""


async def test_the_reply_plays_in_a_browser_that_starts_audio_only_from_a_gesture(
    tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    from playwright.async_api import expect

    fake_llm.speak(["One, ", "two."])
    async with quietly_opened(tmp_path, fake_llm, GESTURE_AUDIO) as page:
        await typed_in_a_live_session(page, "Count.")
        await expect(page.locator(".assistant")).to_have_text("One, two.", timeout=30_000)
        # the player, the page's first audio context (was: "suspended", made after the
        # page's waits for the app: the reply was silent)
        assert await page.evaluate("window.players[0].state") == "running"
        assert await page.evaluate("window.voice.audioChunks") > 0


async def test_the_microphone_is_captured_in_a_browser_that_starts_audio_only_from_a_gesture(
    tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    from playwright.async_api import expect

    async with quietly_opened(tmp_path, fake_llm, GESTURE_AUDIO) as page:
        async with page.expect_websocket() as opening:
            await page.click("#mic")
        socket = await opening.value
        await expect(page.locator("body")).to_have_attribute("data-state", "live", timeout=30_000)
        # the capture, made in the press of the button as the player is (was: made once the
        # app had given a ticket, outside the gesture: suspended, the microphone never sent)
        await socket.wait_for_event(
            "framesent", lambda payload: isinstance(payload, bytes), timeout=30_000
        )
        states = await page.evaluate("window.players.map((each) => each.state)")
        assert states == ["running", "running"]  # (the player, the capture)
    assert fake_llm.realtime_sessions[0].input_audio_bytes > 0


class _CountedTickets:
    """An app whose requests for a ticket are counted: ``asked``, their methods."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.asked: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/session":
            self.asked.append(scope["method"])
        await self.app(scope, receive, send)


COUNTED_INTERVALS = """
(() => {
  const live = new Set();
  const every = window.setInterval.bind(window);
  const clear = window.clearInterval.bind(window);
  window.setInterval = (...args) => { const id = every(...args); live.add(id); return id; };
  window.clearInterval = (id) => { live.delete(id); clear(id); };
  window.liveIntervals = () => live.size;
})();
"""
"""A page whose repeating timers are counted: ``liveIntervals()``, those not cleared."""


async def test_a_session_that_ends_stops_its_playback_reports(fake_llm: FakeLLMServer) -> None:
    from playwright.async_api import expect

    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    async with browsed(app) as (base_url, page):
        await page.add_init_script(COUNTED_INTERVALS)
        await page.goto(base_url)
        for _ in range(2):  # two sessions, one after the other, on one page
            await page.click("#mic")
            await expect(page.locator("body")).to_have_attribute(
                "data-state", "live", timeout=30_000
            )
            assert await page.evaluate("liveIntervals()") == 1  # (was: 2 in the second)
            await page.click("#mic")  # (its end: the page tells the app, which closes)
            await expect(page.locator("body")).to_have_attribute(
                "data-state", "ended", timeout=30_000
            )
            assert await page.evaluate("liveIntervals()") == 0  # (was: 1, reporting on)
    assert len(fake_llm.realtime_sessions) == 2


async def test_the_button_starts_no_second_session_while_one_is_finishing(
    fake_llm: FakeLLMServer,
) -> None:
    from playwright.async_api import expect

    asked: list[str] = []  # the page's requests for a ticket
    let_end = asyncio.Event()  # (until set, the app reads no end: the session is finishing)

    async def end_held(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/session":
            asked.append(scope["method"])

        async def held_receive() -> ASGIMessage:
            message = await receive()
            if '"end"' in str(message.get("text")):
                await let_end.wait()
            return message

        await app(scope, held_receive, send)

    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    async with browsed(end_held) as (base_url, page):
        await page.goto(base_url)
        await page.click("#mic")
        await expect(page.locator("body")).to_have_attribute("data-state", "live", timeout=30_000)
        await page.click("#mic")  # its end: "Finishing…"
        await expect(page.locator("body")).to_have_attribute("data-state", "ending")
        await page.click("#mic")  # again, while the first session finishes
        assert await page.get_attribute("body", "data-state") == "ending"  # (was: "connecting")
        await page.fill("#text", "Hi.")
        await page.click("#typed button")  # (its input has ended: the page says when to send)
        await expect(page.locator("#status")).to_have_text(  # (was: "Finishing…", nothing said)
            "The session is finishing: press Send again once it has ended, to begin a new one."
        )
        await expect(page.locator("#text")).to_have_value("Hi.")  # (kept, to send again)
        let_end.set()
        await expect(page.locator("body")).to_have_attribute("data-state", "ended", timeout=30_000)
    assert asked == ["POST"]  # (was: a second ticket, socket and session)
    assert len(fake_llm.realtime_sessions) == 1


FAILING_AUDIO = """
(() => {
  const Real = window.AudioContext;
  let made = 0;
  window.AudioContext = function (options) {
    made += 1;
    const refused = "NotSupportedError";
    if (made === %d) throw new DOMException("This browser makes no audio here.", refused);
    return new Real(options);
  };
})();
"""
"""A page whose ``AudioContext`` number ``%d`` fails (1: the player's; 2: the microphone's
capture's, both made in the user's press of the button)."""


@pytest.mark.parametrize("failing", [1, 2], ids=["player", "capture"])
async def test_a_page_that_cannot_start_listening_closes_its_session(
    fake_llm: FakeLLMServer, failing: int
) -> None:
    from playwright.async_api import expect

    app = voice_app(
        APIS[0].voice(fake_llm),
        authentication=NoAuthentication(),
        settings=WebSettings(max_live_runs=1),
    )
    async with browsed(app) as (base_url, page):
        await page.add_init_script(FAILING_AUDIO % failing)
        opened: list[bool] = []
        closed: list[bool] = []
        page.on("websocket", lambda socket: watch(socket, opened, closed))
        await page.goto(base_url)
        await page.click("#mic")
        await expect(page.locator("body")).to_have_attribute("data-state", "error", timeout=30_000)
        await expect(page.locator("#status")).to_have_text(
            "NotSupportedError: This browser makes no audio here."
        )
        # the player and the capture are made first, in the user's press: without them, no
        # session is begun
        assert opened == []
        await until(lambda: len(closed) == len(opened))  # (was: open, until the session's limit)
        async with httpx.AsyncClient(base_url=base_url) as client:
            await tasks_ended()  # (the session has ended)
            again = await client.post("/session", json={})
        assert again.status_code == 200  # its place is free (max_live_runs=1)


def watch(socket: PlaywrightSocket, opened: list[bool], closed: list[bool]) -> None:
    """``socket`` noted in ``opened``, and in ``closed`` once it closes."""
    opened.append(True)
    socket.on("close", lambda _: closed.append(True))


async def test_the_page_says_it_is_catching_up_while_its_input_is_held_back() -> None:
    from playwright.async_api import expect

    link = _HeldLink()  # (it takes no audio until the test lets it)
    async with browsed(held_voice(link)) as (base_url, page):
        await page.goto(base_url)
        await page.click("#mic")
        await expect(page.locator("body")).to_have_attribute("data-state", "live", timeout=30_000)
        status = page.locator("#status")
        await expect(status).to_have_text(  # (was: "Listening…", the page told nothing)
            "Catching up: the agent has not yet taken all you said…", timeout=60_000
        )
        link.let_in.set()
        await expect(status).to_have_text("Listening…", timeout=30_000)  # (read again)
        await expect(page.locator("body")).to_have_attribute("data-state", "live")
    assert link.taken  # (the microphone's audio, once let in)


COUNTED_CONTEXTS = """
(() => {
  const Real = window.AudioContext;
  const live = new Set();
  const told = () => { document.documentElement.dataset.liveContexts = String(live.size); };
  window.AudioContext = function (options) {
    const made = new Real(options);
    const close = made.close.bind(made);
    made.close = () => { live.delete(made); told(); return close(); };
    live.add(made);
    told();
    return made;
  };
  // the capture's worklet (made once the session's socket is open) refused while asked
  const RealNode = window.AudioWorkletNode;
  window.refuseCapture = false;
  window.AudioWorkletNode = function (...args) {
    if (window.refuseCapture) throw new DOMException("No audio here.", "NotSupportedError");
    return new RealNode(...args);
  };
  const devices = navigator.mediaDevices;
  const real = devices.getUserMedia.bind(devices);
  window.refuseMicrophone = false;
  devices.getUserMedia = (constraints) => window.refuseMicrophone
    ? Promise.reject(new DOMException("The user said no.", "NotAllowedError"))
    : real(constraints);
})();
"""
"""A page whose audio contexts are counted: the page's root's ``data-live-contexts``, those
made and not closed; ``window.refuseMicrophone = true`` refuses it the microphone, and
``window.refuseCapture = true`` the microphone's capture (its worklet, made once the session's
socket is open)."""


async def test_each_way_a_session_ends_closes_its_audio_contexts(
    fake_llm: FakeLLMServer,
) -> None:
    from playwright.async_api import expect

    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    async with browsed(app) as (base_url, page):
        await page.add_init_script(COUNTED_CONTEXTS)
        await page.goto(base_url)
        body, root = page.locator("body"), page.locator("html")
        # a normal end: the user ends it, the app closes the socket
        await page.click("#mic")
        await expect(body).to_have_attribute("data-state", "live", timeout=30_000)
        await expect(root).to_have_attribute("data-live-contexts", "2")  # (player, microphone)
        await page.click("#mic")
        await expect(body).to_have_attribute("data-state", "ended", timeout=30_000)
        await expect(root).to_have_attribute("data-live-contexts", "0")  # (was: 1, the player)
        # an error: the API refuses the session as it starts
        fake_llm.refuse_realtime(401)
        await page.click("#mic")
        await expect(body).to_have_attribute("data-state", "error", timeout=30_000)
        await expect(root).to_have_attribute("data-live-contexts", "0")
        # a refused microphone
        await page.evaluate("window.refuseMicrophone = true")
        await page.click("#mic")
        await expect(page.locator("#status")).to_have_text(
            re.compile(r"^The microphone was not given \(NotAllowedError\)\."), timeout=30_000
        )
        await expect(root).to_have_attribute("data-live-contexts", "0")


async def test_a_socket_the_server_refuses_fails_the_start_and_closes_the_player(
    fake_llm: FakeLLMServer,
) -> None:
    from playwright.async_api import expect

    async def refusing(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # (as for a ticket used or too old: no upgrade)
            await send({"type": "websocket.close", "code": 1008})
            return
        await app(scope, receive, send)

    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    async with browsed(refusing) as (base_url, page):
        await page.add_init_script(COUNTED_CONTEXTS)
        await page.goto(base_url)
        await page.click("#mic")
        await expect(page.locator("#status")).to_have_text(  # (was: "... Reload the page ...")
            "The connection closed before the session began (1006). Press the button to try again.",
            timeout=30_000,
        )
        await expect(page.locator("body")).to_have_attribute("data-state", "error")
        # the start's wait for the socket to open failed (was: pending for ever) and the
        # player closed (was: live)
        await expect(page.locator("html")).to_have_attribute("data-live-contexts", "0")
        assert len(await page.evaluate("window.voice.errors")) == 1
    assert fake_llm.realtime_sessions == []


LATE_CLOSES = """
(() => {
  const Real = window.WebSocket;
  const held = [];
  let holding = true;
  const told = () => { document.documentElement.dataset.heldCloses = String(held.length); };
  window.WebSocket = class extends Real {
    constructor(...args) {
      super(...args);
      this.addEventListener("close", (closed) => {
        if (!holding) return;
        closed.stopImmediatePropagation();
        held.push(() => this.dispatchEvent(new CloseEvent("close", closed)));
        told();
      }, { capture: true });
    }
  };
  // the closes held so far told to the page now, and none held after them
  window.releaseCloses = () => { holding = false; held.splice(0).forEach((tell) => tell()); };
  const devices = navigator.mediaDevices;
  const real = devices.getUserMedia.bind(devices);
  devices.getUserMedia = (constraints) => real(constraints).then((stream) => {
    window.microphone = stream;
    return stream;
  });
})();
"""
"""A page whose sockets' closes are told to it only at ``releaseCloses()`` (the root's
``data-held-closes``: how many wait), and whose last microphone is ``window.microphone``."""


async def test_a_session_that_closes_late_leaves_the_next_ones_microphone_live(
    fake_llm: FakeLLMServer,
) -> None:
    from playwright.async_api import expect

    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    async with browsed(app, scripts=[COUNTED_CONTEXTS, LATE_CLOSES]) as (base_url, page):
        await page.goto(base_url)
        body, root, status = page.locator("body"), page.locator("html"), page.locator("#status")
        # the first session fails (no capture for its microphone): the page closes its
        # socket, and that close comes late, after the user has started the next session
        await page.evaluate("window.refuseCapture = true")
        await page.click("#mic")
        await expect(status).to_have_text("NotSupportedError: No audio here.")
        await expect(root).to_have_attribute("data-held-closes", "1", timeout=30_000)
        await page.evaluate("window.refuseCapture = false")
        await page.click("#mic")
        await expect(body).to_have_attribute("data-state", "live", timeout=30_000)
        await page.evaluate("releaseCloses()")  # (the first session's close, told at once)
        # was: the microphone stopped, "ended", the first session's close shown over the second
        assert await page.evaluate(
            "window.microphone.getTracks().every((track) => track.readyState === 'live')"
        )
        assert await page.get_attribute("body", "data-state") == "live"
        await expect(status).to_have_text("Listening…")
        sent = await page.evaluate("window.voice.framesSent")
        await asyncio.wait_for(sent_more(page, sent + 4), 30)  # (it still sends)
        await expect(root).to_have_attribute("data-live-contexts", "2")  # (its player, its capture)


HELD_WORKLET = """
(() => {
  const real = AudioWorklet.prototype.addModule;
  let load;
  const loading = new Promise((done) => { load = done; });
  AudioWorklet.prototype.addModule = function (...args) {
    return loading.then(() => real.apply(this, args)).then(() => {
      document.documentElement.dataset.workletLoaded = "true";
    });
  };
  window.loadWorklet = () => load();
})();
"""
"""A page whose capture's worklet loads only at ``loadWorklet()`` (then the root's
``data-worklet-loaded`` is ``"true"``)."""


REFUSED = re.compile(
    r"^Error: The agent OPENAI_REALTIME_AGENT failed with LLMAuthenticationError\. "
)
"""What the page says of a session the realtime API refused (its key: a 401), naming the
agent."""


async def test_an_error_told_while_the_capture_loads_stays_shown(fake_llm: FakeLLMServer) -> None:
    from playwright.async_api import expect

    fake_llm.refuse_realtime(401)  # (the session fails as it starts: an error, then a close)
    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    async with browsed(app, scripts=[LATE_CLOSES, HELD_WORKLET]) as (base_url, page):
        await page.goto(base_url)
        body, status = page.locator("body"), page.locator("#status")
        await page.click("#mic")
        await expect(status).to_have_text(REFUSED, timeout=30_000)
        await expect(page.locator("html")).to_have_attribute("data-held-closes", "1")
        await page.evaluate("loadWorklet()")
        # (was: wait_for_function("window.workletLoaded"), a string Playwright evaluates with
        # eval at each poll after its first, which the page's policy refuses: an EvalError
        # whenever the worklet had not loaded at the first look)
        await expect(page.locator("html")).to_have_attribute(
            "data-worklet-loaded", "true", timeout=30_000
        )
        # was: "Listening…", "live", then the close shown as one without a reason (1011)
        await expect(status).to_have_text(REFUSED)
        assert await page.get_attribute("body", "data-state") == "error"
        assert await page.evaluate(  # (its microphone let go)
            "window.microphone.getTracks().every((track) => track.readyState === 'ended')"
        )
        await page.evaluate("releaseCloses()")
        await expect(status).to_have_text(REFUSED)
        await expect(body).to_have_attribute("data-state", "error")
        assert await page.evaluate("window.voice.framesSent") == 0


async def sent_more(page: Page, frames: int) -> None:
    """Until the page has sent more than ``frames`` frames of its microphone."""
    while await page.evaluate("window.voice.framesSent") <= frames:
        pass  # (each look waits for the page's answer)


TIMED_PLAYBACK = """
(() => {
  const start = AudioBufferSourceNode.prototype.start;
  window.playedIn = [];  // how long after its player's present each piece of audio is to play
  AudioBufferSourceNode.prototype.start = function (when, ...rest) {
    window.playedIn.push((when || 0) - this.context.currentTime);
    return start.call(this, when, ...rest);
  };
})();
"""
"""A page that records, for each piece of audio it plays, how far ahead it schedules it."""


async def test_a_second_session_on_the_page_plays_and_shows_its_reply_as_the_first_did(
    tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    from playwright.async_api import expect

    # Gemini numbers its turns anew in each session (turn_1, ...): the page's lines too
    fake_llm.speak(["Word "] * 200)  # (the first answer: 20 s of audio)
    app = voice_app(APIS[1].voice(fake_llm), authentication=NoAuthentication())
    microphone = quiet_microphone(tmp_path)
    async with browsed(app, microphone, scripts=[TIMED_PLAYBACK]) as (base_url, page):
        await page.goto(base_url)
        body, said = page.locator("body"), page.locator(".assistant")
        for session, answer in enumerate(["Word " * 200, "You said: Hi."]):
            await page.click("#mic")
            await expect(body).to_have_attribute("data-state", "live", timeout=30_000)
            await page.evaluate("window.playedIn = []")
            await page.fill("#text", "Hi.")
            await page.click("#typed button")
            first = await asyncio.wait_for(first_played(page), 30)
            assert first < 5, first  # (was: the second's, 15 s or so: the first's clock)
            await expect(said.nth(session)).to_have_text(answer.strip(), timeout=30_000)
            await page.click("#mic")
            await expect(body).to_have_attribute("data-state", "ended", timeout=30_000)
        await expect(said).to_have_count(2)  # (was: 1, the second answer added to the first)
    assert len(fake_llm.realtime_sessions) == 2


async def first_played(page: Page) -> float:
    """How far ahead the page scheduled its first audio since ``playedIn`` was emptied."""
    while not (played := await page.evaluate("window.playedIn")):
        pass  # (each look waits for the page's answer)
    return float(played[0])


class _Relay:
    """A TCP relay on 127.0.0.1 to a server's port, whose connections the test can cut.

    A cut connection is dropped (no WebSocket close frame, no TCP close handshake), as a
    lost network drops it; the relay takes new connections after it.
    """

    def __init__(self, port: int) -> None:
        self._port = port
        self._open: list[asyncio.StreamWriter] = []
        self.url = ""

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        """The relay listening: its URL."""
        server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            yield self.url
        finally:
            self.cut()
            server.close()
            await server.wait_closed()

    def cut(self) -> None:
        """Drop every connection relayed so far, both ways."""
        for writer in self._open:
            writer.transport.abort()
        self._open.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        far_reader, far_writer = await asyncio.open_connection("127.0.0.1", self._port)
        self._open += [writer, far_writer]
        await asyncio.gather(
            _pipe(reader, far_writer), _pipe(far_reader, writer), return_exceptions=True
        )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """What ``reader`` reads, written to ``writer``, to its end (then ``writer`` closes)."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


@asynccontextmanager
async def relayed(app: ASGIApp, scripts: Sequence[str] = ()) -> AsyncIterator[tuple[_Relay, Page]]:
    """``app`` served behind a :class:`_Relay`, and a page of Chromium opened at the relay.

    ``scripts``: run in each document of the page before its own (``add_init_script``).
    """
    from playwright.async_api import async_playwright

    async with served(app) as base_url, async_playwright() as playwright:
        relay = _Relay(int(base_url.rsplit(":", 1)[1]))
        browser = await launch(playwright)
        try:
            async with relay.serving() as url:
                page = await browser.new_page()
                for script in scripts:
                    await page.add_init_script(script)
                await page.goto(url)
                yield relay, page
        finally:
            await browser.close()


async def test_a_lost_connection_says_to_press_the_button_and_pressing_it_starts_again(
    fake_llm: FakeLLMServer,
) -> None:
    from playwright.async_api import expect

    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    async with relayed(app) as (relay, page):
        body = page.locator("body")
        await page.click("#mic")
        await expect(body).to_have_attribute("data-state", "live", timeout=30_000)
        relay.cut()  # the network is lost mid-session
        await expect(body).to_have_attribute("data-state", "error", timeout=30_000)
        await expect(page.locator("#status")).to_have_text(  # (was: "Reload the page")
            "The connection was lost (1006). Press the button to start a new session."
        )
        await tasks_ended()  # (the app's session ended too)
        await page.click("#mic")  # as the page says
        await expect(body).to_have_attribute("data-state", "live", timeout=30_000)
        await expect(page.locator("#status")).to_have_text("Listening…")
    assert len(fake_llm.realtime_sessions) == 2


MICROPHONE_FAILING = """
(() => {
  const devices = navigator.mediaDevices;
  devices.getUserMedia = () => Promise.reject(new DOMException("As the browser says.", "%s"));
})();
"""
"""A page whose microphone fails with the ``DOMException`` named ``%s``."""


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        ("NotFoundError", "No microphone was found (NotFoundError). Connect one, then press"),
        ("NotReadableError", "The microphone could not be started (NotReadableError): another"),
    ],
)
async def test_a_missing_or_busy_microphone_is_said_so_not_refused(
    fake_llm: FakeLLMServer, failure: str, said: str
) -> None:
    from playwright.async_api import expect

    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    async with browsed(app, scripts=[MICROPHONE_FAILING % failure]) as (base_url, page):
        await page.goto(base_url)
        await page.click("#mic")
        await expect(page.locator("body")).to_have_attribute("data-state", "error", timeout=30_000)
        # (was: "The microphone was not given (...). Allow this page to use the microphone")
        await expect(page.locator("#status")).to_have_text(re.compile("^" + re.escape(said)))


async def test_a_page_the_browser_gives_no_microphone_says_to_open_it_securely(
    fake_llm: FakeLLMServer,
) -> None:
    from playwright.async_api import async_playwright, expect

    # a page of a name that is not this machine's, over http: not a secure context, where
    # the browser has no navigator.mediaDevices at all
    settings = WebSettings(allowed_hosts=["voice.test"])
    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication(), settings=settings)
    counted = _CountedTickets(app)
    async with served(counted) as base_url, async_playwright() as playwright:
        browser = await launch(playwright, "--host-resolver-rules=MAP voice.test 127.0.0.1")
        try:
            page = await browser.new_page()
            await page.goto(base_url.replace("127.0.0.1", "voice.test"))
            await page.click("#mic")
            await expect(page.locator("body")).to_have_attribute("data-state", "error")
            await expect(page.locator("#status")).to_have_text(  # (was: a TypeError's words)
                "This browser gives the microphone only to a secure page: open this one over "
                "https (or at localhost), then press the button; or type below."
            )
            assert counted.asked == []  # (was: a session, begun and failed)
            assert fake_llm.realtime_sessions == []
            await page.fill("#text", "Hi.")  # (was: nothing: the box needed a live session)
            await page.click("#typed button")
            await expect(page.locator(".assistant")).to_have_text("You said: Hi.", timeout=30_000)
        finally:
            await browser.close()
    assert counted.asked == ["POST"]  # (the typed session's)


async def test_a_refusal_that_is_no_json_is_said_with_its_status(fake_llm: FakeLLMServer) -> None:
    from playwright.async_api import expect

    async def behind_a_proxy(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/session":  # (the app is down)
            page = b"<html><body>502 Bad Gateway</body></html>"
            headers = [(b"content-type", b"text/html"), (b"content-length", b"%d" % len(page))]
            await send({"type": "http.response.start", "status": 502, "headers": headers})
            await send({"type": "http.response.body", "body": page})
            return
        await app(scope, receive, send)

    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    async with browsed(behind_a_proxy) as (base_url, page):
        await page.goto(base_url)
        await page.click("#mic")
        await expect(page.locator("body")).to_have_attribute("data-state", "error")
        await expect(page.locator("#status")).to_have_text(  # (was: a SyntaxError's words)
            "The app refused a session (502 Bad Gateway). Press the button to try again."
        )


async def test_the_button_says_what_it_does_in_each_state(fake_llm: FakeLLMServer) -> None:
    from playwright.async_api import expect

    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    async with browsed(app, scripts=[HELD_MICROPHONE]) as (base_url, page):
        await page.goto(base_url)
        button, body = page.locator("#mic"), page.locator("body")
        await expect(button).to_have_text("Start talking")
        await page.click("#mic")
        await expect(body).to_have_attribute("data-state", "connecting")
        await expect(button).to_have_text("Connecting…")  # (was: "Start talking")
        assert await page.evaluate("grantMicrophone()") == "given"
        await expect(body).to_have_attribute("data-state", "live", timeout=30_000)
        await expect(button).to_have_text("Stop talking")  # (was: "Start talking")
        await page.click("#mic")
        await expect(body).to_have_attribute("data-state", "ended", timeout=30_000)
        await expect(button).to_have_text("Start talking")


async def test_an_item_played_to_its_end_is_reported_once(
    tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    from playwright.async_api import expect

    played: list[int] = []  # the playback positions the app is told, in ms
    typed = asyncio.Event()
    before: list[int] = []  # how many were told before "Done." (a reply to it plays after)

    async def counted(scope: Scope, receive: Receive, send: Send) -> None:
        async def counted_receive() -> ASGIMessage:
            message = await receive()
            said = json.loads(message.get("text") or "{}")
            if said.get("type") == "played":
                played.append(said["ms"])
            elif said.get("type") == "text" and said.get("text") == "Done.":
                before.append(len(played))
                typed.set()
            return message

        await app(scope, counted_receive, send)

    fake_llm.speak(["One, ", "two, ", "three."])  # (300 ms of audio)
    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    microphone = quiet_microphone(tmp_path)
    async with browsed(counted, microphone) as (base_url, page):
        await page.clock.install()  # (the page's reports come as the test moves its clock)
        await page.goto(base_url)
        await typed_in_a_live_session(page, "Count.")
        await expect(page.locator(".assistant")).to_have_text("One, two, three.", timeout=30_000)
        for _ in range(240):  # (the audio plays on the audio clock: reported to its end)
            if 300 in played:
                break
            await page.clock.run_for(250)
        assert 300 in played, played
        told = len(played)
        await page.clock.run_for(10_000)  # 40 reports' time more, the item played
        await page.fill("#text", "Done.")  # (the app reads it after any report before it)
        await page.click("#typed button")
        await asyncio.wait_for(typed.wait(), 30)
    assert before == [told], played  # (was: 40 more of 300 ms)


NO_SCRIPT_PROCESSOR = """
(() => {
  // a browser that dropped the deprecated ScriptProcessorNode
  BaseAudioContext.prototype.createScriptProcessor = () => {
    throw new DOMException("ScriptProcessorNode is gone.", "NotSupportedError");
  };
})();
"""
"""A page whose browser has no ``ScriptProcessorNode`` (deprecated: an ``AudioWorklet`` instead)."""


async def test_the_page_captures_with_the_apps_worklet_in_chunks_of_4096_bytes(
    tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    from playwright.async_api import expect

    question = tmp_path / "question.wav"
    write_question(question)
    fake_llm.speak(["Sunny."], heard="What is the weather?")
    app = voice_app(APIS[0].voice(fake_llm, silence_ms=400), authentication=NoAuthentication())
    async with browsed(
        app, f"--use-file-for-fake-audio-capture={question}", scripts=[NO_SCRIPT_PROCESSOR]
    ) as (base_url, page):
        page_answer = await page.goto(base_url)
        assert page_answer is not None
        policy = page_answer.headers["content-security-policy"]
        # (the page's own scripts by hash, its worklet by its origin: nothing else)
        assert re.search(r"script-src( 'sha256-[^']+')+ 'self';", policy), policy
        await page.click("#mic")  # (was: an error, the page captured with a ScriptProcessorNode)
        await expect(page.locator(".assistant")).to_have_text("Sunny.", timeout=30_000)
        await expect(page.locator("body")).to_have_attribute("data-state", "live")
        stats = await page.evaluate("window.voice")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://x") as client:
        worklet = await client.get("/capture.js", headers={"Host": "127.0.0.1"})
    assert worklet.status_code == 200
    assert worklet.headers["content-type"].startswith("text/javascript")
    assert stats["errors"] == []
    assert stats["framesSent"] > 0
    assert stats["bytesSent"] == stats["framesSent"] * web.MICROPHONE_CHUNK_BYTES
    record = fake_llm.realtime_sessions[0]
    assert frequency(bytes(record.input_audio), 24000) == pytest.approx(440, rel=0.03)


async def test_a_typed_session_is_ended_from_the_page_as_a_spoken_one_is(
    tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    from playwright.async_api import expect

    fake_llm.speak(["Sunny ", "and ", "warm."])
    app = voice_app(APIS[0].voice(fake_llm), authentication=NoAuthentication())
    async with browsed(app, quiet_microphone(tmp_path)) as (base_url, page):
        body, end = page.locator("body"), page.locator("#end")
        await page.goto(base_url)
        await expect(end).to_be_hidden()  # (no session to end)
        await page.fill("#text", "What is the weather?")
        await page.click("#typed button")
        await expect(body).to_have_attribute("data-state", "typing", timeout=30_000)
        await expect(page.locator(".assistant")).to_have_text("Sunny and warm.", timeout=30_000)
        # (was: no way to end it, it lasted until the user left or max_session_seconds)
        await page.click("#end", timeout=10_000)
        await expect(body).to_have_attribute("data-state", "ended", timeout=30_000)
        await expect(page.locator("#status")).to_have_text("The session ended.")
        await expect(end).to_be_hidden()
        await page.click("#mic")  # a spoken session: its own button ends it, not this one
        await expect(body).to_have_attribute("data-state", "live", timeout=30_000)
        await expect(end).to_be_hidden()
        await page.click("#mic")
        await expect(body).to_have_attribute("data-state", "ended", timeout=30_000)
    assert [record.outcome for record in fake_llm.realtime_sessions] == ["closed"] * 2
    assert fake_llm.realtime_sessions[0].input_audio_bytes == 0  # (text only)


class _HeldTextLink(_HeldLink):
    """A :class:`_HeldLink` that takes typed texts too, once the test lets it."""

    def __init__(self) -> None:
        super().__init__()
        self.typed: list[str] = []

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        await self.let_in.wait()
        self.typed.append(text)


async def typed_until_held(page: Page, texts: Sequence[str]) -> Locator:
    """``texts`` sent from the page's box (the first begins a typed session), then the page's
    status, once it says the page is catching up (its input held back)."""
    from playwright.async_api import expect

    await page.fill("#text", texts[0])
    await page.click("#typed button")
    await expect(page.locator("body")).to_have_attribute("data-state", "typing", timeout=30_000)
    for text in texts[1:]:
        await page.fill("#text", text)
        await page.click("#typed button")
    status = page.locator("#status")
    await expect(status).to_have_text(
        "Catching up: the agent has not yet taken all you said…", timeout=30_000
    )
    return status


async def test_a_typed_session_says_it_is_catching_up_while_its_input_is_held_back() -> None:
    from playwright.async_api import expect

    link = _HeldTextLink()  # (it takes no text until the test lets it)
    texts = [f"Line {index}." for index in range(120)]  # (past the read-ahead)
    async with browsed(held_voice(link)) as (base_url, page):
        await page.goto(base_url)
        # (was: the typing hint, the page told nothing)
        status = await typed_until_held(page, texts)
        link.let_in.set()
        await expect(status).to_have_text(  # (read again)
            "Type below, or press the button to talk.", timeout=30_000
        )
        await expect(page.locator("body")).to_have_attribute("data-state", "typing")
    assert link.typed[:5] == texts[:5]  # (the texts, in order, once let in)


async def test_a_held_page_keeps_what_it_would_send_and_stays_past_the_servers_pings() -> None:
    from playwright.async_api import expect

    link = _HeldTextLink()  # (it takes no text until the test lets it)
    pongs = Pongs()
    texts = [f"Line {index}." for index in range(120)]  # (past the read-ahead)
    kept = [f"Kept {index}." for index in range(5)]
    async with browsed(held_voice(link), pongs=pongs) as (base_url, page):
        await page.goto(base_url)
        status = await typed_until_held(page, texts)
        # held for 4 pings, each answer read by the server (was: its pongs unread, so
        # closed 1011, "keepalive ping timeout", once a ping's timeout passed)
        await pinged(pongs, 4)
        waiting = await page.evaluate("window.voice.waiting")  # (kept since it was told held)
        for text in kept:  # (kept by the page while held, not sent)
            await page.fill("#text", text)
            await page.click("#typed button")
        assert await page.evaluate("window.voice.waiting") == waiting + len(kept)
        link.let_in.set()
        await expect(status).to_have_text(  # (read again: what it kept, sent)
            "Type below, or press the button to talk.", timeout=30_000
        )
        await until(lambda: len(link.typed) == len(texts) + len(kept))
        await expect(page.locator("body")).to_have_attribute("data-state", "typing")
    assert link.typed == texts + kept  # every text, in order


TYPED_UNTIL_REFUSED = """
(() => {
  const field = document.getElementById("text"), form = document.getElementById("typed");
  for (let index = 0; index < 1000; index++) {
    field.value = "Far " + index + ".";
    form.requestSubmit();  // (its handler runs at once: kept, or refused and left in the box)
    if (field.value !== "") return [index, field.value, window.voice.waiting];
  }
  return null;
})()
"""
"""Texts sent from the page's box, one after another, until the page refuses one: the
refused one's index, what the box then holds, and how many messages the page keeps."""


async def test_a_held_page_keeps_at_most_its_bound_then_says_the_agent_is_far_behind() -> None:
    """While held, the page keeps 1 MiB at most (each message counted as at least a
    microphone chunk, 4,096 bytes: 256 of them); the next text is refused, left in its box,
    and the status says to send it again once the agent has caught up. Once the app reads
    again, what the page kept is sent in order, and the refused text, sent again, goes too."""
    from playwright.async_api import expect

    link = _HeldTextLink()  # (it takes no text until the test lets it)
    texts = [f"Line {index}." for index in range(120)]  # (past the read-ahead)
    async with browsed(held_voice(link)) as (base_url, page):
        await page.goto(base_url)
        status = await typed_until_held(page, texts)
        before = await page.evaluate("window.voice.waiting")
        refused = await page.evaluate(TYPED_UNTIL_REFUSED)
        assert refused is not None
        index, boxed, waiting = refused
        assert waiting == 1024 * 1024 // 4096  # (the page's bound, HELD_KEEPS)
        assert index == waiting - before  # (each text kept until the bound)
        assert boxed == f"Far {index}."  # (left in its box, not lost)
        await expect(status).to_have_text(
            "The agent is far behind: press Send again once it has caught up."
        )
        link.let_in.set()
        await expect(status).to_have_text(  # (read again: what it kept, sent)
            "Type below, or press the button to talk.", timeout=30_000
        )
        kept = [f"Far {each}." for each in range(index)]
        await until(lambda: len(link.typed) == len(texts) + len(kept))
        await page.click("#typed button")  # (the refused text, sent again)
        await until(lambda: len(link.typed) == len(texts) + len(kept) + 1)
    assert link.typed == [*texts, *kept, f"Far {index}."]  # every text, in order, none lost


def lookup(city: str) -> str:
    """Look a city up."""
    return f"Sunny in {city}."


async def test_the_modules_diagram_names_every_event_and_ticket_field_the_page_gets(
    fake_llm: FakeLLMServer,
) -> None:
    # (was: it named no transcript_done, tool_result nor the ticket's expires_in, nor that
    # POST /session wants a JSON body: a page of one's own, page=, is written from it)
    fake_llm.speak(["Let me look."], tool_calls=[ToolCall("lookup", {"city": "Paris"})])
    fake_llm.speak(["Sunny."])
    app = voice_app(APIS[0].voice(fake_llm, tools=[lookup]), authentication=NoAuthentication())
    kinds: list[str] = []
    async with served(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        assert (await client.post("/session")).status_code == 415  # (no JSON body)
        ticket = (await client.post("/session", json={})).json()
        async with session_socket(base_url, ticket["ticket"]) as socket:
            await socket.send('{"type": "text", "text": "The weather in Paris?"}')
            await socket.send('{"type": "end"}')
            async for message in socket:  # (to the app's close: the session has ended)
                if isinstance(message, str):  # (not the audio)
                    kinds.append(json.loads(message)["type"])
        await tasks_ended()
    said = web.__doc__ or ""
    assert "POST /session, a JSON body {}" in said
    assert {"tool_result", "transcript_done", "session_end"} <= set(kinds)
    named = [*dict.fromkeys(kinds), *ticket]
    assert [name for name in named if f'"{name}"' not in said] == []


async def failing_lookup(city: str) -> AsyncIterator[str]:
    """Look a city up."""
    yield f"Looking up {city}"
    raise ConnectionError(f"Could not reach {SECRET}.")


async def tool_events(fake_llm: FakeLLMServer, settings: WebSettings) -> list[dict[str, object]]:
    """The page's ``tool_output`` and ``tool_result`` events of a session whose model calls
    ``failing_lookup``."""
    fake_llm.speak(["Let me look."], tool_calls=[ToolCall("failing_lookup", {"city": "Paris"})])
    fake_llm.speak(["It failed."])
    agent = APIS[0].voice(fake_llm, tools=[failing_lookup])
    app = voice_app(agent, authentication=NoAuthentication(), settings=settings)
    told: list[dict[str, object]] = []
    async with served(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        ticket = (await client.post("/session", json={})).json()["ticket"]
        async with session_socket(base_url, ticket) as socket:
            await socket.send('{"type": "text", "text": "The weather in Paris?"}')
            while not told or told[-1]["type"] != "tool_result":
                if isinstance(message := await socket.recv(), str):  # (not the audio)
                    told.append(json.loads(message))
            await socket.send('{"type": "end"}')
            async for _ in socket:  # (to the app's close: the session has ended)
                pass
        await tasks_ended()
    return [said for said in told if said["type"] in ("tool_output", "tool_result")]


async def test_a_tools_exception_reaches_the_page_as_its_class_and_a_reference(
    fake_llm: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    # (was: the tool's output event and its result carried the exception's text, the key)
    told = await tool_events(fake_llm, WebSettings())
    assert SECRET not in str(told)
    *outputs, result = told
    assert result["type"] == "tool_result"
    text = str(result["text"])
    assert "".join(str(output["delta"]) for output in outputs) == text
    found = re.fullmatch(
        r"Looking up Paris\n\nThe tool failing_lookup failed with ConnectionError\. The "
        r"server's log has the error under the reference ([0-9a-f]{32}): ask the agent's "
        r"operator to look it up there\.",
        text,
    )
    assert found is not None, text
    [logged] = [r for r in caplog.records if r.name.startswith("miniagents")]
    assert logged.name == "miniagents.ext.tools.running"  # (where it was caught, once)
    assert f"(reference {found[1]})" in logged.getMessage()
    assert logged.exc_info is not None
    assert SECRET in str(logged.exc_info[1])
    [output] = fake_llm.realtime_sessions[0].tool_outputs.values()
    assert SECRET in output  # (the model got the text)


async def test_with_error_texts_the_page_gets_a_tools_exception_as_the_model_did(
    fake_llm: FakeLLMServer,
) -> None:
    told = await tool_events(fake_llm, WebSettings(error_texts=True))
    assert told[-1]["text"] == "Looking up Paris\n\nThe tool failing_lookup failed: " + (
        f"ConnectionError: Could not reach {SECRET}."
    )


def leaving_held(app: ASGIApp, left: asyncio.Event) -> ASGIApp:
    """``app``, its WebSocket's leaving (``websocket.disconnect``) told to it only once a send
    of it has failed for that leaving (``left`` set as it comes)."""

    async def held(scope: Scope, receive: Receive, send: Send) -> None:
        failed = asyncio.Event()

        async def receiving() -> ASGIMessage:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                left.set()
                await failed.wait()
            return message

        async def sending(message: ASGIMessage) -> None:
            try:
                await send(message)
            except OSError:  # (uvicorn's ClientDisconnected)
                failed.set()
                raise

        await app(scope, receiving, sending)

    return held


async def test_a_tools_told_tokens_are_closed_in_their_own_task_when_the_page_left_mid_result(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (was: the tokens' generator was left at its yield when the send failed, and closed
    # later by the garbage collector's hook in a task of its own: its cleanup out of context)
    from miniagents.ext.web.lowlevel import ToldResult

    tasks: list[asyncio.Task[object] | None] = []  # (where it started, where it was closed)
    closed, go, left = asyncio.Event(), asyncio.Event(), asyncio.Event()

    class Recorded(ToldResult):
        async def tokens(self) -> AsyncGenerator[str, None]:
            tasks.append(asyncio.current_task())
            try:
                async with contextlib.aclosing(super().tokens()) as told:
                    async for token in told:
                        yield token
            finally:
                tasks.append(asyncio.current_task())
                closed.set()

    async def slow_lookup(city: str) -> AsyncIterator[str]:
        """Look a city up."""
        yield f"Looking up {city}"
        await go.wait()
        yield "..."
        await asyncio.Event().wait()  # (until the session, the page gone, cancels the call)

    monkeypatch.setattr(web, "ToldResult", Recorded)
    fake_llm.speak(["Let me look."], tool_calls=[ToolCall("slow_lookup", {"city": "Paris"})])
    app = voice_app(APIS[0].voice(fake_llm, tools=[slow_lookup]), authentication=NoAuthentication())
    async with served(leaving_held(app, left)) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            ticket = (await client.post("/session", json={})).json()["ticket"]
        async with session_socket(base_url, ticket) as socket:
            await socket.send('{"type": "text", "text": "The weather in Paris?"}')
            kinds: set[str] = set()
            while not {"tool_output", "turn_end"} <= kinds:  # (the turn's last event sent)
                if isinstance(message := await socket.recv(), str):  # (not the audio)
                    kinds.add(json.loads(message)["type"])
        # (the result has begun, the page has left: nothing is sent until its next token)
        async with asyncio.timeout(30):
            await left.wait()
            go.set()  # (the next token: its send fails, the page having left)
            await closed.wait()
        await tasks_ended()
    started_in, closed_in = tasks
    assert closed_in is started_in  # (was: the garbage collector's task, after it returned)


class _SpeakingLink(_HeldLink):
    """A :class:`_HeldLink` that answers the page's text with a chunk of audio."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = asyncio.Event()

    async def asend_text(self, text: str, images: Sequence[ImagePart] = ()) -> None:
        self.asked.set()

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        await self.asked.wait()
        yield ReplyStarted("r1")
        yield AudioOut("i1", bytes(480))
        await self.closed.wait()


async def test_a_send_cut_by_the_apps_own_close_of_a_refused_message_is_no_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # (was: the reply's send after read() closed the page (1007) failed with a RuntimeError,
    # told and logged at ERROR as the server's failure: it is the app's own close)
    from websockets.exceptions import ConnectionClosed

    holding, closed = asyncio.Event(), asyncio.Event()
    app = held_voice(_SpeakingLink())

    async def held_item(scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: ASGIMessage) -> None:
            if message["type"] == "websocket.close":
                closed.set()
            elif '"type": "item"' in str(message.get("text")):
                holding.set()  # (the reply's send under way as the app closes the page)
                await closed.wait()
            await send(message)

        await app(scope, receive, sending)

    async with served(held_item) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        ticket = (await client.post("/session", json={})).json()["ticket"]
        async with session_socket(base_url, ticket) as socket:
            await socket.send('{"type": "text", "text": "Hi."}')
            await holding.wait()
            await socket.send('{"type": "nothing the page sends"}')
            with contextlib.suppress(ConnectionClosed):
                async for _ in socket:
                    pass
        assert socket.close_code == 1007
        await tasks_ended()
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


async def test_a_failure_to_tell_the_page_held_is_told_and_logged_not_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # (was: the read task's error was gathered with return_exceptions=True and lost: the
    # session ended as if the page had left, nothing told nor logged)
    from websockets.exceptions import ConnectionClosed

    told: list[str | bytes] = []
    app = _failing_at(held_voice(_HeldLink()), "held")
    async with served(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        ticket = (await client.post("/session", json={})).json()["ticket"]
        async with session_socket(base_url, ticket) as socket:
            with contextlib.suppress(ConnectionClosed):
                for index in range(60):  # (past the read-ahead: the page is told held)
                    await socket.send(bytes([index, 0]) * 2048)
                async for message in socket:
                    told.append(message)
        assert socket.close_code == 1011
        await tasks_ended()
    said = json.loads(told[-1])
    assert said["type"] == "error"
    assert said["message"].startswith("The server, streaming the session, failed with")
    [logged] = [record for record in caplog.records if said["reference"] in record.getMessage()]
    assert str(logged.exc_info[1] if logged.exc_info else "") == "The app could not send the event."
