"""Traces and metrics with OpenTelemetry: ``instrument()`` and ``uninstrument()``.

Once instrumented, every agent interaction, every call of a model and every tool call is
a span, following the OpenTelemetry GenAI semantic conventions, and the spans nest as the
agents do (across Ray workers too): see :mod:`miniagents.ext.otel.instrumentation`.
Importing this package does not import OpenTelemetry; ``instrument()`` needs
``pip install "miniagents[otel]"`` (``opentelemetry-api``; an SDK and an exporter are
yours to choose).
"""

from miniagents.ext.otel.instrumentation import instrument as instrument
from miniagents.ext.otel.instrumentation import uninstrument as uninstrument

__all__ = ["instrument", "uninstrument"]
