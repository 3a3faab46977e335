"""Google Gemini agents: ``gemini_agent`` and ``create_gemini_agent`` (the google-genai SDK).

The SDK is imported when a call is made; without it, the call fails with an
``LLMSDKMissingError`` (an ``ImportError``) that says ``pip install "miniagents[gemini]"``.
The client comes from ``async_client=`` (a ``google.genai.Client``, or its ``.aio``) or is
made from the environment, once per ``MiniAgents`` context, as the SDK reads it: the
Gemini Developer API with ``GEMINI_API_KEY`` (or ``GOOGLE_API_KEY``), or Vertex AI with
``GOOGLE_GENAI_USE_VERTEXAI=true`` and ``GOOGLE_CLOUD_PROJECT`` / ``GOOGLE_CLOUD_LOCATION``
(Google's application default credentials) or an API key; ``GOOGLE_GEMINI_BASE_URL`` and
``GOOGLE_VERTEX_BASE_URL`` point it elsewhere. Both APIs speak the same
``generateContent`` format::

    call:     system "Be brief." | user "What is this?" + image | call c1 | result c1
    request:  system_instruction="Be brief."
              {"role": "user", "parts": [{"text": ...}, {"inline_data": {...}}]}
              {"role": "model", "parts": [{"function_call": {...}, "thought_signature": ...}]}
              {"role": "user", "parts": [{"function_response": {"name", "id", "response"}}]}
    stream:   chunks (server-sent events of ``streamGenerateContent``): text parts are
              tokens, a ``function_call`` part is a whole call (Gemini sends no pieces),
              the last chunk has the ``finish_reason`` and the usage; a ``thought`` part
              (a summary of the model's thinking) is not kept, but counted toward
              ``MiniAgents(llm_max_turn_chars=...)`` in the turn's count, with the text and
              calls that the turn counts (see ``_turn_chars``)

Gemini gives a call no id unless it wants one (Vertex AI does): the agent then makes one.
The ``thought_signature`` of a call (Gemini 3 refuses a conversation that drops it) is
kept on the call's message (``LLMToolCallMessage.thought_signature``, base64: in a saved
history too), and sent back with it; for a call without one (a conversation from
elsewhere, an older history) it sends the value Google documents for that case.
Images are ``inline_data`` (bytes) or ``file_data`` (a URL: Vertex AI fetches ``gs://``
and http(s) ones; the Developer API, files it has uploaded). Structured output is
``response_json_schema`` with ``response_mime_type="application/json"``.

A reply that Gemini stops for safety (``SAFETY``, ``PROHIBITED_CONTENT``, ``BLOCKLIST``,
``SPII``, ``RECITATION``, ...) or a prompt it blocks (``prompt_feedback.block_reason``)
fails with an ``LLMRefusalError``, and is not retried. A reply that Gemini stops for
another reason than its end (``STOP``) or a token limit (``MAX_TOKENS``, ``CONTINUATION``)
is no answer: it fails with the error its reason calls for, naming it
(``MALFORMED_FUNCTION_CALL``, ``UNEXPECTED_TOOL_CALL``, ``OTHER``, ...: an
``LLMResponseError``).

An error chunk in a streamed reply (``{"error": {"code", "status", "message"}}``, raised
by the SDK as its ``APIError``) is what its HTTP status says before the reply's first
token (a 503 an ``LLMServerError``, a 429 an ``LLMRateLimitError``: retryable); after a
token it is an ``LLMResponseError``, as on every provider: part of the reply reached its
readers (``sdk_errors.reported_error``).

The SDK retries nothing unless told (``max_retries``); ``timeout`` bounds each request.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import importlib
import json
import mimetypes
import sys
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, ParamSpec
from weakref import WeakSet

import pydantic

from miniagents.ext.llm._turn_chars import TurnCount, count_reasoning
from miniagents.ext.llm.errors import (
    LLMAuthenticationError,
    LLMConfigurationError,
    LLMError,
    LLMRateLimitError,
    LLMRequestError,
    LLMResponseError,
    LLMServerError,
)
from miniagents.ext.llm.llm_agent import AnyLLMAgent, LLMAgent
from miniagents.ext.llm.messages import AssistantMessage
from miniagents.ext.llm.prompt import ConversationRules, PromptText, arguments_object, turns_for
from miniagents.ext.llm.provider import (
    Finish,
    LLMCall,
    LLMEvent,
    ToolCallDelta,
    ToolCallStart,
    call_option,
    check_sampling,
)
from miniagents.ext.llm.sdk_calls import (
    SDKOptions,
    base_url_source,
    check_base_url,
    check_one_reply,
    import_sdk,
    tool_declaration,
)
from miniagents.ext.llm.sdk_errors import (
    made_error,
    reported_error,
    transient_status,
    translate_transport_error,
)
from miniagents.ext.tools.messages import ToolCallMessage
from miniagents.miniagents.context import MiniAgents

if TYPE_CHECKING:
    from google import genai

    from miniagents.ext.llm.llm_agent import ForkArguments, TypedFork

__all__ = [
    "REFUSAL_REASONS",
    "GeminiAgent",
    "GeminiMessage",
    "GeminiOptions",
    "GeminiProvider",
    "create_gemini_agent",
    "gemini_agent",
    "on_vertex_ai",
]

REFUSAL_REASONS: Final = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",
        "JAILBREAK",
        "ESCALATION",
    }
)
"""The finish (and prompt block) reasons of a reply that Gemini withheld: a refusal."""

_CALL_AGAIN = "Call it again, or fall back to another model"

_FAILED: dict[str, tuple[type[LLMError], str]] = {
    "MALFORMED_FUNCTION_CALL": (
        LLMResponseError,
        "the model wrote a function call that could not be parsed. "
        f"{_CALL_AGAIN}, or give the tools simpler parameters.",
    ),
    "UNEXPECTED_TOOL_CALL": (
        LLMResponseError,
        "the model called a function that the request did not declare (or with function "
        f"calling off). {_CALL_AGAIN}, or give the agent the tool it called.",
    ),
    "TOO_MANY_TOOL_CALLS": (
        LLMResponseError,
        "the model made too many tool calls in one request, and Gemini's own tool loop "
        f"stopped before an answer. {_CALL_AGAIN}, or ask for less in one request.",
    ),
    "MALFORMED_RESPONSE": (LLMResponseError, f"the response was malformed. {_CALL_AGAIN}."),
    "MISSING_THOUGHT_SIGNATURE": (
        LLMRequestError,
        "a tool call of the conversation lacked its thought signature. Send the calls "
        "as the agent gave them (LLMToolCallMessage keeps each one's thought_signature).",
    ),
    "LANGUAGE": (
        LLMResponseError,
        "the reply was flagged for a language Gemini does not support. Ask in a "
        "supported language.",
    ),
    "NO_IMAGE": (
        LLMResponseError,
        f"the model was to make an image and made none. {_CALL_AGAIN}.",
    ),
    "IMAGE_OTHER": (
        LLMResponseError,
        f"the image generation stopped for a reason Gemini does not say. {_CALL_AGAIN}.",
    ),
    "OTHER": (
        LLMResponseError,
        f"the model stopped for a reason Gemini does not say. {_CALL_AGAIN}.",
    ),
    "FINISH_REASON_UNSPECIFIED": (
        LLMResponseError,
        f"Gemini gave no reason. {_CALL_AGAIN}.",
    ),
    "PUP_LIMITED_DISABLED": (
        LLMAuthenticationError,
        "the account is limited or disabled for violations of Google's Prohibited Use "
        "Policy. See the account's status in Google AI Studio, or use another account.",
    ),
}
"""The finish reasons of a reply that is no answer, with the error each calls for and what
it says (Gemini ends a reply for any other reason with ``STOP``, ``MAX_TOKENS`` or
``CONTINUATION``, or with a refusal's: :data:`REFUSAL_REASONS`)."""

_RENAMED = {"max_tokens": "max_output_tokens"}
"""The typed options Gemini names otherwise."""

_UNKNOWN_SIGNATURE = base64.urlsafe_b64decode("skip_thought_signature_validator")
"""The thought signature Google documents for a call whose own signature is not known."""


class GeminiMessage(AssistantMessage):
    """A reply of a Gemini model."""


@dataclass(frozen=True, kw_only=True)
class GeminiOptions(SDKOptions):
    """The arguments of ``gemini_agent``: those of every LLM agent, and Gemini's own.

    The call options are fields of the SDK's ``GenerateContentConfig`` (``max_tokens`` is
    sent as its ``max_output_tokens``); any other field of it goes in ``extra_options``,
    by its SDK name (e.g. ``{"safety_settings": [...], "thinking_config": {...}}``).

    Attributes:
        model: The model, e.g. "gemini-2.5-flash" (required).
        async_client: A ``google.genai.Client`` (or its ``.aio``) instead of the default one.
        max_tokens: The most tokens the reply may have (``max_output_tokens``).
        temperature: The sampling temperature, from 0 to 2: higher is more random.
        top_k: Sample only from this many most likely tokens.
        stop_sequences: Texts at which the model stops.
        seed: A seed, so that repeated calls sample alike (as far as the service can).
        presence_penalty: From -2 up to, but not including, 2: higher makes new topics
            more likely.
        frequency_penalty: From -2 up to, but not including, 2: higher makes repeated
            tokens less likely.
        max_retries: How many times the SDK retries a request that failed with HTTP 408,
            429 or 5xx, or a broken connection, before its reply began (with backoff from
            1 s); ``None``: the client's own setting (no retry unless the client was made
            with ``HttpRetryOptions``).
        timeout: Seconds the SDK waits for each request before it fails with an
            ``LLMTimeoutError``; ``None``: the client's own setting.
    """

    client_classes = ("google.genai.Client", "google.genai.client.AsyncClient")
    sdk_name = "Gemini"
    most_temperature = 2

    async_client: genai.Client | genai.client.AsyncClient | None = None
    max_tokens: int | None = call_option(None)
    top_k: int | None = call_option(None)
    stop_sequences: Sequence[str] | None = call_option(None)
    seed: int | None = call_option(None)
    presence_penalty: float | None = call_option(None)
    frequency_penalty: float | None = call_option(None)

    def check(self, alias: str) -> None:
        """Refuse an argument of the wrong kind: every LLM agent's, and Gemini's own.

        Raises:
            LLMConfigurationError: for one of the wrong kind, naming it and the fix.
        """
        super().check(alias)
        check_sampling(
            alias,
            max_tokens=self.max_tokens,
            top_k=self.top_k,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
            penalties_below_2=True,
        )


class GeminiProvider:
    """Streams replies of Gemini's ``generateContent`` (see ``LLMProvider``)."""

    message_class = GeminiMessage
    price_provider = "google"  # whose prices it pays (see miniagents.ext.llm.pricing)
    provider_name = "gcp.gemini"  # the OpenTelemetry GenAI conventions' name (Developer API)

    def provider_name_for(self, options: GeminiOptions) -> str:
        """The call's ``gen_ai.provider.name``: ``gcp.vertex_ai`` on Vertex AI, else ``gcp.gemini``.

        Its client (``async_client``, else the context's, made from the environment as the
        call makes it) says which API it calls; without one (no key, no SDK), the call
        fails, and its span names the Developer API.
        """
        try:
            client = _sdk_client(options)
        except (LLMError, ImportError):
            return self.provider_name
        return "gcp.vertex_ai" if on_vertex_ai(client) else self.provider_name

    @staticmethod
    def client(options: GeminiOptions) -> Any:
        """The async client a call with ``options`` uses (batch mode sends through a copy).

        It is ``async_client`` (its ``.aio`` for a ``genai.Client``), else the context's.
        """
        return _client(options)

    async def reply(self, call: LLMCall, options: GeminiOptions) -> AsyncIterator[LLMEvent]:
        """Stream the reply's tokens and calls, then one ``Finish``."""
        models = _client(options).models
        config = _config(call, options)
        contents = _contents(call)
        if not call.stream:
            response = await models.generate_content(
                model=call.model, contents=contents, config=config
            )
            calls = _Calls()
            text: list[str] = []
            events = [event for event in calls.events(response) if not _text(event, text)]
            calls.check_reason()
            yield "".join(text)
            for event in events:
                yield event
            yield calls.finish(response)
            return
        stream = await models.generate_content_stream(
            model=call.model, contents=contents, config=config
        )
        del models, config, contents  # (not held while it streams)
        calls = _Calls()
        last: Any = None
        begun = False  # whether the reply's first token (a text, a call) came
        try:
            async for chunk in stream:
                last = chunk
                events = calls.events(chunk)
                begun = begun or bool(events)
                if not events:
                    yield ""  # nothing for the reply (thinking, the usage): a sign of life
                for event in events:
                    yield event
        except Exception as error:
            await _let_go_of_response(error)
            if begun and (said := _error_chunk(error)) is not None:  # (the reply broke)
                raise reported_error("Gemini", *said) from error
            raise
        finally:
            response = _streamed_response(stream)  # (read part-way: stopped, or failed)
            await stream.aclose()
            if response is not None:  # the SDK's close leaves it to the collector: close it
                await response.aclose()
        if last is None or calls.reason is None:
            raise LLMResponseError(
                "The Gemini stream ended before its last chunk (the reply is incomplete): no "
                "chunk gave a finish_reason."
            )
        calls.check_reason()
        yield calls.finish(last)

    def translate(self, error: BaseException) -> BaseException:
        """The ``LLMError`` for an error of the Gemini SDK (or its HTTP client), else ``error``."""
        return translate_gemini_error(error)


def _error_chunk(error: BaseException) -> tuple[str, str | None] | None:
    """The message and status of an error chunk that the SDK raised, else ``None``.

    Before the reply's first token, such an error is what its HTTP status says (see
    :func:`translate_gemini_error`: a 503 a server error, a 429 a rate limit, retryable);
    after one, the reply broke (``sdk_errors.reported_error``: an ``LLMResponseError``).
    """
    errors = sys.modules.get("google.genai.errors")
    if errors is None or not isinstance(error, errors.APIError):
        return None
    status = error.status if isinstance(error.status, str) else None
    return (error.message or str(error)), status


async def _let_go_of_response(error: BaseException) -> None:
    """Close the SDK's read of the HTTP response that an error of its stream holds.

    The SDK raises an error chunk's ``APIError`` with its ``response``, whose segment
    iterator, left suspended, holds the HTTP response open and the HTTP client's generators
    under it, as long as the error is kept (a durable run records it, a caller keeps it);
    closed here, they are closed now, on the loop, and the connection goes back to its pool.
    """
    segments = getattr(getattr(error, "response", None), "segment_iterator", None)
    close = getattr(segments, "aclose", None)
    if close is not None:
        await close()


def _streamed_response(stream: object) -> Any:
    """The HTTP response a Gemini stream that has not ended reads, if it can be found.

    google-genai reads it through a chain of its async generators, the last of which
    (its ``HttpResponse``'s ``async_segments``) is kept by the response itself, a cycle:
    closing the stream closes the generators above it but leaves the response, and its
    connection, to the collector. It is found through the generators' frames (each holds
    the next one in a local, the last the SDK's ``HttpResponse``, whose ``response_stream``
    is the HTTP client's response).
    """
    generators = [stream]
    for generator in generators:  # (the list grows as it is walked)
        frame = getattr(generator, "ag_frame", None)
        for value in () if frame is None else frame.f_locals.values():
            http = getattr(value, "response_stream", None)
            if callable(getattr(http, "aclose", None)):
                return http
            if isinstance(value, AsyncGenerator) and len(generators) < _MOST_GENERATORS:
                generators.append(value)
    return None


_MOST_GENERATORS = 16
"""The SDK's generators walked, at most, to find the response a stream reads (it has 4)."""


def on_vertex_ai(client: object) -> bool:
    """Whether a client of the SDK (a ``genai.Client`` or its ``.aio``) calls Vertex AI."""
    flag = getattr(client, "vertexai", None)  # a genai.Client's
    if flag is None:  # its .aio (an AsyncClient) keeps the flag on its API client
        flag = getattr(getattr(client, "_api_client", None), "vertexai", None)
    return flag is True


def _text(event: LLMEvent, text: list[str]) -> bool:
    """Keep ``event``'s text in ``text`` (whether it was a text)."""
    if isinstance(event, str):
        text.append(event)
        return True
    return False


class _Calls:
    """What a reply's chunks said so far: its calls, its finish reason, its thoughts' count.

    Its count is the turn's, from its first thought part on (a thought part is a sign of
    life, not kept: counted, so that a stream of thoughts without end ends; the turn counts
    the text and calls).
    """

    def __init__(self) -> None:
        self.count = 0
        self.reason: str | None = None
        self.counted: TurnCount | None = None

    def events(self, chunk: Any) -> list[LLMEvent]:
        """The events of one chunk: its text parts, its calls.

        Raises:
            LLMResponseError: ``too_long()``'s, past the turn's bound (thoughts counted).
        """
        events: list[LLMEvent] = []
        feedback = chunk.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            self.reason = "refusal"  # the prompt was blocked: no candidate comes
            return events
        candidates = chunk.candidates
        if not candidates:
            return events
        candidate = candidates[0]
        content = candidate.content
        for part in (content.parts if content is not None else None) or ():
            if part.thought:  # a summary of the model's thinking: not the answer
                if part.text:
                    self.counted = count_reasoning(self.counted, len(part.text))
                continue
            if part.text:
                events.append(part.text)
            called = part.function_call
            if called is not None:
                self.count += 1
                call_id = called.id or f"gemini-call-{_serial()}"
                signed = part.thought_signature
                signature = base64.b64encode(signed).decode("ascii") if signed else None
                events.append(
                    ToolCallStart(call_id, called.name or "", thought_signature=signature)
                )
                arguments = json.dumps(called.args or {})
                events.append(ToolCallDelta(call_id, arguments))
        reason = candidate.finish_reason
        if reason is not None:
            name = getattr(reason, "value", str(reason))
            self.reason = "refusal" if name in REFUSAL_REASONS else name
        return events

    def check_reason(self) -> None:
        """Refuse a reply that Gemini stopped for a reason that makes it no answer.

        Raises:
            LLMError: the one its reason calls for (see :data:`_FAILED`), naming it.
        """
        failed = _FAILED.get(self.reason or "")
        if failed is not None:
            raise _no_answer(str(self.reason), *failed)

    def finish(self, last: Any) -> Finish:
        """The ``Finish`` of the reply whose last chunk is ``last``."""
        usage = last.usage_metadata
        given = output = cached = reasoning = None
        if usage is not None:
            given = usage.prompt_token_count
            if given is not None and usage.tool_use_prompt_token_count:
                given += usage.tool_use_prompt_token_count
            reasoning = usage.thoughts_token_count
            candidates = usage.candidates_token_count
            if candidates is not None or reasoning is not None:
                output = (candidates or 0) + (reasoning or 0)
            cached = usage.cached_content_token_count
        return Finish(
            self.reason,
            given,
            output,
            cached,
            None,  # Gemini reports no cache writes
            reasoning,
            model=last.model_version,
            response_id=last.response_id,
        )


def _no_answer(reason: str, kind: type[LLMError], what: str) -> LLMError:
    """The error of a reply that Gemini stopped for ``reason``, saying ``what`` it means."""
    return kind(f"Gemini stopped the reply with the finish reason {reason}: {what}")


def _serial() -> str:
    """A new call id's unique part (for a call Gemini gave no id)."""
    return uuid.uuid4().hex[:16]


def _client(options: GeminiOptions) -> Any:
    """The async client of a call: ``async_client``'s, else the context's.

    Raises:
        LLMSDKMissingError: without the SDK (and no client given).
        LLMAuthenticationError: with no key nor Vertex AI project in the environment.
        LLMConfigurationError: for a base URL that is no http(s) URL.
    """
    given = _sdk_client(options)
    try:
        checked = given in _CHECKED
    except TypeError:  # (not weakly referable: checked each time)
        checked = False
    if not checked:  # (once per client)
        _check_url(given, options.async_client is not None)
        with contextlib.suppress(TypeError):
            _CHECKED.add(given)
    aio = getattr(given, "aio", None)
    return given if aio is None else aio


_CHECKED: WeakSet[Any] = WeakSet()
"""The clients whose base URL was checked."""


def _check_url(client: Any, given: bool) -> None:
    """Refuse a client whose base URL is no http(s) URL, naming where it was set.

    Raises:
        LLMConfigurationError: for such a URL (the SDK's own error is a broken connection).
    """
    api = getattr(client, "_api_client", None)
    url = getattr(getattr(api, "_http_options", None), "base_url", None)
    if not isinstance(url, str):  # (a stand-in for the SDK's client: nothing to check)
        return
    vertex = bool(getattr(api, "vertexai", False))
    variable = "GOOGLE_VERTEX_BASE_URL" if vertex else "GOOGLE_GEMINI_BASE_URL"
    check_base_url(url, "gemini_agent", base_url_source(variable, given=given))


def _sdk_client(options: GeminiOptions) -> Any:
    """``async_client`` (a ``genai.Client`` or its ``.aio``), else the context's client.

    Raises:
        LLMSDKMissingError: without the SDK (and no client given).
        LLMAuthenticationError: with no key nor Vertex AI project in the environment.
    """
    given: Any = options.async_client
    if given is None:
        genai = import_sdk("google.genai", "Gemini")
        given = MiniAgents.get_current().resource(
            "gemini-client", lambda: _client_from_environment(genai), _close
        )
    return given


def _client_from_environment(genai: Any) -> Any:
    """The SDK's client from the environment, sending through httpx (see ``_transport``).

    It follows no redirect: the SDK's HTTP client would follow one to any host with the
    API key (httpx takes only ``Authorization`` off a request sent to another host, and
    the key goes as ``x-goog-api-key``); an API that redirects answers with an error.
    """
    arguments = {"transport": _transport(), "follow_redirects": False}
    try:
        return genai.Client(http_options={"async_client_args": arguments})
    except ValueError as error:  # the SDK's words for a missing key or project
        raise LLMAuthenticationError(
            "No Gemini API key: set GEMINI_API_KEY (or GOOGLE_API_KEY) for the Gemini "
            "Developer API, or GOOGLE_GENAI_USE_VERTEXAI=true with GOOGLE_CLOUD_PROJECT and "
            "GOOGLE_CLOUD_LOCATION for Vertex AI, or pass async_client=genai.Client(...) to "
            f"the agent ({error})."
        ) from error


def _transport() -> Any:
    """An httpx transport of the HTTP client the SDK depends on (httpx2, or httpx before).

    Given one, the SDK sends through httpx, as it does without aiohttp; otherwise it would
    send through aiohttp when that is installed (aiobotocore, for one, brings it), and
    subclass aiohttp's session, which aiohttp warns against (an error under ``-W error``).
    """
    try:
        http: Any = importlib.import_module("httpx2")
    except ImportError:  # an SDK of before httpx2
        http = importlib.import_module("httpx")
    return http.AsyncHTTPTransport()


async def _close(client: Any) -> None:
    await client.aio.aclose()


def _config(call: LLMCall, options: GeminiOptions) -> Any:
    """The ``GenerateContentConfig`` of the call: its options, system prompt, tools, schema.

    It is made of ``_config_class()``, which the SDK reads about 2,300 Python calls faster.

    Raises:
        LLMConfigurationError: for an ``extra_options`` entry that is no field of it.
        LLMRequestError: for an option of a type the SDK's config does not take.
    """
    config_class = _config_class()
    fields = config_class.model_fields
    config: dict[str, Any] = {}
    for name, value in options.typed_call_options().items():
        config[_RENAMED.get(name, name)] = value
    for name, value in (options.extra_options or {}).items():
        if name not in fields:
            raise LLMConfigurationError(
                f"The Gemini SDK's GenerateContentConfig has no field {name!r} (given in "
                "extra_options). Check its spelling: the fields are the SDK's snake_case "
                "names, e.g. extra_options={'safety_settings': [...]}."
            )
        config[name] = value
    check_one_reply(config, "candidate_count", "Gemini")
    if call.system:
        config["system_instruction"] = call.system
    if call.tools:
        declarations = [
            tool_declaration(tool, parameters_json_schema=tool.parameters) for tool in call.tools
        ]
        config["tools"] = [*config.get("tools", ()), {"function_declarations": declarations}]
    # the agent runs the tools: the SDK's own loop (for Python functions) stays off
    config.setdefault("automatic_function_calling", {"disable": True})
    if call.output_format is not None:
        config["response_mime_type"] = "application/json"
        config["response_json_schema"] = dict(call.output_format.schema)
    http: dict[str, Any] = {}
    if options.timeout is not None:
        http["timeout"] = max(1, round(options.timeout * 1000))  # milliseconds
    if options.max_retries is not None:
        http["retry_options"] = {"attempts": options.max_retries + 1}
    if http:
        given = config.get("http_options")
        config["http_options"] = {**(given if isinstance(given, Mapping) else {}), **http}
    try:
        return config_class(**config)
    except pydantic.ValidationError as error:
        renamed = {sdk: ours for ours, sdk in _RENAMED.items()}
        problems = "; ".join(
            f"{'.'.join(renamed.get(str(part), str(part)) for part in problem['loc'])}: "
            f"{problem['msg']} (got {problem['input']!r})"
            for problem in error.errors()
        )
        raise LLMRequestError(
            f"The Gemini SDK refused the call's options: {problems}. Give each option a "
            "value of its type, e.g. gemini_agent.fork(temperature=0.5, max_tokens=1024)."
        ) from error


@functools.cache
def _config_class() -> Any:
    """The SDK's ``GenerateContentConfig`` with a membership test that builds no list (made once).

    google-genai reads a config's fields by path, asking ``name in config`` first. A pydantic
    model has no ``__contains__``, so Python answers by iterating it: a list of every field's
    ``(name, value)`` pair (about 70) for each of some 20 lookups a call, about 2,300 calls
    and a third of a millisecond before the first token. A name is never one of those pairs,
    so the answer is always ``False``: this class gives it at once, and the SDK goes on to
    read the field as an attribute, as it does today.
    """
    from google.genai import types

    class _Config(types.GenerateContentConfig):
        def __contains__(self, key: object) -> bool:
            return False

    return _Config


def _contents(call: LLMCall) -> list[dict[str, Any]]:
    """The conversation in Gemini's terms, a content per turn (see the module, ``turns_for``).

    Gemini's roles are ``user`` and ``model``, alternating from the user's (a turn of
    function calls must follow the user's turn or the function responses): a turn of tool
    calls is the model's content (``function_call`` parts after its text, if any), their
    results ``function_response`` parts of the user's next content, first.
    """
    contents: list[dict[str, Any]] = []
    for turn in turns_for(call.messages, _CONVERSATION):
        parts: list[dict[str, Any]] = []
        called = False  # whether the turn has a call yet (its first carries the signature)
        for item in turn.items:
            if isinstance(item, PromptText):
                parts += _parts(item)
            elif isinstance(item, ToolCallMessage):
                function_call = {
                    "name": item.tool_name,
                    "args": arguments_object(item),
                    "id": item.call_id,
                }
                part: dict[str, Any] = {"function_call": function_call}
                signature = _signature(item)
                if signature is not None or not called:
                    part["thought_signature"] = signature or _UNKNOWN_SIGNATURE
                called = True
                parts.append(part)
            else:
                response = {"error": item.text} if item.is_error else {"result": item.text}
                answered = {"name": item.tool_name, "id": item.call_id, "response": response}
                parts.append({"function_response": answered})
        if parts:
            contents.append(
                {"role": "model" if turn.role == "assistant" else "user", "parts": parts}
            )
    return contents


def _signature(item: ToolCallMessage) -> bytes | None:
    """The thought signature a call's message keeps (an ``LLMToolCallMessage``'s), if any."""
    signature = getattr(item, "thought_signature", None)
    if not isinstance(signature, str):
        return None
    try:
        return base64.b64decode(signature, validate=True)
    except ValueError:  # (binascii.Error) not base64: a field of another meaning
        return None


_CONVERSATION = ConversationRules()
"""What Gemini takes: user and model turns, alternating from the user's, no blank text."""


def _parts(item: PromptText) -> list[dict[str, Any]]:
    """A message's parts: its text, then its images."""
    parts: list[dict[str, Any]] = [{"text": item.text}] if item.text else []
    for image in item.images:
        if image.data is None:
            given: dict[str, Any] = {"file_uri": image.url}
            # Gemini wants the file's media type: the image's, else its URL's extension's
            media_type = image.media_type or mimetypes.guess_type(image.url or "")[0]
            if media_type:
                given["mime_type"] = media_type
            parts.append({"file_data": given})
        else:
            parts.append({"inline_data": {"mime_type": image.media_type, "data": image.data}})
    return parts


# -- errors --------------------------------------------------------------------------------

_BY_STATUS: dict[int, tuple[type[LLMError], str]] = {
    401: (LLMAuthenticationError, "refused the API key"),
    403: (LLMAuthenticationError, "refused the credentials for this request"),
    429: (LLMRateLimitError, "refused the request for its rate limit or quota"),
}


def translate_gemini_error(error: BaseException) -> BaseException:
    """The ``LLMError`` for an error of the Gemini SDK or its HTTP client, else ``error``.

    ``ClientError`` (4xx) and ``ServerError`` (5xx) by their status: 429 a rate limit,
    401 and 403 (and a 400 for an invalid API key) authentication, 408 (as
    ``sdk_errors.transient_status`` says) and 504 a timeout, another 4xx (409 too, which
    Gemini's SDK does not retry) a refused request, another 5xx a server error; a chunk
    the SDK cannot parse a malformed response; aiohttp's and httpx's errors a broken
    connection or a timeout.
    """
    errors = sys.modules.get("google.genai.errors")
    if errors is None or not isinstance(error, errors.APIError | errors.UnknownApiResponseError):
        return translate_transport_error(error, "Gemini")
    if isinstance(error, errors.UnknownApiResponseError):
        return made_error(LLMResponseError, f"Gemini sent a malformed response: {error}", error)
    said = error.message or str(error)
    status = error.code
    if status == 400 and "API key" in said:
        return made_error(LLMAuthenticationError, f"Gemini refused the API key: {said}", error)
    if status in _BY_STATUS:
        kind, what = _BY_STATUS[status]
        return made_error(kind, f"Gemini {what}: {said}", error)
    # 408 and 504 are what transient_status says for every SDK (timeouts); a 409 is not:
    # Gemini's SDK retries 408, 429 and 5xx only, so a 409 is no conflict "kept" after retries, and
    # stays a refused request as any other 4xx
    if status != 409 and (transient := transient_status(status)) is not None:
        return made_error(transient[0], f"Gemini {transient[1]} (HTTP {status}): {said}", error)
    if isinstance(status, int) and status >= 500:
        return made_error(
            LLMServerError, f"Gemini failed with a server error ({status}): {said}", error
        )
    if isinstance(status, int) and status >= 400:
        return made_error(LLMRequestError, f"Gemini refused the request ({status}): {said}", error)
    return made_error(LLMResponseError, f"Gemini sent an error: {said}", error)


P = ParamSpec("P")


if TYPE_CHECKING:

    @dataclass(frozen=True, kw_only=True)
    class _GeminiFork(GeminiOptions, ForkArguments):
        """What ``gemini_agent.fork`` takes: its arguments, and a fork's name and limits."""


class GeminiAgent(LLMAgent[P, GeminiMessage], AnyLLMAgent[GeminiMessage]):
    """The class of ``gemini_agent`` and its forks, an ``AnyLLMAgent`` (see ``llm_agent``)."""

    __slots__ = ()

    if TYPE_CHECKING:
        fork = TypedFork(_GeminiFork)  # type: ignore[assignment]  # (see TypedFork)


gemini_agent = GeminiAgent.of(
    GeminiOptions,
    GeminiProvider(),
    alias="GEMINI_AGENT",
    summary="A Gemini model: the input messages are the prompt, the reply streams back.",
)
"""A Google Gemini model (Developer API or Vertex AI): the input messages are the prompt."""

create_gemini_agent = gemini_agent.bind
"""A Gemini agent with arguments bound: ``gemini_agent.fork(...)``, with the arguments typed."""
