"""Tracing fixtures: the OpenTelemetry SDK's in-memory exporter and metric reader, instrumented.

A test module imports the fixture to use it (``from tests.fakes.tracing import traces``), and
:func:`plugged_observers` to see what the three observer hooks hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from miniagents.ext.llm.observing import observe_llm_calls
from miniagents.ext.otel import instrument, uninstrument
from miniagents.ext.tools.observing import observe_tool_calls
from miniagents.miniagents.lowlevel import observe_interactions


@dataclass
class Traces:
    """What the instrumentation of a test exported: its spans and its metrics."""

    exporter: InMemorySpanExporter
    tracer_provider: TracerProvider
    reader: InMemoryMetricReader
    meter_provider: MeterProvider

    def spans(self) -> list[ReadableSpan]:
        """The spans that have ended, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        """The ended spans called ``name``, in the order they started."""
        found = [span for span in self.spans() if span.name == name]
        return sorted(found, key=lambda span: span.start_time or 0)

    def one(self, name: str) -> ReadableSpan:
        """The one ended span called ``name``."""
        found = self.named(name)
        assert len(found) == 1, [span.name for span in self.spans()]
        return found[0]

    def tree(self) -> list[str]:
        """The ended spans as an indented tree (children in the order they started)."""
        spans = sorted(self.spans(), key=lambda span: span.start_time or 0)
        ids = {span.context.span_id for span in spans if span.context is not None}
        lines: list[str] = []

        def walk(parent: int | None, depth: int) -> None:
            for span in spans:
                above = span.parent.span_id if span.parent is not None else None
                if (above if above in ids else None) == parent:
                    lines.append("  " * depth + span.name)
                    assert span.context is not None
                    walk(span.context.span_id, depth + 1)

        walk(None, 0)
        return lines

    def points(self, metric: str) -> list[HistogramDataPoint]:
        """The data points of the histogram ``metric`` recorded so far."""
        data = self.reader.get_metrics_data()
        found: list[HistogramDataPoint] = []
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for recorded in scope.metrics:
                    if recorded.name == metric:
                        found += [
                            point
                            for point in recorded.data.data_points
                            if isinstance(point, HistogramDataPoint)
                        ]
        return found


def plugged_observers() -> tuple[object, object, object]:
    """What each of the three observer hooks holds (put back as it was)."""
    found = []
    for observe in (observe_interactions, observe_llm_calls, observe_tool_calls):
        current = observe(None)
        observe(current)  # type: ignore[arg-type]
        found.append(current)
    return found[0], found[1], found[2]


def parent_of(child: ReadableSpan, parent: ReadableSpan) -> bool:
    """Whether ``parent`` is ``child``'s parent (in the same trace)."""
    assert child.parent is not None, child.name
    assert parent.context is not None
    return bool(
        child.parent.span_id == parent.context.span_id
        and child.parent.trace_id == parent.context.trace_id
    )


@pytest.fixture
def traces() -> Iterator[Traces]:
    """Instrumented for the test (content not captured), into an in-memory exporter."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    instrument(tracer_provider, meter_provider=meter_provider)
    try:
        yield Traces(exporter, tracer_provider, reader, meter_provider)
    finally:
        uninstrument()
        tracer_provider.shutdown()
        meter_provider.shutdown()
