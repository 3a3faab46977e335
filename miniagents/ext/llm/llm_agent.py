"""``make_llm_agent``: the one way to declare an LLM agent, from a provider and its options.

The OpenAI, Anthropic and offline agents are all made here, and so is yours::

    openai_agent = make_llm_agent(
        OpenAIOptions, OpenAIProvider(), alias="OPENAI_AGENT", summary="An OpenAI chat model."
    )

The agent's parameters are exactly the fields of the options class (typed for mypy, and
checked by name at run time: a misspelled one is an ``AgentArgumentError``). Each call
builds the prompt from the input messages, replies with messages whose ``role``, ``model``
and ``agent_alias`` are known before their first token, streams the provider's tokens and
tool calls into them, runs the tools the model calls (``tools=[...]``) until it answers,
stops a stalled reply (``stall_timeout``), translates the SDK's errors, and logs each call
of the model (``MiniAgents(llm_logger_agent=...)``): see :mod:`miniagents.ext.llm._call`.
"""

from __future__ import annotations

import dataclasses
import inspect
import operator
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast
from weakref import WeakKeyDictionary

from miniagents.ext.llm._call import _refuse_bound_output_type, run_call
from miniagents.ext.llm.messages import AssistantMessage, LLMReply
from miniagents.ext.llm.provider import LLMOptions, LLMProvider
from miniagents.miniagents import InteractionContext
from miniagents.miniagents.agent import AgentFunction, MiniAgent

__all__ = ["describe_options_agent", "make_llm_agent"]

P = ParamSpec("P")
OptionsT = TypeVar("OptionsT", bound=LLMOptions)
AnswerT = TypeVar("AnswerT", bound=AssistantMessage)


def make_llm_agent(
    options: Callable[P, OptionsT],
    provider: LLMProvider[OptionsT, AnswerT],
    *,
    alias: str,
    summary: str,
) -> MiniAgent[P, LLMReply[AnswerT]]:
    """An LLM agent whose parameters are the fields of ``options``.

    Args:
        options: The options class: a keyword-only dataclass extending ``LLMOptions``.
        provider: What streams the replies (see ``LLMProvider``).
        alias: The agent's alias (its replies' ``agent_alias``), e.g. "OPENAI_AGENT".
        summary: The first paragraph of the agent's docstring; the fields' descriptions
            (the ``Attributes:`` of the options classes) follow as its ``Args:``.

    Returns:
        The agent: ``MiniAgent[P, LLMReply[AnswerT]]``, ``P`` being the options class's
        keyword arguments and ``AnswerT`` the provider's ``message_class``: its replies are
        typed, e.g. ``reply[0].model`` needs no cast.
    """
    build = cast(Callable[..., OptionsT], options)
    reusable = _reusable(options)

    async def run(ctx: InteractionContext, /, **arguments: object) -> None:
        running = run_call(ctx, provider, _options(ctx, provider, build, reusable, arguments))
        del arguments  # (made into the options: not held while the call runs)
        await running

    describe_options_agent(run, options, alias=alias, summary=summary)
    return MiniAgent(cast("AgentFunction[P]", run), alias=alias)


_BUILT: WeakKeyDictionary[
    MiniAgent[...], tuple[Callable[..., Any], tuple[str, ...], tuple[object, ...], Any]
]
_BUILT = WeakKeyDictionary()
"""By agent: the options class and arguments of its last call, and the options made. (Read here, not
in the agent function, which pickles by value: a Ray worker gets a copy of the agent.)"""


def _options(
    ctx: InteractionContext,
    provider: LLMProvider[OptionsT, Any],
    build: Callable[..., OptionsT],
    reusable: bool,
    arguments: dict[str, object],
) -> OptionsT:
    """The options of a call: those of the agent's last call if its arguments are the same.

    The same means the very same objects (``is``), not equal ones (``1`` and ``True``).

    Raises:
        LLMConfigurationError: for an ``output_type`` bound to the agent.
    """
    agent = ctx.this_agent
    names, values = tuple(arguments), tuple(arguments.values())
    last = _BUILT.get(agent) if reusable else None
    if (
        last is not None
        and last[0] is build
        and last[1] == names
        and all(map(operator.is_, last[2], values))
    ):
        made: OptionsT = last[3]
        return made
    _refuse_bound_output_type(ctx, provider)
    made = build(**arguments)
    if reusable:
        _BUILT[agent] = (build, names, values, made)
    return made


def _reusable(options: Callable[..., object]) -> bool:
    """Whether one instance of ``options`` may serve every call given the same arguments.

    It may when making one does nothing but store the arguments and the defaults: a
    dataclass with no ``__post_init__`` and no ``default_factory`` (which would give each
    call a fresh object). The options are frozen, so what is worked out from them once
    (the call options, the SDK's arguments) serves each call too.
    """
    if not isinstance(options, type) or not dataclasses.is_dataclass(options):
        return False
    if hasattr(options, "__post_init__"):
        return False
    return all(item.default_factory is dataclasses.MISSING for item in dataclasses.fields(options))


# -- the agent's docstring -------------------------------------------------------------------


def describe_options_agent(
    run: Callable[..., object], options: Callable[..., object], *, alias: str, summary: str
) -> None:
    """Give ``run``, an agent function taking ``**arguments``, the face of ``options``.

    For agents whose parameters are an options class's fields (the LLM agents, the
    realtime agents of :mod:`miniagents.ext.realtime`): ``run``'s signature becomes the
    context then the fields, its name the alias in lower case, its module the options', and
    its docstring ``summary`` then ``Args:`` made of the options classes' ``Attributes:`` (a
    subclass's description of a field replaces its base's).
    """
    parameters = inspect.signature(options).parameters.values()
    context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_ONLY)
    run.__signature__ = inspect.Signature([context, *parameters])  # type: ignore[attr-defined]
    run.__name__ = run.__qualname__ = alias.lower()
    run.__module__ = getattr(options, "__module__", __name__)
    run.__doc__ = _docstring(summary, options)


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
