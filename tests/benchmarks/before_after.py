"""W1-W4 in CPU time, one library against another (issue 18: before and after a refactor).

Each run is a fresh interpreter whose ``PYTHONPATH`` puts one copy of the ``miniagents``
package first (the repository's own for "after", an exported folder for "before"), and the
repository root next (for ``tests.benchmarks``). The runs alternate: before, after, before,
after ... so that a change in the machine's load hits both alike. A run does one checked
warm-up (the streams' and agents' check, or W4's run at N = 200), then the measured runs
(W1-W3: the median of 3 in the process; W4: one):
**CPU** is ``time.process_time()`` (this process only: the figure to read on a shared
machine), **wall** ``time.perf_counter()``; then the peak memory growth (``tracemalloc``
over one more, untimed run for W1-W3; for W4 the peak RSS growth of the measured run).

Usage, from the repository root::

    git archive e8eb714 miniagents | tar -x -C /tmp/before-refactor
    python tests/benchmarks/before_after.py --before /tmp/before-refactor --reps 5
    python tests/benchmarks/before_after.py --child W3-sequence --profile  # cProfile top 25
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.benchmarks.streams import Case, Variant

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # run as a script: make the `tests` package importable
    sys.path.append(_ROOT)  # appended: the library under test stays the one PYTHONPATH names


def _streams_case(workload: str) -> tuple[Case, Variant]:
    from tests.benchmarks import agents, streams

    if workload.startswith("W1-"):
        runner = {
            "W1-reactive": streams.w1_library_reactive,
            "W1-async-iter": streams.w1_library_async_iter,
            "W1-agents": agents.w1_agents(agents._inquire_re_stream),
        }[workload]
        variant = streams.Variant(workload, runner)
        return streams.Case("W1", 100_000, 20, variant, [], streams.w1_expected, True), variant
    if workload.startswith("W2-"):
        runner = {
            "W2-iterate": agents.w2_library_iterate,
            "W2-await": agents.w2_library_await,
            "W2-fan-out": agents.w2_library_fan_out,
        }[workload]
        variant = streams.Variant(workload, runner)
        return streams.Case("W2", 10_000, 1, variant, [], agents.w2_expected, True), variant
    variant = streams.Variant(workload, streams.w3_library)
    return streams.Case("W3", 50_000, 5, variant, [], streams.w3_expected, True), variant


WORKLOADS = (
    "W1-reactive",
    "W1-async-iter",
    "W1-agents",
    "W2-iterate",
    "W2-await",
    "W2-fan-out",
    "W3-sequence",
    "W4-inquire",
    "W4-pipe",
)


def child(workload: str, profile: bool, dump: str | None = None) -> dict[str, float | str]:
    """One checked warm-up, one measured run, then the memory; in this process."""
    import miniagents

    measured: Callable[[], object]
    if workload.startswith("W4-"):
        from tests.benchmarks import pipeline

        form = workload.removeprefix("W4-")
        if profile:
            pipeline.child(form, 200, False)
            measured = lambda: asyncio.run(pipeline.RUNNERS[form](100_000, form, False, None))  # noqa: E731
        else:
            result: dict[str, float | str] = {**pipeline.child(form, 100_000, False)}
            result["peak_mb"] = result.pop("rss_growth_mb")
            result["package"] = miniagents.__file__ or ""
            return result
    else:
        from tests.benchmarks import streams

        case, variant = _streams_case(workload)
        streams.check(case, variant)
        measured = lambda: streams.timed(case, variant)  # noqa: E731
    if profile:
        profiler = cProfile.Profile()
        gc.collect()
        profiler.runcall(measured)
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(25)
        if dump:
            stats.dump_stats(dump)
        return {"package": miniagents.__file__ or ""}
    cpus, walls = [], []
    for _ in range(3):
        gc.collect()
        began, cpu_began = time.perf_counter(), time.process_time()
        measured()
        walls.append(time.perf_counter() - began)
        cpus.append(time.process_time() - cpu_began)
    peak = streams.peak_memory(case, variant) / 1e6
    return {
        "cpu": statistics.median(cpus),
        "wall": statistics.median(walls),
        "peak_mb": peak,
        "package": miniagents.__file__ or "",
    }


def run(workload: str, library: str) -> dict[str, float | str]:
    """:func:`child` in a fresh interpreter with ``library`` first on its path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([library, _ROOT])}
    args = [sys.executable, __file__, "--child", workload]
    done = subprocess.run(args, capture_output=True, text=True, check=True, env=env)
    result: dict[str, float | str] = json.loads(done.stdout.strip().splitlines()[-1])
    assert str(result["package"]).startswith(library), (result["package"], library)
    return result


def _spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main(argv: Sequence[str] | None = None) -> None:
    """Alternate before and after for every workload and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--before", help="folder holding the 'before' miniagents package")
    parser.add_argument("--after", default=_ROOT, help="the 'after' one (default: this repo)")
    parser.add_argument("--reps", type=int, default=5, help="runs of each side (default 5)")
    parser.add_argument("--only", nargs="+", choices=WORKLOADS, help="some workloads only")
    parser.add_argument("--child", choices=WORKLOADS, help="one run in this process")
    parser.add_argument("--profile", action="store_true", help="with --child: cProfile top 25")
    parser.add_argument("--dump", help="with --profile: also save the stats to this file")
    options = parser.parse_args(argv)
    if options.child:
        print(json.dumps(child(options.child, options.profile, options.dump)))
        return
    if not options.before:
        parser.error("--before is required (or --child)")
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    print()
    print(
        "| workload | CPU s before | CPU s after | CPU ratio median (min-max) "
        "| peak MB before | peak MB after | wall s before / after |"
    )
    print("|---|---|---|---|---|---|---|")
    for workload in options.only or WORKLOADS:
        before: list[dict[str, float | str]] = []
        after: list[dict[str, float | str]] = []
        for _ in range(options.reps):
            before.append(run(workload, options.before))
            after.append(run(workload, options.after))

        def column(side: list[dict[str, float | str]], key: str) -> list[float]:
            return [float(r[key]) for r in side]

        ratios = [a / b for a, b in zip(column(after, "cpu"), column(before, "cpu"), strict=True)]
        print(
            f"| {workload} | {_spread(column(before, 'cpu'))} | {_spread(column(after, 'cpu'))} "
            f"| {_spread(ratios)} | {statistics.median(column(before, 'peak_mb')):.1f} "
            f"| {statistics.median(column(after, 'peak_mb')):.1f} "
            f"| {statistics.median(column(before, 'wall')):.2f} / "
            f"{statistics.median(column(after, 'wall')):.2f} |",
            flush=True,
        )
        print(f"  load {os.getloadavg()}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
