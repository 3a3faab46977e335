"""``make_realtime_agent``: the one way to declare a realtime agent, of a provider and options.

The OpenAI and Gemini realtime agents are made here, and so is yours::

    openai_realtime_agent = make_realtime_agent(
        OpenAIRealtimeOptions, OpenAIRealtimeProvider(), alias="OPENAI_REALTIME_AGENT",
        summary="An OpenAI realtime model.",
    )

The agent's parameters are exactly the fields of the options class (typed for mypy, and
checked by name at run time). Each interaction is one session (see
:mod:`miniagents.ext.realtime._session`): its input streams to the API as it comes, the
API's events stream back as the reply's pieces, charged to the budgets around it (and its
``budget=``), traced, and recorded or replayed by an active call cache
(:mod:`miniagents.ext.llm.cache`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any, ParamSpec, TypeVar, cast
from weakref import WeakKeyDictionary

from miniagents.arguments import refused_argument
from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.llm_agent import describe_options_agent
from miniagents.ext.llm.usage import Budget, charged_to
from miniagents.ext.realtime._recording import connect_through_cache
from miniagents.ext.realtime._session import Session, check_options
from miniagents.ext.realtime.pieces import RealtimePiece
from miniagents.ext.realtime.provider import (
    RealtimeLink,
    RealtimeOptions,
    RealtimeProvider,
    SessionSetup,
)
from miniagents.messages.message import Message
from miniagents.miniagents.agent import AgentFunction, InteractionContext, MiniAgent

__all__ = ["make_realtime_agent", "provider_of"]

P = ParamSpec("P")
OptionsT = TypeVar("OptionsT", bound=RealtimeOptions)


def make_realtime_agent(
    options: Callable[P, OptionsT],
    provider: RealtimeProvider[OptionsT],
    *,
    alias: str,
    summary: str,
) -> MiniAgent[P, RealtimePiece]:
    """A realtime agent whose parameters are the fields of ``options``.

    Args:
        options: The options class: a keyword-only dataclass extending ``RealtimeOptions``.
        provider: What opens the sessions (see ``RealtimeProvider``).
        alias: The agent's alias, e.g. "OPENAI_REALTIME_AGENT".
        summary: The first paragraph of the agent's docstring; the fields' descriptions
            follow as its ``Args:``.

    Returns:
        The agent: ``MiniAgent[P, RealtimePiece]``, ``P`` being the options class's keyword
        arguments.
    """
    build = cast(Callable[..., OptionsT], options)

    async def run(ctx: InteractionContext, /, **arguments: object) -> None:
        made = build(**arguments)
        del arguments
        check_options(made, ctx.this_agent.alias)  # (the kinds first: the provider's own
        # checks of one option against another may take those kinds for granted)
        check = getattr(made, "check", None)
        if check is not None:
            check(ctx.this_agent.alias)
        budget: object = made.budget
        if budget is not None and not isinstance(budget, Budget):
            raise refused_argument(
                budget,
                "budget",
                "a Budget (or None: no budget of its own)",
                owner=f"The agent {ctx.this_agent.alias}",
                fix=f"Pass e.g. {alias.lower()}.fork(budget=Budget(max_cost_usd=1.0)).",
                error=LLMConfigurationError,
            )
        session = Session(ctx, provider, made, ctx.this_agent.alias)

        async def connect(setup: SessionSetup) -> RealtimeLink:
            return await connect_through_cache(provider, setup, made)

        with nullcontext() if budget is None else charged_to(budget):  # (its tools' too)
            await session.arun(connect)

    describe_options_agent(run, options, alias=alias, summary=summary)
    _PROVIDERS[run] = provider
    return MiniAgent(cast("AgentFunction[P]", run), alias=alias)


_PROVIDERS: WeakKeyDictionary[Callable[..., object], RealtimeProvider[Any]] = WeakKeyDictionary()
"""The provider of each realtime agent's function (its forks share it)."""


def provider_of(agent: MiniAgent[..., Message]) -> RealtimeProvider[Any] | None:
    """The provider of a realtime agent (its audio formats), ``None`` for another agent."""
    return _PROVIDERS.get(agent.func)
