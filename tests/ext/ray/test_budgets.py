"""Budgets across Ray workers: a driver's ``Budget`` charges and limits its ray agents' calls.

The calls run on the workers of the session's local Ray cluster; the budgets are the
driver's objects (see :mod:`miniagents.ext.llm.usage`, "Across processes"), charged through
the link of :mod:`miniagents.ext.ray._budgets` (the window it gives, ``REMOTE_PIECES_AHEAD``,
is patched there).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import openai
import pytest

from miniagents import InteractionContext, MessageSequencePromise, MiniAgents, miniagent
from miniagents.ext.llm import (
    Budget,
    BudgetExceededError,
    TokenUsage,
    charged_to,
    usage_totals,
    with_budget,
)
from miniagents.ext.llm.errors import LLMToolRoundsError
from miniagents.ext.llm.offline import CallTool, OfflineMessage, create_offline_agent
from miniagents.ext.llm.openai import openai_agent
from miniagents.ext.llm.usage import REMOTE_PIECES_AHEAD
from miniagents.ext.ray import _budgets as budget_link
from miniagents.ext.ray import agent as ray_agent_module
from miniagents.ext.ray import ray_agent, ray_pipeline
from miniagents.ext.ray._wire import LINK
from miniagents.ext.ray.errors import RayPipelineLinkError, RayWorkerDiedError
from miniagents.miniagents import lowlevel
from miniagents.pipeline import pipeline
from miniagents.testing import FakeLLMServer
from tests.ext.ray.remote import (
    SignalsHandle,
    audio_count_agent,
    dying_call_agent,
    late_count_agent,
    nested_runaway_agent,
)
from tests.ext.tools.loop_support import add
from tests.fakes.fixtures import fake_llm  # noqa: F401

WITHIN = 60.0
"""Seconds a step may take before the test fails (a new worker starts for the runtime_env)."""

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]

llm = create_offline_agent(token_delay=0)
priced = create_offline_agent(model="gpt-4o-mini", token_delay=0)  # priced as gpt-4o-mini
runaway = llm.fork(reply=CallTool("add", {"a": 1, "b": 1}), tools=[add], max_tool_rounds=100)
LONG = "word " * 400  # a reply of 400 pieces


class LinkSpy:
    """Counts, on the driver, the calls that carried live links and the link messages."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls_with_links = 0
        self.calls_without = 0
        self.link_messages = 0
        opened = lowlevel.outgoing_links
        apply = ray_agent_module._Attempt._apply

        def outgoing_links(sent: Sequence[object] = ()) -> list[Any]:
            links = opened(sent)
            if links:
                self.calls_with_links += 1
            else:
                self.calls_without += 1
            return links

        def counting_apply(attempt: Any, batch: list[Any]) -> Any:
            self.link_messages += sum(1 for event in batch if event[0] == LINK)
            return apply(attempt, batch)

        monkeypatch.setattr(ray_agent_module, "outgoing_links", outgoing_links)
        monkeypatch.setattr(ray_agent_module._Attempt, "_apply", counting_apply)


# -- limits -----------------------------------------------------------------------------------


async def test_a_driver_budget_stops_a_tool_loop_on_a_worker_at_the_call_past_its_limit() -> None:
    remote = ray_agent(runaway, num_cpus=0.1)
    budget = Budget(max_requests=2)
    async with MiniAgents() as context:
        with charged_to(budget):
            reply = remote.inquire("add forever")
        with pytest.raises(BudgetExceededError) as caught:
            await reply
    error = caught.value
    assert (error.limit, error.maximum, error.used) == ("max_requests", 2, 2)
    assert "max_requests of 2 calls is used up (2 calls used)" in str(error)
    assert budget.usage.requests == 2  # the third call was not made
    assert budget.in_flight == 0
    assert usage_totals(context).requests == 2  # the driver's context counts them too


async def test_a_budget_given_to_a_remote_agents_fork_and_a_context_budget_hold_too() -> None:
    given = Budget(max_requests=3)
    remote = ray_agent(runaway, num_cpus=0.1).fork(budget=given)  # travels in its arguments
    context_budget = Budget(max_requests=100)
    async with with_budget(MiniAgents(), context_budget):
        with pytest.raises(BudgetExceededError, match="max_requests of 3 calls"):
            await remote.inquire("add forever")
    assert given.usage.requests == 3
    assert context_budget.usage.requests == 3
    assert given.in_flight == context_budget.in_flight == 0


remote_runaway = ray_agent(runaway, num_cpus=0.1)


@miniagent
async def helper(ctx: InteractionContext, question: str) -> None:
    """Ask a helper model, on a Ray worker."""
    ctx.reply(remote_runaway.inquire(question))


async def test_an_orchestrators_budget_covers_its_sub_agent_on_a_worker() -> None:
    orchestrator = llm.fork(reply=CallTool("HELPER", {"question": "q"}), tools=[helper])
    budget = Budget(max_requests=4)
    async with MiniAgents():
        with pytest.raises(BudgetExceededError):
            await orchestrator.inquire("go", budget=budget)
    assert budget.usage.requests == 4  # one of the orchestrator's, three of the worker's
    assert budget.in_flight == 0


async def drained(reply: MessageSequencePromise) -> tuple[list[str], BaseException | None]:
    """Every token of every message of ``reply``, and the error it ended with (received)."""
    tokens: list[str] = []
    error: BaseException | None = None
    try:
        async for promise in reply:
            try:
                async for token in promise:
                    tokens.append(token)
            except BudgetExceededError as caught:
                error = caught
        await reply
    except BudgetExceededError as caught:
        error = error or caught
    return tokens, error


async def test_a_token_limit_stops_a_stream_running_on_a_worker() -> None:
    remote = ray_agent(llm.fork(reply=LONG), num_cpus=0.1)
    budget = Budget(max_total_tokens=50)
    async with MiniAgents():
        with charged_to(budget):
            reply = remote.inquire("x")
        tokens, error = await drained(reply)
    assert isinstance(error, BudgetExceededError)
    assert error.limit == "max_total_tokens"
    assert "stopped its call" in str(error)
    ahead = REMOTE_PIECES_AHEAD  # (the default: not patched here)
    assert 50 < budget.usage.output_tokens <= 50 + ahead + 1  # the overshoot bound
    assert len(tokens) < budget.usage.output_tokens  # the crossing piece was not delivered
    assert budget.in_flight == 0
    assert budget.usage.unpriced_requests == 1  # stopped: its prompt is unknown


async def test_a_local_call_crossing_the_limit_stops_a_workers_stream_and_its_connection(
    monkeypatch: pytest.MonkeyPatch,
    fake_llm: FakeLLMServer,  # noqa: F811
) -> None:
    # The worker's call (the real OpenAI SDK, to the fake server) pauses after its first
    # token; a local call then crosses the token limit. With a window of one piece, the
    # worker's call takes at most one more token before it must hear from the driver,
    # which has told it to stop by then: it stops, and closes its connection.
    monkeypatch.setattr(budget_link, "REMOTE_PIECES_AHEAD", 1)
    fake_llm.reply(
        tokens=["1", "2", "3", "4"], usage=(4, 4), pause_after=1, hang_after=3, for_model="far"
    )
    fake_llm.reply(tokens=["a"], usage=(20, 1), for_model="near")
    environment = {"OPENAI_BASE_URL": fake_llm.openai_base_url, "OPENAI_API_KEY": "test"}
    remote = ray_agent(
        openai_agent.fork(model="far", max_retries=0),
        num_cpus=0.1,
        runtime_env={"env_vars": environment},
    )
    budget = Budget(max_total_tokens=10)
    async with (
        MiniAgents(),
        openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test") as client,
    ):
        with charged_to(budget):
            reading = asyncio.create_task(drained(remote.inquire("go")))
        paused = await fake_llm.wait_paused_async(0, WITHIN)
        near = await openai_agent.inquire("go", model="near", async_client=client, budget=budget)
        assert str(near[0]) == "a"  # 21 tokens: past the limit
        paused.resume()
        tokens, error = await asyncio.wait_for(reading, WITHIN)
        assert await fake_llm.wait_disconnected_async(0, WITHIN)
    assert isinstance(error, BudgetExceededError)
    assert error.limit == "max_total_tokens"
    assert tokens in (["1"], ["1", "2"])  # stopped at the next token after the stop came
    assert [record.outcome for record in fake_llm.requests] == ["disconnected", "complete"]
    assert budget.in_flight == 0
    assert budget.usage.requests == 2


async def test_parallel_streams_on_workers_overshoot_by_at_most_the_window_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(budget_link, "REMOTE_PIECES_AHEAD", 4)  # the driver sends it
    remote = ray_agent(llm.fork(reply=LONG), num_cpus=0.1)
    budget = Budget(max_total_tokens=30)
    async with MiniAgents():
        with charged_to(budget):
            replies = [remote.inquire(f"call {index}") for index in range(3)]
        results = await asyncio.gather(*map(drained, replies))
    assert all(isinstance(error, BudgetExceededError) for _, error in results)
    started = budget.usage.requests  # the calls admitted while under the limit
    assert 1 <= started <= 3
    assert budget.usage.total_tokens <= 30 + started * (4 + 1)
    assert budget.in_flight == 0


async def test_a_budget_holds_for_a_ray_agent_that_a_ray_agent_calls_hop_by_hop() -> None:
    remote = ray_agent(nested_runaway_agent, num_cpus=0.1)  # it runs a ray agent of its own
    budget = Budget(max_requests=3)
    async with MiniAgents() as context:
        with charged_to(budget), pytest.raises(BudgetExceededError, match="max_requests of 3"):
            await remote.inquire("add forever")
    assert budget.usage.requests == 3  # all made two workers away
    assert budget.in_flight == 0
    assert usage_totals(context).requests == 3


async def test_a_local_pipeline_of_a_ray_agent_is_charged_to_the_budget_around_it() -> None:
    remote = ray_agent(llm.fork(reply="done"), num_cpus=0.1)
    budget = Budget(max_requests=3)
    async with MiniAgents():
        with charged_to(budget):
            results = [result async for result in pipeline(remote, ["a", "b", "c"])]
    assert all(result.ok for result in results)
    assert budget.usage.requests == 3  # the limit's room, used up by the items' calls
    assert budget.in_flight == 0


# -- usage ------------------------------------------------------------------------------------


async def test_the_driver_budget_counts_the_workers_calls_tokens_and_cost() -> None:
    remote = ray_agent(priced, num_cpus=0.1)
    meter = Budget()
    async with MiniAgents() as context:
        with charged_to(meter):
            replies = [remote.inquire("What is 2 + 3?"), remote.inquire("And 4 + 5, please?")]
        answers = [(await reply)[-1] for reply in replies]
    usages: list[TokenUsage] = []
    for answer in answers:
        assert isinstance(answer, OfflineMessage)
        assert answer.usage is not None
        usages.append(answer.usage)
    totals = meter.usage
    assert totals.requests == 2
    assert totals.input_tokens == sum(usage.input_tokens or 0 for usage in usages)
    assert totals.output_tokens == sum(usage.output_tokens or 0 for usage in usages)
    assert totals.cost_usd == pytest.approx(sum(usage.cost_usd or 0 for usage in usages))
    assert totals.cost_usd > 0
    assert totals.unpriced_requests == 0
    assert usage_totals(context) == totals  # with a budget, the context counts them as well


async def test_without_a_budget_no_link_crosses_and_no_round_trip_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = LinkSpy(monkeypatch)
    remote = ray_agent(runaway.fork(max_tool_rounds=2), num_cpus=0.1)
    async with MiniAgents():
        with pytest.raises(LLMToolRoundsError):  # after three calls
            await remote.inquire("add forever")
    assert (spy.calls_without, spy.calls_with_links, spy.link_messages) == (1, 0, 0)

    budget = Budget(max_requests=100)  # the same, charged: one round trip per call
    async with MiniAgents():
        with charged_to(budget), pytest.raises(LLMToolRoundsError):
            await remote.inquire("add forever")
    assert spy.calls_with_links == 1
    assert budget.usage.requests == 3
    assert spy.link_messages >= 3  # each call asked to start (its report may share a batch)


# -- ray_pipeline ------------------------------------------------------------------------------


def test_ray_pipeline_refuses_to_run_where_a_budget_applies() -> None:
    with charged_to(Budget(max_requests=10)):
        results = ray_pipeline(llm, ["a", "b"], num_cpus=0.1)
        with pytest.raises(RayPipelineLinkError, match="ray_agent"):
            next(iter(results))


def test_ray_pipeline_refuses_an_agent_with_a_bound_budget_instead_of_not_holding() -> None:
    agent = llm.fork(budget=Budget(max_requests=1))
    results = ray_pipeline(agent, ["a"], num_cpus=0.1)
    with pytest.raises(RayPipelineLinkError, match="bound in one of its agents"):
        next(iter(results))


@pytest.mark.parametrize("fail", [False, True])
async def test_a_count_that_comes_once_the_link_has_closed_rides_the_last_batch(
    fail: bool,
) -> None:
    """A worker's call that counts after its link closed, before the last batch, is charged.

    (On main it was logged as not charged, though the last batch still went to the driver;
    and an agent's failure went before the links' last counts, in a batch after which the
    driver read none.)
    """
    remote = ray_agent(late_count_agent, num_cpus=0.1)
    meter = Budget()
    async with MiniAgents():
        with charged_to(meter):
            replies = remote.inquire(fail=fail)
        if fail:
            with pytest.raises(ValueError, match="The late agent failed on purpose"):
                await asyncio.wait_for(replies, WITHIN)
        else:
            assert [str(reply) for reply in await asyncio.wait_for(replies, WITHIN)] == ["started"]
    usage = meter.usage
    assert (usage.requests, usage.input_tokens, usage.output_tokens) == (1, 12, 3)
    assert usage.cost_usd == pytest.approx(0.25)
    assert usage.unpriced_requests == 0
    assert meter.in_flight == 0


async def test_the_driver_budget_counts_the_audio_of_a_workers_call() -> None:
    """The part of a worker's call that was audio is charged to the driver's budget too.

    (On main what crossed the link had no audio fields: the budget counted none of it.)
    """
    remote = ray_agent(audio_count_agent, num_cpus=0.1)
    meter = Budget()
    async with MiniAgents():
        with charged_to(meter):
            replies = remote.inquire()
        assert [str(reply) for reply in await asyncio.wait_for(replies, WITHIN)] == ["said"]
    usage = meter.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens) == (20, 8, 4)
    audio = (usage.input_audio_tokens, usage.output_audio_tokens, usage.cached_audio_tokens)
    assert audio == (12, 6, 2)
    assert usage.cost_usd == pytest.approx(0.5)


async def test_a_worker_that_dies_mid_call_leaves_its_call_charged_with_the_break_logged(
    signals: SignalsHandle, caplog: pytest.LogCaptureFixture
) -> None:
    """The driver ends the call the dead worker left open, unpriced, and says the link broke.

    (On main it ended it as after a normal end: nothing said what the call's count was lost to.)
    """
    key = uuid.uuid4().hex
    remote = ray_agent(dying_call_agent, num_cpus=0.1)
    meter = Budget()
    with caplog.at_level("WARNING", logger="miniagents"):
        async with MiniAgents():
            with charged_to(meter):
                messages = aiter(remote.inquire(signals=signals, key=key))
            first = await asyncio.wait_for(anext(messages), WITHIN)
            assert str(await first) == "streaming"
            await signals.set.remote(f"{key}:read")  # now the worker kills itself
            with pytest.raises(RayWorkerDiedError):
                await asyncio.wait_for(anext(messages), WITHIN)
    usage = meter.usage
    assert (usage.requests, usage.output_tokens, usage.unpriced_requests) == (1, 1, 1)
    assert meter.in_flight == 0
    broke = [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("The link to the budgets")
    ]
    assert len(broke) == 1
    assert "broke (WorkerCrashedError: The worker died unexpectedly" in broke[0]  # Ray's
    assert "its 1 LLM call(s) still open were charged" in broke[0]
