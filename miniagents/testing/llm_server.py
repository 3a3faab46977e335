"""``FakeLLMServer``: a local fake of the OpenAI and Anthropic HTTP APIs, scripted by a test.

Standard library only: it listens on ``127.0.0.1`` on a free port, in a background thread,
and speaks the wire formats of the OpenAI Chat Completions API (``POST
/v1/chat/completions``), the OpenAI Responses API (``POST /v1/responses``) and the
Anthropic Messages API (``POST /v1/messages``), streamed (server-sent events over a
chunked HTTP/1.1 body, as the real services send them) and not, text and tool calls. The
real SDK clients (``openai.AsyncOpenAI``, ``anthropic.AsyncAnthropic``) talk to it over
real sockets. It also speaks Gemini's ``generateContent`` (``_gemini_wire``), Bedrock's
Converse in AWS's event-stream framing with SigV4 checked (``_bedrock_wire``), and the
OpenAI-compatible servers' dialects (``_compatible_wire``), and the providers' batch APIs:
OpenAI's files and batches, Anthropic's Message Batches, Gemini's Batch API with inline
requests (``server.batches``, see ``_batches``)::

    with FakeLLMServer() as server:
        server.reply(tokens=["Hel", "lo"], finish_reason="stop", usage=(5, 2))
        client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test")
        # anthropic.AsyncAnthropic(base_url=server.anthropic_base_url, api_key="test")

**Realtime APIs** (WebSocket): OpenAI Realtime at ``/v1/realtime`` and Gemini Live at its
``BidiGenerateContent`` path (in TLS, as Gemini's SDK connects: :attr:`~FakeLLMServer.tls_context`),
with a script of their own (:meth:`~FakeLLMServer.speak`, :meth:`~FakeLLMServer.refuse_realtime`)
and a record per session (:attr:`~FakeLLMServer.realtime_sessions`); see
``miniagents.testing._live``.

**Script**: a FIFO queue; every request to a known endpoint takes the next item
(:meth:`~FakeLLMServer.reply` or :meth:`~FakeLLMServer.fail`; one given ``for_model`` only
goes to a request for that model); with none left, the reply echoes the text of the last
user message. Items are provider-neutral: each is rendered in the format of the endpoint
that takes it.

**Record**: :attr:`~FakeLLMServer.requests` holds every request (method, path, headers,
parsed JSON body) and, once its response is over, how it ended (``outcome``) and whether
the client closed the connection before the end (``client_disconnected``).

**Retries** (openai 3.x, anthropic 2.x): both SDKs take ``retry-after-ms`` then
``retry-after`` but only honour a delay > 0; otherwise they back off ``0.5 s * 2**retry``.
Send :data:`FAST_RETRY` with a failure to make retries instant. Both retry 408, 409, 429
and >= 500 (``x-should-retry: true|false`` overrides), and connection errors before the
response is read; never a broken stream.

What the SDKs raise for each failure mode of a stream:

============  =================================================  ===========================
mode          openai 3.x (``AsyncStream[ChatCompletionChunk]``)  anthropic 2.x (raw events)
============  =================================================  ===========================
cut (FIN)     ``openai.APIConnectionError("Connection error.")``  ``httpx2.RemoteProtocolError``
              from ``httpx2.RemoteProtocolError``                 NOT wrapped
cut (RST)     ``openai.APIConnectionError`` from                  ``httpx2.ReadError``
              ``httpx2.ReadError``                                NOT wrapped
omit_final    silent end (no finish_reason, no usage chunk)       silent end (no message_stop)
malformed     ``json.JSONDecodeError``                            ``json.JSONDecodeError``
error event   ``openai.APIError`` (str: the error message)        ``anthropic.APIStatusError``
                                                                  (status_code 200)
read timeout  ``openai.APITimeoutError`` from                     ``httpx2.ReadTimeout``
              ``httpx2.ReadTimeout``                              NOT wrapped
============  =================================================  ===========================

With ``client.responses`` (the Responses API), cut, reset, malformed and read-timeout
streams raise as with Chat Completions; ``omit_final`` ends silently (no
``response.completed``); an ``error`` event and a ``response.failed`` event
(``failed_after``) are *yielded* as events (``ResponseErrorEvent``,
``ResponseFailedEvent``), not raised: the reader must look for them.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType

from miniagents.testing._compatible_wire import COMPATIBLE_SERVERS
from miniagents.testing._http import Handler, HTTPServer
from miniagents.testing._live import LiveRefusal, LiveUsage, SpokenReply
from miniagents.testing._record import HANG_GUARD, check_wait
from miniagents.testing._script import Failure, Reply, ThinkingOrder, ToolCall, as_tokens
from miniagents.testing._serving import ScriptedApp
from miniagents.testing.errors import FakeLLMServerError
from miniagents.utils.blocks import RefusedBlocks

__all__ = ["FakeLLMServer"]


class FakeLLMServer(
    ScriptedApp,
    RefusedBlocks,
    error=FakeLLMServerError,
    sentence=(
        "FakeLLMServer is entered with a plain `with FakeLLMServer() as server:` (it serves "
        "in a thread of its own), not `async with`; the SDK clients and MiniAgents() go in "
        "the `async with` inside it."
    ),
):
    """A local fake of the OpenAI and Anthropic HTTP APIs, scripted by the test.

    Use it as a context manager (or :meth:`start` / :meth:`stop`)::

        with FakeLLMServer() as server:
            server.reply(tokens=["Hi", "!"])
            ...  # point a client at server.openai_base_url / server.anthropic_base_url
            assert server.requests[0].json["model"] == "gpt-4o-mini"

    Endpoints: ``POST .../chat/completions`` (OpenAI), ``POST .../responses`` (OpenAI's
    Responses API) and ``POST .../messages`` (Anthropic); any other path gets a 404. A
    request the API would refuse gets a 400 in the provider's format, without taking a
    script item: a missing required field (OpenAI: ``model``, ``messages``; Responses:
    ``model``, ``input``; Anthropic: ``model``, ``messages``, ``max_tokens``), a parameter
    of Chat Completions sent to the Responses API, a numeric option out of range (e.g.
    ``temperature``: OpenAI 0 to 2, Anthropic 0 to 1), tool calls and results that do not
    pair up as the API requires, or an image the API would not take.

    Args:
        host: The address to listen on.
        port: The port (0: a free one).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self._address = (host, port)
        self._httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        """Bind a free port and serve in a daemon thread; returns ``self``.

        Raises:
            FakeLLMServerError: if it was started before.
        """
        if self._httpd is not None:
            raise FakeLLMServerError("This FakeLLMServer was started already; make a new one.")
        httpd = HTTPServer(self._address, Handler)
        httpd.app = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"fake-llm-server:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: drop every open connection and wait for the handler threads."""
        httpd = self._httpd
        if httpd is None or self.stopping.is_set():
            return
        self.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._drop_connections()

    def __enter__(self) -> FakeLLMServer:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    def wait_connections_closed(self, timeout: float = HANG_GUARD) -> None:
        """Wait until every connection to the server has closed, and its requests are recorded.

        Those that the server had not accepted yet when it was called count too: it connects
        once itself and waits until that connection was accepted (connections are accepted
        in the order they came) and no connection is open any more. Call it when no client
        is left to connect, such as after killing a client's process: whatever request that
        client sent is then recorded (and took its script item), so that ``clear_script()``
        leaves nothing for it to take afterwards.

        Raises:
            FakeLLMServerError: ``timeout`` is no positive, finite number of seconds, or the
                server is not started.
            FakeLLMServerTimeout: A connection stayed open for ``timeout`` seconds.
        """
        check_wait("count", 0, timeout, "FakeLLMServer.wait_connections_closed()")
        self._closed_wait(self._probe_connection(), timeout).blocking()

    async def wait_connections_closed_async(self, timeout: float = HANG_GUARD) -> None:
        """``wait_connections_closed`` that lets the event loop run while it waits."""
        check_wait("count", 0, timeout, "FakeLLMServer.wait_connections_closed_async()")
        address = await asyncio.to_thread(self._probe_connection)
        await self._closed_wait(address, timeout).awaited()

    def _probe_connection(self) -> tuple[str, int]:
        """Connect to the server and close at once; the address connected from."""
        host = str(self._address[0])
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
        port = self.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            address: tuple[str, int] = tuple(probe.getsockname()[:2])
            self._expect_probe(address)
            probe.connect((host, port))
        return address

    @property
    def port(self) -> int:
        """The port the server listens on.

        Raises:
            FakeLLMServerError: if it is not started.
        """
        if self._httpd is None:
            raise FakeLLMServerError("This FakeLLMServer is not started: call start() first.")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self._address[0]}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The ``base_url`` for ``openai.AsyncOpenAI`` (``base_url + "/v1"``)."""
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The ``base_url`` for ``anthropic.AsyncAnthropic`` (the SDK adds ``/v1``)."""
        return self.base_url

    @property
    def gemini_base_url(self) -> str:
        """The ``base_url`` for ``google.genai.Client`` (``GOOGLE_GEMINI_BASE_URL``).

        Vertex AI's too (``GOOGLE_VERTEX_BASE_URL``): the SDK adds the API version and the
        path.
        """
        return self.base_url

    @property
    def tls_context(self) -> ssl.SSLContext:
        """A client's TLS context that trusts the server, for Gemini's Live sessions.

        Gemini's SDK opens a Live session at ``wss://`` (TLS) whatever its base URL says;
        the server answers such a connection in TLS, with a self-signed certificate made
        for the process. Give the SDK this context::

            genai.Client(api_key="test", http_options=types.HttpOptions(
                base_url=server.gemini_base_url, async_client_args={"ssl": server.tls_context}))
        """
        from miniagents.testing._tls import client_context

        return client_context()

    def compatible_base_url(self, server: str) -> str:
        """The ``base_url`` of an OpenAI-compatible server's dialect (e.g. ``"groq"``).

        For ``openai.AsyncOpenAI``: ``base_url + "/groq/v1"``; for ``"azure"``, the
        ``azure_endpoint`` of ``openai.AsyncAzureOpenAI`` (``base_url``).

        Raises:
            FakeLLMServerError: for a server the fake does not speak.
        """
        if server == "azure":
            return self.base_url
        if server not in COMPATIBLE_SERVERS:
            raise FakeLLMServerError(
                f"The fake LLM server speaks no server {server!r}: one of "
                f"{', '.join(COMPATIBLE_SERVERS)} or 'azure'."
            )
        return f"{self.base_url}/{server}/v1"

    @property
    def openai_realtime_url(self) -> str:
        """The ``websocket_base_url`` for ``openai.AsyncOpenAI`` (``ws://127.0.0.1:PORT/v1``).

        The SDK connects to ``{websocket_base_url}/realtime?model=...``; a client given
        :attr:`openai_base_url` alone reaches the same place.
        """
        return f"ws://{self._address[0]}:{self.port}/v1"

    @property
    def bedrock_base_url(self) -> str:
        """The ``endpoint_url`` of a ``bedrock-runtime`` client.

        As ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``; sign with ``AWS_TEST_CREDENTIALS``.
        """
        return self.base_url

    # -- script ----------------------------------------------------------------------------

    def reply(
        self,
        tokens: Sequence[str] | None = None,
        *,
        refusal: Sequence[str] | None = None,
        tool_calls: Sequence[ToolCall] = (),
        finish_reason: str | None = None,
        stop_sequence: str | None = None,
        usage: tuple[int, int] | None = None,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        thinking: Sequence[str] | None = None,
        redacted_thinking: str | None = None,
        thinking_order: ThinkingOrder = "first",
        token_delay: float = 0.0,
        delay: float = 0.0,
        model: str | None = None,
        for_model: str | None = None,
        headers: Mapping[str, str] | None = None,
        cut_after: int | None = None,
        reset: bool = False,
        omit_final: bool = False,
        malformed_after: int | None = None,
        error_event_after: int | None = None,
        failed_after: int | None = None,
        error_type: str | None = None,
        error_message: str | None = None,
        hang_after: int | None = None,
        pause_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Enqueue a successful reply for the next request(s).

        Args:
            tokens: The text pieces; one streamed event each (OpenAI: a chunk with
                ``delta.content``; Responses: a ``response.output_text.delta``; Anthropic:
                a ``content_block_delta`` ``text_delta``).
                The non-streamed reply holds their concatenation. ``None``: echo the last
                user message, split in words (no text when there are ``tool_calls``). A
                ``str`` is one token.
            refusal: The model refuses, with these pieces of text (a ``str`` is one
                piece), as each API says it: Chat Completions, ``refusal`` deltas (not
                streamed: ``message.refusal``, its ``content`` null); the Responses API, a
                ``refusal`` content part (``response.refusal.delta`` events, then
                ``response.refusal.done``); Anthropic, the pieces as the text, and
                ``stop_reason`` ``"refusal"`` (unless ``finish_reason`` says otherwise);
                Gemini and Bedrock, the pieces as the text, and the finish reason
                ``SAFETY`` / ``content_filtered``.
                ``tokens`` (OpenAI: text before the refusal) then default to none.
            tool_calls: Tool calls after the text, as the API sends them: OpenAI
                ``tool_calls`` (streamed: a chunk with the id and name, then the argument
                deltas); Anthropic ``tool_use`` blocks (streamed: ``input_json_delta``).
            finish_reason: In either vocabulary, translated for the endpoint: ``"stop"``
                <-> ``"end_turn"``, ``"length"`` <-> ``"max_tokens"``, ``"tool_calls"``
                <-> ``"tool_use"``, ``"content_filter"`` <-> ``"refusal"``; other values
                are sent as given. ``None``: ``"stop"`` / ``"end_turn"``, or
                ``"tool_calls"`` / ``"tool_use"`` with tool calls. The Responses API ends
                with ``response.completed`` for a normal end (tool calls included), else
                with ``response.incomplete`` and the reason in its words (``"length"``:
                ``"max_output_tokens"``; ``"content_filter"`` / ``"refusal"``:
                ``"content_filter"``).
            stop_sequence: Anthropic's ``stop_sequence`` field.
            usage: ``(input_tokens, output_tokens)``. ``None``: the number of words in the
                request's messages (and system), and the number of content events.
            cached_tokens: Input tokens read from the cache, part of ``usage``'s input:
                OpenAI ``cached_tokens`` (in ``prompt_tokens_details``; Responses:
                ``input_tokens_details``), Anthropic ``cache_read_input_tokens`` (its
                ``input_tokens`` then leave out the cache's reads and writes).
            cache_write_tokens: Input tokens written to the cache, part of ``usage``'s
                input: Anthropic ``cache_creation_input_tokens`` (OpenAI reports none).
            reasoning_tokens: Output tokens spent reasoning, part of ``usage``'s output:
                OpenAI ``reasoning_tokens`` (in ``completion_tokens_details``; Responses:
                ``output_tokens_details``); Anthropic reports none.
            thinking: The pieces of the model's thinking before the reply's text and
                calls (a ``str`` is one piece). Anthropic and Bedrock: a ``thinking``
                block (Bedrock: a ``reasoningContent`` block), signed with
                ``thinking_signature(text)`` (streamed: a ``thinking_delta`` per piece,
                then a ``signature_delta``; Bedrock: ``reasoningContent`` deltas of
                ``text``, then one of ``signature``); a request that sends it back with
                another signature is refused, as the API refuses one altered. Chat
                Completions: ``reasoning_content`` (streamed: a chunk per piece), as
                DeepSeek's and vLLM's servers send it; the Responses API: a ``reasoning``
                item's summary (streamed: a ``response.reasoning_summary_text.delta``
                per piece); Gemini: a part with ``"thought": true`` (streamed: a chunk
                per piece). None of these counts as a content event (``*_after``).
            redacted_thinking: Anthropic and Bedrock (others leave it out): the ``data``
                of a ``redacted_thinking`` block after the ``thinking`` one, if any
                (Bedrock: a ``reasoningContent`` block's ``redactedContent``, so base64).
            thinking_order: Where the thinking comes (redacted thinking with it), to test
                a client that must count or keep it in any order: ``"first"``, before the
                text and calls, as the APIs send it; ``"after_text"``, after the text (and
                refusal), before the calls (Anthropic and Bedrock: its blocks after the
                text's, numbered so; the Responses API: the reasoning item after the
                message; a whole reply's parts in the same order, where the API orders
                them); ``"with_text"``, Chat Completions and Gemini only: each piece beside a
                text token, in the same chunk (Chat: its delta's ``content`` and
                ``reasoning_content``, as some servers send them; Gemini: a text part and
                a thought part), the pieces beyond the tokens in chunks of their own after
                them, a whole reply's as with ``"after_text"`` (the other APIs, which have
                no such event, answer a request that takes such a reply with a 400 that
                says so).
            token_delay: Seconds to wait before each content event.
            delay: Seconds to wait before sending the status line (time to first byte).
            model: The model named in the response (``None``: the request's model).
            for_model: Only a request for this model takes this reply (the others take
                the items after it): to script concurrent calls of different agents.
            headers: Extra response headers.
            cut_after: Stream: after this many content events (text tokens, then argument
                deltas), close the connection without ending the chunked body (FIN; RST if
                ``reset``). Not streamed: send the headers and half of the body, then close.
            reset: With ``cut_after``: close with a TCP reset (SO_LINGER 0) instead.
            omit_final: Stream: end the body cleanly but without the final event(s):
                OpenAI: no ``finish_reason`` chunk, no usage chunk, no ``data: [DONE]``;
                Anthropic: no ``message_stop``.
            malformed_after: Stream: after this many content events, send a data line
                that is truncated JSON, then go on with the rest of the stream. Not
                streamed: send half of the body.
            error_event_after: Stream: after this many content events, send an error
                event (Anthropic: ``event: error``; OpenAI: ``data: {"error": {...}}``),
                then end the body cleanly.
            failed_after: Stream: after this many content events, fail the response, then
                end the body cleanly: the Responses API sends ``response.failed`` (status
                ``failed``, its ``error`` with ``error_type`` as the code and
                ``error_message``); the others send their error event. Not streamed: the
                Responses API answers with a response of status ``failed``.
            error_type: The error type of the error event, the error code of a Responses
                API ``error`` or ``response.failed`` event (``None``:
                ``"overloaded_error"`` / ``"server_error"``).
            error_message: The message of the error event.
            hang_after: Stream: after this many content events, send nothing more until
                the client closes the connection (recorded as ``client_disconnected``) or
                the server stops. Not streamed: hang before the status line.
            pause_after: Stream: after this many content events, wait until the test
                calls ``resume()`` on the request's record (see ``wait_paused``).
            times: Enqueue this reply this many times.

        A fault ``after=N`` with N >= the number of content events happens after the last
        one, before the final events; the preamble (OpenAI's role chunk; Anthropic's
        ``message_start``) is always sent first.

        Raises:
            FakeLLMServerError: if a usage detail is negative, or the cache's tokens are
                more than ``usage``'s input tokens; if a fault's count (``cut_after``,
                ``hang_after``, ...) is not a whole number of at least 0 (a negative one
                would never strike), a delay not a finite number of seconds of at least 0,
                ``thinking_order`` not one of its three, or ``times`` below 1.
        """
        details = (cached_tokens, cache_write_tokens, reasoning_tokens)
        if any(count < 0 for count in details) or (
            usage is not None
            and (cached_tokens + cache_write_tokens > usage[0] or reasoning_tokens > usage[1])
        ):
            raise FakeLLMServerError(
                "The usage details must be at least 0, the cache's tokens part of usage's "
                "input tokens and the reasoning tokens part of its output tokens; got "
                f"cached_tokens={cached_tokens}, cache_write_tokens={cache_write_tokens}, "
                f"reasoning_tokens={reasoning_tokens} for usage={usage}."
            )
        item = Reply(
            tokens=None if tokens is None else as_tokens(tokens),
            refusal=None if refusal is None else as_tokens(refusal),
            tool_calls=tuple(tool_calls),
            finish_reason=finish_reason,
            stop_sequence=stop_sequence,
            usage=usage,
            cached_tokens=cached_tokens,
            cache_write_tokens=cache_write_tokens,
            reasoning_tokens=reasoning_tokens,
            thinking=None if thinking is None else as_tokens(thinking),
            redacted_thinking=redacted_thinking,
            thinking_order=thinking_order,
            token_delay=token_delay,
            delay=delay,
            model=model,
            for_model=for_model,
            headers=dict(headers or {}),
            cut_after=cut_after,
            reset=reset,
            omit_final=omit_final,
            malformed_after=malformed_after,
            error_event_after=error_event_after,
            failed_after=failed_after,
            error_type=error_type,
            error_message=error_message,
            hang_after=hang_after,
            pause_after=pause_after,
        )
        self._enqueue(item, times)

    def speak(
        self,
        transcript: Sequence[str] | None = None,
        *,
        audio: Sequence[bytes] | None = None,
        ms_per_piece: int = 100,
        tool_calls: Sequence[ToolCall] = (),
        calls_first: bool = False,
        heard: str | Sequence[str] | None = None,
        heard_after: int | None = None,
        usage: LiveUsage | None = None,
        pace: float = 0.0,
        pause_after: int | None = None,
        error: str | None = None,
        error_code: str = "server_error",
        drop_after: int | None = None,
        close_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Enqueue the next reply of the model in a realtime session (OpenAI Realtime, Gemini Live).

        A realtime session's replies come from this script, one per reply (the user's turn
        ended, a ``response.create``, a text turn, a tool's output), apart from the HTTP
        script of :meth:`reply`; with none left, the model says ``"You said: ..."`` (what
        the user typed, or ``"(N ms of speech)"``). See ``miniagents.testing._live`` for
        how the fake hears the user: audio louder than a peak of 1000 is speech, and
        ``silence_duration_ms`` of quiet audio (the session's, 500 by default) ends it.

        Args:
            transcript: The pieces of the reply's transcript (a ``str`` is one piece); each
                comes with a piece of audio (OpenAI: an ``output_audio.delta`` and an
                ``output_audio_transcript.delta``; Gemini: an ``inlineData`` part and an
                ``outputTranscription``). In a text-only session, the text deltas.
            audio: The audio of each piece (16-bit PCM, 24 kHz); ``None``: a tone of
                ``ms_per_piece`` ms per piece.
            ms_per_piece: The length of each piece's tone.
            tool_calls: Tool calls after the pieces (OpenAI: ``function_call`` items with
                their argument deltas; Gemini: one ``toolCall`` of them all, answered by a
                reply of the model once each has its response, none if any was withdrawn).
            calls_first: Make the tool calls before the pieces (the model calls, then
                speaks), so that ``pause_after`` holds the reply with its calls made; cut
                short then, the reply's calls are withdrawn (OpenAI: its ``response.done``
                says ``cancelled``; Gemini: a ``toolCallCancellation`` of their ids).
            heard: What the user said, as the input transcription of the speech that this
                reply answers (``None``: ``"(N ms of speech)"``); a sequence of ``str``: the
                transcription's pieces, as Gemini may tell them (each an
                ``inputTranscription``, the last one ``finished``; OpenAI tells them
                joined, whole).
            heard_after: Tell that transcription only after this many pieces of the reply
                (as OpenAI may: its transcription runs apart from the reply, and comes before
                or after the reply's events); ``None`` (the default): before the reply.
            usage: The tokens the reply reports (``None``: counted from the conversation,
                10 audio tokens per second).
            pace: How fast the audio goes: 1.0 at real time (a piece of 100 ms every 100
                ms), 0.0 (the default) all at once.
            pause_after: Hold the reply after this many pieces until the user interrupts it
                (speech cancels it) or the test calls ``resume()`` on the session's record.
            error: Instead of the reply, fail, and close the connection as the API does
                after a fatal error: OpenAI starts the reply and ends it ``failed`` with the
                error (``response.created``, ``response.done``; not for ``session_expired``,
                no reply's error), sends an ``error`` event of ``error_code`` and this
                message, then closes with code 1011 (1001 for ``session_expired``);
                Gemini closes with code 1011 (1007 for an ``invalid...`` code) and this
                reason. The record's ``outcome`` is then ``"failed"``.
            error_code: The error's code (OpenAI: ``session_expired`` is said as an
                ``invalid_request_error`` of no client event, as the API says it).
            drop_after: Cut the connection (no close frame) after this many pieces.
            close_after: Close the connection after this many pieces with code 1000 (a
                normal close), as a server that ends a session mid-conversation does (the
                record's ``outcome`` is then ``"ended"``).
            times: Enqueue this reply this many times.

        Raises:
            FakeLLMServerError: if a count of pieces (``heard_after``, ``pause_after``,
                ``drop_after``) is not a whole number of at least 0, ``ms_per_piece`` or
                ``times`` below 1, ``pace`` negative or not finite, or ``heard`` neither a
                ``str`` nor a sequence of at least one.
        """
        pieces = _heard_pieces(heard)
        item = SpokenReply(
            transcript=None if transcript is None else as_tokens(transcript),
            audio=None if audio is None else tuple(audio),
            ms_per_piece=ms_per_piece,
            tool_calls=tuple(tool_calls),
            calls_first=calls_first,
            heard=heard if heard is None or isinstance(heard, str) else "".join(pieces),
            heard_pieces=pieces,
            heard_after=heard_after,
            usage=usage,
            pace=pace,
            pause_after=pause_after,
            error=error,
            error_code=error_code,
            drop_after=drop_after,
            close_after=close_after,
        )
        self._enqueue(item, times, "FakeLLMServer.speak()")

    def refuse_realtime(
        self, status: int = 401, message: str = "Incorrect API key provided."
    ) -> None:
        """Refuse the next realtime connection with an HTTP error at its upgrade."""
        self._enqueue(LiveRefusal(status, message), 1)

    def fail(
        self,
        status: int = 500,
        body: object = None,
        headers: Mapping[str, str] | None = None,
        *,
        message: str | None = None,
        delay: float = 0.0,
        for_model: str | None = None,
        times: int = 1,
    ) -> None:
        """Enqueue an HTTP error response for the next request(s).

        Args:
            status: The HTTP status (429, 500, 503, 529, ...).
            body: The JSON body (a ``str`` or ``bytes`` is sent as is). ``None``: the error
                body of the provider of the endpoint: OpenAI ``{"error": {"message", "type",
                "param", "code"}}``; Anthropic ``{"type": "error", "error": {"type",
                "message"}, "request_id"}`` (``rate_limit_error`` for 429, ``api_error`` for
                500/503, ``overloaded_error`` for 529, ...).
            headers: Extra response headers, e.g. ``FAST_RETRY`` or ``{"retry-after": "1"}``,
                ``{"x-should-retry": "false"}``.
            message: The error message in the default body.
            delay: Seconds to wait before responding.
            for_model: Only a request for this model takes this failure.
            times: Enqueue this failure this many times (e.g. 1 + max_retries).

        Raises:
            FakeLLMServerError: if ``status`` is not an int from 200 to 599, ``delay`` not
                a finite number of seconds of at least 0, or ``times`` below 1.
        """
        given: object = status  # (typed so; a test mypy does not check may pass anything)
        if not isinstance(given, int) or isinstance(given, bool) or not 200 <= given <= 599:
            raise FakeLLMServerError(
                f"FakeLLMServer.fail() takes an HTTP status, an int from 200 to 599 (e.g. 429 "
                f"or 500), not {given!r:.40}."
            )
        item = Failure(
            status=status,
            body=body,
            headers=dict(headers or {}),
            message=message,
            delay=delay,
            for_model=for_model,
        )
        self._enqueue(item, times, "FakeLLMServer.fail()")


def _heard_pieces(heard: object) -> tuple[str, ...]:
    """The pieces of ``speak(heard=...)`` (none for a ``str`` or ``None``: told whole).

    Raises:
        FakeLLMServerError: ``heard`` is neither a ``str`` nor a sequence of at least one.
    """
    if heard is None or isinstance(heard, str):
        return ()
    pieces = tuple(heard) if isinstance(heard, list | tuple) else ()
    if not pieces or not all(isinstance(piece, str) for piece in pieces):
        raise FakeLLMServerError(
            "FakeLLMServer.speak() takes heard= as the user's words (a str), or their "
            f"transcription's pieces (a list of at least one str), not {heard!r:.60}: pass "
            'e.g. heard=["Plan ", "my trip."].'
        )
    return pieces
