"""Benchmark: one LLM call's overhead, in the peers' shape, against a raw async generator.

Run it by hand from the repository root (it is not a test; pytest never collects it)::

    python tests/benchmarks/call_overhead.py                  # 15 batches of 200 calls
    python tests/benchmarks/call_overhead.py --batches 31 --calls 500
    python tests/benchmarks/call_overhead.py --profile /tmp/call.prof   # and a cProfile dump
    python tests/benchmarks/call_overhead.py --instructions 200  # valgrind: 200 calls counted
    python tests/benchmarks/call_overhead.py --tokens 1 --instructions 200  # a call's set-up
    PYTHONPATH=/tmp/lib python tests/benchmarks/call_overhead.py        # another library

The shape other agent libraries are measured in (issue 64): one call of the offline model
(``create_offline_agent(reply=..., token_delay=0)``: no network, no latency, so all that is
measured is the library) streaming 200 tokens, read with ``async for`` (each reply message,
then its tokens), one call after the other in one ``MiniAgents`` context (as a long-lived
app makes them); against ``raw``: an ``async for`` over a plain async generator yielding
the same 200 tokens. The **overhead per call** is ours less raw's, both measured in the
same run, batch by batch, alternated.

Variants:

* ``raw``: the async generator;
* ``ours``: the offline agent with the context's defaults (the stall watch on: 60 s);
* ``unwatched``: ``MiniAgents(llm_stall_timeout=None)`` (no stall watch).

Per variant: CPU microseconds per call (``time.process_time`` over a batch, the median of
the batches: the machine may be shared), wall microseconds likewise, and the function
calls per call (``cProfile``: a run of 2N calls less one of N, over N, so that a run's
fixed cost cancels; the load does not move it). With ``--instructions N``: the machine
instructions per call (the interpreter's C code included, which call counts do not weigh),
a process of 20 warm-up calls and N counted ones less one of the warm-up calls alone, over
N, each under ``valgrind --tool=callgrind`` (``PYTHONHASHSEED=0``); the load does not
move it either, so it is the figure to compare two libraries by on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from miniagents import MiniAgents
from miniagents.ext.llm.offline import create_offline_agent

TOKENS = [f"w{index} " for index in range(200)]
"""The 200 tokens of each reply (the offline model streams a text word by word; ``--tokens``
sets another number)."""

PROMPT = "Say two hundred words."

Run = Callable[[int], Coroutine[Any, Any, None]]


async def _generate(tokens: list[str]) -> AsyncIterator[str]:
    for token in tokens:
        yield token


async def raw(calls: int) -> None:
    """``calls`` reads of a plain async generator of the 200 tokens."""
    for _ in range(calls):
        read: list[str] = []
        async for token in _generate(TOKENS):
            read.append(token)
        assert len(read) == len(TOKENS)


def _ours(stall_timeout: float | None) -> Run:
    settings = {} if stall_timeout else {"llm_stall_timeout": None}

    async def run(calls: int) -> None:
        agent = create_offline_agent(reply="".join(TOKENS), token_delay=0)
        async with MiniAgents(**settings):  # type: ignore[arg-type]
            for _ in range(calls):
                read: list[str] = []
                async for message in agent.inquire(PROMPT):
                    async for token in message:
                        read.append(token)
                assert len(read) == len(TOKENS), len(read)

    return run


VARIANTS: dict[str, Run] = {"raw": raw, "ours": _ours(60.0), "unwatched": _ours(None)}


def _batch(run: Run, calls: int) -> tuple[float, float]:
    """CPU and wall microseconds per call of one batch (a fresh event loop)."""
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    asyncio.run(run(calls))
    return (
        (time.process_time() - cpu) / calls * 1e6,
        (time.perf_counter() - wall) / calls * 1e6,
    )


def _calls(run: Run, calls: int, dump: str | None = None) -> int:
    gc.collect()
    profile = cProfile.Profile()
    profile.enable()
    asyncio.run(run(calls))
    profile.disable()
    if dump is not None:
        profile.dump_stats(dump)
    return int(pstats.Stats(profile).total_calls)  # type: ignore[attr-defined]


def _instructions(variant: str, calls: int) -> float:
    """Machine instructions per call of ``variant`` (callgrind's count, over ``calls``)."""

    def counted(made: int) -> int:
        with tempfile.TemporaryDirectory() as folder:
            out = os.path.join(folder, "callgrind.out")
            command = [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--child",
                variant,
                str(made),
                str(len(TOKENS)),
            ]
            environment = {**os.environ, "PYTHONHASHSEED": "0"}
            subprocess.run(command, env=environment, check=True, capture_output=True)
            with open(out, encoding="utf-8") as written:
                found = re.search(r"^(?:summary|totals): (\d+)", written.read(), re.MULTILINE)
            assert found is not None, "callgrind wrote no total"
            return int(found.group(1))

    return (counted(calls) - counted(0)) / calls


def _timed(batches: int, calls: int, counted: dict[str, float]) -> None:
    """Time ``batches`` batches of each variant, alternated; print the table and the target."""
    for run in VARIANTS.values():
        _batch(run, 20)  # warm-up (and a check)
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    wall: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(batches):
        for name, run in VARIANTS.items():
            batch_cpu, batch_wall = _batch(run, calls)
            cpu[name].append(batch_cpu)
            wall[name].append(batch_wall)
    raw_cpu, raw_wall = statistics.median(cpu["raw"]), statistics.median(wall["raw"])
    print(
        f"\n{batches} batches of {calls} calls of {len(TOKENS)} tokens (medians); "
        f"load average at the end {os.getloadavg()[0]:.2f}\n"
    )
    print("| variant | CPU µs/call | over raw | wall µs/call | over raw | calls/call | over raw |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in VARIANTS:
        name_cpu, name_wall = statistics.median(cpu[name]), statistics.median(wall[name])
        print(
            f"| {name} | {name_cpu:.1f} | {name_cpu - raw_cpu:+.1f} | {name_wall:.1f} | "
            f"{name_wall - raw_wall:+.1f} | {counted[name]:.1f} | "
            f"{counted[name] - counted['raw']:+.1f} |"
        )
    overhead = statistics.median(cpu["ours"]) - raw_cpu
    verdict = "MET" if overhead <= 100 else "missed"
    print(f"\nTarget: overhead per call (ours - raw, CPU) <= 100 µs: {overhead:.0f} µs, {verdict}")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":  # a process under valgrind
        TOKENS[:] = TOKENS[: int(sys.argv[4])]
        asyncio.run(VARIANTS[sys.argv[2]](20 + int(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=15, help="timed batches per variant")
    parser.add_argument("--calls", type=int, default=200, help="calls per batch")
    parser.add_argument("--tokens", type=int, default=200, help="tokens per call (<= 200)")
    parser.add_argument("--profile", help="save ours' cProfile of 2 x calls to this file")
    parser.add_argument(
        "--instructions", type=int, default=0, metavar="N", help="valgrind, N calls (0: no)"
    )
    parser.add_argument(
        "--variants", nargs="+", choices=list(VARIANTS), help="count these only (and raw)"
    )
    options = parser.parse_args()
    TOKENS[:] = TOKENS[: options.tokens]
    if options.variants:
        for name in [name for name in VARIANTS if name not in ("raw", *options.variants)]:
            del VARIANTS[name]
    import miniagents

    print(f"library: {miniagents.__file__}; load average {os.getloadavg()[0]:.2f}")
    counted = {
        name: (_calls(run, 2 * options.calls) - _calls(run, options.calls)) / options.calls
        for name, run in VARIANTS.items()
    }
    if options.profile:
        _calls(VARIANTS["ours"], 2 * options.calls, options.profile)
    if options.batches:
        _timed(options.batches, options.calls, counted)
    else:
        for name, count in counted.items():
            print(f"{name}: {count:.1f} calls a call ({count - counted['raw']:+.1f} over raw)")
    if options.instructions:
        counts = {name: _instructions(name, options.instructions) for name in VARIANTS}
        print("\n| variant | instructions/call | over raw | / raw |")
        print("|---|---:|---:|---:|")
        for name, count in counts.items():
            print(
                f"| {name} | {count:,.0f} | {count - counts['raw']:+,.0f} | "
                f"{count / counts['raw']:.2f}x |"
            )


if __name__ == "__main__":
    main()
