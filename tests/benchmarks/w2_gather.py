"""Benchmark: W2 (10,000 agents) against an ``asyncio.gather`` of coroutines; memory per agent.

Run it by hand from the repository root (it is not a test; pytest never collects it)::

    python tests/benchmarks/w2_gather.py                 # M = 10,000, 7 runs per variant
    python tests/benchmarks/w2_gather.py --m 1000 --runs 15
    PYTHONPATH=/tmp/lib python tests/benchmarks/w2_gather.py   # another library

Issue 64's targets, at M = 10,000: W2's wall time at most 3x that of the raw asyncio
program doing the same, and at most 2 KB of memory per agent in the fan-out. The shapes:

* ``gather`` (the baseline): ``await asyncio.gather(*(worker(i) for i in range(M)))``, each
  ``worker`` a coroutine returning ``f"reply {i}"`` (``gather`` wraps each in a task, as
  each agent gets one);
* ``iterate``: W2 of ``agents.py``, ``async for promise in aggregator.inquire(m=M): await
  promise`` (the aggregator replies ``[worker.inquire(index=i) for i in range(M)]``, each
  worker ``ctx.reply(f"reply {index}")``);
* ``await``: the same, the replies awaited at once (``await aggregator.inquire(m=M)``).

Each run on a fresh event loop after ``gc.collect()``, the variants interleaved; **wall**
is ``perf_counter`` from the start of the run (before ``async with MiniAgents()``) to the
last reply (as ``agents.py`` measures W2), **total** to the end of the run (the context's
exit included); **CPU** ``process_time`` of the whole run. **Memory per agent** is
``tracemalloc``'s peak growth over one more, untimed run, over M (``agents.py``'s
figure).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # run as a script: make the `tests` package importable
    sys.path.append(_ROOT)  # after PYTHONPATH: the library measured is the one found first

from tests.benchmarks import agents, streams  # noqa: E402

Runner = Callable[[int, bool], Coroutine[Any, Any, float]]
"""A run of M agents (checking the replies, or not: timed): seconds to its last reply."""


async def _worker(index: int) -> str:
    return f"reply {index}"


async def gather(m: int, check: bool) -> float:
    """The baseline: a gather of M coroutines, each returning its reply."""
    start = time.perf_counter()
    replies = await asyncio.gather(*(_worker(index) for index in range(m)))
    wall = time.perf_counter() - start
    if check:
        assert replies == [f"reply {index}" for index in range(m)], "wrong replies"
    return wall


def _library(run: streams.Runner) -> Runner:
    async def timed(m: int, check: bool) -> float:
        sink: list[str] | None = [] if check else None
        sample = await run(m, 1, sink)
        if check:
            assert sink == [f"reply {index}" for index in range(m)], "wrong replies"
        return sample.wall

    return timed


VARIANTS: dict[str, Runner] = {
    "gather": gather,
    "iterate": _library(agents.w2_library_iterate),
    "await": _library(agents.w2_library_await),
}


def _run(runner: Runner, m: int) -> tuple[float, float, float]:
    """Wall (to the last reply), total and CPU seconds of one run on a fresh event loop."""
    gc.collect()
    cpu, start = time.process_time(), time.perf_counter()
    wall = asyncio.run(runner(m, False))
    return wall, time.perf_counter() - start, time.process_time() - cpu


def _peak(runner: Runner, m: int) -> int:
    """``tracemalloc``'s peak growth (bytes) over one run."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        asyncio.run(runner(m, False))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--m", type=int, default=10_000, help="agents (default 10,000)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per variant")
    options = parser.parse_args()
    import miniagents

    m = options.m
    print(f"library: {miniagents.__file__}; load average {os.getloadavg()[0]:.2f}")
    for runner in VARIANTS.values():
        asyncio.run(runner(min(m, 1_000), True))  # warm-up (and a check)
    times: dict[str, list[tuple[float, float, float]]] = {name: [] for name in VARIANTS}
    for _ in range(options.runs):
        for name, runner in VARIANTS.items():
            times[name].append(_run(runner, m))
    peaks = {name: _peak(runner, m) for name, runner in VARIANTS.items()}
    median = {
        name: [statistics.median(sample[index] for sample in samples) for index in range(3)]
        for name, samples in times.items()
    }
    base_wall, base_total, base_cpu = median["gather"]
    print(
        f"\nM = {m:,}, medians of {options.runs} runs; load average at the end "
        f"{os.getloadavg()[0]:.2f}\n"
    )
    print(
        "| variant | wall ms | / gather | total ms | / gather | CPU ms | / gather "
        "| peak MB | KB per agent |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, (wall, total, cpu) in median.items():
        print(
            f"| {name} | {wall * 1e3:.1f} | {wall / base_wall:.2f}x | {total * 1e3:.1f} | "
            f"{total / base_total:.2f}x | {cpu * 1e3:.1f} | {cpu / base_cpu:.2f}x | "
            f"{peaks[name] / 1e6:.2f} | {peaks[name] / 1e3 / m:.3f} |"
        )
    for name in ("iterate", "await"):
        ratio = median[name][0] / base_wall
        per_agent = peaks[name] / 1e3 / m
        print(
            f"Target {name}: wall <= 3x gather: {ratio:.2f}x "
            f"({'MET' if ratio <= 3 else 'missed'}); memory <= 2 KB per agent: "
            f"{per_agent:.3f} KB ({'MET' if per_agent <= 2 else 'missed'})"
        )


if __name__ == "__main__":
    main()
