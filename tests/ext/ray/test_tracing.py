"""Tracing across Ray: the interaction in the worker continues the caller's trace."""

from __future__ import annotations  # noqa: I001

import asyncio

import pytest

from miniagents import MiniAgents
from miniagents.ext.ray import ray_agent
from tests.fakes.tracing import Traces, traces  # noqa: F401
from tests.ext.ray.remote_tracing import traced_in_worker

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]

WITHIN = 60.0
"""Seconds the remote interaction may take before the test fails."""


async def test_the_spans_a_worker_makes_are_children_of_the_callers_span(
    traces: Traces,  # noqa: F811
) -> None:
    remote = ray_agent(traced_in_worker, num_cpus=0.5)
    async with MiniAgents():
        reply = await asyncio.wait_for(remote.inquire().aresolve(), WITHIN)
    caller = traces.one("invoke_agent TRACED_IN_WORKER")  # the driver's side
    assert caller.context is not None
    trace_id = f"{caller.context.trace_id:032x}"
    spans = {}
    for line in (str(message) for message in reply):
        name, in_trace, parent, span_id = line.rsplit(" ", 3)
        assert in_trace == trace_id, line
        spans[name] = (parent, span_id)
    assert set(spans) == {"invoke_agent MIDDLE", "invoke_agent LEAF"}
    assert spans["invoke_agent MIDDLE"][0] == f"{caller.context.span_id:016x}"
    assert spans["invoke_agent LEAF"][0] == spans["invoke_agent MIDDLE"][1]
