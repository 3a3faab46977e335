"""Usage totals and budgets (``miniagents.ext.llm.usage``), with the offline model.

The same over real HTTP, with the real SDKs against the fake server, is in
``test_usage_providers.py``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import genai_prices
import pytest

from miniagents import InteractionContext, Message, MiniAgents, miniagent
from miniagents.ext.llm import (
    Budget,
    BudgetExceededError,
    LLMCall,
    LLMError,
    LLMEvent,
    LLMMessage,
    LLMOptions,
    LLMToolCallMessage,
    TokenUsage,
    UsageTotals,
    charged_to,
    make_llm_agent,
    usage_totals,
    with_budget,
)
from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.messages import reply_metadata
from miniagents.ext.llm.offline import CallTool, OfflineMessage, create_offline_agent
from miniagents.ext.llm.pricing import (
    cost_usd,
    finish_usage,
    is_priced,
    output_token_price,
    priced_model,
)
from miniagents.ext.llm.provider import Finish
from miniagents.ext.llm.structured import structured
from tests.ext.tools.loop_support import add
from tests.subprocesses import run_python

llm = create_offline_agent(token_delay=0)
priced = create_offline_agent(model="gpt-4o-mini", token_delay=0)  # priced as gpt-4o-mini


def expected_cost(model: str, input_tokens: int, output_tokens: int) -> float:
    """The cost genai-prices gives, asked directly."""
    usage = genai_prices.Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    return float(genai_prices.calc_price(usage, model).total_price)


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "named"),
    [
        ({"max_requests": -1}, "max_requests"),
        ({"max_requests": 2.5}, "max_requests"),
        ({"max_requests": True}, "max_requests"),
        ({"max_total_tokens": -10}, "max_total_tokens"),
        ({"max_total_tokens": "100"}, "max_total_tokens"),
        ({"max_cost_usd": -0.01}, "max_cost_usd"),
        ({"max_cost_usd": math.nan}, "max_cost_usd"),
        ({"max_cost_usd": "1"}, "max_cost_usd"),
    ],
)
def test_a_budget_with_a_negative_nan_or_wrong_limit_is_refused_at_construction(
    limits: dict[str, object], named: str
) -> None:
    with pytest.raises(LLMConfigurationError, match=named) as caught:
        Budget(**limits)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)
    assert f"Budget({named}=" in str(caught.value)  # says how to write it


@pytest.mark.parametrize("budget", ["lots", 100, {"max_requests": 1}])
async def test_a_budget_that_is_not_a_budget_fails_the_reply_with_how_to_make_one(
    budget: object,
) -> None:
    async with MiniAgents():
        refused = r"needs budget to be a Budget, or None; got"
        with pytest.raises(LLMConfigurationError, match=refused) as caught:
            await llm.inquire("x", budget=budget)  # type: ignore[arg-type]
    assert "budget=Budget(max_cost_usd=1.0)" in str(caught.value)
    assert caught.value.parameter == "budget"


def test_a_budget_holds_its_limits_and_starts_empty() -> None:
    budget = Budget(max_requests=0, max_total_tokens=100, max_cost_usd=0.5)
    assert (budget.max_requests, budget.max_total_tokens, budget.max_cost_usd) == (0, 100, 0.5)
    assert budget.usage == UsageTotals()
    assert budget.in_flight == 0
    assert repr(budget) == "Budget(max_requests=0, max_total_tokens=100, max_cost_usd=0.5)"
    assert repr(Budget()) == "Budget()"


# -- usage and cost of a reply ----------------------------------------------------------------


async def test_the_answer_carries_its_cost_by_the_price_table_and_none_for_an_unknown_model() -> (
    None
):
    async with MiniAgents():
        answer = (await priced.inquire("hello there", reply="Hi you."))[0]
        unknown = (await llm.inquire("hello there", reply="Hi you."))[0]
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (2, 2)
    assert answer.usage.cost_usd == pytest.approx(expected_cost("gpt-4o-mini", 2, 2))
    assert unknown.usage == TokenUsage(input_tokens=2, output_tokens=2)  # cost None: no guess
    assert str(unknown.usage) == "input_tokens=2 output_tokens=2"  # what is unknown is left out


def test_usages_summed_add_each_count_the_usages_know_and_leave_the_others_unknown() -> None:
    first = TokenUsage(input_tokens=10, output_tokens=2, cost_usd=0.5)
    second = TokenUsage(input_tokens=5, output_tokens=1, cached_input_tokens=3)
    third = TokenUsage(output_tokens=4, reasoning_tokens=2, cost_usd=0.25)
    assert TokenUsage.summed([first, second, third]) == TokenUsage(
        input_tokens=15,
        output_tokens=7,
        cached_input_tokens=3,
        reasoning_tokens=2,
        cost_usd=0.75,  # (the priced ones': a lower bound)
    )  # cache_write_tokens: known of none, so unknown
    assert TokenUsage.summed(iter([second])) == second  # (any iterable, read once)
    assert TokenUsage.summed([]) == TokenUsage()  # nothing known


def test_usage_totals_summed_add_each_field_and_since_takes_an_earlier_reading_away() -> None:
    first = UsageTotals(requests=2, input_tokens=10, output_tokens=4, cost_usd=0.5)
    second = UsageTotals(requests=1, cached_input_tokens=3, unpriced_requests=1, cost_usd=0.25)
    both = UsageTotals.summed({"a": first, "b": second}.values())  # (a budget's usage_by_model)
    assert both == UsageTotals(
        requests=3,
        input_tokens=10,
        output_tokens=4,
        cached_input_tokens=3,
        cost_usd=0.75,
        unpriced_requests=1,
    )
    assert UsageTotals.summed(iter([second])) == second  # (any iterable, read once)
    assert UsageTotals.summed([]) == UsageTotals()  # nothing used
    assert isinstance(UsageTotals.summed([]).cost_usd, float)
    assert both.since(first) == second
    assert both.since(UsageTotals()) == both
    assert both.since(both) == UsageTotals()


async def test_a_budgets_usage_since_an_earlier_reading_is_what_the_calls_after_it_used() -> None:
    meter = Budget(by_model=True)
    async with MiniAgents():
        with charged_to(meter):
            await priced.inquire("one", reply="two three")
            start = meter.usage
            await priced.inquire("one two", reply="three")
            await llm.inquire("one", reply="two")
    later = meter.usage.since(start)
    assert (later.requests, later.unpriced_requests) == (2, 1)
    assert later.total_tokens == meter.usage.total_tokens - start.total_tokens
    assert UsageTotals.summed(meter.usage_by_model.values()) == meter.usage


def test_the_pricing_module_answers_none_for_what_the_table_does_not_know() -> None:
    assert not is_priced("offline")
    assert not is_priced("gpt-4o-mini", "no-such-provider")
    assert output_token_price("no-such-model", "openai") is None
    assert cost_usd("gpt-4o-mini", TokenUsage(output_tokens=3)) is None  # input not reported
    usage = TokenUsage(input_tokens=1000, output_tokens=100, cached_input_tokens=200)
    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1000, output_tokens=100, cache_read_tokens=200),
        "gpt-4o-mini",
        provider_id="openai",
    )
    assert cost_usd("gpt-4o-mini", usage, "openai") == pytest.approx(float(expected.total_price))
    assert cost_usd("gpt-4o-mini", usage, "openai") < cost_usd(  # type: ignore[operator]
        "gpt-4o-mini", TokenUsage(input_tokens=1000, output_tokens=100), "openai"
    )  # cached tokens are cheaper


async def test_the_tool_loops_answer_sums_the_usage_and_cost_of_its_calls() -> None:
    answers: list[CallTool | str] = [CallTool("add", {"a": 2, "b": 3}), "It is 5."]
    agent = priced.fork(reply=iter(answers), tools=[add])
    async with MiniAgents() as context:
        reply = await agent.inquire("What is 2 + 3?")
    answer = reply[-1]
    assert isinstance(answer, OfflineMessage)
    assert answer.usage is not None
    totals = usage_totals(context)  # read after the context ended
    assert totals.requests == 2
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (
        totals.input_tokens,
        totals.output_tokens,
    )
    assert answer.usage.cost_usd == pytest.approx(totals.cost_usd)
    assert totals.cost_usd == pytest.approx(
        expected_cost("gpt-4o-mini", totals.input_tokens, totals.output_tokens)
    )
    assert totals.unpriced_requests == 0


# -- totals -----------------------------------------------------------------------------------


async def test_the_totals_of_a_context_count_its_inner_contexts_and_no_other() -> None:
    async with MiniAgents() as outer:
        await llm.inquire("one")
        async with MiniAgents() as inner:
            await llm.inquire("two")
            await llm.inquire("three")
            assert usage_totals().requests == 2  # the current context: the inner one
        async with MiniAgents() as other:
            pass
        assert usage_totals() is not None
    assert usage_totals(outer).requests == 3
    assert usage_totals(inner).requests == 2
    assert usage_totals(other) == UsageTotals()
    assert usage_totals(outer).unpriced_requests == 3  # the model "offline" has no price
    assert usage_totals(outer).cost_usd == 0.0


async def test_a_meter_counts_one_interaction_tree_the_agents_it_calls_as_tools_included() -> None:
    inner = llm.fork(reply="inner answer")

    @miniagent
    async def helper(ctx: InteractionContext, question: str) -> None:
        """Answer a question with another model."""
        ctx.reply(inner.inquire(question))

    answers: list[CallTool | str] = [CallTool("HELPER", {"question": "q"}), "done"]
    outer = llm.fork(reply=iter(answers), tools=[helper])
    meter = Budget()
    async with MiniAgents() as context:
        await llm.inquire("not counted by the meter")
        reply = await outer.inquire("go", budget=meter)
    assert isinstance(reply[0], LLMToolCallMessage)
    assert meter.usage.requests == 3  # outer twice, inner once
    assert usage_totals(context).requests == 4
    assert meter.in_flight == 0


class City(Message):
    city: str


async def test_a_retry_of_a_structured_answer_is_charged_as_one_more_call() -> None:
    agent = structured(llm.fork(reply=iter(["not json", '{"city": "Paris"}'])), City)
    budget = Budget()
    async with MiniAgents():
        [answer] = await agent.inquire("Where?", budget=budget)
    assert answer.city == "Paris"
    assert budget.usage.requests == 2


async def test_reply_metadata_reads_an_answers_usage_model_and_reason_as_fields_or_extras() -> None:
    async with MiniAgents():
        [answer] = await llm.inquire("one two", reply="three")
        [city] = await structured(llm.fork(reply='{"city": "Paris"}'), City).inquire("Where?")
    assert isinstance(answer, LLMMessage)
    assert answer.usage is not None
    assert reply_metadata(answer) == (answer.usage, "offline", answer.finish_reason)
    assert not isinstance(city, LLMMessage)  # (a plain Message type: extra fields say them)
    usage, model, reason = reply_metadata(city)
    assert isinstance(usage, TokenUsage)
    assert usage.input_tokens
    assert (model, reason) == ("offline", answer.finish_reason)
    assert reply_metadata(City(city="Rome")) == (None, None, None)
    wrong = City.model_validate(
        {"city": "Rome", "usage": {"input_tokens": 1}, "model": 3, "finish_reason": None}
    )
    assert reply_metadata(wrong) == (None, None, None)  # (extra fields not of their types)
    assert reply_metadata(None) == (None, None, None)


async def test_charged_to_covers_what_is_started_in_the_block_even_lazily_and_later() -> None:
    budget = Budget()
    async with MiniAgents():
        with charged_to(budget) as given:
            assert given is budget
            lazy = llm.fork(start_asap=False).inquire("later")
            eager = llm.inquire("now")
        await llm.inquire("outside")  # not charged
        await eager
        assert budget.usage.requests == 1  # the lazy one has not started yet
        await lazy  # started now, outside the block, but inquired inside it
    assert budget.usage.requests == 2


async def test_a_budget_in_two_blocks_and_an_agent_is_charged_once_per_call() -> None:
    budget = Budget(max_requests=5)
    async with MiniAgents():
        with charged_to(budget), charged_to(budget):
            await llm.inquire("x", budget=budget)
    assert budget.usage.requests == 1


async def test_the_accounts_are_running_sums_whatever_the_number_of_calls() -> None:
    budget = Budget()
    async with MiniAgents():
        with charged_to(budget):
            for index in range(200):
                await llm.inquire(f"call {index}", reply="ok")
    assert budget.usage.requests == 200
    held = {name: getattr(budget, name) for name in Budget.__slots__ if name != "__weakref__"}
    assert held.pop("_budget_open") == {}  # the calls it counts while they stream: none left
    assert all(value is None or isinstance(value, (int, float)) for value in held.values())


@dataclass(frozen=True, kw_only=True)
class _PausedOptions(LLMOptions):
    model: str | None = "gpt-4o-mini"


class _PausedProvider:
    """Streams two tokens and waits for ``go``; then a third and its count, or it fails."""

    message_class = OfflineMessage

    def __init__(self, fails: bool) -> None:
        self.go = asyncio.Event()
        self.fails = fails

    async def reply(self, call: LLMCall, options: _PausedOptions) -> AsyncIterator[LLMEvent]:
        yield "one "
        yield "two "
        await self.go.wait()
        if self.fails:
            raise ConnectionError("The connection dropped.")
        yield "three"
        yield Finish("stop", 5, 7)  # the provider's count, not the pieces streamed

    def translate(self, error: BaseException) -> BaseException:
        return error


@pytest.mark.parametrize("fails", [False, True], ids=["ends", "fails"])
async def test_a_budget_read_while_its_calls_stream_counts_their_tokens_so_far(
    fails: bool,
) -> None:
    # the meter alone charges one call (no limit: its tokens are counted when the budget is
    # read), the meter and a limited budget the other (each token charged to both at once)
    per_token = output_token_price("gpt-4o-mini")
    assert per_token is not None
    provider = _PausedProvider(fails)
    paused = make_llm_agent(_PausedOptions, provider, alias="PAUSED", summary="A paused model.")
    meter, limited = Budget(by_model=True), Budget(max_total_tokens=1_000)
    async with MiniAgents(llm_stall_timeout=None):
        with charged_to(meter):
            replies = [paused.inquire("x"), paused.inquire("x", budget=limited)]
        readers = [aiter(await anext(aiter(reply))) for reply in replies]
        assert [[await anext(reader) for _ in range(2)] for reader in readers] == [
            ["one ", "two "],
            ["one ", "two "],
        ]
        assert (meter.usage.output_tokens, limited.usage.output_tokens) == (4, 2)
        assert meter.usage.cost_usd == pytest.approx(4 * per_token)
        assert meter.usage_by_model == {"gpt-4o-mini": meter.usage}  # (its one model's)
        assert (meter.in_flight, limited.in_flight) == (2, 1)
        provider.go.set()
        for reader in readers:
            if fails:
                with pytest.raises(ConnectionError):
                    await anext(reader)
            else:
                assert [token async for token in reader] == ["three"]
    if fails:  # no count came: the tokens streamed stay counted, the cost of the prompt unknown
        assert (meter.usage.output_tokens, limited.usage.output_tokens) == (4, 2)
        assert meter.usage.cost_usd == pytest.approx(4 * per_token)
        assert meter.usage.unpriced_requests == 2
    else:  # the provider's count replaced them
        assert (meter.usage.output_tokens, limited.usage.output_tokens) == (14, 7)
        cost = cost_usd("gpt-4o-mini", TokenUsage(input_tokens=5, output_tokens=7))
        assert cost is not None
        assert meter.usage.cost_usd == pytest.approx(2 * cost)
        assert limited.usage.cost_usd == pytest.approx(cost)
        assert meter.usage.unpriced_requests == 0
    assert meter.usage.input_tokens == (0 if fails else 10)
    assert meter.usage_by_model == {"gpt-4o-mini": meter.usage}
    assert (meter.in_flight, limited.in_flight) == (0, 0)


async def test_a_budget_by_model_keeps_the_usage_of_each_model_apart() -> None:
    meter = Budget(by_model=True)
    async with MiniAgents():
        await llm.inquire("not counted by the meter")
        with charged_to(meter):
            await llm.inquire("one two", reply="three four five")
            await priced.inquire("one", reply="two three")
            await priced.inquire("one", reply="two", budget=Budget(max_requests=5))  # (limited)
    by_model = meter.usage_by_model
    assert list(by_model) == ["offline", "gpt-4o-mini"]
    offline, mini = by_model["offline"], by_model["gpt-4o-mini"]
    assert (offline.requests, offline.unpriced_requests, offline.cost_usd) == (1, 1, 0.0)
    assert (mini.requests, mini.unpriced_requests) == (2, 0)
    assert mini.cost_usd == pytest.approx(meter.usage.cost_usd)
    assert offline.total_tokens + mini.total_tokens == meter.usage.total_tokens
    assert offline.output_tokens + mini.output_tokens == meter.usage.output_tokens


def test_a_budget_not_by_model_refuses_to_say_its_usage_by_model() -> None:
    with pytest.raises(LLMConfigurationError, match=r"Budget\(by_model=True\)"):
        _ = Budget().usage_by_model


# -- limits -----------------------------------------------------------------------------------


class _PartlyCountedProvider:
    """Streams "one two three" (three pieces), then a count that leaves tokens out."""

    message_class = OfflineMessage

    def __init__(self, finish: Finish) -> None:
        self.finish = finish

    async def reply(self, call: LLMCall, options: _PausedOptions) -> AsyncIterator[LLMEvent]:
        if call.stream:
            for token in ("one ", "two ", "three"):
                yield token
        else:
            yield "one two three"
        yield self.finish

    def translate(self, error: BaseException) -> BaseException:
        return error


async def test_a_budget_by_model_counts_every_field_of_a_call_in_its_book_as_in_its_total() -> None:
    # The budget's counts and its book of the model are charged by one function: no field
    # of a call's count (cached, cache-written, reasoning tokens too) is left out of either.
    provider = _PartlyCountedProvider(Finish("stop", 40, 3, 10, 5, 2))
    counted = make_llm_agent(_PausedOptions, provider, alias="COUNTED", summary="Counts all.")
    meter = Budget(by_model=True)
    async with MiniAgents():
        with charged_to(meter):
            await counted.inquire("x")
            await counted.inquire("y", stream=False)
    usage = meter.usage
    assert meter.usage_by_model == {"gpt-4o-mini": usage}
    assert (
        usage.requests,
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_input_tokens,
        usage.cache_write_tokens,
        usage.reasoning_tokens,
        usage.unpriced_requests,
    ) == (2, 80, 6, 20, 10, 4, 0)
    assert usage.cost_usd > 0


@pytest.mark.parametrize(
    ("finish", "stream", "counted"),
    [
        (Finish("stop"), True, TokenUsage(input_tokens=0, output_tokens=3)),
        (Finish("stop"), False, TokenUsage(input_tokens=0, output_tokens=0)),
        (Finish("stop", None, 5), True, TokenUsage(input_tokens=0, output_tokens=5)),
        (Finish("stop", None, 5), False, TokenUsage(input_tokens=0, output_tokens=5)),
        (Finish("stop", 40), True, TokenUsage(input_tokens=40, output_tokens=3)),
        (Finish("stop", 40), False, TokenUsage(input_tokens=40, output_tokens=0)),
    ],
    ids=[
        "none-streamed",
        "none-whole",
        "output-streamed",
        "output-whole",
        "input-streamed",
        "input-whole",
    ],
)
async def test_a_call_without_its_full_count_is_unpriced_and_costs_the_price_of_its_tokens_counted(
    finish: Finish, stream: bool, counted: TokenUsage
) -> None:
    """Its cost is an estimate: the price of the tokens counted, the provider's, else the
    pieces streamed (one output token each), as the budget charged them while it streamed;
    the call counts in ``unpriced_requests``, as its full cost is not known."""
    provider = _PartlyCountedProvider(finish)
    partly = make_llm_agent(_PausedOptions, provider, alias="PARTLY", summary="Counts partly.")
    async with MiniAgents() as context:
        message = (await partly.inquire("x", stream=stream))[0]
    assert isinstance(message, OfflineMessage)
    assert message.usage is not None
    assert message.usage.cost_usd is None  # what the provider reported: no cost
    totals = usage_totals(context)
    assert (totals.requests, totals.unpriced_requests) == (1, 1)
    assert (totals.input_tokens, totals.output_tokens) == (
        counted.input_tokens,
        counted.output_tokens,
    )
    price = cost_usd("gpt-4o-mini", counted)  # the price of the tokens in the totals
    assert price is not None
    assert totals.cost_usd == pytest.approx(price)


class _SilentlyFailingProvider:
    """Fails before it streams anything or reports a count."""

    message_class = OfflineMessage

    async def reply(self, call: LLMCall, options: _PausedOptions) -> AsyncIterator[LLMEvent]:
        events: tuple[LLMEvent, ...] = ()  # (none: an async generator that fails at once)
        for event in events:
            yield event
        raise ConnectionError("The connection dropped.")

    def translate(self, error: BaseException) -> BaseException:
        return error


@pytest.mark.parametrize("limited", [False, True], ids=["quiet", "limited"])
async def test_a_call_that_ends_with_no_count_and_no_output_is_unpriced(limited: bool) -> None:
    """Nothing was reported of it, so its cost is not known (not a known 0): it counts in
    ``unpriced_requests``, as a call stopped after some pieces does."""
    silent = make_llm_agent(
        _PausedOptions, _SilentlyFailingProvider(), alias="SILENT", summary="Fails at once."
    )
    budget = Budget(max_total_tokens=100) if limited else Budget()
    async with MiniAgents() as context:
        with pytest.raises(ConnectionError):
            await silent.inquire("x", budget=budget)
    for totals in (usage_totals(context), budget.usage):
        assert (totals.requests, totals.unpriced_requests) == (1, 1)
        assert (totals.output_tokens, totals.cost_usd) == (0, 0.0)
    assert budget.in_flight == 0


async def test_a_budget_stops_a_runaway_tool_loop_before_the_call_past_its_limit() -> None:
    runaway = llm.fork(reply=CallTool("add", {"a": 1, "b": 1}), tools=[add], max_tool_rounds=100)
    budget = Budget(max_requests=3)
    async with MiniAgents():
        reply = runaway.inquire("add forever", budget=budget)
        with pytest.raises(BudgetExceededError) as caught:
            await reply
    error = caught.value
    assert isinstance(error, LLMError)
    assert (error.limit, error.maximum, error.used) == ("max_requests", 3, 3)
    assert "max_requests of 3 calls is used up (3 calls used)" in str(error)
    assert "Budget(max_requests=...)" in str(error)  # how to raise it
    assert budget.usage.requests == 3
    assert budget.in_flight == 0


async def test_a_fork_budget_covers_the_sub_agents_called_as_tools() -> None:
    runaway_helper = llm.fork(
        reply=CallTool("add", {"a": 1, "b": 1}), tools=[add], max_tool_rounds=100
    )

    @miniagent
    async def helper(ctx: InteractionContext, question: str) -> None:
        """Ask a helper model."""
        ctx.reply(runaway_helper.inquire(question))

    outer = llm.fork(reply=CallTool("HELPER", {"question": "q"}), tools=[helper])
    budget = Budget(max_requests=4)
    async with MiniAgents():
        with pytest.raises(BudgetExceededError):
            await outer.inquire("go", budget=budget)
    assert budget.usage.requests == 4  # one of the outer model, three of the helper's


async def test_a_context_budget_refuses_calls_past_its_limit_in_inner_contexts_too() -> None:
    budget = Budget(max_requests=2)
    async with with_budget(MiniAgents(), budget) as context:
        await llm.inquire("one")
        async with MiniAgents():
            await llm.inquire("two")
            with pytest.raises(BudgetExceededError, match="max_requests"):
                await llm.inquire("three")
    assert budget.usage.requests == 2
    assert usage_totals(context).requests == 2  # the refused call was not made


async def test_a_budget_given_to_a_context_between_its_calls_charges_the_next_ones() -> None:
    """A context's budget replaced between two calls: the next call is charged to the new one."""
    first, second = Budget(max_requests=1), Budget()
    async with MiniAgents() as context:
        await llm.inquire("before any budget")
        with_budget(context, first)
        await llm.inquire("one")
        with pytest.raises(BudgetExceededError, match="max_requests"):
            await llm.inquire("two")
        with_budget(context, second)  # replaces the first: no limit any more
        await llm.inquire("three")
        await llm.inquire("four")
        with charged_to(first), pytest.raises(BudgetExceededError, match="max_requests"):
            await llm.inquire("five")  # a scope around the call: the first budget again
    assert first.usage.requests == 1
    assert second.usage.requests == 2
    assert usage_totals(context).requests == 4  # the refused calls were not made


async def test_a_stream_that_crosses_a_cost_limit_stops_at_its_next_token() -> None:
    per_token = output_token_price("gpt-4o-mini")
    assert per_token is not None
    budget = Budget(max_cost_usd=per_token * 2.5)  # room for two tokens, not three
    tokens: list[str] = []

    async def read() -> None:
        reply = priced.inquire("x", reply="one two three four five", budget=budget)
        async for promise in reply:
            async for token in promise:
                tokens.append(token)

    async with MiniAgents():
        with pytest.raises(BudgetExceededError) as caught:
            await read()
    assert tokens == ["one ", "two "]  # the third crossed the limit: not delivered
    assert caught.value.limit == "max_cost_usd"
    assert budget.usage.output_tokens == 3
    assert budget.usage.unpriced_requests == 1  # stopped: its prompt's cost is unknown
    assert budget.in_flight == 0


async def test_a_token_limit_lets_the_running_call_finish_under_it_and_refuses_the_next() -> None:
    budget = Budget(max_total_tokens=5)
    async with MiniAgents():
        first = await llm.inquire("a b", reply="c d e", budget=budget)  # 2 + 3 tokens
        assert str(first[0]) == "c d e"
        with pytest.raises(BudgetExceededError, match="max_total_tokens of 5 tokens is used up"):
            await llm.inquire("f", budget=budget)
    assert budget.usage.total_tokens == 5
    assert budget.usage.requests == 1


async def test_without_genai_prices_nothing_is_priced_and_a_cost_limit_says_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import builtins
    import sys

    from miniagents.ext.llm import pricing

    real_import = builtins.__import__

    def no_prices(name: str, *args: object, **kwargs: object) -> object:
        if name == "genai_prices":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.delitem(sys.modules, "genai_prices")

    def forget_prices() -> None:
        # every cache of the pricing module: one left behind keeps this test's "no price"
        # for later calls, and a cost limit would not stop them (a test run after this one
        # in the same process failed so)
        pricing._prices.cache_clear()
        pricing._cost.cache_clear()
        pricing.output_token_price.cache_clear()

    monkeypatch.setattr(builtins, "__import__", no_prices)
    forget_prices()
    try:
        assert not pricing.prices_installed()
        assert not is_priced("gpt-4o-mini")
        async with MiniAgents():
            answer = (await priced.inquire("x"))[0]
            with pytest.raises(LLMConfigurationError, match="pip install genai-prices"):
                await priced.inquire("x", budget=Budget(max_cost_usd=1.0))
        assert answer.usage is not None
        assert answer.usage.cost_usd is None
    finally:
        monkeypatch.undo()
        forget_prices()
    assert is_priced("gpt-4o-mini")
    assert output_token_price("gpt-4o-mini", None) is not None


async def test_a_cost_limit_refuses_a_model_without_a_price_before_calling_it() -> None:
    budget = Budget(max_cost_usd=1.0)
    async with MiniAgents() as context:
        with pytest.raises(LLMConfigurationError, match="no price for 'offline'"):
            await llm.inquire("x", budget=budget)
        await llm.inquire("x", budget=Budget(max_total_tokens=100))  # a token limit needs none
    assert budget.usage.requests == 0
    assert usage_totals(context).requests == 1


# -- across processes -------------------------------------------------------------------------


def test_a_budget_pickled_or_copied_in_its_own_process_is_itself() -> None:
    import copy
    import pickle

    budget = Budget(max_requests=3)
    assert pickle.loads(pickle.dumps(budget)) is budget
    assert copy.copy(budget) is budget
    assert copy.deepcopy({"budget": budget})["budget"] is budget


async def test_a_budget_of_another_process_without_a_link_holds_its_limits_here() -> None:
    # as unpickled where no link runs (e.g. a durable run recovered by a new process): the
    # budget's pickle (its __reduce__) read as in a process of another home
    unpickle, (_, number, limits) = Budget(max_requests=1).__reduce__()
    elsewhere = unpickle("a process without a link", number, limits)
    assert unpickle("a process without a link", number, limits) is elsewhere  # one per budget
    assert repr(elsewhere) == "Budget(kept by another process)"
    assert elsewhere.max_requests == 1
    async with MiniAgents() as context:
        await llm.inquire("x", budget=elsewhere)
        with pytest.raises(BudgetExceededError, match="max_requests"):
            await llm.inquire("x", budget=elsewhere)
    assert elsewhere.usage.requests == 1
    assert usage_totals(context).requests == 1  # the second call was refused before it


def test_a_budget_pickled_carries_its_limits_to_a_stand_in_elsewhere() -> None:
    import pickle

    from miniagents.ext.llm import usage

    budget = Budget(max_requests=3, max_total_tokens=500, max_cost_usd=0.5)
    function, (home, number, limits) = budget.__reduce__()
    assert function(home, number, limits) is budget  # here: itself
    far = function("a process that unpickles it", number, limits)  # elsewhere: a stand-in
    assert (far.max_requests, far.max_total_tokens, far.max_cost_usd) == (3, 500, 0.5)
    assert pickle.loads(pickle.dumps(far)) is far
    assert isinstance(far, usage.Budget)


FIRST_CALL = """
import asyncio, sys
from miniagents import MiniAgents
from miniagents.ext.llm.offline import offline_agent

calls = 0

def profile(frame, event, arg):
    global calls
    if event == "call" and "genai_prices" in frame.f_code.co_filename:
        calls += 1

async def main():
    async with MiniAgents():
        sys.setprofile(profile)
        try:
            await offline_agent.inquire("Hello.", model="gpt-4o-mini")
        finally:
            sys.setprofile(None)

asyncio.run(main())
print(calls)
"""


def test_the_first_call_of_a_process_does_not_wait_for_the_price_table(tmp_path: Path) -> None:
    """The table is loaded with the pricing module, not before the first call's request.

    Loading it (the package and a first lookup over every provider's models) is about 10,000
    Python calls and 50 ms; the first call of a priced model then looks up only its own
    prices (under 1,000 calls). Counted in a fresh process, where nothing was loaded before.
    """
    result = run_python(["-c", FIRST_CALL], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert 0 < int(result.stdout) < 3_000, result.stdout


class _PassThroughRecorder:
    """Records nothing: the live call's events, as a durable run's first run gets them."""

    def llm_call(
        self,
        ctx: InteractionContext,
        provider: object,
        call: object,
        start: Callable[[], AsyncIterator[object]],
    ) -> AsyncIterator[object]:
        return start()


class _DecliningRecorder:
    """Declines every call (as DBOS's recorder does outside a durable run), counting them."""

    def __init__(self) -> None:
        self.asked = 0

    def llm_call(
        self,
        ctx: InteractionContext,
        provider: object,
        call: object,
        start: Callable[[], AsyncIterator[object]],
    ) -> None:
        self.asked += 1


@pytest.mark.parametrize(
    "recorded",
    [None, _PassThroughRecorder, _DecliningRecorder],
    ids=["charged-in-the-turn", "recorder-set", "recorder-declines"],
)
async def test_a_stream_stopped_by_a_limit_is_told_to_the_observer_either_way(
    recorded: type[_PassThroughRecorder | _DecliningRecorder] | None,
) -> None:
    """A live call is charged in the turn's loop, or, taken by a recorder, by the meter's stream.

    A call the recorder declines is charged in the turn's loop, as with no recorder.
    """
    from miniagents.ext.llm.observing import observe_llm_calls
    from miniagents.ext.llm.recording import record_llm_calls

    per_token = output_token_price("gpt-4o-mini")
    assert per_token is not None
    budget = Budget(max_cost_usd=per_token * 2.5)  # room for two tokens, not three
    tokens: list[str] = []
    ended: list[BaseException | None] = []

    class Watch:
        def events(self, events: AsyncIterator[object]) -> AsyncIterator[object]:
            return events

        def call_ended(self, error: BaseException | None) -> None:
            ended.append(error)

    class Observer:
        def llm_call_started(self, agent_alias: str, provider: object, call: object) -> Watch:
            return Watch()

    mine = None if recorded is None else recorded()
    recorder = record_llm_calls(mine)  # type: ignore[arg-type]
    observer = observe_llm_calls(Observer())  # type: ignore[arg-type]

    async def read() -> None:
        reply = priced.inquire("x", reply="one two three four five", budget=budget)
        async for promise in reply:
            async for token in promise:
                tokens.append(token)

    try:
        async with MiniAgents():
            with pytest.raises(BudgetExceededError) as caught:
                await read()
            await priced.inquire("y", reply="six", budget=Budget())  # a call that ends well
    finally:
        record_llm_calls(recorder)
        observe_llm_calls(observer)
    assert tokens == ["one ", "two "]  # the third crossed the limit: not delivered
    assert budget.usage.output_tokens == 3
    assert budget.in_flight == 0
    assert ended == [caught.value, None]
    if isinstance(mine, _DecliningRecorder):
        assert mine.asked == 2  # asked about both calls, declined both


async def test_recorded_llm_call_makes_a_declined_call_live() -> None:
    """``recorded_llm_call`` gives the recorder's events, or ``start()``'s when it declines."""
    from miniagents.ext.llm.recording import record_llm_calls, recorded_llm_call

    async def live() -> AsyncIterator[object]:
        yield "live"

    async def read(events: AsyncIterator[object]) -> list[object]:
        return [event async for event in events]

    class Replaying:
        def llm_call(self, *_: object) -> AsyncIterator[object]:
            async def recorded() -> AsyncIterator[object]:
                yield "recorded"

            return recorded()

    declining = _DecliningRecorder()
    outcomes = []
    for recorder in [None, declining, Replaying()]:
        previous = record_llm_calls(recorder)  # type: ignore[arg-type]
        try:
            events = recorded_llm_call(None, None, None, live)  # type: ignore[arg-type]
        finally:
            record_llm_calls(previous)
        outcomes.append(await read(events))
    assert outcomes == [["live"], ["live"], ["recorded"]]
    assert declining.asked == 1


def test_a_finished_calls_price_is_nothing_if_replayed_and_the_batch_price_if_batched() -> None:
    # One home for the pricing of a finished call (the budgets' and the evals' trees'):
    # tokens kept either way; a replay costs 0.0, a batch call the table's batch price.
    live = finish_usage(Finish("stop", 1000, 100), "gpt-4o", "openai")
    replayed = finish_usage(Finish("stop", 1000, 100, replayed=True), "gpt-4o", "openai")
    batch = finish_usage(Finish("stop", 1000, 100, batch_id="b-1"), "gpt-4o", "openai")
    unknown = finish_usage(Finish("stop", 1000, 100), "no-such-model", None)
    assert {live.input_tokens, replayed.input_tokens, batch.input_tokens} == {1000}
    assert (replayed.cost_usd, unknown.cost_usd) == (0.0, None)
    assert live.cost_usd == pytest.approx(cost_usd("gpt-4o", live, "openai"))
    assert batch.cost_usd == pytest.approx(cost_usd("gpt-4o", live, "openai", batch=True))
    assert (batch.cost_usd or 0.0) < (live.cost_usd or 0.0)


def test_a_reply_with_audio_prices_its_cache_writes_at_their_rate_as_a_text_reply_does() -> None:
    # 1,000 prompt tokens, 800 of them written to the cache (Anthropic's rate: 1.25 times
    # the prompt's): a reply that splits its audio (none here) is priced as one that does
    # not, its cache writes at their own rate. (was: the audio pricing left them out, so
    # they were priced as plain prompt tokens)
    from miniagents.ext.llm.provider import AudioTokens

    def finish(audio: AudioTokens | None) -> Finish:
        return Finish("stop", 1000, 100, cache_write_tokens=800, audio=audio)

    text = finish_usage(finish(None), "claude-haiku-4-5", "anthropic")
    split = finish_usage(finish(AudioTokens(0, 0, 0)), "claude-haiku-4-5", "anthropic")
    assert text.cost_usd is not None
    assert split.cost_usd == pytest.approx(text.cost_usd)
    unwritten = text.model_copy(update={"cache_write_tokens": None})
    assert text.cost_usd > (cost_usd("claude-haiku-4-5", unwritten, "anthropic") or 0.0)


def test_a_finished_call_is_priced_as_the_model_that_answered_if_the_table_knows_it() -> None:
    # Asked "gpt-4o", answered "gpt-4o-2024-05-13" (a dated model, priced apart): priced as
    # the answered one; an answer the table does not know (a fine-tuned model's name), or
    # none, is priced as the model asked for.
    def answered(model: str | None) -> Finish:
        return Finish("stop", 1000, 100, model=model)

    dated, tuned = answered("gpt-4o-2024-05-13"), answered("ft:gpt-4o:acme::x1")
    assert priced_model(dated, "gpt-4o", "openai") == "gpt-4o-2024-05-13"
    assert priced_model(tuned, "gpt-4o", "openai") == "gpt-4o"
    assert priced_model(answered(None), "gpt-4o", "openai") == "gpt-4o"
    usage = finish_usage(dated, "gpt-4o", "openai")
    assert usage.cost_usd == pytest.approx(cost_usd("gpt-4o-2024-05-13", usage, "openai"))
    assert usage.cost_usd != pytest.approx(cost_usd("gpt-4o", usage, "openai"))
    assert finish_usage(tuned, "gpt-4o", "openai").cost_usd == pytest.approx(
        cost_usd("gpt-4o", usage, "openai")
    )
