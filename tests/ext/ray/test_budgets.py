"""Budgets across Ray workers: a driver's ``Budget`` charges and limits its ray agents' calls."""

from __future__ import annotations

import pytest

from miniagents import MiniAgents
from miniagents.ext.llm import Budget, BudgetExceededError, charged_to, usage_totals
from miniagents.ext.llm.offline import CallTool, create_offline_agent
from miniagents.ext.ray import ray_agent
from tests.ext.tools.loop_support import add

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]

llm = create_offline_agent(token_delay=0)


async def test_a_driver_budget_stops_a_tool_loop_on_a_worker_at_the_call_past_its_limit() -> None:
    runaway = ray_agent(
        llm.fork(reply=CallTool("add", {"a": 1, "b": 1}), tools=[add], max_tool_rounds=100),
        num_cpus=0.1,
    )
    budget = Budget(max_requests=2)
    async with MiniAgents() as context:
        with charged_to(budget):
            reply = runaway.inquire("add forever")
        with pytest.raises(BudgetExceededError) as caught:
            await reply
    assert (caught.value.limit, caught.value.maximum, caught.value.used) == ("max_requests", 2, 2)
    assert budget.usage.requests == 2
    assert budget.in_flight == 0
    assert usage_totals(context).requests == 2
    print(budget.usage)
