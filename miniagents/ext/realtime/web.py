"""``voice_app``: a page with a microphone button and a live transcript, and an agent behind it.

::

    browser                                  voice_app                       realtime API
    GET /                   -> the page (one HTML file, its own scripts only)
    POST /session (who asks: the door)  -> a ticket: {"ticket", "input_rate", "output_rate"}
    WS /ws?ticket=...  (the Host, the Origin and the ticket checked, once)
      mic PCM (binary) ..................-> AudioChunk s ................-> the agent's session
      {"type": "text"|"played"|"end"} ...-> text, PlaybackPosition, the input's end
      <- {"type": "item"} + PCM (binary), {"type": "transcript", "delta"}, {"type": "tool_call"},
         {"type": "tool_output", "delta"}, {"type": "turn_end"}, {"type": "interrupted"},
         {"type": "session_end", "usage"} | {"type": "error", "message"}

A browser's WebSocket sends no ``Authorization`` header, so the page asks for a ticket
first, with ``fetch`` and its credentials (``Authorization: Bearer <token>``, the token it
was opened with, ``/#token=...``; or the cookies of an enclosing app's session): the app's
door (:class:`~miniagents.ext.web.lowlevel.Door`) knows who asks, and the ticket, good
once and for ``ticket_seconds``, names them. The WebSocket is taken only from an allowed
host (``allowed_hosts``: the ``Host`` header, against DNS rebinding) and origin (the app's
own, and ``allowed_origins``: a page of another site cannot borrow the user's ticket).

Each session runs the agent once, in a ``MiniAgents`` context of its own, within the limits:
``max_sessions`` at once (``max_sessions_per_principal`` each; a ticket is refused with
503 or 429), ``max_session_seconds`` long, messages of at most ``max_message_bytes`` (a
bigger one closes the session, code 1009). An app without authentication is an explicit
choice (``authentication=None``) and serves ``localhost`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

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
from miniagents.ext.web.auth import Authentication
from miniagents.ext.web.lowlevel import Door, page_policy
from miniagents.messages.message_promise import MessagePromise
from miniagents.miniagents.agent import MiniAgent
from miniagents.miniagents.context import MiniAgents
from miniagents.promising.lowlevel import spawn

__all__ = ["DEFAULT_PAGE", "LOCAL_HOSTS", "voice_app"]

DEFAULT_PAGE = Path(__file__).with_name("voice_page.html")
"""The page ``voice_app`` serves unless given another: a microphone button, a transcript."""

LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
"""The hosts an app serves by default: this machine only."""


def voice_app(
    agent: MiniAgent[..., RealtimePiece],
    *,
    authentication: Authentication,
    allowed_hosts: Sequence[str] = LOCAL_HOSTS,
    allowed_origins: Sequence[str] = (),
    page: str | os.PathLike[str] = DEFAULT_PAGE,
    max_sessions: int = 16,
    max_sessions_per_principal: int = 2,
    max_session_seconds: float = 600.0,
    max_message_bytes: int = 64 * 1024,
    ticket_seconds: float = 30.0,
) -> Starlette:
    """The voice page at ``/`` and ``agent`` behind it, over a WebSocket (see the module).

    Args:
        agent: The realtime agent (e.g. ``openai_realtime_agent.fork(...)``).
        authentication: How the app learns who asks: a Starlette
            ``AuthenticationBackend`` (e.g. ``BearerTokenAuth``), ``"request.user"`` (an
            enclosing app's middleware sets it), or ``None``: nobody is known, an explicit
            choice, for this machine only (``allowed_hosts`` must be local).
        allowed_hosts: The ``Host`` headers the app answers (others: 400).
        allowed_origins: Other origins whose pages may use the app (its own always may).
        page: The HTML page (default :data:`DEFAULT_PAGE`).
        max_sessions: The most sessions at once.
        max_sessions_per_principal: The most sessions one principal has at once.
        max_session_seconds: How long a session may last.
        max_message_bytes: The largest message the page may send (audio or JSON).
        ticket_seconds: How long a ticket is good for (it is good once).

    Raises:
        WebChatPageError: if ``page`` is not a file.
        WebConfigurationError: for limits that are not positive, an origin that is not
            one, or no authentication with a host that is not local.
    """
    path = Path(page)
    if not path.is_file():
        raise WebChatPageError(f"The voice page {str(path)!r} is not a file; give an HTML page.")
    _check(
        authentication,
        allowed_hosts,
        max_sessions=max_sessions,
        max_sessions_per_principal=max_sessions_per_principal,
        max_session_seconds=max_session_seconds,
        max_message_bytes=max_message_bytes,
        ticket_seconds=ticket_seconds,
    )
    door = Door(authentication, allowed_origins, "voice_app")
    html = path.read_text(encoding="utf-8")
    policy = page_policy(html)
    sessions = _Sessions(max_sessions, max_sessions_per_principal, ticket_seconds)
    origins = frozenset(door.allowed_origins)
    formats = _formats(agent)

    async def serve_page(_request: Request) -> Response:
        return HTMLResponse(html, headers={"Content-Security-Policy": policy})

    async def new_session(request: Request) -> Response:
        owner = door.owner(request)
        if isinstance(owner, Response):
            return owner
        refused = sessions.refusal(owner)
        if refused is not None:
            return refused
        return JSONResponse(
            {
                "ticket": sessions.ticket(owner),
                "expires_in": ticket_seconds,
                "input_rate": formats[0],
                "output_rate": formats[1],
            }
        )

    async def relay(websocket: WebSocket) -> None:
        if not _allowed_origin(websocket, origins):
            await websocket.close(1008, "This origin may not use the app.")
            return
        good, owner = sessions.take(websocket.query_params.get("ticket", ""))
        if not good:
            await websocket.close(1008, "No ticket, or one that is not good (any more).")
            return
        try:
            await websocket.accept()
            await _relay(agent, websocket, formats[0], max_session_seconds, max_message_bytes)
        finally:
            sessions.end(owner)

    return Starlette(
        routes=[
            Route("/", serve_page),
            Route("/session", new_session, methods=["POST"]),
            WebSocketRoute("/ws", relay),
        ],
        middleware=[
            Middleware(
                TrustedHostMiddleware, allowed_hosts=[_bare(host) for host in allowed_hosts]
            ),
            *door.middleware(),
        ],
    )


def _check(authentication: Authentication, hosts: Sequence[str], **limits: float) -> None:
    """Refuse limits that are not positive, and no authentication for a host not local.

    Raises:
        WebConfigurationError: naming the parameter.
    """
    for name, value in limits.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise WebConfigurationError(
                f"{name} must be a positive number, got {value!r}.", parameter=name
            )
    if authentication is None and any(host not in LOCAL_HOSTS for host in hosts):
        raise WebConfigurationError(
            "An app without authentication serves this machine only, but allowed_hosts has "
            f"{[host for host in hosts if host not in LOCAL_HOSTS]}: give it "
            "authentication= (e.g. BearerTokenAuth) to serve other hosts.",
            parameter="allowed_hosts",
        )


def _allowed_origin(websocket: WebSocket, origins: frozenset[str]) -> bool:
    """Whether the page that opens ``websocket`` is the app's own, or an allowed origin's.

    A client with no ``Origin`` (no browser: it has no user's credentials to borrow) is.
    """
    origin = websocket.headers.get("origin")
    host = websocket.headers.get("host", "")
    return origin is None or origin in origins or origin in (f"http://{host}", f"https://{host}")


def _bare(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


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


class _Sessions:
    """The tickets given and the sessions under way, by principal, within the limits."""

    def __init__(self, most: int, most_each: int, ticket_seconds: float) -> None:
        self._most = most
        self._most_each = most_each
        self._ticket_seconds = ticket_seconds
        self._tickets: dict[str, tuple[str | None, float]] = {}
        self._live: dict[str | None, int] = {}

    def refusal(self, owner: str | None) -> Response | None:
        """The 503 (the app is full) or 429 (the principal is) of a new session, if any."""
        if sum(self._live.values()) >= self._most:
            return _no_room(503, "too_many_sessions", f"The app holds {self._most} sessions")
        if self._live.get(owner, 0) >= self._most_each:
            return _no_room(429, "too_many_of_yours", f"You hold {self._most_each} sessions")
        return None

    def ticket(self, owner: str | None) -> str:
        """A new ticket for ``owner`` (the oldest dropped past a bound)."""
        now = time.monotonic()
        for key, (_, expires) in list(self._tickets.items()):
            if expires < now:
                del self._tickets[key]
        while len(self._tickets) >= 4 * self._most:
            del self._tickets[next(iter(self._tickets))]
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


def _no_room(status: int, code: str, said: str) -> Response:
    return JSONResponse(
        {"error": {"code": code, "message": f"{said} at once; end one, or try again later."}},
        status_code=status,
        headers={"Retry-After": "5"},
    )


async def _relay(
    agent: MiniAgent[..., RealtimePiece],
    websocket: WebSocket,
    input_rate: int,
    seconds: float,
    max_bytes: int,
) -> None:
    """One session: the page's messages in, the reply's pieces out, within ``seconds``."""
    from miniagents.ext.realtime.pieces import AudioFormat

    audio_format = AudioFormat(rate=input_rate)
    async with MiniAgents():
        call = agent.initiate_inquiry()
        reply = call.reply_sequence(finish_call=False)
        sending: list[asyncio.Task[None]] = []

        async def read() -> None:
            try:
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    data = message.get("bytes")
                    text = message.get("text")
                    if len(data or b"") + len((text or "").encode()) > max_bytes:
                        await websocket.close(1009, "A message was bigger than the app takes.")
                        return
                    if data:
                        call.send_message(AudioChunk(audio=data, format=audio_format))
                    elif text:
                        said = json.loads(text)
                        kind = said.get("type")
                        if kind == "text" and said.get("text"):
                            call.send_message(str(said["text"]))
                        elif kind == "played":
                            call.send_message(
                                PlaybackPosition(
                                    item_id=str(said["item_id"]), played_ms=int(said["ms"])
                                )
                            )
                        elif kind == "end":
                            return
            except (WebSocketDisconnect, ValueError, KeyError, TypeError):
                return
            finally:
                call.finish()

        reading = spawn(read(), "voice page input")
        try:
            async with asyncio.timeout(seconds):
                await _send_reply(websocket, reply, sending)
                await asyncio.gather(*sending)
        except TimeoutError:
            reply.cancel()
            with contextlib.suppress(Exception):
                await websocket.close(1008, "The session lasted as long as the app allows.")
        except WebSocketDisconnect:
            reply.cancel()
        except Exception as error:  # the session's error: told to the page, then closed
            with contextlib.suppress(Exception):
                await websocket.send_text(json.dumps({"type": "error", "message": str(error)}))
                await websocket.close(1011)
        finally:
            reading.cancel()
            for task in sending:
                task.cancel()
            await asyncio.gather(reading, *sending, return_exceptions=True)
        with contextlib.suppress(Exception):
            await websocket.close()


async def _send_reply(websocket: WebSocket, reply: Any, sending: list[asyncio.Task[None]]) -> None:
    """Each piece of the reply as the page's events (a streaming one in a task of its own)."""
    item: str | None = None
    transcripts: list[asyncio.Task[None]] = []  # (of the turn: sent before its end)
    async for promise in reply:
        kind = promise.message_class
        if kind is AudioChunk:
            chunk: AudioChunk = await promise
            if chunk.item_id != item:
                item = chunk.item_id
                await _event(websocket, "item", item_id=item, rate=chunk.format.rate)
            await websocket.send_bytes(chunk.audio)
        elif issubclass(kind, Transcript | ToolResultMessage):
            task = spawn(_stream(websocket, promise), "voice page transcript")
            sending.append(task)
            if kind is Transcript:
                transcripts.append(task)
        elif issubclass(kind, LLMToolCallMessage):
            call: LLMToolCallMessage = await promise
            await _event(
                websocket,
                "tool_call",
                call_id=call.call_id,
                name=call.tool_name,
                arguments=call.text,
            )
        elif kind is TurnEnd:
            turn: TurnEnd = await promise
            await asyncio.gather(*transcripts)  # (complete by now: their last events sent)
            transcripts.clear()
            await _event(websocket, "turn_end", status=turn.status)
        elif kind is Interruption:
            cut: Interruption = await promise
            await _event(websocket, "interrupted", item_id=cut.item_id, played_ms=cut.played_ms)
        elif kind is SessionEnd:
            end: SessionEnd = await promise
            usage = None if end.usage is None else end.usage.model_dump(exclude_none=True)
            await _event(websocket, "session_end", turns=end.turns, usage=usage)


async def _stream(websocket: WebSocket, promise: MessagePromise[Any]) -> None:
    """A transcript's (or a tool's result's) tokens as they come, then its whole text."""
    with contextlib.suppress(WebSocketDisconnect):  # (the page left: the reply ends too)
        await _stream_tokens(websocket, promise)


async def _stream_tokens(websocket: WebSocket, promise: MessagePromise[Any]) -> None:
    fields = promise.metadata
    if issubclass(promise.message_class, ToolResultMessage):
        call_id = fields.get("call_id")
        async for token in promise:
            await _event(websocket, "tool_output", call_id=call_id, delta=token)
        await _event(websocket, "tool_result", call_id=call_id, text=(await promise).text)
        return
    role, item_id = fields.get("role"), fields.get("item_id")
    async for token in promise:
        await _event(websocket, "transcript", role=role, item_id=item_id, delta=token)
    await _event(websocket, "transcript_done", role=role, item_id=item_id)


async def _event(websocket: WebSocket, kind: str, **fields: object) -> None:
    await websocket.send_text(json.dumps({"type": kind, **fields}))
