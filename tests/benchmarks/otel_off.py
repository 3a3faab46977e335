"""Benchmark: W1 with tracing off, this library against older exports of it (issue 19).

Run it by hand from the repository root (it is not a test; pytest never collects it)::

    git archive 3278209^ miniagents | tar -x -C /tmp/before-otel   # before the hooks
    python tests/benchmarks/otel_off.py --library before=/tmp/before-otel --reps 7

Each run is a fresh Python process whose ``PYTHONPATH`` is the library's folder (``now``, the
library of this checkout, is always the first one); the libraries are interleaved rep by rep,
in an order that rotates from one rep to the next. A process makes one untimed warm-up run
of each workload (2,000 tokens), then times ``--runs`` runs of each (3 by default, the
workloads in turn), each after ``gc.collect()``, in CPU time (``time.process_time``: the
machine may be shared), and keeps their least (the run the load disturbed least). Workloads, from
``tests/benchmarks/streams.py`` (W1, 100,000 tokens):

* ``W1 reactive K=1`` and ``W1 reactive K=20``: the streams alone (no interaction);
* ``W1 agents K=20``: 20 re-streaming agents as the stages (20 interactions, each
  re-streaming every token), inside one ``MiniAgents`` context.

The tables show, per workload and library, the median over the reps of that CPU time, and
for each pair of libraries ``a / b`` (in the order given, ``now`` first) the ratio of their
times in the same rep (above 1: ``a`` costs more): median (min / max) over the reps.
``--save FILE`` writes every run's time (JSON).

``--hooks`` measures the hooks directly instead, in this process (this checkout's library):
the calls into the tracing modules (``*observing*``, ``ext/otel``) that each workload makes
with no observer set (``sys.setprofile``, 2,000 tokens), and the CPU nanoseconds of each
hook with no observer (``timeit``, best of 7 repeats of a million calls).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

N = 100_000
WORKLOADS = ("W1 reactive K=1", "W1 reactive K=20", "W1 agents K=20")


def _runners() -> dict[str, Callable[[int], Coroutine[Any, Any, object]]]:
    """The workloads, built on the library this process imports."""
    import streams  # type: ignore[import-not-found]  # this script's folder: sys.path[0]

    from miniagents import InteractionContext, MiniAgents, miniagent
    from miniagents.messages import MessagePromise

    @miniagent
    async def re_stream(ctx: InteractionContext) -> None:
        async for message in ctx.message_promises:
            ctx.reply(MessagePromise.from_observable(message.as_observable()))

    async def agents(n: int) -> object:
        start = time.perf_counter()
        async with MiniAgents():
            stage: Any = MessagePromise.from_async_iterable(streams.tokens(n))
            for _ in range(20):
                stage = re_stream.inquire(stage)
            return await streams.consume_messages(stage, start, 1, n, None)

    return {
        "W1 reactive K=1": lambda n: streams.w1_library_reactive(n, 1, None),
        "W1 reactive K=20": lambda n: streams.w1_library_reactive(n, 20, None),
        "W1 agents K=20": agents,
    }


def hooks() -> None:
    """Count the hooks' calls in each workload and time each hook, with no observer."""
    import timeit
    from collections import Counter
    from types import FrameType

    from miniagents.ext.llm.observing import watch_llm_call
    from miniagents.ext.tools.observing import watch_tool_call
    from miniagents.miniagents._observing import interaction_ending  # the hook agent.py calls

    counts: Counter[str] = Counter()

    def profile(frame: FrameType, event: str, _arg: object) -> None:
        where = frame.f_code.co_filename
        if event == "call" and ("observing" in where or "ext/otel" in where):
            counts[f"{Path(where).name}:{frame.f_code.co_name}"] += 1

    for name, runner in _runners().items():
        counts.clear()
        sys.setprofile(profile)
        try:
            asyncio.run(runner(2000))
        finally:
            sys.setprofile(None)
        print(f"{name}, 2,000 tokens: calls into the tracing hooks {dict(counts)}")
    none: Any = None
    timed: dict[str, Callable[[], object]] = {
        "interaction_ending(hook)": lambda: interaction_ending(print),
        "watch_llm_call(...)": lambda: watch_llm_call("alias", none, none),
        "watch_tool_call(...)": lambda: watch_tool_call(none, none, none),
        "an empty lambda (the timing loop itself)": lambda: None,
    }
    for name, statement in timed.items():
        best = min(timeit.repeat(statement, number=10**6, repeat=7, timer=time.process_time))
        print(f"{name}: {best * 1000:.0f} ns per call (CPU)")


def child(runs: int) -> dict[str, Any]:
    """One process: a warm-up run of each workload, then ``runs`` timed runs of each."""
    import miniagents

    runners = _runners()
    for runner in runners.values():
        asyncio.run(runner(2000))
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(runs):
        for name, runner in runners.items():
            gc.collect()
            started = time.process_time()
            asyncio.run(runner(N))
            cpu[name].append(time.process_time() - started)
    return {"library": miniagents.__file__, "cpu": cpu}


def main(argv: Sequence[str] | None = None) -> None:
    """Run the libraries interleaved and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--library", action="append", default=[], help="LABEL=DIR: an exported library"
    )
    parser.add_argument("--reps", type=int, default=5, help="processes per library")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per process")
    parser.add_argument("--save", help="a JSON file for every run's CPU seconds")
    args = parser.parse_args(argv)
    libraries = {"now": str(Path(__file__).resolve().parents[2])}
    libraries.update(dict(item.split("=", 1) for item in args.library))
    labels = list(libraries)
    raw: dict[str, list[dict[str, list[float]]]] = {label: [] for label in labels}
    for rep in range(args.reps):
        shift = rep % len(labels)
        for label in labels[shift:] + labels[:shift]:  # interleaved, the order rotating
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(args.runs)],
                env={**os.environ, "PYTHONPATH": libraries[label]},
                capture_output=True,
                text=True,
                check=True,
                timeout=1800,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            expected = str(Path(libraries[label]).resolve() / "miniagents" / "__init__.py")
            if result["library"] != expected:
                raise RuntimeError(f"{label} imported {result['library']}, not {expected}")
            raw[label].append(result["cpu"])
        print(f"rep {rep + 1} done, load {os.getloadavg()[0]:.1f}", file=sys.stderr)
    if args.save:
        Path(args.save).write_text(json.dumps(raw, indent=1))
    runs = {
        label: [{w: min(v) for w, v in one.items()} for one in reps] for label, reps in raw.items()
    }
    print(f"{args.reps} reps (a fresh process each), least CPU ms of {args.runs} runs each\n")
    print("| workload | " + " | ".join(labels) + " |")
    print("|---|" + "---:|" * len(labels))
    for workload in WORKLOADS:
        medians = [statistics.median(run[workload] for run in runs[label]) for label in labels]
        print(f"| {workload} | " + " | ".join(f"{m * 1000:.0f}" for m in medians) + " |")
    pairs = [(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :]]
    print("\n| workload | " + " | ".join(f"{a} / {b}" for a, b in pairs) + " |")
    print("|---|" + "---|" * len(pairs))
    for workload in WORKLOADS:
        cells = []
        for a, b in pairs:
            ratios = [x[workload] / y[workload] for x, y in zip(runs[a], runs[b], strict=True)]
            median = statistics.median(ratios)
            cells.append(f"{median:.3f} ({min(ratios):.3f} / {max(ratios):.3f})")
        print(f"| {workload} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(int(sys.argv[2]))))
    elif sys.argv[1:2] == ["--hooks"]:
        hooks()
    else:
        main()
