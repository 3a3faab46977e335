"""The Chat Completions API of ``openai_agent`` (its default API): requests and replies.

::

    call:     system "Be brief." | user "What is this?" + image | call c1 | result c1
    messages: {"role": "system", ...}
              {"role": "user", "content": [{"type": "text", ...}, {"type": "image_url", ...}]}
              {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", ...}]}
              {"role": "tool", "tool_call_id": "c1", "content": "..."}
    stream:   chunks: delta.content tokens | delta.tool_calls (id and name, then arguments)
              | finish_reason | usage (``stream_options.include_usage``; a server that
              ignores it sends none: the reply is kept, its usage unknown, and a warning
              is logged once)
    refusal:  delta.refusal pieces (``message.refusal`` not streamed): ``Refusal`` events
    reasoning: delta.reasoning_content (DeepSeek's, vLLM's) or delta.reasoning (OpenRouter's,
              Ollama's), alone or beside a chunk's content: not kept, but counted toward
              ``MiniAgents(llm_max_turn_chars=...)`` in the turn's count, with the text and
              arguments that the turn counts (see ``_turn_chars``)

A stream whose chunks give no ``finish_reason`` was cut short: an ``LLMResponseError``. A
whole reply (``stream=False``) whose choice has none is kept, its finish reason unknown:
its body was read whole, and some compatible servers send ``null`` there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import pydantic

from miniagents.ext.llm._openai_options import OpenAIOptions
from miniagents.ext.llm._turn_chars import TurnCount, count_reasoning
from miniagents.ext.llm.errors import LLMResponseError
from miniagents.ext.llm.prompt import ConversationRules, PromptText, arguments_json, turns_for
from miniagents.ext.llm.provider import (
    Finish,
    LLMCall,
    LLMEvent,
    OutputFormat,
    Refusal,
    ToolCallDelta,
    ToolCallStart,
    unused_id,
)
from miniagents.ext.llm.sdk_calls import (
    check_one_reply,
    sdk_arguments,
    tool_declaration,
    whole_reply,
)
from miniagents.ext.llm.sdk_errors import adrain_closed, raised_event, reported_error
from miniagents.ext.tools.messages import ToolCallMessage
from miniagents.ext.tools.tool import Tool
from miniagents.promising.lowlevel import logger

__all__ = ["chat_reply"]

_CHAT = ConversationRules(
    roles=frozenset({"user", "assistant", "developer"}), alternate=False, skip_blank=False
)
"""What OpenAI's Chat Completions takes: its roles, in any order (a blank text too)."""


def _ask_usage(arguments: dict[str, Any], ask_usage: bool) -> bool:
    """Whether the stream's usage is asked for: by the agent's ``stream_options``, else by us.

    With no ``stream_options`` given and ``ask_usage``, asks for it (``include_usage``).
    """
    if "stream_options" not in arguments:
        if ask_usage:
            arguments["stream_options"] = {"include_usage": True}
        return ask_usage
    stream_options = arguments["stream_options"]
    return isinstance(stream_options, Mapping) and bool(stream_options.get("include_usage"))


async def chat_reply(
    client: Callable[[OpenAIOptions], Any],
    call: LLMCall,
    options: OpenAIOptions,
    *,
    ask_usage: bool = True,
    refusals: frozenset[str] = frozenset(),
    conversation: ConversationRules = _CHAT,
) -> AsyncIterator[LLMEvent]:
    """Stream a reply of ``client(options).chat.completions``: tokens and calls, then a ``Finish``.

    The client is asked for first (it checks the options), when the stream is first read.
    ``ask_usage=False`` sends no ``stream_options`` (for a server that refuses them; its
    usage may still come, in a chunk's ``usage`` or Groq's ``x_groq.usage``); a finish
    reason in ``refusals`` (a server's ``content_filter``) ends the reply as ``"refusal"``;
    ``conversation`` is what the server takes of a conversation (OpenAI's: any order, its
    roles; a local model's chat template: turns that alternate).

    The SDK raises an error event's ``APIError`` inside its stream's generator (before the
    reply's first token, a ``server_error`` or ``rate_limit_exceeded`` is an
    ``LLMServerError`` or ``LLMRateLimitError``; see ``sdk_errors.reported_error``), whose
    frame holds the httpx generators under it: the agent clears the error's frames where it
    catches it (``sdk_errors.let_go_of_frames``). A stream stopped part-way (a budget
    crossed, its reader gone) is closed and its generator drained (see ``adrain_closed``),
    which the stream object and its generator, holding each other, would leave to the
    collector.
    """
    api = client(options)
    messages = _messages(call, conversation)
    create = api.chat.completions.create
    arguments = sdk_arguments(create, options, "The OpenAI SDK's chat.completions")
    check_one_reply(arguments, "n", "OpenAI")
    if call.tools:
        arguments["tools"] = [_tool(tool) for tool in call.tools]
    if call.output_format is not None:
        arguments["response_format"] = _response_format(call.output_format)
    if not call.stream:
        completion = whole_reply(
            await create(model=call.model, messages=messages, **arguments), "OpenAI"
        )
        for event in _whole_reply(completion, refusals):
            yield event
        return
    wants_usage = _ask_usage(arguments, ask_usage)
    finish_reason: str | None = None
    usage = None
    answered: str | None = None  # the model that answered
    ids: dict[int, tuple[str, str]] = {}  # each call by its index: its wire id, its own
    begun = False  # whether the reply's first token (a text, a refusal, a call) came
    counted: TurnCount | None = None  # the turn's count, from the first reasoning on
    stream = await create(model=call.model, messages=messages, stream=True, **arguments)
    del api, create, arguments, messages  # (not held while it streams)
    try:
        async with stream:
            async for chunk in stream:
                answered = chunk.model or answered
                usage = chunk.usage or usage  # (the last chunk's: not a token's)
                choices = chunk.choices
                if not choices:  # (the usage chunk)
                    usage = _ending_usage(chunk, usage)
                    yield ""
                    continue
                choice = choices[0]
                delta = choice.delta
                if delta is not None:
                    content = delta.content
                    refusal = getattr(delta, "refusal", None)
                    tool_calls = delta.tool_calls
                    begun = begun or bool(content or refusal or tool_calls)
                    if content:  # most chunks: a token (counted by the turn, as it takes it)
                        extra = delta.__pydantic_extra__
                        if extra:  # reasoning beside it counts too (a null one: no Python call)
                            for name in _REASONING:  # (a server's "reasoning": null per token)
                                if extra.get(name):
                                    counted = _reasoned(delta, counted)
                                    break
                        yield content
                    else:  # (reasoning, not kept, but a sign of life: counted, so it ends)
                        counted = _reasoned(delta, counted)
                    if refusal or tool_calls:
                        for event in _said(refusal, tool_calls, ids):
                            yield event
                    elif not content:
                        yield ""  # nothing else (reasoning, the finish): a sign of life
                else:
                    yield ""
                if choice.finish_reason is not None:
                    finish_reason = choice.finish_reason
                    usage = _ending_usage(chunk, usage)  # (Groq's: the last chunk's x_groq)
    except BaseException as error:  # stopped part-way (a budget, a reader gone, an error)
        await adrain_closed(stream)  # (its response closed as the `async with` ended)
        if (raised := raised_event(error)) is not None:  # (an error event of the SDK's)
            raise reported_error("OpenAI", *raised, begun=begun) from error
        raise
    reason = _stream_end(finish_reason, usage, call.model, wants_usage, refusals)
    # (a finish reason came, so a chunk did: the last one, whose id is every chunk's)
    yield Finish(reason, *_usage(usage), model=answered, response_id=chunk.id)


def _stream_end(
    reason: str | None, usage: Any, model: str, wants_usage: bool, refusals: frozenset[str]
) -> str:
    """The finish reason of a stream that ended (``"refusal"`` for one in ``refusals``).

    A stream complete but without its usage (a server that ignores ``include_usage``) is
    kept, its usage unknown, and a warning is logged (see :func:`_warn_no_usage`).

    Raises:
        LLMResponseError: if no chunk gave a finish reason: the stream was cut short.
    """
    if reason is None:
        raise LLMResponseError(
            "The OpenAI stream ended before its final event (the reply is incomplete): no "
            "chunk gave a finish_reason."
        )
    if usage is None:  # complete, its usage unknown (a server that ignores include_usage)
        _warn_no_usage(model, wants_usage)
    return "refusal" if reason in refusals else reason


def _whole_reply(completion: Any, refusals: frozenset[str]) -> Iterator[LLMEvent]:
    """The events of a completion that was not streamed: text, refusal, calls, ``Finish``.

    A finish reason in ``refusals`` (a server's ``content_filter``) ends it as ``"refusal"``.

    Its reasoning counts toward the turn's bound (its text, refusal and arguments are
    counted by the turn, as it takes them).

    Raises:
        LLMResponseError: if it has no choices; with reasoning, past the turn's bound
            (``too_long()``'s: the turn gives its own error in its place).
    """
    if not completion.choices:
        raise LLMResponseError(
            "The OpenAI completion came with no choices (an empty choices list), so it has no "
            "reply; try the call again, or another model if the server keeps sending none."
        )
    choice = completion.choices[0]
    reason = choice.finish_reason
    text = choice.message.content or ""
    refusal = getattr(choice.message, "refusal", None)
    events: list[LLMEvent] = [Refusal(refusal)] if refusal else []
    for called in choice.message.tool_calls or ():
        function = getattr(called, "function", None)  # not a "custom" tool call
        if function is not None:
            events.append(ToolCallStart(called.id, function.name))
            events.append(ToolCallDelta(called.id, function.arguments or ""))
    _reasoned(choice.message, None)  # counted with the rest, as a stream's
    yield text
    yield from events
    yield Finish(
        "refusal" if reason in refusals else reason,
        *_usage(completion.usage),
        model=completion.model,
        response_id=completion.id,
    )


_WARNED: set[bool] = set()
"""Whether the warning of a streamed reply without usage was logged, by ``wants_usage``."""


def _warn_no_usage(model: str, wants_usage: bool) -> None:
    """Log, once per cause, that a streamed reply came without its usage."""
    if wants_usage in _WARNED:
        return
    _WARNED.add(wants_usage)
    why = (
        "though stream_options={'include_usage': True} asked for it (the server ignores it)"
        if wants_usage
        else "as extra_options' stream_options does not ask for it (include_usage)"
    )
    logger.warning(
        "A streamed reply of the model %r came without its usage, %s. Such a reply is kept, "
        "its usage's counts None; a Budget and usage_totals() count its streamed pieces as "
        "output tokens (priced in cost_usd, an estimate) but not its prompt tokens, and count "
        "it in unpriced_requests (its cost unknown). This is logged once.",
        model,
        why,
    )


def _messages(call: LLMCall, rules: ConversationRules) -> list[dict[str, Any]]:
    """The conversation in Chat Completions' terms (see ``turns_for``).

    A run of tool calls joins the assistant message before it (or makes one); each result
    is a ``tool`` message (its content a string, empty for a result without text). A
    message with images has content parts: its text, then an ``image_url`` part per image
    (a ``data:`` URL for bytes). Where the turns alternate (``rules.alternate``), the texts
    of a turn are one message.
    """
    messages: list[dict[str, Any]] = []
    if call.system:
        messages.append({"role": "system", "content": call.system})
    for turn in turns_for(call.messages, rules):
        for item in turn.items:
            last = messages[-1] if messages else None
            if isinstance(item, PromptText):
                content = _content(item)
                if rules.alternate and last is not None and last["role"] == item.role:
                    last["content"] = _joined(last["content"], content)
                else:
                    messages.append({"role": item.role, "content": content})
            elif isinstance(item, ToolCallMessage):
                if last is None or last["role"] != "assistant":
                    last = {"role": "assistant", "content": None}
                    messages.append(last)
                function = {"name": item.tool_name, "arguments": arguments_json(item)}
                entry = {"id": item.call_id, "type": "function", "function": function}
                last.setdefault("tool_calls", []).append(entry)
            else:
                # (a result without text, made by hand, is empty: the API refuses null)
                answer = item.text or ""
                messages.append({"role": "tool", "tool_call_id": item.call_id, "content": answer})
    return messages


def _joined(
    given: str | list[dict[str, Any]] | None, more: str | list[dict[str, Any]]
) -> str | list[dict[str, Any]]:
    """Two contents of one turn as one: texts joined, or their parts one after the other."""
    if given is None:
        return more
    if isinstance(given, str) and isinstance(more, str):
        return f"{given}\n\n{more}"
    return [*_parts_of(given), *_parts_of(more)]


def _parts_of(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _content(item: PromptText) -> str | list[dict[str, Any]]:
    """A message's content: its text, or its parts when it has images."""
    if not item.images:
        return item.text
    parts: list[dict[str, Any]] = [{"type": "text", "text": item.text}] if item.text else []
    for image in item.images:
        url: dict[str, Any] = {"url": image.data_url}
        if image.detail is not None:
            url["detail"] = image.detail
        parts.append({"type": "image_url", "image_url": url})
    return parts


def _tool(tool: Tool) -> dict[str, Any]:
    return {"type": "function", "function": tool_declaration(tool, parameters=tool.parameters)}


def _response_format(output: OutputFormat) -> dict[str, Any]:
    schema: dict[str, Any] = {"name": output.name, "schema": dict(output.schema)}
    schema["strict"] = output.strict
    if output.description:
        schema["description"] = output.description
    return {"type": "json_schema", "json_schema": schema}


def _call_events(called: Any, ids: dict[int, tuple[str, str]], again: bool) -> list[LLMEvent]:
    """The events of one ``tool_calls`` delta: a start for a new index, then its arguments.

    ``ids``: each index's call so far, the id the wire gave it and the one it goes on with;
    ``again``: whether the chunk had a delta at this index before this one. A delta at an
    index seen before continues its call whatever else it repeats (a server may send the id
    and the name again in every delta of a call), unless it has another id or its chunk had
    one at the index already: then it starts a new call (a server that sends every call
    whole in one chunk at index 0, as Ollama does, tells them apart by their ids, or by
    their places in the chunk). A call whose id another index has (a model that writes its
    own ids) is renamed (see ``unused_id``): the deltas name their call by its index, so
    those of two calls may come interleaved.
    """
    events: list[LLMEvent] = []
    function = called.function
    seen = ids.get(called.index)
    if seen is None or again or (called.id and called.id != seen[0]):
        given = called.id or f"call_{called.index}"
        call_id = unused_id(given, {own for _, own in ids.values()})
        ids[called.index] = (given, call_id)
        events.append(ToolCallStart(call_id, (function.name if function else None) or ""))
    else:
        call_id = seen[1]
    if function is not None and function.arguments:
        events.append(ToolCallDelta(call_id, function.arguments))
    return events


_REASONING = ("reasoning_content", "reasoning")
"""The fields where servers send a reply's reasoning: DeepSeek's and vLLM's, OpenRouter's
and Ollama's (the SDK declares neither: they are a message's or delta's extra fields)."""


def _reasoned(said: Any, counted: TurnCount | None) -> TurnCount | None:
    """The turn's count with the reasoning that ``said`` carries, if any (made at the first).

    ``said``: a chunk's delta, or a whole reply's message; ``counted``: the count so far,
    ``None`` before the reply's first reasoning (then returned as it is without any).

    Raises:
        LLMResponseError: ``too_long()``'s, past the turn's bound.
    """
    extra = getattr(said, "model_extra", None) or {}
    for name in _REASONING:
        thought = extra.get(name)
        if isinstance(thought, str) and thought:
            return count_reasoning(counted, len(thought))
    return counted


def _said(refusal: str | None, tool_calls: Any, ids: dict[int, tuple[str, str]]) -> list[LLMEvent]:
    """The events of a chunk's refusal and tool calls."""
    events: list[LLMEvent] = [Refusal(refusal)] if refusal else []
    indices: list[int] = []  # the chunk's, so far
    for called in tool_calls or ():
        events += _call_events(called, ids, called.index in indices)
        indices.append(called.index)
    return events


def _ending_usage(chunk: Any, usage: Any) -> Any:
    """The usage after a chunk that ends a reply (its finish reason's, the usage chunk).

    ``usage``: the one so far. Only such a chunk is looked through for a usage among the
    fields the SDK does not declare (Groq's ``x_groq``): a server that adds one of its own
    to every chunk (OpenRouter's ``provider``) does not pay a look per token.
    """
    return (_chunk_usage(chunk) or usage) if chunk.__pydantic_extra__ else usage


def _chunk_usage(chunk: Any) -> Any:
    """The usage a chunk gives (its ``usage``, or Groq's in its ``x_groq``), or ``None``."""
    if chunk.usage is not None:
        return chunk.usage
    extra = getattr(chunk, "model_extra", None)
    return _extra_usage(extra) if extra else None  # (Groq's: in the last chunk's x_groq)


def _extra_usage(extra: Mapping[str, Any]) -> Any:
    """The usage a server sent outside of ``usage`` (Groq: ``x_groq.usage``), if any.

    One without its counts (or with counts that are no numbers) is none: unknown.
    """
    given = extra.get("x_groq")
    usage = given.get("usage") if isinstance(given, Mapping) else None
    if not isinstance(usage, Mapping):
        return None
    from openai.types import CompletionUsage  # (the SDK is loaded: its chunk is here)

    try:
        return CompletionUsage.model_validate(usage)
    except pydantic.ValidationError:
        return None


def _usage(usage: Any) -> tuple[int | None, ...]:
    """The counts of a ``Finish``: prompt, completion, cached and reasoning tokens.

    The cached ones are ``prompt_tokens_details.cached_tokens``, or DeepSeek's
    ``prompt_cache_hit_tokens``.
    """
    if usage is None:
        return ()
    prompt = getattr(usage, "prompt_tokens_details", None)
    completion = getattr(usage, "completion_tokens_details", None)
    cached = getattr(prompt, "cached_tokens", None)
    if cached is None:
        cached = getattr(usage, "prompt_cache_hit_tokens", None)
    return (
        usage.prompt_tokens,
        usage.completion_tokens,
        cached,
        None,  # no cache writes in Chat Completions' usage
        getattr(completion, "reasoning_tokens", None),
    )
