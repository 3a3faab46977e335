"""``voice_app``: a page with a microphone button and a live transcript, and an agent behind it.

::

    browser                                  voice_app                       realtime API
    GET /                   -> the page (one HTML file, its own scripts only)
    GET /capture.js         -> the page's audio worklet (a file of this package)
    POST /session, a JSON body {} (who asks: the door)
                            -> a ticket: {"ticket", "expires_in", "input_rate", "output_rate"}
    WS /ws, Sec-WebSocket-Protocol: miniagents.voice, miniagents.voice.ticket.<ticket>
       (the Host, the Origin and the ticket checked, once)
      mic PCM (binary) ..................-> AudioChunk s ................-> the agent's session
      {"type": "text"|"played"|"end"} ...-> text, PlaybackPosition, the input's end
      <- {"type": "item"} + PCM (binary), {"type": "transcript", "delta"},
         {"type": "transcript_done"}, {"type": "tool_call"}, {"type": "tool_output", "delta"},
         {"type": "tool_result", "text"}, {"type": "turn_end"}, {"type": "interrupted"},
         {"type": "held"} (its input waits), {"type": "reading"} (read again),
         {"type": "session_end", "usage"} |
         {"type": "error", "message", "error_type", "reference"}

A browser's WebSocket sends no ``Authorization`` header, so the page asks for a ticket
first, with ``fetch`` and its credentials (``Authorization: Bearer <token>``, the token it
was opened with, ``/#token=...``; or the cookies of an enclosing app's session): the app's
door (:class:`~miniagents.ext.web.lowlevel.Door`, the web apps' own) knows who asks, and
the ticket, good once and for ``ticket_seconds``, names them. The page sends it in the
WebSocket's ``Sec-WebSocket-Protocol`` header, as the protocol
``miniagents.voice.ticket.<ticket>`` beside ``miniagents.voice`` (the protocol the app
answers with), never in the URL, which access logs keep. A ticket in the URL's query string
(``/ws?ticket=...``, how the page sent it before) is still taken, with a warning logged
once per app; it goes in the first release after 2027-06-30. The door takes every request
and the WebSocket only from the settings' ``allowed_hosts`` (the ``Host`` header, against
DNS rebinding: a 400) and a page's WebSocket only from the app's own origin and the
settings' ``allowed_origins`` (a page of another site cannot borrow the user's ticket: a
403), before the WebSocket is accepted.

Each session runs the agent once, in a ``MiniAgents`` context of its own, within the limits:
the settings' ``max_live_runs`` sessions at once (``max_live_runs_per_principal`` each; a
ticket is refused with 503 or 429; unused tickets kept: ``4 * max_live_runs``, a
principal's own oldest dropped past them or past ``2 * max_live_runs_per_principal``
of theirs, never another's), ``max_session_seconds`` long, messages of at most
``max_message_bytes`` (at least the page's microphone chunk, 4,096 bytes; a bigger one
closes the session, code 1009, and :func:`voice_server`'s uvicorn cuts it as it arrives,
not read whole; one the page never sends, code 1007, saying so); a page that sends faster
than the API takes is told ``held`` once 16 of its messages wait for the session,
and ``reading`` once the session has taken them: the page keeps what it would send
meanwhile (a bounded amount; it says it is catching up) and sends it then. Its messages
are read all the while (those it sent before it heard ``held`` are kept, at most
:data:`HELD_MORE_BYTES` of them; a page that sends past them is closed, code 1008, saying
so), so the server's keepalive pings are answered and a page that vanished is noticed
within the server's ping interval and timeout, whatever the session is doing. A page that
leaves ends its session at once, the realtime API's with it; one that sends
``{"type": "end"}`` hears the rest of the reply first. A session that fails tells the
page its error's class and a reference, under which the app's log
(``miniagents.ext.realtime.web``) has the error whole, not the error's text, which may hold
what the page must not see (a URL with a key, a path): the agent's error, or the server's
for a step of the app's own that failed (a send to the page); an app of
``WebSettings(error_texts=True)`` tells the text. An app that knows nobody is an explicit choice
(``authentication=NoAuthentication()``: local development). The page asks nobody to
approve a tool's call, so an agent with a tool that needs a person's approval
(``requires_approval``) is refused when the app is made.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from miniagents.arguments import check_count, check_seconds
from miniagents.ext.errors import WebChatPageError, WebConfigurationError
from miniagents.ext.llm.messages import LLMToolCallMessage
from miniagents.ext.realtime.agent import provider_of
from miniagents.ext.realtime.pieces import (
    AudioChunk,
    Interruption,
    PlaybackPosition,
    RealtimePiece,
    SessionEnd,
    Transcript,
    TurnEnd,
)
from miniagents.ext.tools.messages import ToolResultMessage
from miniagents.ext.tools.tool_set import ToolSet
from miniagents.ext.web.auth import Authentication
from miniagents.ext.web.lowlevel import (
    Door,
    ToldResult,
    amethod_not_allowed,
    page_policy,
    told_error,
)
from miniagents.ext.web.serving import ServingBounds, server_config
from miniagents.ext.web.settings import WebSettings
from miniagents.messages.message_promise import MessagePromise
from miniagents.miniagents.agent import MiniAgent
from miniagents.miniagents.context import MiniAgents
from miniagents.promising.errors import StreamCancelledError
from miniagents.promising.lowlevel import spawn
from miniagents.reexports import FORMER_HOMES_GO_AFTER

if TYPE_CHECKING:
    import uvicorn

__all__ = [
    "DEFAULT_PAGE",
    "HELD_MORE_BYTES",
    "MICROPHONE_CHUNK_BYTES",
    "TICKET_PROTOCOL_PREFIX",
    "VOICE_PROTOCOL",
    "voice_app",
    "voice_server",
]

_logger = logging.getLogger("miniagents.ext.realtime.web")

DEFAULT_PAGE = Path(__file__).with_name("voice_page.html")
"""The page ``voice_app`` serves unless given another: a microphone button, a text box, a
transcript (typed without a microphone, a session captures no audio)."""

_CAPTURE = Path(__file__).with_name("voice_capture.js")
"""The audio worklet the page captures the microphone with, served at ``/capture.js``."""

VOICE_PROTOCOL = "miniagents.voice"
"""The WebSocket protocol the page asks for and the app answers with (the ticket beside it)."""

TICKET_PROTOCOL_PREFIX = "miniagents.voice.ticket."
"""The page's ticket, as a WebSocket protocol: this prefix, then the ticket."""

MICROPHONE_CHUNK_BYTES = 4096
"""The size of each message of the microphone's audio the page sends (2,048 16-bit samples):
the least ``max_message_bytes`` a voice app takes."""

HELD_MORE_BYTES = 2 * 1024 * 1024
"""The most a page told ``held`` may send before it is told ``reading``, in bytes, each
message counted as at least :data:`MICROPHONE_CHUNK_BYTES`: what it sent before it heard
``held``, and what it kept meanwhile and sends at once when told ``reading`` (the app's
page keeps at most half of it). A page that sends more is closed (code 1008)."""


def voice_app(
    agent: MiniAgent[..., RealtimePiece],
    *,
    authentication: Authentication | None = None,
    settings: WebSettings = WebSettings(),
    page: str | os.PathLike[str] = DEFAULT_PAGE,
    max_session_seconds: float = 600.0,
    max_message_bytes: int = 64 * 1024,
    ticket_seconds: float = 30.0,
) -> Starlette:
    """The voice page at ``/`` and ``agent`` behind it, over a WebSocket (see the module).

    Args:
        agent: The realtime agent (e.g. ``openai_realtime_agent.fork(...)``).
        authentication: Who asks, required (see :mod:`miniagents.ext.web.auth`): a
            Starlette ``AuthenticationBackend`` (e.g. ``BearerTokenAuth``),
            ``"request.user"`` (an enclosing app's middleware sets it), or
            ``NoAuthentication()`` for local development.
        settings: The hosts and origins the app serves, and its sessions' limits: a
            session is the app's run (``max_live_runs`` at once,
            ``max_live_runs_per_principal`` each) (:class:`WebSettings`); ``error_texts``:
            whether a session that fails tells the page its error's text (else its class
            and a reference the log, ``miniagents.ext.realtime.web``, has it under).
        page: The HTML page (default :data:`DEFAULT_PAGE`).
        max_session_seconds: How long a session may last.
        max_message_bytes: The largest message the page may send (audio or JSON), at
            least :data:`MICROPHONE_CHUNK_BYTES`; the app keeps it as
            ``app.state.max_message_bytes``, the bound to give the server's own
            (:func:`voice_server` does).
        ticket_seconds: How long a ticket is good for (it is good once).

    Raises:
        WebChatPageError: if ``page`` is not a file.
        WebConfigurationError: if ``authentication`` is not given, for a limit that is not
            a positive number (``max_message_bytes``: below the page's microphone chunk),
            an agent that is not a realtime agent, or one with a tool that needs a person's
            approval (``requires_approval``: the page cannot ask for it).
    """
    door = Door(authentication, settings, "voice_app")
    path = Path(page)
    if not path.is_file():
        raise WebChatPageError(f"The voice page {str(path)!r} is not a file; give an HTML page.")
    max_session_seconds = _seconds(max_session_seconds, "max_session_seconds")
    ticket_seconds = _seconds(ticket_seconds, "ticket_seconds")
    max_message_bytes = _message_bound(max_message_bytes)
    html = path.read_text(encoding="utf-8")
    policy = page_policy(html, own_scripts=True)  # (its worklet, /capture.js)
    capture = _CAPTURE.read_text(encoding="utf-8")
    sessions = _Sessions(settings, ticket_seconds)
    formats = _formats(agent)
    _refuse_approvals(agent)
    rates = {"input_rate": formats[0], "output_rate": formats[1]}  # (of its audio, in and out)
    warned: list[bool] = []  # (whether a ticket in the query string was warned of)

    async def serve_page(_request: Request) -> Response:
        return HTMLResponse(html, headers={"Content-Security-Policy": policy})

    async def serve_capture(_request: Request) -> Response:
        return Response(capture, media_type="text/javascript")

    async def new_session(request: Request) -> Response:
        owner = door.owner(request)
        if isinstance(owner, Response):
            return owner
        refused = sessions.refusal(owner)
        if refused is not None:
            return refused
        ticket = sessions.ticket(owner)
        if isinstance(ticket, Response):
            return ticket
        return JSONResponse({"ticket": ticket, "expires_in": ticket_seconds, **rates})

    async def relay(websocket: WebSocket) -> None:  # (its Host and Origin: the door's)
        good, owner = sessions.take(_ticket_of(websocket, warned))
        offered = websocket.scope.get("subprotocols") or []
        if not good:  # (opened to be closed: a browser hides why an opening was refused)
            await websocket.accept(VOICE_PROTOCOL if VOICE_PROTOCOL in offered else None)
            await websocket.close(4403, "No ticket, or one that is not good (any more).")
            return
        try:
            await websocket.accept(VOICE_PROTOCOL if VOICE_PROTOCOL in offered else None)
            await _relay(
                agent, websocket, formats[0], max_session_seconds, max_message_bytes, settings
            )
        finally:
            sessions.end(owner)
        with contextlib.suppress(Exception):  # (its slot free first: the page may start anew)
            await websocket.close()

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        door.warn_unowned()
        yield

    app = Starlette(
        routes=[
            Route("/", serve_page),
            Route("/capture.js", serve_capture),
            Route("/session", new_session, methods=["POST"]),
            WebSocketRoute("/ws", relay),
        ],
        middleware=door.middleware(),
        lifespan=lifespan,
        exception_handlers={405: amethod_not_allowed},  # (JSON, as the apps' refusals)
    )
    app.state.max_message_bytes = max_message_bytes
    return app


def voice_server(
    app: Starlette,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    **bounds: Unpack[ServingBounds],
) -> uvicorn.Server:
    """A uvicorn server of a voice app that reads no WebSocket message past the app's bound.

    uvicorn reads a whole WebSocket message before the app sees it, up to its
    ``ws_max_size`` (1 MiB in a server of
    :func:`~miniagents.ext.web.serving.server_config`'s, its
    :data:`~miniagents.ext.web.serving.WS_MAX_SIZE`; 16 MiB in uvicorn's own): this
    server's is the app's ``max_message_bytes`` (64 KiB by default), so a bigger message
    is cut by the server as it arrives (code 1009), not read whole first. Its connections
    are bounded as every app's MiniAgents serves (``server_config``'s: their number, the
    time their first request's headers take). Run it with ``voice_server(app).run()`` (or
    ``await ....serve()``); a server of your own takes
    ``server_config(app, ws_max_size=app.state.max_message_bytes)``.

    Args:
        app: An app made by :func:`voice_app`.
        host: The address to listen on.
        port: The port to listen on.
        log_level: uvicorn's log level.
        **bounds: The connections' bounds, each ``server_config``'s argument of its name
            (:class:`~miniagents.ext.web.serving.ServingBounds`: ``max_connections``,
            ``headers_seconds``, ``linger_seconds``, ``shutdown_seconds``,
            ``send_seconds``, ``trusted_proxies``, ``ws_ping_seconds``,
            ``ws_ping_timeout_seconds``: the pings that notice a page gone); its defaults
            when left out.

    Returns:
        The server, not started.

    Raises:
        WebConfigurationError: for an app that :func:`voice_app` did not make, or a bound
            that ``server_config`` refuses (its ``parameter`` names it).
    """
    import uvicorn

    bound: object = getattr(getattr(app, "state", None), "max_message_bytes", None)
    if not isinstance(app, Starlette) or not isinstance(bound, int):
        raise WebConfigurationError(
            f"voice_server needs an app made by voice_app(...), not {app!r}; for another "
            "app, run uvicorn with ws_max_size set to its largest message.",
            parameter="app",
        )
    config = server_config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        ws_max_size=bound,
        **bounds,
    )
    return uvicorn.Server(config)


def _ticket_of(websocket: WebSocket, warned: list[bool]) -> str:
    """The ticket of the WebSocket's protocols, else of its query string (deprecated), or "".

    The first ticket of a query string is warned of (``warned``: once per app).
    """
    for protocol in websocket.scope.get("subprotocols") or []:
        if protocol.startswith(TICKET_PROTOCOL_PREFIX):
            return str(protocol[len(TICKET_PROTOCOL_PREFIX) :])
    ticket = websocket.query_params.get("ticket", "")
    if ticket and not warned:
        warned.append(True)
        _logger.warning(
            "A voice page sent its ticket in the WebSocket's URL (/ws?ticket=...), where "
            "access logs keep it; send it in the Sec-WebSocket-Protocol header, as the "
            "protocol %r + ticket beside %r (new WebSocket(url, [...])), as the app's own "
            "page does. The query string is taken until the first release after %s.",
            TICKET_PROTOCOL_PREFIX,
            VOICE_PROTOCOL,
            FORMER_HOMES_GO_AFTER,
        )
    return ticket


def _seconds(value: float, name: str) -> float:
    """``value``, a positive number of seconds, or the ``WebConfigurationError`` naming it."""
    return check_seconds(value, name, owner="voice_app", error=WebConfigurationError)


def _message_bound(value: int) -> int:
    """``value``, a ``max_message_bytes`` of at least the page's microphone chunk.

    Raises:
        WebConfigurationError: for anything else, naming the least.
    """
    return check_count(
        value,
        "max_message_bytes",
        least=MICROPHONE_CHUNK_BYTES,
        owner="voice_app",
        fix=f"The page sends its microphone's audio in messages of {MICROPHONE_CHUNK_BYTES:,} "
        "bytes: a smaller bound would close every session at its first chunk.",
        error=WebConfigurationError,
    )


def _formats(agent: MiniAgent[..., RealtimePiece]) -> tuple[int, int]:
    """The sample rates of the agent's audio, in and out.

    Raises:
        WebConfigurationError: if ``agent`` is not a realtime agent.
    """
    provider = provider_of(agent)
    if provider is None:
        raise WebConfigurationError(
            f"voice_app needs a realtime agent (made with make_realtime_agent, e.g. "
            f"openai_realtime_agent), not {agent!r}.",
            parameter="agent",
        )
    return provider.input_format.rate, provider.output_format.rate


def _refuse_approvals(agent: MiniAgent[..., RealtimePiece]) -> None:
    """Refuse an agent with a tool that waits for a person's approval: the page cannot ask.

    Raises:
        WebConfigurationError: naming the tool and the fix.
    """
    tools: Any = agent.bound_arguments.get("tools") or ()
    for tool in ToolSet(tools):
        if tool.requires_approval is not False:  # (True, or a rule: some calls would wait)
            raise WebConfigurationError(
                f"voice_app cannot serve the agent {agent.alias}: its tool {tool.name!r} needs "
                "a person's approval (requires_approval), which the voice page cannot ask "
                "for, so each of its calls would wait until the session ended. Give the "
                "voice app an agent without that tool, or with requires_approval=False for it.",
                parameter="agent",
            )


class _Sessions:
    """The tickets given and the sessions under way, by principal, within the settings' limits."""

    def __init__(self, settings: WebSettings, ticket_seconds: float) -> None:
        self._most = settings.max_live_runs
        self._most_each = settings.max_live_runs_per_principal
        self._ticket_seconds = ticket_seconds
        self._tickets: dict[str, tuple[str | None, float]] = {}
        self._live: dict[str | None, int] = {}

    def refusal(self, owner: str | None) -> Response | None:
        """The 503 (the app is full) or 429 (the principal is) of a new session, if any."""
        if sum(self._live.values()) >= self._most:
            return _no_room(
                503,
                "too_many_runs",
                f"The app holds {_sessions(self._most)}, its limit (max_live_runs)",
            )
        if self._live.get(owner, 0) >= self._most_each:
            return _no_room(
                429,
                "too_many_runs_of_yours",
                f"You hold {_sessions(self._most_each)}, the most one user may hold "
                "(max_live_runs_per_principal)",
            )
        return None

    def ticket(self, owner: str | None) -> str | Response:
        """A new ticket for ``owner``, or the 503 of an app holding as many as it keeps.

        The app keeps ``4 * max_live_runs`` tickets not yet used, a principal
        ``2 * max_live_runs_per_principal`` of them: past either, the principal's own oldest
        is dropped, never another's (a user asking again and again cannot void the
        tickets of others); an app full of others' tickets refuses (they expire soon).
        """
        now = time.monotonic()
        for key, (_, expires) in list(self._tickets.items()):
            if expires < now:
                del self._tickets[key]
        mine = [key for key, (whose, _) in self._tickets.items() if whose == owner]
        full = len(self._tickets) >= 4 * self._most
        if mine and (full or len(mine) >= 2 * self._most_each):
            del self._tickets[mine[0]]
        elif full:
            return _no_room(
                503,
                "too_many_tickets",
                f"The app holds {4 * self._most} tickets not yet used, its limit "
                "(4 * max_live_runs)",
            )
        ticket = secrets.token_urlsafe(24)
        self._tickets[ticket] = (owner, now + self._ticket_seconds)
        return ticket

    def take(self, ticket: str) -> tuple[bool, str | None]:
        """Whether ``ticket`` is good (it is used up, its session counted), and its principal."""
        found = self._tickets.pop(ticket, None)
        if found is None or found[1] < time.monotonic() or self.refusal(found[0]) is not None:
            return False, None
        owner = found[0]
        self._live[owner] = self._live.get(owner, 0) + 1
        return True, owner

    def end(self, owner: str | None) -> None:
        """A session of ``owner`` ended."""
        left = self._live.get(owner, 0) - 1
        if left > 0:
            self._live[owner] = left
        else:
            self._live.pop(owner, None)


def _sessions(count: int) -> str:
    """``count`` sessions, in words: "1 session", "2 sessions"."""
    return f"{count} session" if count == 1 else f"{count} sessions"


def _no_room(status: int, code: str, said: str) -> Response:
    return JSONResponse(
        {"error": {"code": code, "message": f"{said}; end one, or try again later."}},
        status_code=status,
        headers={"Retry-After": "5"},
    )


async def _relay(
    agent: MiniAgent[..., RealtimePiece],
    websocket: WebSocket,
    input_rate: int,
    seconds: float,
    max_bytes: int,
    settings: WebSettings,
) -> None:
    """One session: the page's messages in, the reply's pieces out, within ``seconds``.

    ``settings.error_texts``: whether the session's error is told to the page as it is
    written (else its class and the reference the log has it under), in a sentence that names
    the agent by its alias (*"The agent VOICE failed with ..."*), as every web app's does.
    """
    from miniagents.ext.realtime.pieces import AudioFormat

    audio_format = AudioFormat(rate=input_rate)
    page = _Page(websocket)
    intake = _Intake(page)
    async with MiniAgents():
        reply = agent.inquire(intake.taken())

        async def read() -> None:
            heard = False  # (whether the page hears the rest: its input ended by "end")
            try:
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    data = message.get("bytes")
                    text = message.get("text")
                    size = len(data or b"") + len((text or "").encode())
                    if size > max_bytes:
                        await page.close(1009, "A message was bigger than the app takes.")
                        return
                    said = _said(text) if data is None and text is not None else (None, None)
                    if said is None or len(data or b"") % 2:  # (odd: no 16-bit samples)
                        await page.close(1007, _UNREADABLE)
                        return
                    kind, typed = said
                    if kind == "end":
                        heard = True
                        return
                    given = AudioChunk(audio=data, format=audio_format) if data else typed
                    if given is not None and not await intake.put(given, size):
                        await page.close(1008, _PAST_HELD)
                        return
            except WebSocketDisconnect:
                pass
            finally:
                intake.end()  # (the input's end)
                if not heard:  # (nobody hears the rest: the session, the API's too, ends now)
                    reply.cancel()

        reading = spawn(read(), "voice page input")
        failure: Exception | None = None
        try:
            async with asyncio.timeout(seconds):
                await _send_all(page, reply, settings.error_texts)
        except TimeoutError:
            reply.cancel()
            with contextlib.suppress(Exception):
                await websocket.close(1008, "The session lasted as long as the app allows.")
        except (WebSocketDisconnect, StreamCancelledError):  # (the page left, or was closed)
            reply.cancel()
        except Exception as error:  # the session's error (or the app's): told, then closed
            failure = error
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
        lost = None if reading.cancelled() else reading.exception()
        if failure is None and isinstance(lost, Exception):  # (the input's own: telling "held")
            failure = lost
        if failure is not None:
            await _tell_failure(page, failure, agent.alias, settings.error_texts)


async def _tell_failure(page: _Page, error: Exception, alias: str, error_texts: bool) -> None:
    """Tell the page the session failed with ``error``, then close it (1011).

    The sentence names the agent by its ``alias``, as every web app's does, or the server
    for an error of the app's own steps (a send to the page that failed: ``page.failure``),
    whose operator is asked, as the web apps tell a step of their own that failed; the
    error is told as :func:`~miniagents.ext.told_errors.told_error` says (``error_texts``:
    its text, else its class and the reference the log has it under).
    """
    who, operator = f"The agent {alias}", "the agent's operator"
    if error is page.failure:
        who, operator = "The server, streaming the session,", "the server's operator"
    told = told_error(
        error, _logger, "A voice session", error_texts=error_texts, who=who, operator=operator
    )
    with contextlib.suppress(Exception):  # (the page may have left: nobody to tell)
        await page.event(
            "error",
            message=told.text,
            error_type=type(error).__name__,
            reference=told.reference,
        )
        await page.websocket.close(1011)


class _Page:
    """The page of one session as the app sends to it: each event, and the send that failed.

    A send that fails otherwise than by the page leaving (``WebSocketDisconnect``) is a
    step of the app's own: its error is the server's to tell, not the agent's; one after
    the app closed the page itself (:meth:`close`: a message it refused) is neither: the
    page is gone as if it had left (a ``WebSocketDisconnect`` of the app's close code).
    """

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.failure: Exception | None = None  # (the first send of the app's own that failed)
        self._closed_with: int | None = None  # (the code the app closed the page with)

    async def close(self, code: int, reason: str) -> None:
        """Close the page's connection (a message the app refused): it is told no more."""
        self._closed_with = code
        await self.websocket.close(code, reason)

    async def event(self, kind: str, **fields: object) -> None:
        """Send the page the event ``kind`` with ``fields`` (JSON)."""
        await self._sent(lambda: self.websocket.send_text(json.dumps({"type": kind, **fields})))

    async def audio(self, audio: bytes) -> None:
        """Send the page a chunk of the reply's audio."""
        await self._sent(lambda: self.websocket.send_bytes(audio))

    async def _sent(self, send: Callable[[], Awaitable[None]]) -> None:
        try:
            await send()
        except Exception as error:
            if self._closed_with is not None and not isinstance(error, WebSocketDisconnect):
                raise WebSocketDisconnect(self._closed_with) from error  # (closed by the app)
            if self.failure is None and not isinstance(error, WebSocketDisconnect):
                self.failure = error
            raise


_READ_AHEAD = 16
"""The messages of the page read and not yet taken by the session at which it is told
``held`` (with the stream's high-water mark of pieces pulled ahead)."""

_PAST_HELD = (
    "The page sent more than the app keeps after telling it held; keep what the microphone "
    "and the text box give while held, and send it once told reading."
)


class _Intake:
    """The page's input, read and not yet taken by the session, and the page told ``held``.

    The page is told ``held`` once :data:`_READ_AHEAD` of its messages wait, and
    ``reading`` once the session has taken them all (the two told in the order they come
    to be). Its messages are read all the while, so that the server reads its connection
    (its pongs, its leaving); after ``held``, :data:`HELD_MORE_BYTES` of them at most.
    """

    def __init__(self, page: _Page) -> None:
        self._page = page
        self._inbox: asyncio.Queue[AudioChunk | PlaybackPosition | str | None] = asyncio.Queue()
        self._held = False
        self._past = 0  # (what the page sent since it was told held, counted as the bound is)
        self._telling = asyncio.Lock()  # ("held" and "reading" sent in the order they come)

    async def put(self, given: AudioChunk | PlaybackPosition | str, size: int) -> bool:
        """``given`` kept for the session (the page told ``held`` if it is now).

        Returns:
            False, nothing kept, for a page told ``held`` that sent past its bound.
        """
        if self._held:
            self._past += max(size, MICROPHONE_CHUNK_BYTES)
            if self._past > HELD_MORE_BYTES:
                return False
        self._inbox.put_nowait(given)
        async with self._telling:
            if not self._held and self._inbox.qsize() >= _READ_AHEAD:
                self._held, self._past = True, 0
                await self._page.event("held")
        return True

    def end(self) -> None:
        """The page's input ended (read no more)."""
        self._inbox.put_nowait(None)

    async def taken(self) -> AsyncIterator[AudioChunk | PlaybackPosition | str]:
        """The page's input as the session pulls it, until its end."""
        while (given := await self._inbox.get()) is not None:
            async with self._telling:
                if self._held and self._inbox.empty():
                    self._held = False
                    with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # (it left)
                        await self._page.event("reading")
            yield given


_TRANSCRIPT = "voice page transcript"
"""The name of the task that sends a transcript (or a tool's result) to the page."""

_UNREADABLE = "A message was not one the page sends (JSON: text, played, end; or audio)."


def _said(text: str) -> tuple[object, str | PlaybackPosition | None] | None:
    """A JSON message of the page: its ``type``, and the input it gives the session, if any.

    ``None`` for one the page never sends: not a JSON object (or one nested past the
    parser's depth), of no type the page sends (``text``, ``played``, ``end``), a text
    that is no text, a ``played`` without its item or a whole number of milliseconds.
    """
    try:
        said = json.loads(text)
    except (ValueError, RecursionError):  # (RecursionError: nested past the parser's depth)
        return None
    if not isinstance(said, dict):
        return None
    kind = said.get("type")
    if kind == "text":
        typed = said.get("text")
        return (kind, typed or None) if isinstance(typed, str) else None
    if kind == "played":
        item, ms = said.get("item_id"), said.get("ms")
        if not isinstance(item, str) or type(ms) is not int or ms < 0:
            return None
        return kind, PlaybackPosition(item_id=item, played_ms=ms)
    return (kind, None) if kind == "end" else None


async def _send_all(page: _Page, reply: Any, error_texts: bool) -> None:
    """The reply sent to the page (see :func:`_send_reply`), with each send of its own ended.

    A send in a task of its own that fails fails the whole at once (the rest is cut short:
    was seen only at its turn's end, or the session's), and one that ended is let go (was:
    each kept for the session's whole life).
    """
    try:
        async with asyncio.TaskGroup() as sending:
            await _send_reply(page, reply, sending, error_texts)
    except BaseExceptionGroup as failed:  # (the body's own error is in it too)
        raise failed.exceptions[0] from None


async def _send_reply(
    page: _Page, reply: Any, sending: asyncio.TaskGroup, error_texts: bool
) -> None:
    """Each piece of the reply as the page's events (a streaming one in a task of ``sending``).

    A tool's exception in its result is told to the page as its class and a reference
    (:class:`~miniagents.ext.told_errors.ToldResult`), unless ``error_texts``.
    """
    item: str | None = None
    transcripts: list[asyncio.Task[None]] = []  # (of the turn: sent before its end)
    async for promise in reply:
        kind = promise.message_class
        if kind is AudioChunk:
            chunk: AudioChunk = await promise
            if chunk.item_id != item:
                item = chunk.item_id
                await page.event("item", item_id=item, rate=chunk.format.rate)
            await page.audio(chunk.audio)
        elif issubclass(kind, Transcript | ToolResultMessage):
            task = sending.create_task(_stream(page, promise, error_texts), name=_TRANSCRIPT)
            if kind is Transcript:
                transcripts.append(task)
        elif issubclass(kind, LLMToolCallMessage):
            call: LLMToolCallMessage = await promise
            await page.event(
                "tool_call",
                call_id=call.call_id,
                name=call.tool_name,
                arguments=call.text,
            )
        elif kind is TurnEnd:
            turn: TurnEnd = await promise
            await asyncio.gather(*transcripts)  # (complete by now: their last events sent)
            transcripts.clear()
            await page.event("turn_end", status=turn.status)
        elif kind is Interruption:
            cut: Interruption = await promise
            await page.event("interrupted", item_id=cut.item_id, played_ms=cut.played_ms)
        elif kind is SessionEnd:
            end: SessionEnd = await promise
            usage = None if end.usage is None else end.usage.model_dump(exclude_none=True)
            await page.event("session_end", turns=end.turns, usage=usage)


async def _stream(page: _Page, promise: MessagePromise[Any], error_texts: bool) -> None:
    """A transcript's (or a tool's result's) tokens as they come, then its whole text."""
    with contextlib.suppress(WebSocketDisconnect):  # (the page left: the reply ends too)
        await _stream_tokens(page, promise, error_texts)


async def _stream_tokens(page: _Page, promise: MessagePromise[Any], error_texts: bool) -> None:
    fields = promise.metadata
    if issubclass(promise.message_class, ToolResultMessage):
        call_id = fields.get("call_id")
        told = ToldResult(promise, error_texts=error_texts)
        async with contextlib.aclosing(told.tokens()) as tokens:  # (closed here if it left)
            async for token in tokens:
                await page.event("tool_output", call_id=call_id, delta=token)
        await page.event("tool_result", call_id=call_id, text=told.text)
        return
    role, item_id = fields.get("role"), fields.get("item_id")
    async for token in promise:
        await page.event("transcript", role=role, item_id=item_id, delta=token)
    await page.event("transcript_done", role=role, item_id=item_id)
