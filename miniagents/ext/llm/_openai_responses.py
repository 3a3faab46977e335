"""The Responses API of ``openai_agent`` (``api="responses"``): requests and replies.

::

    call:   system "Be brief." | user "What is this?" + image | call c1 | result c1
    input:  instructions="Be brief."
            {"role": "user", "content": [{"type": "input_text"}, {"type": "input_image"}]}
            {"type": "function_call", "call_id": "c1", "name": ..., "arguments": "{...}"}
            {"type": "function_call_output", "call_id": "c1", "output": "..."}
    call:   user "Hi."  (one user message, no images)   ->   input: "Hi."
    stream: response.created | response.output_text.delta tokens
            | response.output_item.added (function_call: call_id, name)
            | response.function_call_arguments.delta | response.completed (status, usage)
    refusal: response.refusal.delta pieces (a ``refusal`` content part): ``Refusal`` events
    reasoning: response.reasoning_text.delta, response.reasoning_summary_text.delta (a
            ``reasoning`` item): not kept, but counted toward
            ``MiniAgents(llm_max_turn_chars=...)`` in the turn's count, with the text and
            arguments that the turn counts (see ``_turn_chars``)

A stream ends with ``response.completed`` or ``response.incomplete`` (the reply was cut:
its finish reason says why, e.g. ``max_output_tokens``); ``response.failed`` and ``error``
events (but one of a ``server_error`` or ``rate_limit_exceeded`` before the reply's first
token: an ``LLMServerError`` or ``LLMRateLimitError``, see ``sdk_errors.reported_error``),
and a stream that ends without one of those, are ``LLMResponseError`` s; so is a
whole reply (``stream=False``) that is not finished (``in_progress``, ``queued``,
``cancelled``). A whole reply with the status ``failed`` is decided as a stream's failure
before its first token (nothing of it was given). A whole reply with no status at all is
kept, its output read whole.

The typed options go by the Responses API's names: ``max_tokens`` and
``max_completion_tokens`` as ``max_output_tokens``, ``reasoning_effort`` as
``reasoning.effort``; ``temperature`` and ``top_p`` as they are. ``stop``, ``seed``,
``presence_penalty``, ``frequency_penalty`` and ``logit_bias`` exist in Chat Completions
only: giving one is an ``LLMConfigurationError``, before any request. So is an
``extra_options`` entry that the agent sends itself: ``max_output_tokens`` with
``max_tokens`` or ``max_completion_tokens``, ``reasoning`` with ``reasoning_effort``,
``instructions`` with a system prompt (alone, each is sent as it is).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from miniagents.ext.llm._openai_options import OpenAIOptions
from miniagents.ext.llm._turn_chars import TurnCount, count_reasoning
from miniagents.ext.llm.errors import LLMConfigurationError, LLMError, LLMResponseError
from miniagents.ext.llm.prompt import ConversationRules, PromptText, arguments_json, turns_for
from miniagents.ext.llm.provider import (
    Finish,
    LLMCall,
    LLMEvent,
    OutputFormat,
    Refusal,
    ToolCallDelta,
    ToolCallStart,
)
from miniagents.ext.llm.sdk_calls import sdk_arguments, tool_declaration, whole_reply
from miniagents.ext.llm.sdk_errors import adrain_closed, reported_error
from miniagents.ext.tools.messages import ToolCallMessage
from miniagents.ext.tools.tool import Tool

__all__ = ["responses_reply"]

_REASONING = ("response.reasoning_text.delta", "response.reasoning_summary_text.delta")
"""The events of a reply's reasoning: its text (a model that shows it), its summary."""

_RENAMED = {
    "max_tokens": "max_output_tokens",
    "max_completion_tokens": "max_output_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
}
"""The typed options the Responses API takes, and its names for them."""


async def responses_reply(
    client: Callable[[OpenAIOptions], Any],
    call: LLMCall,
    options: OpenAIOptions,
    *,
    refusals: frozenset[str] = frozenset(),
) -> AsyncIterator[LLMEvent]:
    """Stream a reply of ``client(options).responses``: its tokens and calls, then a ``Finish``.

    The client is asked for first (it checks the options), when the stream is first read.
    An ``error`` or ``response.failed`` event's error is raised once the stream's response
    is closed and its generator drained (see ``adrain_closed``). A finish reason in
    ``refusals`` (an incomplete reply's ``content_filter``, Azure's filter) ends the reply
    as ``"refusal"``, as ``chat_reply`` ends it.
    """
    create = client(options).responses.create
    arguments = _arguments(create, call, options)
    request = _input(call)
    if not call.stream:
        response = await create(model=call.model, input=request, **arguments)
        for event in _output_events(whole_reply(response, "OpenAI"), refusals):
            yield event
        return
    calls: dict[str, str] = {}  # the call id of each function call item, by the item's id
    argued: set[str] = set()  # the items whose arguments came
    final: Any = None
    failed: Any = None  # an error or response.failed event
    begun = False  # whether the reply's first token (a text, a refusal, a call) came
    counted: TurnCount | None = None  # the turn's count, from the first reasoning on
    stream = await create(model=call.model, input=request, stream=True, **arguments)
    del create, arguments, request  # (not held while it streams)
    try:
        async with stream:
            async for event in stream:
                kind = event.type
                if kind == "response.output_text.delta":  # (counted by the turn)
                    begun = True
                    yield event.delta
                elif kind in _REASONING:  # not kept, but a sign of life: counted, so it ends
                    counted = count_reasoning(counted, len(event.delta))
                    yield ""
                elif kind == "response.refusal.delta":
                    begun = True
                    yield Refusal(event.delta)
                elif kind == "response.function_call_arguments.delta":
                    begun = True
                    argued.add(event.item_id)
                    yield ToolCallDelta(calls.get(event.item_id, event.item_id), event.delta)
                elif kind == "response.output_item.added" and event.item.type == "function_call":
                    item = event.item
                    begun = True
                    calls[item.id or item.call_id] = item.call_id
                    yield ToolCallStart(item.call_id, item.name)
                    if item.arguments:
                        argued.add(item.id or item.call_id)
                        yield ToolCallDelta(item.call_id, item.arguments)
                elif (
                    kind == "response.function_call_arguments.done" and event.item_id not in argued
                ):
                    argued.add(event.item_id)  # the arguments came whole, without deltas
                    yield ToolCallDelta(calls.get(event.item_id, event.item_id), event.arguments)
                elif kind in ("response.completed", "response.incomplete"):
                    final = event.response
                elif kind in ("response.failed", "error"):
                    failed = event
                    break
                else:  # nothing for the reply (in_progress, a part's edge, ...): a sign of life
                    yield ""
    except BaseException:  # stopped part-way (by a budget, a reader gone, an error)
        await adrain_closed(stream)  # (its response closed as the `async with` ended)
        raise
    if failed is not None:
        await adrain_closed(stream)  # (its response closed as the `async with` ended)
        raise _stream_failure(failed, begun)
    yield _stream_finish(final, refusals)


def _stream_finish(final: Any, refusals: frozenset[str]) -> Finish:
    """The ``Finish`` of a stream whose final response (completed or incomplete) is ``final``.

    Raises:
        LLMResponseError: if no final event came (``final`` is ``None``): the stream was
            cut short.
    """
    if final is None:
        raise LLMResponseError(
            "The OpenAI stream ended before its final event (the reply is incomplete): no "
            "response.completed event came."
        )
    return Finish(
        _finish_reason(final, refusals),
        *_usage(final.usage),
        model=final.model,
        response_id=final.id,
    )


def _arguments(create: Any, call: LLMCall, options: OpenAIOptions) -> dict[str, Any]:
    """The arguments of ``responses.create`` besides the model and the input.

    Raises:
        LLMConfigurationError: for an option or an ``extra_options`` entry the Responses
            API does not take, or that the agent sends itself (see :func:`_typed_options`).
    """
    arguments = sdk_arguments(
        create, options, "The OpenAI SDK's responses", _typed_options(options)
    )
    if call.system:
        if "instructions" in arguments:
            raise _repeated("instructions", "the system prompt (system= and SystemMessages)")
        arguments["instructions"] = call.system
    if call.tools:
        arguments["tools"] = [_tool(tool) for tool in call.tools]
    if call.output_format is not None:
        given = arguments.get("text")
        text = dict(given) if isinstance(given, Mapping) else {}
        arguments["text"] = {**text, "format": _text_format(call.output_format)}
    return arguments


def _stream_failure(event: Any, begun: bool) -> LLMError:
    """The error that an ``error`` or ``response.failed`` event of the stream reports.

    Before the reply's first token (``begun`` false), a ``server_error`` or
    ``rate_limit_exceeded`` is an ``LLMServerError`` or ``LLMRateLimitError`` (see
    ``sdk_errors.reported_error``).
    """
    if event.type == "response.failed":
        return _response_failure(event.response, begun)
    return reported_error("OpenAI", event.message, event.code, begun=begun)


def _typed_options(options: OpenAIOptions) -> dict[str, object]:
    """The typed call options given, by the Responses API's names.

    Raises:
        LLMConfigurationError: for an option of Chat Completions only, both
            ``max_tokens`` and ``max_completion_tokens``, or an ``extra_options`` entry
            that one of them is sent as (e.g. ``reasoning`` with ``reasoning_effort``).
    """
    typed: dict[str, object] = {}
    given_as: dict[str, str] = {}  # the agent's argument each one comes from
    for name, value in options.typed_call_options().items():
        renamed = "reasoning" if name == "reasoning_effort" else _RENAMED.get(name)
        if renamed is None:
            raise LLMConfigurationError(
                f"The Responses API has no option {name!r} (it belongs to Chat Completions): "
                f"leave it out with api='responses', or use api='chat_completions'."
            )
        if renamed in typed:
            raise LLMConfigurationError(
                "max_tokens and max_completion_tokens are both max_output_tokens in the "
                "Responses API: give only one of them."
            )
        typed[renamed] = {"effort": value} if name == "reasoning_effort" else value
        given_as[renamed] = name
    for name in options.extra_options or ():
        if name in given_as:
            raise _repeated(name, given_as[name])
    return typed


def _repeated(name: str, source: str) -> LLMConfigurationError:
    """The error of an ``extra_options`` entry that the agent sends itself, from ``source``."""
    return LLMConfigurationError(
        f"extra_options has {name!r}, which the agent sends itself with api='responses' for "
        f"{source}: one would replace the other. Give only one of them, e.g. all of "
        f"{name!r} in extra_options and not {source}."
    )


def _input(call: LLMCall) -> str | list[dict[str, Any]]:
    """The conversation as the Responses API's input: a text, or input items.

    A conversation of one user message without images is its text, the API's own form
    of it: the SDK checks a text in about a third of the time it takes for a list of one
    item, which it tries against each of the input's item types. Otherwise a text
    turn is a message (its content: the text, or ``input_text`` and ``input_image``
    parts when it has images); a tool call is a ``function_call`` item and its result a
    ``function_call_output`` item.
    """
    messages = call.messages
    if len(messages) == 1:
        only = messages[0]
        if isinstance(only, PromptText) and only[0] == "user" and not only.images:
            return only[1]
    items: list[dict[str, Any]] = []
    for item in (item for turn in turns_for(messages, _RESPONSES) for item in turn.items):
        if isinstance(item, PromptText):
            items.append({"role": item.role, "content": _content(item)})
        elif isinstance(item, ToolCallMessage):
            items.append(
                {
                    "type": "function_call",
                    "call_id": item.call_id,
                    "name": item.tool_name,
                    "arguments": arguments_json(item),
                }
            )
        else:
            items.append(
                {"type": "function_call_output", "call_id": item.call_id, "output": item.text}
            )
    return items


_RESPONSES = ConversationRules(
    roles=frozenset({"user", "assistant", "developer"}), alternate=False, skip_blank=False
)
"""What the Responses API takes: its roles, in any order (a blank text too)."""


def _content(item: PromptText) -> str | list[dict[str, Any]]:
    if not item.images:
        return item.text
    parts: list[dict[str, Any]] = [{"type": "input_text", "text": item.text}] if item.text else []
    parts.extend(
        {"type": "input_image", "image_url": image.data_url, "detail": image.detail or "auto"}
        for image in item.images
    )
    return parts


def _tool(tool: Tool) -> dict[str, Any]:
    """A function tool; not strict, since a tool's schema need not meet strict mode's rules."""
    return {"type": "function", **tool_declaration(tool, parameters=tool.parameters, strict=False)}


def _text_format(output: OutputFormat) -> dict[str, Any]:
    described: dict[str, Any] = {
        "type": "json_schema",
        "name": output.name,
        "schema": dict(output.schema),
        "strict": output.strict,
    }
    if output.description:
        described["description"] = output.description
    return described


_UNFINISHED = frozenset({"in_progress", "queued", "cancelled"})
"""The statuses of a whole response that is not (or will never be) finished."""


def _output_events(response: Any, refusals: frozenset[str]) -> list[LLMEvent]:
    """The events of a reply that was not streamed: its text, its calls, its ``Finish``.

    A finish reason in ``refusals`` ends it as ``"refusal"``.

    Raises:
        LLMError: if its status is ``failed``: the error it reports, by the table of a
            stream's failure before its first token (``sdk_errors.reported_error``: a
            ``server_error`` is an ``LLMServerError``, ...).
        LLMResponseError: if its status says it is not finished (``in_progress``,
            ``queued``, ``cancelled``): not a whole reply, as a stream that ends before its
            ``response.completed`` event is not. No status (some compatible servers send
            none) is kept: its output was read whole. With reasoning, past the turn's
            bound: ``too_long()``'s (the turn gives its own error in its place).
    """
    status = response.status
    if status == "failed":  # (nothing of it was given: as a stream's before its first token)
        raise _response_failure(response, begun=False)
    if status in _UNFINISHED:
        raise LLMResponseError(
            f"OpenAI sent a whole response with status {status!r} (neither completed nor "
            "incomplete): "
            "the reply is not finished. Leave out background=True from extra_options (the "
            "agent does not wait for a response made in the background), check that the base "
            "URL is the API's, or call it again."
        )
    texts: list[str] = []
    events: list[LLMEvent] = []
    thought = 0  # the characters of its reasoning (counted with the rest: see below)
    for item in response.output or ():
        if item.type == "reasoning":
            pieces = [*(item.summary or ()), *(getattr(item, "content", None) or ())]
            thought += sum(len(getattr(piece, "text", None) or "") for piece in pieces)
        elif item.type == "message":
            parts = item.content or ()  # (null from a server of another make: no text)
            texts += [part.text for part in parts if part.type == "output_text"]
            events += [Refusal(part.refusal) for part in parts if part.type == "refusal"]
        elif item.type == "function_call":
            events += [
                ToolCallStart(item.call_id, item.name),
                ToolCallDelta(item.call_id, item.arguments or ""),
            ]
    text = "".join(texts)
    if thought:  # counted with the rest (the turn counts those), as a stream's
        count_reasoning(None, thought)
    return [
        text,
        *events,
        Finish(
            _finish_reason(response, refusals),
            *_usage(response.usage),
            model=response.model,
            response_id=response.id,
        ),
    ]


def _response_failure(response: Any, begun: bool) -> LLMError:
    """The error of a failed response (its ``error``); see :func:`_stream_failure`.

    A whole reply (not streamed) that failed gave nothing to its readers: it is decided as a
    stream's failure before its first token (``begun`` false), by the same table.
    """
    error = response.error
    if error is None:
        return reported_error("OpenAI", None, None, failed=True, begun=begun)
    return reported_error("OpenAI", error.message, error.code, failed=True, begun=begun)


def _finish_reason(response: Any, refusals: frozenset[str]) -> str | None:
    """The status (``completed``), or why an incomplete reply stopped (``max_output_tokens``).

    A reason in ``refusals`` (``content_filter``, for a server whose filter is a refusal) is
    ``"refusal"``.
    """
    details = response.incomplete_details
    if response.status == "incomplete" and details is not None and details.reason:
        reason = str(details.reason)
        return "refusal" if reason in refusals else reason
    return None if response.status is None else str(response.status)


def _usage(usage: Any) -> tuple[int | None, ...]:
    """The counts of a ``Finish``: input, output, cached and reasoning tokens."""
    if usage is None:
        return ()
    given = getattr(usage, "input_tokens_details", None)
    made = getattr(usage, "output_tokens_details", None)
    return (
        usage.input_tokens,
        usage.output_tokens,
        getattr(given, "cached_tokens", None),
        None,  # no cache writes in the Responses API's usage
        getattr(made, "reasoning_tokens", None),
    )
