"""What the tracing test runs in a Ray worker: an agent that traces itself there.

The workers import this module (as ``tests.ext.ray.remote``). The agent instruments its
worker process into an in-memory exporter, runs a sub-agent (which runs another), and
replies with the spans the worker made: ``name trace_id parent_span_id span_id`` each.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from miniagents import InteractionContext, miniagent
from miniagents.ext.otel import instrument, uninstrument


@miniagent
async def leaf(ctx: InteractionContext) -> None:
    ctx.reply("leaf")


@miniagent
async def middle(ctx: InteractionContext) -> None:
    ctx.reply(leaf.inquire())


@miniagent
async def traced_in_worker(ctx: InteractionContext) -> None:
    """Trace ``middle`` (and its ``leaf``) in this worker; reply with the spans made here."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument(provider)  # this interaction started before: it has no span here
    try:
        await middle.inquire()
    finally:
        uninstrument()
    for span in exporter.get_finished_spans():
        assert span.context is not None
        assert span.parent is not None
        ctx.reply(
            f"{span.name} {span.context.trace_id:032x} {span.parent.span_id:016x} "
            f"{span.context.span_id:016x}"
        )
