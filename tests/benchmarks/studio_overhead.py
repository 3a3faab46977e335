"""Benchmark: W2 and W5 with the studio's recorder on, against the same without it (issue 66).

Run it by hand from the repository root (it is not a test; pytest never collects it)::

    python tests/benchmarks/studio_overhead.py                 # W2 (M = 10,000) and W5, 5 reps
    python tests/benchmarks/studio_overhead.py --reps 7 --w5-workloads single many
    python tests/benchmarks/studio_overhead.py --only W2 --m 1000

Each run is a fresh Python process that imports what it needs, then times one workload in
wall and CPU time (``time.process_time``: the recorder's writer thread counts too), with
the recorder off, or on (``Recorder(store).start()`` before the workload, into a new SQLite
file; its ``close()``, which writes the rest, is timed apart as ``close``). The two modes
are interleaved, rep by rep, in an order that alternates, and the ratio on / off of a rep is
of the two runs next to each other; the tables show the median (min / max) over the reps.
The target (issue 66): on / off at most 1.3 for both workloads.

* ``W2``: ``w2_library_iterate`` of ``agents.py``: an aggregator inquires M workers at once
  and the caller reads the M replies (M interactions and M messages recorded);
* ``W5``: ``llm_stream.py``'s ``ours`` variant over its own SSE server (``--api``, chat by
  default): ``single`` (1 call of 2,000 tokens) and ``many`` (1,000 calls of 200 tokens at
  once; ``--concurrency`` calls), every token recorded with its time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _recorded(on: bool, run: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Run ``run`` with the recorder on or off; its figures, and the recorder's close."""
    from miniagents.ext.studio import Recorder

    if not on:
        return run()
    with tempfile.TemporaryDirectory() as folder:
        recorder = Recorder(Path(folder) / "runs.sqlite", name="benchmark", command=()).start()
        figures = run()
        closing = time.perf_counter()
        recorder.close()
        figures["close"] = time.perf_counter() - closing
        figures["events"] = float(len(recorder.store.all_events(recorder.run_id)))
        return figures


def _w2(m: int) -> dict[str, float]:
    import agents  # type: ignore[import-not-found]  # this script's folder: sys.path[0]

    asyncio.run(agents.w2_library_iterate(200, 1, None))  # (warm-up: imports, first calls)
    cpu = time.process_time()
    wall = time.perf_counter()
    asyncio.run(agents.w2_library_iterate(m, 1, None))
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def _w5(api: str, workload: str, concurrency: int, base: str) -> dict[str, float]:
    import anthropic  # noqa: F401  # (the SDKs imported before the clock, as llm_stream's)
    import llm_stream  # type: ignore[import-not-found]  # this script's folder
    import openai  # noqa: F401

    figures: dict[str, float] = asyncio.run(
        llm_stream.run_variant("ours", api, workload, concurrency, base)
    )
    return {"wall": figures["wall"], "cpu": figures["cpu"]}


def child(argv: list[str]) -> None:
    """In a fresh process: run one workload, print its figures as JSON."""
    workload, mode, *rest = argv
    on = mode == "on"
    if workload == "W2":
        figures = _recorded(on, lambda: _w2(int(rest[0])))
    else:
        api, size, concurrency, base = rest
        figures = _recorded(on, lambda: _w5(api, size, int(concurrency), base))
    print(json.dumps(figures))


def _run(arguments: list[str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"{arguments} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f} / {max(values):.2f})"


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options, run the reps and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=5, help="runs of each mode (default 5)")
    parser.add_argument("--only", choices=("W2", "W5"), help="one workload only")
    parser.add_argument("--m", type=int, default=10_000, help="W2's workers (default 10,000)")
    parser.add_argument("--api", default="chat", help="W5's API (default chat)")
    parser.add_argument(
        "--w5-workloads", nargs="+", default=["single", "many"], choices=("single", "many")
    )
    parser.add_argument(
        "--concurrency", type=int, default=1_000, help="W5 many's calls at once (default 1,000)"
    )
    options = parser.parse_args(argv)
    import llm_stream

    cases: list[tuple[str, list[str]]] = []
    if options.only in (None, "W2"):
        cases.append((f"W2 M={options.m:,}", ["W2", "{mode}", str(options.m)]))
    served = llm_stream.served() if options.only in (None, "W5") else None
    base = served.__enter__() if served is not None else ""
    try:
        if served is not None:
            cases += [
                (
                    f"W5 {options.api} {size}",
                    ["W5", "{mode}", options.api, size, str(options.concurrency), base],
                )
                for size in options.w5_workloads
            ]
        results: dict[str, dict[str, list[dict[str, float]]]] = {
            name: {"off": [], "on": []} for name, _ in cases
        }
        for rep in range(options.reps):
            for name, arguments in cases:
                for mode in ("off", "on") if rep % 2 == 0 else ("on", "off"):
                    given = [part.format(mode=mode) for part in arguments]
                    results[name][mode].append(_run(given))
            print(f"rep {rep + 1} of {options.reps} done", file=sys.stderr)
    finally:
        if served is not None:
            served.__exit__(None, None, None)
    print("| workload | off: wall s | on: wall s | on / off wall | on / off CPU | on: close s |")
    print("|---|---|---|---|---|---|")
    for name, modes in results.items():
        off, on = modes["off"], modes["on"]
        wall = [b["wall"] / a["wall"] for a, b in zip(off, on, strict=True)]
        cpu = [b["cpu"] / a["cpu"] for a, b in zip(off, on, strict=True)]
        print(
            f"| {name} | {_spread([run['wall'] for run in off])} | "
            f"{_spread([run['wall'] for run in on])} | {_spread(wall)} | {_spread(cpu)} | "
            f"{_spread([run['close'] for run in on])} |"
        )
    events: dict[str, Any] = {name: modes["on"][0].get("events") for name, modes in results.items()}
    print(f"\nevents recorded per run: {events}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
    else:
        main()
