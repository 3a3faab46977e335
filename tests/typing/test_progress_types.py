"""Static typing tests for the progress meters and reading a stream on demand.

The ``check_*`` functions are never called: they exist to be type-checked by mypy
(``mypy.ini`` is strict, with ``warn_unused_ignores``). ``assert_type`` pins the exact
inferred types, and each line that must be rejected carries a precise
``# type: ignore[code]``. :func:`test_progress_types_pass_mypy` runs mypy on this file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import assert_type

from miniagents.pipeline.progress import (
    POSTFIX_INTERVAL,
    ProgressBar,
    ProgressReading,
    add_progress_meter,
)
from miniagents.promising import StreamedPromise
from miniagents.promising.lowlevel import read_on_demand
from miniagents.promising.streamed_promise import StreamIterator
from tests.fakes.typecheck import assert_passes_mypy


def start_meter() -> ProgressReading | None:
    return lambda: "tokens=1"


def check_progress_meters() -> None:
    remove = add_progress_meter(start_meter)
    assert_type(remove, Callable[[], None])
    assert_type(remove(), None)
    assert_type(ProgressBar().postfix(), str)
    assert_type(POSTFIX_INTERVAL, float)
    add_progress_meter(lambda: None)
    add_progress_meter(lambda: lambda: None)
    add_progress_meter("tokens")  # type: ignore[arg-type]
    add_progress_meter(lambda: 1)  # type: ignore[arg-type,return-value]


async def check_read_on_demand(stream: StreamedPromise[str, None]) -> None:
    iterator = aiter(stream)
    assert_type(iterator, StreamIterator[str])
    assert_type(read_on_demand(iterator, 1), None)
    read_on_demand(iterator, "1")  # type: ignore[arg-type]


def test_progress_types_pass_mypy() -> None:
    """Type-check this file with the project's mypy.ini (the one run: tests/fakes/typecheck.py)."""
    assert_passes_mypy(__file__)
