"""One interaction of an LLM agent: the prompt, the calls of the model, the tool loop, logs.

::

    input:    user "2 + 3?"
    model 1:  ToolCallStart(c1, add) ToolCallDelta(c1, '{"a": 2, "b": 3}') Finish(tool_calls)
    tools:    add(a=2, b=3) -> "5"                      (all the calls of a round at once)
    model 2:  "It is 5." Finish(stop)
    reply:    LLMToolCallMessage c1 | LLMToolResultMessage c1 "5" | AssistantMessage "It is 5."

The loop knows providers only through ``LLMCall`` and the events of ``LLMProvider.reply``,
so any wire format plugs in (see :mod:`miniagents.ext.llm.provider`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, NamedTuple, TypeVar

from miniagents.arguments import check_count, check_flag, check_seconds, refused_argument
from miniagents.ext.llm._answer import (
    CONTEXT_FULL,
    PER_REQUEST_LIMIT,
    Answer,
    cut_answer,
    cut_by,
    invalid_answer,
    retry_prompt,
)
from miniagents.ext.llm._metered import Metered
from miniagents.ext.llm._output_schema import output_format_of
from miniagents.ext.llm._tool_sets import tool_set_of
from miniagents.ext.llm._turn import Turn, shown_tool_names
from miniagents.ext.llm.errors import (
    LLMConfigurationError,
    LLMResponseError,
    LLMTimeoutError,
    LLMToolRoundsError,
)
from miniagents.ext.llm.messages import (
    AssistantMessage,
    LLMToolApprovalRequest,
    LLMToolCallMessage,
    LLMToolResultMessage,
    TokenUsage,
)
from miniagents.ext.llm.prompt import PromptText, prompt_of
from miniagents.ext.llm.provider import LLMCall, LLMOptions, LLMProvider, _memo_of, _new_call
from miniagents.ext.llm.sdk_calls import recent_http_error
from miniagents.ext.llm.settings import LLMSettings, llm_settings
from miniagents.ext.llm.usage import Budget, charged_to
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.ext.tools.running import error_result
from miniagents.ext.tools.tool import Tool
from miniagents.ext.tools.tool_set import ToolSet
from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise
from miniagents.miniagents import InteractionContext
from miniagents.promising.lowlevel import core_of
from miniagents.promising.lowlevel import logger as log
from miniagents.promising.sentinels import DEFAULT

__all__ = ["refuse_bound_output_type", "run_call"]

OptionsT = TypeVar("OptionsT", bound=LLMOptions)

_NO_TOOLS = ToolSet()


def run_call(
    ctx: InteractionContext, provider: LLMProvider[OptionsT], options: OptionsT
) -> Coroutine[Any, Any, None]:
    """Run an LLM agent's interaction: its input messages in, the streamed reply out.

    With tools, the model is called in a loop: each round's calls run concurrently, their
    results go back to the model, until it answers (see :mod:`miniagents.ext.llm._turn`).
    Each call is charged to the budgets around it, ``options.budget`` too, which covers
    everything the interaction causes (see :mod:`miniagents.ext.llm.usage`).

    Returns:
        The interaction's coroutine, to await (without a budget, the call's own: no
        coroutine in between).

    Raises:
        LLMConfigurationError: if ``options.budget`` is neither ``None`` nor a ``Budget``.
    """
    budget: object = options.budget  # (typed Budget | None; code mypy does not check...)
    if budget is None:
        return _run_call(ctx, provider, options)
    if not isinstance(budget, Budget):
        alias = ctx.this_agent.alias
        raise refused_argument(
            budget,
            "budget",
            "a Budget, or None",
            owner=f"The agent {alias}",
            fix=f"Pass e.g. {alias.lower()}.inquire(..., budget=Budget(max_cost_usd=1.0)).",
            error=LLMConfigurationError,
        )
    return _charged_run_call(ctx, provider, options, budget)


async def _charged_run_call(
    ctx: InteractionContext, provider: LLMProvider[OptionsT], options: OptionsT, budget: Budget
) -> None:
    with charged_to(budget):  # the tools and agents it starts inherit it
        await _run_call(ctx, provider, options)


async def _run_call(
    ctx: InteractionContext, provider: LLMProvider[OptionsT], options: OptionsT
) -> None:
    alias = ctx.this_agent.alias
    context = llm_settings()
    plan = _memo_of(options).get(_PLAN, _NO_PLAN)
    if plan.context is not context or plan.alias is not alias or plan.provider is not provider:
        plan = _plan(options, context, alias, provider, ctx.this_agent.bound_arguments)
    model, metered, metadata, known = plan.model, plan.metered, plan.metadata, plan.known
    retries = plan.retries  # (counted down by this call's retries)
    # what watches each turn's stream: its stall timeout, its bound of characters, its order
    watching = (plan.stall_timeout, plan.stalled, plan.max_turn_chars, plan.in_turn)
    call_options = dict(plan.call_options)  # the call's own (a provider may add to it)
    tools: tuple[Tool, ...] = ()
    if options.tools is None:  # no tools: the same empty set for every call
        tool_set = _NO_TOOLS
    else:
        tool_set = tool_set_of(options.tools or (), alias)
        tools = tuple(tool_set)
    system, prompt = prompt_of(await ctx.messages, options.system, tools=bool(tools))
    used_ids = (  # (without tools no call is made: nothing to rename, and no work per call)
        {item.call_id for item in prompt if isinstance(item, ToolCallMessage)} if tools else None
    )

    output_type = options.output_type
    output = None if output_type is None else output_format_of(output_type)
    answer = None if output_type is None else Answer(ctx, output_type, metadata)
    usage: TokenUsage | None = None
    rounds = 0
    try:
        while True:
            call = _new_call(model, plan.stream, system, prompt, call_options, tools, output)
            turn = Turn(ctx, plan.message_class, metadata)
            turn.used_ids = used_ids  # the call ids of the conversation: a repeated one renamed
            if answer is not None:
                answer.start_try()
                turn.text_sink = answer.feed
                if tools:  # the text may be what it says before calling tools: shown
                    turn.answer_opens = answer.open
                else:
                    answer.open()
            elif not tools:
                turn.open_text()  # known before the first token, as the only message
            usage = await turn.stream(usage, metered, call, options, *watching)  # (ended)
            calls = await turn.call_messages() if turn.calls else []
            if answer is not None and not calls:
                errors = answer.settle(turn.finish, usage)
                _log(context, ctx, call, turn, calls, metered, refused=bool(errors))
                if not errors:
                    return
                if turn.finish.reason in _CUT_OFF:  # a retry would be cut short too
                    raise cut_answer(alias, model, answer, errors, turn.finish.reason)
                if retries == 0:
                    raise invalid_answer(alias, model, answer, errors, options)
                retries -= 1
                prompt = (*prompt, *retry_prompt(answer, errors))
                continue
            _log(context, ctx, call, turn, calls, metered)
            if not calls:
                return
            if turn.finish.reason in _CUT_OFF:  # the last call's arguments are cut short
                raise _cut_off(alias, model, turn.finish.reason, calls)
            if rounds == plan.max_rounds:
                raise _too_many_rounds(alias, model, plan.max_rounds)
            rounds += 1
            answered = await _tool_round(ctx, tool_set, calls, known, plan.max_calls)
            text = turn.said()
            said = [PromptText("assistant", text)] if text else []
            prompt = (*prompt, *said, *calls, *answered)
    except BaseException as error:  # (a turn's messages: failed by its stream)
        if answer is not None:
            answer.fail(error)
        raise


async def _tool_round(
    ctx: InteractionContext,
    tool_set: ToolSet,
    calls: list[LLMToolCallMessage],
    known: dict[str, str],
    max_calls: int,
) -> list[ToolResultMessage]:
    """Run a round of tool calls, all at once, into the reply; their results, in order.

    The approval requests and the results enter the reply as the calls start; a result is
    awaited only while someone reads the reply (or it): a cancelled round cancels them.
    The calls after the first ``max_calls`` (the agent's ``max_tool_calls``) do not run:
    each is answered with an error result that says so.
    """
    requests, running = _start_tools(tool_set, calls[:max_calls], known)
    running += [_not_run(called, len(calls), max_calls, known) for called in calls[max_calls:]]
    ctx.reply([*(asked for asked in requests if asked is not None), *running])
    try:
        for result in running:  # a wait that keeps the tool going only while someone
            await core_of(result).await_needed()  # reads this reply (or the result)
        done = [await result for result in running]
    except BaseException:  # cancelled: so are the tools, read by anyone or not
        for result in running:
            result.cancel()
        raise
    return [result for result in done if isinstance(result, ToolResultMessage)]


def _not_run(
    call: LLMToolCallMessage, count: int, max_calls: int, known: dict[str, str]
) -> MessagePromise[ToolResultMessage]:
    """The error result of a call past the agent's ``max_tool_calls`` in one turn (not run)."""
    return error_result(
        call,
        f"The call of the tool {call.tool_name} was not run: the turn made {count:,} tool "
        f"calls, and the agent runs at most {max_calls:,} of one turn (its max_tool_calls). "
        "Make fewer calls at once: call the tools that are left in the next turn.",
        result_class=LLMToolResultMessage,
        **known,
    )


def _too_many_rounds(alias: str, model: str, max_rounds: int) -> LLMToolRoundsError:
    """The error of a model that asks for tools again after ``max_rounds`` rounds."""
    return LLMToolRoundsError(
        f"The agent {alias} stopped its tool loop: the model {model!r} asked for tools again "
        f"after {max_rounds} rounds of tool calls (its max_tool_rounds). Give it more with "
        f"{alias.lower()}.fork(max_tool_rounds=...), or tell the model (e.g. in the system "
        "prompt) when to stop calling tools."
    )


_CUT_OFF = frozenset(
    {
        "length",
        "max_tokens",
        "max_output_tokens",
        "incomplete",
        "MAX_TOKENS",
        PER_REQUEST_LIMIT,
        CONTEXT_FULL,
    }
)
"""The finish reasons of a reply that the model's token limit cut off (Chat Completions and
the offline model, Anthropic and Bedrock, the Responses API, Gemini's ``MAX_TOKENS`` and
``CONTINUATION``: its per-request limit, the reply not finished), or its context window
(Anthropic and Bedrock: the reply filled it)."""


def _cut_off(
    alias: str, model: str, reason: str | None, calls: list[LLMToolCallMessage]
) -> LLMResponseError:
    """The error of a round of tool calls that the token limit (or context window) cut off.

    None of them is run.
    """
    names = shown_tool_names([called.tool_name for called in calls])
    what, fix = cut_by(alias, reason)
    return LLMResponseError(
        f"The agent {alias} stopped: the model {model!r} {what} (finish reason {reason!r}) "
        f"while it wrote its tool calls ({names}), so their arguments may be cut short and "
        f"none was run. {fix}"
    )


def _start_tools(
    tool_set: ToolSet, calls: list[LLMToolCallMessage], known: dict[str, str]
) -> tuple[list[ToolApprovalRequest | None], list[MessagePromise[ToolResultMessage]]]:
    """Start the tools of a round's calls: (the approval requests asked, the results).

    They all start now, concurrently; the calls that wait for a person's approval ask for it
    in a request each. (A function of its own: a comprehension in ``_run_call`` that read its
    locals would keep them in cells, two objects more per call for the collector.)
    """
    requests: list[ToolApprovalRequest | None] = [
        tool_set.approval_request(called, request_class=LLMToolApprovalRequest, **known)
        for called in calls
    ]
    running: list[MessagePromise[ToolResultMessage]] = [
        tool_set.run(called, result_class=LLMToolResultMessage, approval=asked, **known)
        for called, asked in zip(calls, requests, strict=True)
    ]
    return requests, running


_PLAN = "run_call"
"""The key of a call's plan (see :func:`_plan`) in what is worked out from the options."""


class _Plan(NamedTuple):
    """What every call with the same options, context settings, alias and provider shares."""

    context: LLMSettings
    alias: str
    provider: LLMProvider[Any]
    model: str
    stream: bool
    stall_timeout: float | None
    max_rounds: int
    retries: int
    max_calls: int
    call_options: dict[str, object]
    metered: Metered[Any]
    message_class: type[AssistantMessage]
    metadata: dict[str, object]
    known: dict[str, str]
    stalled: Callable[[], LLMTimeoutError]
    in_turn: bool
    max_turn_chars: int


_NO_PLAN = _Plan._make([None] * 17)  # one None per field
"""No plan kept yet (its context is no context)."""


def _plan(
    options: OptionsT,
    context: LLMSettings,
    alias: str,
    provider: LLMProvider[OptionsT],
    bound: Mapping[str, object],
) -> _Plan:
    """What every call with ``options`` in the context ``context`` shares, checked (kept).

    Kept with the options (see ``provider._memo_of``: an agent reuses its options for the
    calls given the same arguments) for the same context settings, alias and provider.
    All of it is immutable or only read (the call options are copied for each call); a
    check that fails raises, and nothing is kept, so the next call is refused too.
    ``bound`` is the agent's bound arguments: a refusal says whether the value came from
    them (``fork``) or from the call (``inquire``).

    Raises:
        LLMConfigurationError: for no model, an argument of the wrong kind (see
            ``LLMOptions.check``), a ``stall_timeout``, ``max_tool_rounds``,
            ``output_retries`` or ``extra_options`` the agent cannot take, a provider whose
            messages have no ``role`` (not ``AssistantMessage``), a context's
            ``stream_llm_tokens_by_default`` or ``llm_parse_in_turn`` that is not a bool,
            or its ``llm_max_turn_chars`` not a whole number of at least 1.
    """
    model = options.model
    if not model:
        raise LLMConfigurationError(
            f"The agent {alias} needs a model. Give it one when you make the agent, e.g. "
            f"{alias.lower()}.fork(model=...) or inquire(..., model=...)."
        )
    options.check(alias)
    stream = options.stream
    if stream is None:
        stream = _context_flag(context, "stream_llm_tokens_by_default")
    stall_timeout = _stall_timeout(options, context, alias)
    in_turn = _context_flag(context, "llm_parse_in_turn")
    max_turn_chars = check_count(
        context.llm_max_turn_chars,
        "llm_max_turn_chars",
        owner="MiniAgents()",
        fix="Pass a whole number of characters for the LLM agents to run, e.g. "
        "MiniAgents(llm_max_turn_chars=10_000_000).",
        error=LLMConfigurationError,
    )
    counts = _counts(options, alias, bound)  # max_rounds, retries, max_calls
    call_options = options.call_options()
    message_class = provider.message_class
    metadata: dict[str, object] = {  # only read: each message copies it
        "role": _role_of(message_class, alias),
        "model": model,
        "agent_alias": alias,
    }
    known = {"model": model, "agent_alias": alias}  # what the tools' results carry too

    def stalled() -> LLMTimeoutError:
        assert stall_timeout is not None  # (only a watch with a timeout calls it)
        retried = recent_http_error(stall_timeout)
        while_retrying = fewer_retries = ""
        if retried is not None:  # the SDK was waiting to retry: its error is the cause
            response = getattr(retried, "response", None)
            status = (
                f"{getattr(response, 'status_code', '')} {getattr(response, 'reason_phrase', '')}"
            )
            while_retrying = (
                f", while the SDK waited to retry the request that the provider had answered "
                f"with HTTP {status.strip()} (see __cause__)"
            )
            fewer_retries = f"; or {alias.lower()}.fork(max_retries=0) to get that error at once"
        error = LLMTimeoutError(
            f"The agent {alias} stopped its call: the model {model!r} sent nothing for "
            f"{stall_timeout:g} seconds (its stall_timeout){while_retrying}. Give it longer "
            f"with {alias.lower()}.fork(stall_timeout=...) or MiniAgents(llm_stall_timeout=...), "
            f"or None to wait as long as it takes{fewer_retries}."
        )
        error.__cause__ = retried
        return error

    plan = _Plan(
        context,
        alias,
        provider,
        model,
        stream,
        stall_timeout,
        *counts,
        call_options,
        Metered(provider, alias, options),
        message_class,
        metadata,
        known,
        stalled,
        in_turn,
        max_turn_chars,
    )
    _memo_of(options)[_PLAN] = plan
    return plan


def refuse_bound_output_type(bound: object, alias: str, typed_as: str, made_with: str) -> None:
    """Refuse ``bound``, an ``output_type`` bound with ``fork`` or ``bind`` (``None``: none).

    Args:
        bound: The bound ``output_type``, or ``None``.
        alias: The agent's alias.
        typed_as: What the agent's replies are typed as (e.g. ``OpenAIMessages``).
        made_with: The agent as ``structured`` takes it (e.g. ``openai_agent.fork(...)``).

    Raises:
        LLMConfigurationError: if ``bound`` is not ``None``, naming ``structured``.
    """
    if bound is None:
        return
    name = getattr(bound, "__name__", repr(bound))
    raise LLMConfigurationError(
        f"The agent {alias} has output_type={name} bound with fork() or bind(): its "
        f"replies would be typed as {typed_as}, not {name}s. Make it with "
        f"structured({made_with}, {name}) instead (a MiniAgent that replies with the "
        f"{name}, typed), or, for the whole reply (tool calls and results, then the "
        f"{name}), give output_type={name} to inquire()."
    )


def _counts(options: LLMOptions, alias: str, bound: Mapping[str, object]) -> tuple[int, int, int]:
    """The agent's ``max_tool_rounds``, ``output_retries`` and ``max_tool_calls``, checked.

    They are checked once per options (kept in its memo).

    Raises:
        LLMConfigurationError: if one is not a whole number (of at least 1, 0).
    """
    memo = _memo_of(options)
    counts: tuple[int, int, int] | None = memo.get("counts")
    if counts is None:
        counts = (
            _count(options, "max_tool_rounds", 1, alias, bound),
            _count(options, "output_retries", 0, alias, bound),
            _count(options, "max_tool_calls", 1, alias, bound),
        )
        memo["counts"] = counts
    return counts


def _context_flag(context: LLMSettings, name: str) -> bool:
    """The context's setting ``name`` (``stream_llm_tokens_by_default``, ...), checked.

    Raises:
        LLMConfigurationError: if it is not a bool.
    """
    fix = "Pass True or False (or None: the outer context's) for the LLM agents to run."
    return check_flag(
        getattr(context, name), name, owner="MiniAgents()", fix=fix, error=LLMConfigurationError
    )


def _role_of(message_class: type[Message], alias: str) -> object:
    """The default ``role`` of a provider's messages (read once per class).

    Raises:
        LLMConfigurationError: for a class without a ``role`` field (not an
            ``AssistantMessage``: ``make_llm_agent`` refuses it, ``LLMAgent(...)`` does not).
    """
    role = _ROLES.get(message_class, _ROLES)
    if role is _ROLES:
        declared = message_class.model_fields.get("role")
        if declared is None:
            raise LLMConfigurationError(
                f"The agent {alias}'s provider replies with {message_class.__name__}, which "
                "has no role field: an LLM agent's replies are AssistantMessage (from "
                "miniagents.ext.llm) or a subclass of it. Give the provider such a "
                "message_class, and make the agent with make_llm_agent(...), which checks it."
            )
        role = _ROLES[message_class] = declared.default
    return role


_ROLES: dict[type[Message], object] = {}


def _count(
    options: LLMOptions, name: str, least: int, alias: str, bound: Mapping[str, object]
) -> int:
    """The agent's option ``name`` (``max_tool_rounds``, ``output_retries``), checked.

    The fix a refusal names is where the value came from: ``fork`` (or ``bind``) when it
    is the one bound to the agent (``bound``), else the call (``inquire``).

    Raises:
        LLMConfigurationError: if it is not a whole number of at least ``least``.
    """
    value = getattr(options, name)
    if name in bound and bound[name] is value:
        fix = f"Set it with {alias.lower()}.fork({name}=...)."
    else:
        fix = (
            f"It was given to this call: pass a whole number of at least {least} to "
            f"{alias.lower()}.inquire(..., {name}=...), or leave it out for the agent's."
        )
    owner = f"The agent {alias}"
    return check_count(value, name, least=least, owner=owner, fix=fix, error=LLMConfigurationError)


def _stall_timeout(options: LLMOptions, context: LLMSettings, alias: str) -> float | None:
    """The agent's ``stall_timeout``, else the context's, checked.

    Raises:
        LLMConfigurationError: if it is not a positive number of seconds (or ``None``).
    """
    given = options.stall_timeout
    timeout: object = context.llm_stall_timeout if given is DEFAULT else given
    if timeout is None:
        return None
    fix = (
        f"Set it with {alias.lower()}.fork(stall_timeout=...) or MiniAgents(llm_stall_timeout="
        "...), or to None to wait as long as the model takes."
    )
    owner = f"The agent {alias}"
    seconds = check_seconds(
        timeout, "stall_timeout", forever=True, owner=owner, fix=fix, error=LLMConfigurationError
    )
    return None if math.isinf(seconds) else seconds


def _log(
    context: LLMSettings,
    ctx: InteractionContext,
    call: LLMCall,
    turn: Turn,
    calls: list[LLMToolCallMessage],
    metered: Metered[OptionsT],
    *,
    refused: bool = False,
) -> None:
    """Send the call's prompt and response to the LLM logger agent, if there is one.

    The response is a message of the call's text and metadata (role, model, agent alias,
    finish reason) with this call's own usage (the answer's counts every call of the
    loop); for a turn of tool calls, the calls (name and arguments) in a ``tool_calls``
    field; ``refused=True`` for a structured answer that did not validate.
    """
    logger = context.llm_logger_agent
    if logger is False:
        return
    if logger is True:
        from miniagents.ext.llm.llm_logger import llm_logger_agent

        logger = llm_logger_agent
    more: dict[str, object] = {}
    if calls:
        more["tool_calls"] = tuple(f"{called.tool_name} {called.text}" for called in calls)
    if refused:
        more["refused"] = True
    response = Message(
        text=turn.said(),
        **turn.metadata,
        finish_reason=turn.finish.reason,
        usage=metered.usage(turn.finish, call.model),
        **more,
    )
    try:
        logger.inquire([*_call_messages(call), response], agent_alias=ctx.this_agent.alias)
    except Exception as error:  # a log that cannot be written must not fail the call it logs
        log.error(
            "The LLM logger agent %s could not be given the call of %s: %s The call goes on "
            "unlogged; a logger agent takes the prompt and response as its input and an "
            "agent_alias keyword (async def logger(ctx, agent_alias: str) -> None).",
            getattr(logger, "alias", logger),
            ctx.this_agent.alias,
            error,
        )


def _call_messages(call: LLMCall) -> list[Message]:
    messages: list[Message] = []
    if call.system:
        messages.append(Message(text=call.system, role="system"))
    for item in call.messages:
        if isinstance(item, PromptText):
            images = {"images": item.images} if item.images else {}
            messages.append(Message(text=item.text, role=item.role, **images))
        else:
            messages.append(item)
    return messages
