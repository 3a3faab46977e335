"""Static typing tests for ``miniagents.ext.otel``: ``instrument`` and ``uninstrument``.

The ``check_*`` functions are never called: they exist to be type-checked by mypy
(``mypy.ini`` is strict, with ``warn_unused_ignores``). ``assert_type`` pins the exact
inferred types, and each line that must be rejected carries a precise
``# type: ignore[code]``. :func:`test_otel_types_pass_mypy` runs mypy on this file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import assert_type

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NoOpTracerProvider

from miniagents.ext.otel import instrument, uninstrument
from tests.fakes.typecheck import assert_passes_mypy


def check_instrument() -> None:
    assert_type(instrument(), None)
    assert_type(instrument(TracerProvider()), None)
    assert_type(instrument(NoOpTracerProvider(), capture_content=True), None)
    assert_type(instrument(meter_provider=MeterProvider()), None)
    assert_type(instrument(None, capture_content=False, meter_provider=None), None)
    instrument("provider")  # type: ignore[arg-type]
    instrument(TracerProvider(), True)  # type: ignore[call-arg]
    instrument(capture_content="yes")  # type: ignore[arg-type]
    instrument(meter_provider=TracerProvider())  # type: ignore[arg-type]


def check_uninstrument() -> None:
    assert_type(uninstrument(), None)
    undo: Callable[[], None] = uninstrument
    assert_type(undo, Callable[[], None])
    uninstrument(TracerProvider())  # type: ignore[call-arg]


def test_otel_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
