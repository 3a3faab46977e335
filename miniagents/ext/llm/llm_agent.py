"""``make_llm_agent``: the one way to declare an LLM agent, from a provider and its options.

The OpenAI, Anthropic and offline agents are all made here, and so is yours::

    openai_agent = make_llm_agent(
        OpenAIOptions, OpenAIProvider(), alias="OPENAI_AGENT", summary="An OpenAI chat model."
    )

The agent's parameters are exactly the fields of the options class (typed for mypy, and
checked by name at run time: a misspelled one is an ``AgentArgumentError``). Each call
builds the prompt from the input messages, replies at once with one message whose
``role``, ``model`` and ``agent_alias`` are known before its first token, streams the
provider's tokens into it, stops a stalled reply (``stall_timeout``), translates the SDK's
errors, and logs the call (``MiniAgents(llm_logger_agent=...)``).
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Callable
from typing import ParamSpec, TypeVar, cast

from miniagents.ext.llm._stall import StallWatch
from miniagents.ext.llm.errors import LLMConfigurationError, LLMTimeoutError
from miniagents.ext.llm.messages import TokenUsage
from miniagents.ext.llm.prompt import prompt_of
from miniagents.ext.llm.provider import Finish, LLMCall, LLMOptions, LLMProvider
from miniagents.messages.appender import MessageTokenAppender
from miniagents.messages.message import Message
from miniagents.miniagents.agent import AgentFunction, MiniAgent
from miniagents.miniagents.context import MiniAgents
from miniagents.miniagents.interaction import InteractionContext
from miniagents.promising.errors import MiniAgentsError
from miniagents.promising.sentinels import DEFAULT

__all__ = ["make_llm_agent"]

P = ParamSpec("P")
OptionsT = TypeVar("OptionsT", bound=LLMOptions)


def make_llm_agent(
    options: Callable[P, OptionsT],
    provider: LLMProvider[OptionsT],
    *,
    alias: str,
    summary: str,
) -> MiniAgent[P]:
    """An LLM agent whose parameters are the fields of ``options``.

    Args:
        options: The options class: a keyword-only dataclass extending ``LLMOptions``.
        provider: What streams the replies (see ``LLMProvider``).
        alias: The agent's alias (its replies' ``agent_alias``), e.g. "OPENAI_AGENT".
        summary: The first paragraph of the agent's docstring; the fields' descriptions
            (the ``Attributes:`` of the options classes) follow as its ``Args:``.

    Returns:
        The agent: ``MiniAgent[P]``, ``P`` being the options class's keyword arguments.
    """
    build = cast(Callable[..., OptionsT], options)

    async def run(ctx: InteractionContext, /, **arguments: object) -> None:
        await _run_call(ctx, provider, build(**arguments))

    parameters = inspect.signature(options).parameters.values()
    context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_ONLY)
    run.__signature__ = inspect.Signature([context, *parameters])  # type: ignore[attr-defined]
    run.__name__ = run.__qualname__ = alias.lower()
    run.__module__ = getattr(options, "__module__", __name__)
    run.__doc__ = _docstring(summary, options)
    return MiniAgent(cast("AgentFunction[P]", run), alias=alias)


async def _run_call(
    ctx: InteractionContext, provider: LLMProvider[OptionsT], options: OptionsT
) -> None:
    """Run one LLM call for an agent: its input messages in, one streamed reply out."""
    alias = ctx.this_agent.alias
    model = options.model
    if not model:
        raise LLMConfigurationError(
            f"The agent {alias} needs a model. Give it one when you make the agent, e.g. "
            f"{alias.lower()}.fork(model=...) or inquire(..., model=...)."
        )
    context = MiniAgents.get_current()
    stream = context.stream_llm_tokens_by_default if options.stream is None else options.stream
    stall_timeout = _stall_timeout(options, context, alias)
    call_options = options.call_options()
    system, conversation = prompt_of(await ctx.messages, options.system)
    call = LLMCall(model, stream, system, conversation, call_options)

    message_class = provider.message_class
    role = message_class.model_fields["role"].default
    reply = MessageTokenAppender(
        message_class=message_class, role=role, model=model, agent_alias=alias
    )
    _cancel_when_abandoned(reply)
    ctx.reply(reply.promise)

    def stalled() -> LLMTimeoutError:
        return LLMTimeoutError(
            f"The agent {alias} stopped its call: the model {model!r} sent nothing for "
            f"{stall_timeout:g} seconds (its stall_timeout). Give it longer with "
            f"{alias.lower()}.fork(stall_timeout=...) or MiniAgents(llm_stall_timeout=...), "
            "or None to wait as long as it takes."
        )

    events = provider.reply(call, options)
    try:
        with StallWatch(stall_timeout, stalled) as watch:
            async for event in events:
                watch.alive()
                if isinstance(event, Finish):
                    usage = TokenUsage(
                        input_tokens=event.input_tokens, output_tokens=event.output_tokens
                    )
                    reply.update_metadata(finish_reason=event.reason, usage=usage)
                else:
                    reply.append(event)
    except BaseException as error:
        translated = error if isinstance(error, MiniAgentsError) else provider.translate(error)
        reply.fail(translated)
        if translated is error:
            raise
        raise translated from error
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()
    reply.complete()
    _log(context, ctx, call, reply)


def _stall_timeout(options: LLMOptions, context: MiniAgents, alias: str) -> float | None:
    """The agent's ``stall_timeout``, else the context's, checked.

    Raises:
        LLMConfigurationError: if it is not a positive number of seconds (or ``None``).
    """
    given = options.stall_timeout
    timeout: object = context.llm_stall_timeout if given is DEFAULT else given
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not timeout > 0  # also refuses nan
    ):
        raise LLMConfigurationError(
            f"The stall timeout of the agent {alias} must be a positive number of seconds, "
            f"or None to wait as long as the model takes; got {timeout!r}. Set it with "
            f"{alias.lower()}.fork(stall_timeout=...) or MiniAgents(llm_stall_timeout=...)."
        )
    return None if math.isinf(timeout) else float(timeout)


def _cancel_when_abandoned(reply: MessageTokenAppender) -> None:
    """Stop the call (closing its HTTP stream) when every consumer of its message gives up.

    (Its reply sequence already cancels the agent's task when abandoned: see
    ``MessageSequenceAppender.cancel_when_abandoned``.)
    """
    task = asyncio.current_task()
    if task is None:
        return

    def cancel() -> None:
        task.cancel()

    reply.promise._core.on_abandoned = cancel


def _log(
    context: MiniAgents, ctx: InteractionContext, call: LLMCall, reply: MessageTokenAppender
) -> None:
    logger = context.llm_logger_agent
    if logger is False:
        return
    if logger is True:
        from miniagents.ext.llm.llm_logger import llm_logger_agent

        logger = llm_logger_agent
    logger.inquire([*_call_messages(call), reply.promise], agent_alias=ctx.this_agent.alias)


def _call_messages(call: LLMCall) -> list[Message]:
    messages: list[Message] = []
    if call.system:
        messages.append(Message(text=call.system, role="system"))
    messages.extend(Message(text=text, role=role) for role, text in call.messages)
    return messages


# -- the agent's docstring -------------------------------------------------------------------


def _docstring(summary: str, options: Callable[..., object]) -> str:
    """``summary``, then ``Args:``: the fields described by the options classes' docstrings.

    A class's ``Attributes:`` section describes its own fields; a subclass's description of
    a field replaces its base class's.
    """
    described: dict[str, str] = {}
    for cls in reversed(getattr(options, "__mro__", ())):
        described.update(_attributes(cls.__dict__.get("__doc__")))
    lines = [inspect.cleandoc(summary), "", "Args:", "    ctx: The interaction."]
    lines += [f"    {text}" for text in described.values()]
    return "\n".join(lines)


def _attributes(docstring: str | None) -> dict[str, str]:
    """The entries of a Google-style ``Attributes:`` section, by name, lines kept."""
    if not docstring:
        return {}
    entries: dict[str, str] = {}
    section = False
    name = ""
    for line in inspect.cleandoc(docstring).splitlines():
        if line.strip() == "Attributes:":
            section = True
        elif section and line.startswith("        ") and name:
            entries[name] += "\n" + line
        elif section and line.startswith("    ") and ":" in line:
            name = line.strip().split(":")[0]
            entries[name] = line.strip()
        elif section and line.strip():
            section = False
    return entries
