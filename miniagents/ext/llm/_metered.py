"""Each call of the model metered: its usage and cost, charged to the budgets around it.

::

    provider:  "It" " is" " 5." Finish(stop, 20, 3)
    metered:   charge (refused?) | piece piece piece (stopped past a limit?) | finish(usage)

(A call charged to budgets of another process, from a Ray worker, is admitted there first,
and waits when it is far ahead of their count: see :mod:`miniagents.ext.llm.usage`.)

``Metered`` wraps the provider that ``run_call`` streams from, so the tool loop knows
nothing of budgets: a refused call fails before its request; a stream stopped past a limit
closes the provider's stream (and its connection). A live call charged to budgets of this
process only is charged by the turn as it takes the events (``charge`` and ``count``: no
async generator of its own, before the request nor per token); a recorded call (a durable
run) or one linked to budgets of another process streams through ``reply``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

from miniagents.ext.llm.charging import CallCharge
from miniagents.ext.llm.messages import AssistantMessage, TokenUsage
from miniagents.ext.llm.pricing import finish_usage, price_provider_of
from miniagents.ext.llm.provider import (
    Finish,
    LLMCall,
    LLMEvent,
    LLMOptions,
    LLMProvider,
    Refusal,
    ToolCallDelta,
    aclose_events,
)
from miniagents.ext.llm.routing import routed_reply

__all__ = ["Metered", "added_usage"]

OptionsT = TypeVar("OptionsT", bound=LLMOptions)


class Metered(Generic[OptionsT]):
    """``provider``, each of its calls charged to the budgets around it (an ``LLMProvider``)."""

    def __init__(
        self, provider: LLMProvider[OptionsT], alias: str, options: OptionsT | None = None
    ) -> None:
        self._provider = provider
        self.wrapped = provider
        """The provider it meters (tracing names the provider after it)."""
        self._alias = alias
        self._options = options
        self._price_provider = price_provider_of(provider)
        # the last Finish priced, its model and usage: a call's turn counts its Finish, and
        # its tool loop then asks for the same usage (no second TokenUsage per call)
        self._priced: tuple[Finish, str, TokenUsage] | None = None

    @property
    def options(self) -> OptionsT | None:
        """The agent's options, those its calls are made with (``None``: not known).

        An observer of the calls reads them here (``observed_options``): the API they pick
        is part of a call's key in a call cache.
        """
        return self._options

    @property
    def provider_name(self) -> str | None:
        """The provider's name in traces (``gen_ai.provider.name``) for the agent's options.

        Its ``provider_name_for(options)`` where the name depends on them (Gemini's: the
        Developer API or Vertex AI), else its ``provider_name``; ``None``: it has neither.
        """
        provider: object = self._provider
        name_for = getattr(provider, "provider_name_for", None)
        named = (
            name_for(self._options)
            if name_for is not None and self._options is not None
            else getattr(provider, "provider_name", None)
        )
        return named if isinstance(named, str) else None

    @property
    def message_class(self) -> type[AssistantMessage]:
        """The provider's."""
        return self._provider.message_class

    def usage(self, finish: Finish, model: str) -> TokenUsage:
        """The usage a ``Finish`` reports, with its cost (the last one's, worked out once)."""
        priced = self._priced
        if priced is not None and priced[0] is finish and priced[1] == model:
            return priced[2]
        usage = finish_usage(finish, model, self._price_provider)
        self._priced = (finish, model, usage)
        return usage

    def charge(self, call: LLMCall) -> CallCharge:
        """The charge of ``call``, made before its request.

        Raises:
            BudgetExceededError: if a budget has no room for the call.
            LLMConfigurationError: if a budget has ``max_cost_usd`` and the model has no
                known price.
        """
        return CallCharge(self._alias, call.model, self._price_provider)

    def count(self, charge: CallCharge, event: LLMEvent, call: LLMCall) -> bool:
        """Charge one event of ``call``: a streamed piece, or a ``Finish``'s usage.

        (The turn's loop charges a text token of a streamed call itself, with what this
        does for one: the charge's ``piece``; every other event comes here.)

        Returns:
            Whether it was a piece (a text token, a tool call's or a refusal's piece, when
            the call streams).

        Raises:
            BudgetExceededError: if the piece exceeds a token or cost limit.
        """
        if type(event) is str or isinstance(event, str):
            counted = call.stream and bool(event)
        elif isinstance(event, Finish):
            charge.finish(self.usage(event, call.model), event.audio)
            counted = False
        else:
            counted = isinstance(event, (ToolCallDelta, Refusal)) and bool(event.text)
            counted = counted and call.stream
        if counted:
            charge.piece()
        return counted

    async def reply(
        self,
        call: LLMCall,
        options: OptionsT,
        watched: Callable[[AsyncIterator[LLMEvent]], AsyncIterator[LLMEvent]] | None = None,
    ) -> AsyncIterator[LLMEvent]:
        """The provider's events, charged (refused before the request if there is no room).

        ``watched``, if given, wraps the provider's events once the budgets have admitted
        the call, right before its request (tracing: a refused call sends none).
        """
        charge = self.charge(call)
        events = routed_reply(self._provider, call, options)
        try:
            await charge.aadmit()  # budgets of another process: a round trip (else none)
            if watched is not None:
                events = watched(events)
            async for event in events:
                if self.count(charge, event, call) and charge.behind:  # far ahead of what
                    await charge.acaught_up()  # budgets of another process counted
                yield event
        finally:
            charge.end()
            await aclose_events(events)

    def translate(self, error: BaseException) -> BaseException:
        """The provider's."""
        return self._provider.translate(error)


def added_usage(usage: TokenUsage | None, more: TokenUsage) -> TokenUsage:
    """``usage`` (of the calls before; ``None``: none) with one more call's added.

    A count either lacks adds none; the cost is known only when both are.
    """
    if usage is None:
        return more

    def add(total: int | None, extra: int | None) -> int | None:
        return extra if total is None else total if extra is None else total + extra

    cost = None
    if usage.cost_usd is not None and more.cost_usd is not None:
        cost = usage.cost_usd + more.cost_usd
    return TokenUsage(
        input_tokens=add(usage.input_tokens, more.input_tokens),
        output_tokens=add(usage.output_tokens, more.output_tokens),
        cached_input_tokens=add(usage.cached_input_tokens, more.cached_input_tokens),
        cache_write_tokens=add(usage.cache_write_tokens, more.cache_write_tokens),
        reasoning_tokens=add(usage.reasoning_tokens, more.reasoning_tokens),
        cost_usd=cost,
    )
