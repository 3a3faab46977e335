"""The one place where the errors of the provider SDKs become MiniAgents errors.

Both SDKs (OpenAI's and Anthropic's) share one error hierarchy, by class name; each SDK
error is matched against this table, most specific first::

    HTTP 408              -> LLMTimeoutError      (the server's own timeout: transient)
    HTTP 504              -> LLMTimeoutError      (a gateway's timeout: transient)
    HTTP 409              -> LLMServerError       (a conflict the SDK retries: transient)
    RateLimitError        -> LLMRateLimitError
    APITimeoutError       -> LLMTimeoutError
    APIConnectionError    -> LLMConnectionError
    InternalServerError   -> LLMServerError       (5xx, overloaded)
    AuthenticationError   -> LLMAuthenticationError
    PermissionDeniedError -> LLMAuthenticationError
    APIStatusError        -> LLMRequestError      (any other HTTP error status)
    APIResponseValidationError -> LLMResponseError (a reply of another shape than the
                             API's, refused by a client made with strict validation)
    APIError              -> LLMResponseError     (e.g. an error event mid-stream)
    the SDK's base error  -> LLMError
    json.JSONDecodeError  -> LLMResponseError     (a malformed event)
    UnicodeEncodeError    -> LLMRequestError      (a prompt that is not valid Unicode)
    a NaN or infinity     -> LLMRequestError      (json.dumps' "not JSON compliant")
    an HTTP client error  -> LLMTimeoutError or LLMConnectionError (the Anthropic SDK lets
                             httpx2's errors out of a broken stream unwrapped; the Gemini
                             and Bedrock SDKs, aiohttp's)
    an error event        -> decided where the provider's reply catches it (see below):
                             the Anthropic SDK's, a status error with status 200, never
                             reaches this table

Bedrock's errors (botocore's) are translated in :mod:`miniagents.ext.llm.bedrock`, with
HTTP 408, 409 and 504 decided here (:func:`transient_status`); Gemini's in
:mod:`miniagents.ext.llm.gemini`, with 408 and 504 decided here (its SDK does not retry a
409, which stays a refused request).

An error event in a streamed reply is decided here for every provider, by one rule
(:func:`reported_error`): before the reply's first token (its first text, or a tool call),
an event that stands for a transient HTTP status (an overloaded API, a server's failure, a
rate limit) is the error that status would have been, an ``LLMServerError`` or an
``LLMRateLimitError`` (which a pipeline's ``retry_on`` may retry: nothing was streamed
yet); after a token, or for any other event, it is an ``LLMResponseError``: part of the
reply already reached its readers, and a call again would give that part twice. The
provider says whether its reply has begun; the event is one the SDK raises (OpenAI's and
Anthropic's, found by :func:`raised_event`), yields (the Responses API's ``error`` and
``response.failed``), or an exception of Bedrock's event stream; Gemini's error chunk after
a token too (before one, its HTTP status decides, in :mod:`miniagents.ext.llm.gemini`).
"""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
from collections.abc import AsyncIterable

from miniagents.ext.llm.errors import (
    LLMAuthenticationError,
    LLMConnectionError,
    LLMError,
    LLMRateLimitError,
    LLMRequestError,
    LLMResponseError,
    LLMServerError,
    LLMTimeoutError,
)

__all__ = [
    "adrain_closed",
    "let_go_of_frames",
    "made_error",
    "raised_event",
    "reported_error",
    "transient_status",
    "translate_loaded_sdk_error",
    "translate_sdk_error",
    "translate_transport_error",
]

_TRANSPORTS = frozenset({"httpx", "httpx2", "httpcore", "httpcore2", "h11", "aiohttp"})

_TABLE: tuple[tuple[str, type[LLMError], str], ...] = (
    ("RateLimitError", LLMRateLimitError, "kept refusing the request for its rate limit"),
    ("APITimeoutError", LLMTimeoutError, "did not answer in time"),
    ("APIConnectionError", LLMConnectionError, "could not be reached, or the connection broke"),
    ("InternalServerError", LLMServerError, "kept failing with a server error"),
    ("AuthenticationError", LLMAuthenticationError, "refused the API key"),
    ("PermissionDeniedError", LLMAuthenticationError, "refused the API key for this request"),
    ("APIStatusError", LLMRequestError, "refused the request"),
    (
        "APIResponseValidationError",
        LLMResponseError,
        "sent a reply that the client's strict validation refused (check its base_url)",
    ),
    ("APIError", LLMResponseError, "sent an error instead of the rest of the reply"),
)


_TRANSIENT: dict[object, tuple[type[LLMError], str]] = {
    408: (LLMTimeoutError, "did not answer in time"),
    409: (LLMServerError, "kept failing with a conflict"),
    504: (LLMTimeoutError, "did not answer in time"),
}
"""The HTTP statuses that the SDKs retry as transient, besides 429 and 5xx, and the 5xx
that is a timeout rather than a server's failure (504, a gateway's timeout)."""


def transient_status(status: object) -> tuple[type[LLMError], str] | None:
    """The error of an HTTP status that is transient besides 429 and 5xx, or a 504; what it says.

    The one place that decides what HTTP 408 (a timeout, ``LLMTimeoutError``), 409 (a
    conflict, ``LLMServerError``) and 504 (a gateway's timeout, ``LLMTimeoutError`` as a
    408: every provider's SDK retries it, and a pipeline's default ``retry_on`` takes it)
    are, whatever error type the body names: for the OpenAI and Anthropic SDKs (which
    retry them), for Bedrock's (a 408 from a front end before the model has no
    ``ModelTimeoutException`` type, a 504 no timeout's), and for Gemini's 408 and 504 (its
    SDK does not retry a 409). ``None`` for any other status.
    """
    return _TRANSIENT.get(status)


def translate_sdk_error(
    error: BaseException, provider: str, sdk_base: type[BaseException] | None
) -> BaseException:
    """Return the MiniAgents error for an SDK error (with it as ``__cause__``), else ``error``.

    Args:
        error: What the call raised.
        provider: The provider's name, for the message (e.g. "OpenAI").
        sdk_base: The SDK's root error class (e.g. ``openai.OpenAIError``); ``None``: only
            the errors under the SDK (the HTTP client's, ...) are translated.
    """
    if isinstance(error, json.JSONDecodeError):
        return made_error(LLMResponseError, f"{provider} sent a malformed event: {error}.", error)
    if isinstance(error, UnicodeEncodeError):  # the request's JSON could not be encoded
        shown = repr(error.object[error.start : error.end]) if error.object else "?"
        return made_error(
            LLMRequestError,
            f"The request to {provider} could not be sent: its text holds {shown}, which is "
            "not valid Unicode (a lone surrogate, e.g. from bytes decoded with "
            "errors='surrogateescape'). Remove or replace it before the call, e.g. "
            "text.encode('utf-8', 'replace').decode('utf-8').",
            error,
        )
    if isinstance(error, ValueError) and "not JSON compliant" in _said(error):  # json.dumps
        return made_error(
            LLMRequestError,
            f"The request to {provider} could not be sent: it holds a float that is NaN or "
            "infinite, which JSON cannot write (in an option, e.g. temperature, in "
            "extra_options or in a tool's schema). Give a finite number instead.",
            error,
        )
    names = {cls.__name__ for cls in type(error).__mro__}
    said = _said(error)
    if type(error).__module__.split(".")[0] in _TRANSPORTS:  # raised by the HTTP client itself
        if any("Timeout" in name for name in names):
            return made_error(LLMTimeoutError, f"{provider} did not answer in time: {said}", error)
        return made_error(LLMConnectionError, f"The connection to {provider} broke: {said}", error)
    if sdk_base is None or not isinstance(error, sdk_base):
        return error
    status = getattr(error, "status_code", None)
    transient = transient_status(status)  # retried by the SDKs, with no error class of its own
    if transient is not None:
        kind, what = transient
        return made_error(
            kind, f"{provider} {what} (HTTP {status}, after the SDK's retries): {said}", error
        )
    for name, kind, what in _TABLE:
        if name in names:
            return made_error(kind, f"{provider} {what}: {said}", error)
    return made_error(LLMError, f"The {provider} SDK failed: {said}", error)


def translate_transport_error(error: BaseException, provider: str) -> BaseException:
    """:func:`translate_sdk_error` of an SDK whose own errors the provider translates.

    The HTTP client's errors (aiohttp's, httpx's), and a ``TimeoutError``, are translated.
    """
    translated = translate_sdk_error(error, provider, None)
    if translated is error and isinstance(error, TimeoutError):
        return made_error(LLMTimeoutError, f"{provider} did not answer in time.", error)
    return translated


_EARLY_EVENTS: dict[str, tuple[type[LLMError], str]] = {
    # Anthropic's error types (as a 529, a 500, a 429 would have been)
    "overloaded_error": (LLMServerError, "was overloaded"),
    "api_error": (LLMServerError, "failed with a server error"),
    "rate_limit_error": (LLMRateLimitError, "refused the request for its rate limit"),
    # OpenAI's error codes (Chat Completions' error data, the Responses API's events)
    "server_error": (LLMServerError, "failed with a server error"),
    "rate_limit_exceeded": (LLMRateLimitError, "refused the request for its rate limit"),
    # the exceptions of Bedrock's event stream (ConverseStream's)
    "throttlingException": (LLMRateLimitError, "refused the request for its rate limit"),
    "internalServerException": (LLMServerError, "failed with a server error"),
    "serviceUnavailableException": (LLMServerError, "was unavailable"),
}
"""The error events that, before a reply's first token, stand for the transient HTTP
status an SDK would have retried, by their code: the error each is, and what it says."""


def reported_error(
    provider: str,
    message: str | None,
    code: str | None,
    *,
    failed: bool = False,
    begun: bool = True,
) -> LLMError:
    """The error for an error event of a streamed reply (see the module's docstring).

    Args:
        provider: The provider's name, for the message (e.g. "OpenAI").
        message: What the event says.
        code: The error code of the event, if any (e.g. "server_error").
        failed: Whether the event failed the whole response (``response.failed``) rather
            than reported an error in the stream (``error``).
        begun: Whether the reply's first token (a text, a tool call) came before the event:
            then the event is an ``LLMResponseError`` whatever its code.

    Returns:
        Before the first token, for a code of a transient status (``overloaded_error``,
        ``server_error``, ``rate_limit_exceeded``, ``throttlingException``, ...), the
        ``LLMServerError`` or ``LLMRateLimitError`` that status would have been; else an
        ``LLMResponseError``.
    """
    said = message or "no message"
    early = None if begun or not code else _EARLY_EVENTS.get(code)
    if early is not None:
        kind, what = early
        how = "a failed response" if failed else "an error event"
        return kind(
            f"{provider} {what} before the reply began ({code}, {how} after the HTTP 200, "
            f"which the SDK does not retry): {said.rstrip('.')}. Call it again (a "
            "pipeline's retry_on may take the error), or fall back to another model."
        )
    if code:
        said += f" (code {code})"
    if failed:
        return LLMResponseError(f"{provider} failed the response: {said}")
    return LLMResponseError(f"{provider} sent an error instead of the rest of the reply: {said}")


def raised_event(error: BaseException) -> tuple[str, str | None] | None:
    """The message and code of an error event that an SDK raised mid-stream, else ``None``.

    Such an event is an ``APIError`` of the OpenAI SDK (the error data of a stream: no HTTP
    status of its own) or an ``APIStatusError`` of the Anthropic SDK with the status 200 (its
    ``error`` event), whose body holds the event's error. Its code is the error's ``code``
    or ``type``: the one of them that stands for a transient status, if either does. The
    provider hands them to :func:`reported_error`, with whether its reply had begun.
    """
    names = {cls.__name__ for cls in type(error).__mro__}
    if "APIError" not in names or names & {"APIConnectionError", "APIResponseValidationError"}:
        return None
    if getattr(error, "status_code", 200) != 200:  # (an HTTP error status: not an event)
        return None
    body = getattr(error, "body", None)
    inner = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        inner = {}
    codes = [each for each in (inner.get("code"), inner.get("type")) if isinstance(each, str)]
    code = next((each for each in codes if each in _EARLY_EVENTS), codes[0] if codes else None)
    message = inner.get("message")
    return (message if isinstance(message, str) and message else _said(error)), code


async def adrain_closed(stream: AsyncIterable[object]) -> None:
    """Read to its end an SDK stream whose HTTP response is closed, so that its generator ends.

    An SDK's stream object holds its own generator, and that generator the stream: one left
    suspended by an error raised mid-stream (an error event's) would wait for the
    collector, which finalizes it in whatever thread it runs. With its response closed, the
    generator ends at once (the error of reading a closed response is not the caller's).
    """
    with contextlib.suppress(Exception):
        async for _ in stream:
            pass


def let_go_of_frames(error: BaseException) -> None:
    """Clear the frames of a caught error's traceback, and of its causes' tracebacks.

    An SDK raises a stream's error inside its generators (the OpenAI and Anthropic SDKs an
    error event's ``APIError``, Google's a ``ServerError``), or a provider raises one for an
    event the SDK yielded, while the frames in its traceback hold the HTTP client's
    generators under them (the SSE decoder's, the response's, the connection's). Kept as
    long as the error is (a durable run records it, a caller keeps it), those would wait for
    the collector, which finalizes them in whatever thread it runs; cleared where the agent
    catches the error, they are closed now, on the loop. A frame still running (the
    catcher's) is left as it is; the error keeps its type, message and cause.
    """
    seen: set[int] = set()
    each: BaseException | None = error
    while each is not None and id(each) not in seen:
        seen.add(id(each))
        traceback.clear_frames(each.__traceback__)
        each = each.__cause__


def _said(error: BaseException) -> str:
    """What the SDK error says, or its class name if it cannot say (a half-made error)."""
    try:
        return str(error) or type(error).__name__
    except Exception:
        return type(error).__name__


def made_error(kind: type[LLMError], message: str, cause: BaseException) -> LLMError:
    """An error of ``kind`` saying ``message``, with ``cause`` as its ``__cause__``."""
    translated = kind(message)
    translated.__cause__ = cause
    return translated


def translate_loaded_sdk_error(
    error: BaseException, module: str, provider: str, base_name: str
) -> BaseException:
    """:func:`translate_sdk_error` with the SDK's root error class, if the SDK is loaded."""
    sdk = sys.modules.get(module)
    if sdk is None:
        return error
    return translate_sdk_error(error, provider, getattr(sdk, base_name))
