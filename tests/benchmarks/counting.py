"""What the load does not change: the calls and the Python opcodes of one run.

Shared by the counting scripts (``w1_counts.py``, ``w4_counts.py``): each gives a function
that makes the coroutine of one run, and reads the counts of a fresh event loop running it.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import pstats
import sys
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any

__all__ = ["count_calls", "count_opcodes"]

Run = Callable[[], Coroutine[Any, Any, object]]


def count_calls(run: Run, dump: str | None = None) -> int:
    """Function calls of one run under cProfile (Python and builtin; saved to ``dump``)."""
    gc.collect()
    profile = cProfile.Profile()
    profile.enable()
    asyncio.run(run())
    profile.disable()
    if dump is not None:
        profile.dump_stats(dump)
    return int(pstats.Stats(profile).total_calls)  # type: ignore[attr-defined]


def count_opcodes(run: Run) -> int:
    """Python opcodes executed by one run (``sys.settrace`` opcode events, the collector off)."""
    count = 0

    def trace(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        frame.f_trace_opcodes = True
        if event == "opcode":
            count += 1
        return trace

    gc.collect()
    gc.disable()
    sys.settrace(trace)
    try:
        asyncio.run(run())
    finally:
        sys.settrace(None)
        gc.enable()
    return count
