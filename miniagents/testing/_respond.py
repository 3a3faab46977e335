"""Answering one request: the script item it takes, rendered in its endpoint's format."""

from __future__ import annotations

from collections.abc import Callable

from miniagents.testing._faults import StreamFaults, send_event, send_failure, send_single
from miniagents.testing._http import Exchange
from miniagents.testing._record import RecordedRequest
from miniagents.testing._script import Failure, Reply
from miniagents.testing._wire import (
    RenderedCall,
    Rendering,
    Wire,
    count_words,
    dumps,
    echo_tokens,
)

__all__ = ["render", "respond"]


def respond(
    exchange: Exchange,
    wire: Wire,
    record: RecordedRequest,
    take: Callable[[str | None], Reply | Failure],
    serial: Callable[[], int],
) -> None:
    """Answer ``record``: a 400 if the API would refuse it, else the next script item.

    Args:
        exchange: Where to write the response.
        wire: The endpoint's format.
        record: The request.
        take: Takes the next script item for a model (a default reply when there is none).
        serial: Numbers ids (requests, replies, tool calls), unique per server.
    """
    request_id = f"req_fake{serial():08d}"
    refused = wire.authenticate(record.method, record.path, record.headers, record.raw_body)
    if refused is not None:
        send_failure(exchange, wire, Failure(status=refused[0], message=refused[1]), request_id)
        return
    problem = wire.validate(record.body)
    if problem is not None:
        failure = Failure(status=400, message=problem)
        send_failure(exchange, wire, failure, request_id)
        return
    item = take(record.model)
    record.script = item
    if item.delay:
        exchange.wait(item.delay)
    if isinstance(item, Failure):
        send_failure(exchange, wire, item, request_id)
        return
    beside = item.thinking is not None and item.thinking_order == "with_text"
    if beside and not wire.thinking_beside_text:  # (known only now: any API takes a reply)
        failure = Failure(status=400, message=_no_thinking_beside_text(wire))
        send_failure(exchange, wire, failure, request_id)
        return
    rendering = render(wire, record, item, serial)
    headers = {**wire.id_headers(request_id), **item.headers}
    if not record.stream:
        send_single(exchange, record, dumps(wire.body(rendering)), headers)
        return
    plan = wire.stream(rendering)
    total = sum(content for _, content in plan.body)
    faults = StreamFaults(exchange, wire, record, rendering, total)
    exchange.start_events(headers, wire.stream_content_type)
    sent = 0
    for event, content in plan.body:
        if content:
            if faults.strike(sent):
                return
            if item.token_delay:
                exchange.wait(item.token_delay)
            sent += 1
        send_event(exchange, wire, event)
    if faults.strike(sent):
        return
    for event in plan.closing if item.omit_final else [*plan.closing, *plan.final]:
        send_event(exchange, wire, event)
    exchange.end_chunks()


def render(
    wire: Wire, record: RecordedRequest, reply: Reply, serial: Callable[[], int]
) -> Rendering:
    """The scripted ``reply`` made concrete for the request ``record`` (ids, model, usage)."""
    request = record.json
    refusal = reply.refusal or ()
    finish_reason = reply.finish_reason
    if reply.refusal is not None and wire.provider in ("anthropic", "gemini", "bedrock"):
        tokens = refusal  # the refusal is the text, and the stop reason says so
        refusal = ()
        finish_reason = finish_reason or "refusal"
    elif reply.tokens is not None:
        tokens = reply.tokens
    else:
        tokens = () if reply.tool_calls or reply.refusal is not None else echo_tokens(request)
    calls = tuple(
        RenderedCall(call.id or wire.call_id(serial()), call) for call in reply.tool_calls
    )
    if reply.usage is not None:
        input_tokens, output_tokens = reply.usage
    else:
        deltas = sum(len(rendered.call.deltas()) for rendered in calls)
        input_tokens = count_words(request)
        output_tokens = len(tokens) + len(refusal) + deltas
    return Rendering(
        reply=reply,
        id=wire.reply_id(serial()),
        model=reply.model or record.model or "fake-model",
        tokens=tokens,
        calls=calls,
        finish_reason=wire.finish_reason(finish_reason, bool(calls)),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        request=request,
        refusal=refusal,
    )


def _no_thinking_beside_text(wire: Wire) -> str:
    """Why a reply scripted with ``thinking_order="with_text"`` is refused on ``wire``."""
    return (
        "FakeLLMServer.reply(thinking_order='with_text') puts each piece of thinking beside a "
        f"text token in one event, which the {wire.provider!r} API has no event for: only "
        "Chat Completions (OpenAI's and the OpenAI-compatible servers') and Gemini support "
        "it. Script thinking_order='after_text' (or 'first') for a reply of this API."
    )
