"""The apps' HTTP words: a request's JSON body read within bounds, and the JSON errors they answer.

A body is read within two bounds: its size (``max_body_bytes``, a 413 past it) and its
time (``body_seconds`` from the request's arrival at the app, a 408 past it: a client that
sends it a byte a minute, or its headers and then nothing, would hold its connection and the
app's task for as long as it likes).

Every refusal is a JSON body ``{"error": {"code": ..., "message": ...}}`` with its HTTP status;
the message is a sentence that says what was wrong and how to do it right.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from miniagents.ext.web.settings import DEFAULT_BODY_SECONDS, WebSettings
from miniagents.frozen.nesting import holds_over

if TYPE_CHECKING:
    from miniagents.ext.tools.approval import ToolApprovalRequest

__all__ = [
    "StartBody",
    "amethod_not_allowed",
    "aread_bounded",
    "body_deadline",
    "body_seconds_of",
    "error_response",
    "invalid_arguments",
    "not_pending",
    "problems",
    "read_json",
    "read_model",
    "resumed_meanwhile",
    "too_deep",
    "unknown_run",
]

_Model = TypeVar("_Model", bound=BaseModel)

_BODY_DEADLINE = "miniagents.body_deadline"
"""The key of a request's scope that holds its body's deadline, the loop's time it ends and
its seconds (see :func:`body_deadline`)."""


def error_response(
    status: int, code: str, message: str, *, errors: Sequence[str] = ()
) -> JSONResponse:
    """A JSON error: ``{"error": {"code": ..., "message": ...}}`` with an HTTP status.

    ``errors``: each problem found, listed as the error's ``errors`` (when there are some).
    """
    error: dict[str, object] = {"code": code, "message": message}
    if errors:
        error["errors"] = list(errors)
    return JSONResponse({"error": error}, status_code=status)


def problems(error: ValidationError) -> str:
    """The first few problems pydantic found, each with where it is."""
    found = [
        f"{'.'.join(str(place) for place in problem['loc']) or 'the body'}: {problem['msg']}"
        for problem in error.errors()[:5]
    ]
    return "; ".join(found)


def _unnamable_run(key: str, field: str, code: str) -> JSONResponse | None:
    """A 422 if ``key``, the client's id of a run, cannot be a segment of the run's URLs.

    The run is followed and decided on at URLs that hold its id as one path segment, so an
    empty id, or one with a ``/``, would start a run that no later request can reach.

    Args:
        key: The id the client sent.
        field: The id's name in the body (``runId``, ``id``), for the message.
        code: The app's error code for a body it refuses.
    """
    if key and "/" not in key:
        return None
    why = "is empty" if not key else f"holds a '/' ({key!r})"
    return error_response(
        422,
        code,
        f"The body's {field} {why}, so the run could not be followed or decided on at its "
        f"URLs; send an id that is not empty and has no '/' (a UUID, say).",
    )


def _too_long_id(key: str, field: str, code: str, most: int) -> JSONResponse | None:
    """A 422 if ``key``, an id the client chose, holds over ``most`` characters.

    The app keeps such an id (as its runs' key, a durable run's workflow id), repeats it in
    its answers and logs it, so its length is bounded (``WebSettings.max_id_chars``) and a
    longer one is not repeated in the refusal.

    Args:
        key: The id the client sent.
        field: The id's name in the body (``runId``, ``threadId``, ``id``), for the message.
        code: The app's error code for a body it refuses.
        most: The most characters an id may hold (the settings' ``max_id_chars``).
    """
    if len(key) <= most:
        return None
    return error_response(
        422,
        code,
        f"The body's {field} holds {len(key)} characters, over the {most} an id may hold "
        "(max_id_chars): the app keeps it and repeats it. Send a shorter id (a UUID, say), or "
        "raise max_id_chars.",
    )


def shown_id(value: str, most: int) -> str:
    """``value``, an id a client sent, as an error that names it repeats it.

    Whole (its ``repr``) if it holds at most ``most`` characters (the settings'
    ``max_id_chars``); else its first ``most`` and its length: an id the app looks up but
    does not keep (a path's, a decision's) is not bounded before, and an error that repeated
    it whole would answer up to ``max_body_bytes`` of it.
    """
    if len(value) <= most:
        return repr(value)
    return f"{value[:most]!r}... (of {len(value)} characters)"


def body_deadline(scope: Scope, seconds: float) -> None:
    """Give the body of the request of ``scope`` ``seconds`` from now to arrive, all of it.

    The door calls it as the request reaches the app (its headers read), with its settings'
    ``body_seconds``, so that a client that sends its headers and then nothing is refused
    as one whose body trickles in, however late the app starts reading. A request given a
    deadline already (by the door of an app it is mounted in) keeps the earlier one. A
    request that was not given one has
    :data:`~miniagents.ext.web.settings.DEFAULT_BODY_SECONDS` from the start of its reading.
    """
    ends = asyncio.get_running_loop().time() + seconds
    given: tuple[float, float] | None = scope.get(_BODY_DEADLINE)
    if given is None or ends < given[0]:
        scope[_BODY_DEADLINE] = (ends, seconds)


def body_seconds_of(scope: Scope) -> float:
    """The seconds the body of the request of ``scope`` has to arrive: those of its deadline.

    The deadline the request was given (:func:`body_deadline`: the one that ends first,
    of every door it passed), else the default's, as :func:`aread_bounded` keeps it and its
    408 says it.
    """
    given: tuple[float, float] | None = scope.get(_BODY_DEADLINE)
    return DEFAULT_BODY_SECONDS if given is None else given[1]


async def aread_bounded(request: Request, max_bytes: int) -> bytes | None:
    """The request's body, or ``None`` if it is over ``max_bytes`` (then it is not read whole).

    A declared ``Content-Length`` over the limit is refused before any byte is read; the
    body is read in chunks, and the reading stops at the first chunk past the limit, so a
    large body is never held in memory. The body must arrive within its deadline
    (:func:`body_deadline`: from the request's arrival at the app).

    Raises:
        HTTPException: a 408, which the app answers with its message, if the body has not
            all arrived within its deadline.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        return None
    chunks: list[bytes] = []
    size = 0
    given: tuple[float, float] | None = request.scope.get(_BODY_DEADLINE)
    if given is None:
        given = (asyncio.get_running_loop().time() + DEFAULT_BODY_SECONDS, DEFAULT_BODY_SECONDS)
    ends, seconds = given
    try:
        async with asyncio.timeout_at(ends):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    return None
                chunks.append(chunk)
    except TimeoutError:
        raise HTTPException(408, _too_slow(seconds)) from None
    return b"".join(chunks)


async def read_json(request: Request, max_bytes: int) -> object | JSONResponse:
    """The request's body parsed as JSON, or the error response that says why it is not.

    The body is read in chunks and refused (413) as soon as it is over ``max_bytes``, so a
    large body is never held in memory; one not all here within its deadline is a 408
    (:func:`aread_bounded`), and a body that is not JSON a 400, what :func:`loads_json`
    refuses included.
    """
    try:
        body = await aread_bounded(request, max_bytes)
    except HTTPException as late:
        return error_response(late.status_code, "body_too_slow", late.detail)
    if body is None:
        return _too_large(max_bytes)
    try:
        parsed = loads_json(body)
    except (ValueError, UnicodeDecodeError) as error:
        return error_response(400, "invalid_json", f"The request body is not valid JSON: {error}.")
    except RecursionError:  # (a body of many brackets within the size limit)
        return error_response(
            400, "invalid_json", "The request body is JSON nested too deeply to be read."
        )
    return parsed


def loads_json(body: bytes | str) -> object:
    """``body`` read as JSON, as JSON is written: what Python's JSON reads beyond it refused.

    ``NaN``, ``Infinity`` and a number too large for a float (``1e999``) are not JSON (taken,
    they would reach the agent, and the events that carry them would be no JSON), and an
    integer of more digits than Python converts (``sys.get_int_max_str_digits()``) would
    fail with an error that tells the client to change the server's Python.

    Raises:
        ValueError: if ``body`` is not JSON or holds such a number, the message a sentence
            fragment the caller puts in its own ("the number ... is too large (send ...)").
        UnicodeDecodeError: if ``body`` is bytes that are not UTF-8 (or UTF-16/32).
        RecursionError: if ``body`` is nested too deeply for Python's JSON to read.
    """
    return json.loads(body, parse_constant=_no_constant, parse_float=_finite, parse_int=_whole)


async def read_model(
    request: Request,
    settings: WebSettings,
    model: type[_Model],
    code: str,
    what: str,
    *,
    run_key: tuple[str, Callable[[_Model], str]] | None = None,
    kept_ids: Sequence[tuple[str, Callable[[_Model], str]]] = (),
) -> _Model | JSONResponse:
    """The request's JSON body as a ``model``, or the error response that says why it is not.

    Read as :func:`read_json` reads it, at most ``settings.max_body_bytes``; a body of over
    ``settings.max_body_values`` JSON values (counted at every depth, to there:
    ``holds_over``) is a 413 (``too_many_values``) before it is read into ``model`` (reading
    a body of many tiny values, and then its messages, takes the loop's time: 28,000 tiny
    messages in a megabyte held it up for over a second); a body of another shape is a 422
    with ``code``, whose message says it is not ``what`` (e.g. ``"an AG-UI RunAgentInput"``)
    and where; so is one whose run id (``run_key``: its field's name in the body, and how
    to read it) is no segment of a URL (see :func:`_unnamable_run`), and one whose run id,
    or another id the app keeps (``kept_ids``, each named and read so), holds over
    ``settings.max_id_chars`` characters (see :func:`_too_long_id`).
    """
    body = await read_json(request, settings.max_body_bytes)
    if isinstance(body, JSONResponse):
        return body
    max_values = settings.max_body_values
    if holds_over(body, max_values):
        return error_response(
            413,
            "too_many_values",
            f"The request body holds over {max_values} JSON values (its objects, lists, "
            "strings, numbers and the rest, at every depth), the most this app reads; send "
            "a shorter conversation (or raise max_body_values).",
        )
    try:
        read = model.model_validate(body)
    except ValidationError as error:
        return error_response(422, code, f"The body is not {what}: {problems(error)}.")
    ids = [*([] if run_key is None else [run_key]), *kept_ids]
    for field, id_of in ids:  # (first: a refusal below repeats the run id)
        refused = _too_long_id(id_of(read), field, code, settings.max_id_chars)
        if refused is not None:
            return refused
    refused = None if run_key is None else _unnamable_run(run_key[1](read), run_key[0], code)
    return read if refused is None else refused


@dataclass(frozen=True, slots=True)
class StartBody(Generic[_Model]):
    """The body of a protocol's request that starts (or resumes) a run, read by :func:`read_model`.

    Each protocol says once what its body is (``model``), the code of its refusal
    (``code``), what the refusal says it is not (``what``) and where its run id is
    (``run_key``); :meth:`aread` reads a request's body so.
    """

    model: type[_Model]
    code: str
    what: str
    run_key: tuple[str, Callable[[_Model], str]]
    kept_ids: tuple[tuple[str, Callable[[_Model], str]], ...] = ()

    async def aread(self, request: Request, settings: WebSettings) -> _Model | JSONResponse:
        """The request's body as a ``model``, or the error response that says why it is not."""
        return await read_model(
            request,
            settings,
            self.model,
            self.code,
            self.what,
            run_key=self.run_key,
            kept_ids=self.kept_ids,
        )


def too_deep(code: str) -> JSONResponse:
    """The 422 of a body whose messages hold a value nested too deeply to be kept.

    (A tool call's arguments, say: the agent's messages keep them frozen, and a value a
    few hundred levels deep is refused there.) ``code``: the app's code for a body it
    refuses.
    """
    return error_response(
        422,
        code,
        "The body's messages hold a value (a tool call's arguments, say) nested too deeply "
        "to be kept; send it flatter (a deep structure as a JSON string, for instance).",
    )


def _no_constant(name: str) -> object:
    """Refuse ``NaN``, ``Infinity`` or ``-Infinity`` (``name``), which JSON has not.

    Raises:
        ValueError: always, naming the constant.
    """
    raise ValueError(f"{name} is not a JSON number (send a finite number, or null)")


def _whole(text: str) -> int:
    """The integer ``text``, refused if it has more digits than Python converts.

    Raises:
        ValueError: if the number has more digits than ``sys.get_int_max_str_digits()``.
    """
    digits = len(text) - text.startswith("-")
    limit = sys.get_int_max_str_digits()
    if limit and digits > limit:
        raise ValueError(
            f"the number {text[:40]}... has {digits} digits, more than the {limit} a number "
            "may have (send a shorter number, or write it as a string)"
        )
    return int(text)


def _finite(text: str) -> float:
    """The number ``text`` as a float, refused if it is too large for one (``1e999``).

    Raises:
        ValueError: if the number is too large to be a float.
    """
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"the number {text[:40]} is too large (send a finite number, or null)")
    return number


def _too_large(max_bytes: int) -> JSONResponse:
    return error_response(
        413,
        "body_too_large",
        f"The request body is over the limit of {max_bytes} bytes; send a shorter "
        "conversation (or raise max_body_bytes).",
    )


def _too_slow(seconds: float) -> str:
    return (
        f"The request body did not all arrive within {seconds:g} seconds; send it at once "
        "(or raise body_seconds)."
    )


def resumed_meanwhile(paused: str, decided: str) -> JSONResponse:
    """The 409 of a resume whose paused run another request resumed (or that ended) meanwhile.

    ``paused``: what the run is of (``"the thread 't1'"``); ``decided``: what the resume
    answered (``"interrupts"``, ``"approvals"``).
    """
    return error_response(
        409,
        "not_pending",
        f"The paused run of {paused} was resumed by another request (or ended) meanwhile; "
        f"its {decided} are decided once.",
    )


async def amethod_not_allowed(request: Request, error: Exception) -> Response:
    """The 405 of a method a route does not serve, as JSON, its ``Allow`` header kept.

    An app's exception handler for Starlette's 405 (its ``HTTPException``), which would
    otherwise answer in plain text, unlike the apps' other refusals.
    """
    headers = dict(error.headers or {}) if isinstance(error, HTTPException) else {}
    allowed = headers.get("Allow", "")
    response = error_response(
        405,
        "method_not_allowed",
        f"{request.url.path} does not serve {request.method}; send {allowed or 'another method'}.",
    )
    response.headers.update(headers)
    return response


def unknown_run() -> JSONResponse:
    """The 404 of a run that is not here (or not the asker's: the same answer)."""
    return error_response(
        404,
        "unknown_run",
        "There is no such run: it never started here, or it ended and was forgotten.",
    )


def invalid_arguments(where: str, why: str, problems: Sequence[str] = ()) -> JSONResponse:
    """The 422 of a decision whose edited arguments the tool refuses (``where``: their place).

    Nothing was decided: the call still waits, and the person may answer again. Its
    ``errors`` list each of the ``problems`` the tool found.
    """
    return error_response(422, "invalid_arguments", f"{where}: {why}", errors=problems)


def not_pending(
    call_id: str,
    tool_name: str,
    resumed: Sequence[ToolApprovalRequest | None] = (),
    *,
    waiting: Sequence[ToolApprovalRequest] = (),
) -> JSONResponse:
    """The 409 of a decision for a call that waits for none (any more).

    ``resumed``: the calls a resume decides (``None``: one it does not know). Where some of
    them still wait, the message names those decided already (elsewhere: a call's first
    decision holds) and says to send the resume again with the others' decisions only.
    ``waiting``: the calls still waiting of the run that streams, for a decision at the
    approvals URL of a call decided already; where there are some, the message names them
    and says to decide those only.
    """
    pending = [asked.call_id for asked in resumed if asked is not None and asked.pending]
    if pending:
        decided = [asked.call_id for asked in resumed if asked is not None and not asked.pending]
        return error_response(
            409,
            "not_pending",
            "These calls of the paused run were decided already, elsewhere (a call's first "
            f"decision holds): {', '.join(map(repr, decided))}. Send the resume again with "
            f"the decisions of the calls still waiting only: {', '.join(map(repr, pending))}.",
        )
    if waiting:
        return error_response(
            409,
            "not_pending",
            f"The call {call_id!r} of {tool_name} was decided already (a call's first "
            "decision holds); decide only the calls of the run still waiting: "
            f"{', '.join(repr(asked.call_id) for asked in waiting)}.",
        )
    return error_response(
        409,
        "not_pending",
        f"The call {call_id!r} of {tool_name} is not waiting for a decision any more (it was "
        "decided already, or its run ended or was cancelled); a call is decided once.",
    )
