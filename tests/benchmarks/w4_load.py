"""W4 on a quiet machine and under a synthetic load this script starts itself (issue 24).

Run by hand from the repository root (pytest never collects it; it loads the machine for
a few minutes); ``PYTHONPATH`` chooses the library measured::

    python tests/benchmarks/w4_load.py                          # quiet, spin, mem; 3 runs
    python tests/benchmarks/w4_load.py --loads quiet mem --window 64
    PYTHONPATH=/tmp/lib python tests/benchmarks/w4_load.py --runs 5

In each of ``--runs`` rounds, for each load in turn, the load processes are started, W4
(``pipeline.py``, fast consumer, N = 100,000 by default) runs once per variant (baseline,
inquire, pipe), each in a fresh interpreter (a checked warm-up at N = 200, then the
measured run), and the load is stopped: the loads alternate, so the machine's own drift
falls on all of them. The CPU ratio is the median over the rounds of each round's
variant / baseline. The loads:

* ``quiet``: nothing started (whatever else runs on the machine still runs);
* ``spin``: 2 processes ``while True: pass`` (CPU only: a tiny working set);
* ``mem``: 2 processes copying every 64th byte of a 64 MB bytearray, again and again
  (each pass touches every cache line of 64 MB: they evict the shared L3 and their
  core's L2).

Per run: **CPU** (``time.process_time``), wall, the event loop's passes (``_run_once``) and
the context switches of the measured run (``getrusage``: voluntary, involuntary). With
``--window W`` the library's streams keep W pieces (``stream_limits``), not 1,024: the
same work on a smaller working set (the baseline has no window).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

LOADS: dict[str, str | None] = {
    "quiet": None,
    "spin": "while True: pass",
    "mem": (
        "buffer = bytearray(64 << 20)\n"
        "lines = memoryview(buffer)[::64]\n"
        "while True: bytes(lines)"  # every cache line of 64 MB, at C speed
    ),
}


def child(variant: str, n: int, window: int | None) -> dict[str, float]:
    """One checked warm-up, then the measured run, with its loop passes and switches."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import pipeline  # type: ignore[import-not-found]  # this script's folder

    from miniagents.promising.limits import StreamLimits, stream_limits

    if window is not None:
        stream_limits.set(StreamLimits(window, StreamLimits().high_water_mark))
    runner = pipeline.RUNNERS[variant]
    sink: list[str] = []
    assert asyncio.run(runner(200, variant, False, sink)) == 200
    assert sink == [f"{index:08d} {pipeline.TEXT}".upper() for index in range(200)]
    passes = 0

    async def counted() -> int:
        nonlocal passes
        loop = asyncio.get_running_loop()
        run_once = loop._run_once  # type: ignore[attr-defined]

        def counted_run_once() -> None:
            nonlocal passes
            passes += 1
            run_once()

        loop._run_once = counted_run_once  # type: ignore[attr-defined]
        count: int = await runner(n, variant, False, None)
        return count

    usage = resource.getrusage(resource.RUSAGE_SELF)
    began, cpu_began = time.perf_counter(), time.process_time()
    count = asyncio.run(counted())
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    after = resource.getrusage(resource.RUSAGE_SELF)
    assert count == n, (count, n)
    return {
        "cpu": cpu,
        "wall": wall,
        "passes": passes,
        "voluntary": after.ru_nvcsw - usage.ru_nvcsw,
        "involuntary": after.ru_nivcsw - usage.ru_nivcsw,
    }


def measure(variant: str, n: int, window: int | None) -> dict[str, float]:
    """Run :func:`child` in a fresh interpreter (PYTHONPATH as given) and return its figures."""
    args = [sys.executable, __file__, "--child", variant, str(n)]
    if window is not None:
        args += ["--window", str(window)]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def under(load: str, variants: Sequence[str], n: int, window: int | None) -> list[dict[str, float]]:
    """Start the load, measure every variant once (in this order), stop the load."""
    code = LOADS[load]
    loaders = [] if code is None else [subprocess.Popen([sys.executable, "-c", code]) for _ in "ab"]
    try:
        time.sleep(1.0 if loaders else 0.0)  # let the load settle in
        return [measure(variant, n, window) for variant in variants]
    finally:
        for loader in loaders:
            loader.kill()
            loader.wait()


def report(
    load: str, variants: Sequence[str], n: int, rounds: list[list[dict[str, float]]]
) -> None:
    """One table row per variant: medians over the rounds, the CPU ratio paired by round."""
    for index, variant in enumerate(variants):
        runs = [results[index] for results in rounds]
        cpus = [r["cpu"] for r in runs]
        ratios = [results[index]["cpu"] / results[0]["cpu"] for results in rounds]
        median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        print(
            f"| {load} | {variant} | {len(runs)} | {median['cpu']:.3f} "
            f"({min(cpus):.3f}-{max(cpus):.3f}) | {statistics.median(ratios):.2f}x "
            f"({min(ratios):.2f}-{max(ratios):.2f}) | {median['cpu'] / n * 1e6:.1f} | "
            f"{median['wall']:.3f} | {median['passes']:,.0f} | {median['voluntary']:,.0f} | "
            f"{median['involuntary']:,.0f} |",
            flush=True,
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Measure W4 under each load and print one table row per load and variant."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--loads", nargs="+", default=list(LOADS), choices=list(LOADS))
    parser.add_argument("--variants", nargs="+", default=["baseline", "inquire", "pipe"])
    parser.add_argument("--runs", type=int, default=3, help="runs per variant and load (3)")
    parser.add_argument("--n", type=int, default=100_000, help="messages (100,000)")
    parser.add_argument("--window", type=int, help="the library's replay window (1,024)")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "N"), help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        print(json.dumps(child(options.child[0], int(options.child[1]), options.window)))
        return
    import miniagents

    print(f"library: {miniagents.__file__}; window {options.window or 'default'}")
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print()
    print(
        "| load | variant | runs | CPU s (min-max) | CPU ratio, paired by round (min-max) "
        "| CPU µs per message | wall s "
        "| loop passes | voluntary switches | involuntary switches |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    rounds: dict[str, list[list[dict[str, float]]]] = {load: [] for load in options.loads}
    for _ in range(options.runs):  # the loads alternate: the machine's own drift is shared
        for load in options.loads:
            rounds[load].append(under(load, options.variants, options.n, options.window))
    for load in options.loads:
        report(load, options.variants, options.n, rounds[load])


if __name__ == "__main__":
    main()
