"""Tracing across Ray: the interaction in the worker continues the caller's trace."""

from __future__ import annotations  # noqa: I001

import asyncio

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from miniagents import InteractionContext, MessageTuple, MiniAgents, miniagent
from miniagents.ext.ray import ray_agent, ray_pipeline
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
    _check_worker_spans(traces.one("invoke_agent TRACED_IN_WORKER"), reply)


@miniagent
async def pipeline_driver(ctx: InteractionContext) -> None:
    """Run ``traced_in_worker`` over one item with ``ray_pipeline``; reply with its replies."""
    async for result in ray_pipeline(traced_in_worker, ["go"], num_cpus=0.5, progress=False):
        ctx.reply(result.get())


async def test_the_spans_of_a_pipelines_items_are_children_of_the_span_that_runs_it(
    traces: Traces,  # noqa: F811
) -> None:
    async with MiniAgents():
        reply = await asyncio.wait_for(pipeline_driver.inquire().aresolve(), WITHIN)
    _check_worker_spans(traces.one("invoke_agent PIPELINE_DRIVER"), reply)


def _check_worker_spans(caller: ReadableSpan, reply: MessageTuple) -> None:
    """The worker's spans (one line each in ``reply``) continue ``caller``'s trace under it."""
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
