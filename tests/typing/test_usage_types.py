"""Static typing tests for usage, cost and budgets: exact types, no ``Any``.

The ``check_*`` functions are never called: mypy checks them (strict, with
``warn_unused_ignores``), and :func:`test_usage_types_pass_mypy` runs it on this file.
``assert_type`` pins each inferred type; each line that must be rejected carries a precise
``# type: ignore[code]``.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from typing import Any, assert_type

from miniagents import MiniAgents
from miniagents.errors import BudgetExceededError as BudgetExceededErrorFromFacade
from miniagents.ext.llm import (
    Budget,
    BudgetExceededError,
    LLMError,
    TokenUsage,
    UsageTotals,
    charged_to,
    usage_totals,
    with_budget,
)
from miniagents.ext.llm.anthropic import anthropic_agent
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.llm.openai import openai_agent
from miniagents.ext.llm.pricing import cost_usd
from miniagents.ext.llm.provider import LLMCall, LLMEvent, LLMProvider
from miniagents.ext.llm.recording import LLMCallRecorder, record_llm_calls, recorded_llm_call
from miniagents.ext.llm.usage import REMOTE_PIECES_AHEAD
from miniagents.ext.realtime import RealtimeUsage
from miniagents.miniagents import InteractionContext
from miniagents.miniagents.lowlevel import (
    CallerEnd,
    LinkEnd,
    add_link_opener,
    note_sent,
    outgoing_links,
    sending,
)
from tests.fakes.typecheck import assert_passes_mypy


def check_budget() -> None:
    budget = Budget(max_requests=10, max_total_tokens=50_000, max_cost_usd=0.5)
    assert_type(budget.max_requests, int | None)
    assert_type(budget.max_total_tokens, int | None)
    assert_type(budget.max_cost_usd, float | None)
    assert_type(budget.usage, UsageTotals)
    assert_type(budget.in_flight, int)
    Budget(max_cost_usd=1)  # an int of dollars is a float
    Budget(10)  # type: ignore[call-arg]
    Budget(max_requests="10")  # type: ignore[arg-type]
    Budget(max_cost=1.0)  # type: ignore[call-arg]
    budget.max_requests = 3  # type: ignore[misc]


def check_totals() -> None:
    totals = usage_totals()
    assert_type(totals, UsageTotals)
    assert_type(usage_totals(MiniAgents()), UsageTotals)
    assert_type(totals.requests, int)
    assert_type(totals.total_tokens, int)
    assert_type(totals.cached_input_tokens, int)
    assert_type(totals.reasoning_tokens, int)
    assert_type(totals.cost_usd, float)
    assert_type(totals.unpriced_requests, int)
    totals.requests = 0  # type: ignore[misc]
    assert_type(UsageTotals.summed([totals, totals]), UsageTotals)
    assert_type(UsageTotals.summed(Budget(by_model=True).usage_by_model.values()), UsageTotals)
    assert_type(totals.since(totals), UsageTotals)
    UsageTotals.summed(totals)  # type: ignore[arg-type]
    totals.since(None)  # type: ignore[arg-type]


def check_usage_of_a_reply(usage: TokenUsage) -> None:
    assert_type(usage.cost_usd, float | None)
    assert_type(usage.cached_input_tokens, int | None)
    assert_type(usage.cache_write_tokens, int | None)
    assert_type(usage.reasoning_tokens, int | None)
    assert_type(cost_usd("gpt-4o-mini", usage, "openai"), float | None)
    assert_type(TokenUsage.summed([usage, usage]), TokenUsage)
    assert_type(TokenUsage.summed(u for u in (usage,)), TokenUsage)
    TokenUsage.summed(usage)  # type: ignore[arg-type]


def check_realtime_usage_summed(usage: RealtimeUsage, reply: TokenUsage) -> None:
    assert_type(RealtimeUsage.summed([usage, usage]), RealtimeUsage)
    assert_type(RealtimeUsage.summed([usage]).output_audio_tokens, int | None)
    assert_type(TokenUsage.summed([reply, usage]), TokenUsage)
    RealtimeUsage.summed([reply])  # type: ignore[list-item]


async def check_budgets_given() -> None:
    budget = Budget(max_requests=3)
    assert_type(with_budget(MiniAgents(), budget), MiniAgents)
    with charged_to(budget) as given:
        assert_type(given, Budget)
    openai_agent.fork(budget=budget)
    anthropic_agent.inquire("Hi", budget=Budget())
    offline_agent.fork(budget=None)
    offline_agent.inquire("Hi", budget=5)  # type: ignore[arg-type]
    with_budget(MiniAgents(), 5)  # type: ignore[arg-type]


def check_budgets_across_processes() -> None:
    assert_type(REMOTE_PIECES_AHEAD, int)
    assert_type(copy.copy(Budget()), Budget)  # the budget itself: an account
    assert_type(outgoing_links(), list[CallerEnd])
    with sending() as sent:
        assert_type(sent, list[object])
    note_sent(Budget())
    far: LinkEnd = outgoing_links(sent)[0].away()
    far.receive(far.drain())
    add_link_opener(lambda sent: None)
    add_link_opener(_takes_nothing)  # type: ignore[arg-type]


async def check_links_settle() -> None:
    for link in outgoing_links():
        link.close()
        await link.asettled()  # every end has it: a transport awaits it after the close
    far = outgoing_links()[0].away()
    far.close()
    await far.asettled()


def _takes_nothing() -> None:
    return None


def check_errors(error: BudgetExceededError) -> None:
    assert_type(error.limit, str)
    assert_type(error.maximum, float)
    assert_type(error.used, float)
    llm_error: LLMError = error
    assert llm_error is not None
    assert BudgetExceededErrorFromFacade is BudgetExceededError


class _Declining:
    """A recorder that declines every call (returns ``None``)."""

    def llm_call(
        self,
        ctx: InteractionContext,
        provider: LLMProvider[Any, Any],
        call: LLMCall,
        start: Callable[[], AsyncIterator[LLMEvent]],
    ) -> None:
        return None


class _Wrong:
    """Not a recorder: its ``llm_call`` returns text."""

    def llm_call(
        self,
        ctx: InteractionContext,
        provider: LLMProvider[Any, Any],
        call: LLMCall,
        start: Callable[[], AsyncIterator[LLMEvent]],
    ) -> str:
        return ""


def check_recorders(
    ctx: InteractionContext,
    provider: LLMProvider[Any, Any],
    call: LLMCall,
    start: Callable[[], AsyncIterator[LLMEvent]],
) -> None:
    declining: LLMCallRecorder = _Declining()  # declining is part of the protocol
    assert_type(record_llm_calls(declining), LLMCallRecorder | None)
    assert_type(declining.llm_call(ctx, provider, call, start), AsyncIterator[LLMEvent] | None)
    assert_type(recorded_llm_call(ctx, provider, call, start), AsyncIterator[LLMEvent])
    record_llm_calls(_Wrong())  # type: ignore[arg-type]


# --- The test that pytest runs --------------------------------------------------------


def test_usage_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
