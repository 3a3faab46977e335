"""W2 (and W3) measured by what the load does not change: calls and Python opcodes per agent.

Run by hand from the repository root (pytest never collects it); ``PYTHONPATH`` chooses the
library measured (a folder holding a ``miniagents`` package, e.g. a ``git archive`` export)::

    python tests/benchmarks/w2_counts.py                       # this checkout, W2
    python tests/benchmarks/w2_counts.py --baseline            # and raw asyncio beside it
    PYTHONPATH=/tmp/lib python tests/benchmarks/w2_counts.py   # another library
    python tests/benchmarks/w2_counts.py --m 10000 --dump /tmp/w2.prof
    python tests/benchmarks/w2_counts.py --w3                  # W3's calls too (K = 1, 5)

For each M (W2 of ``agents.py``: an aggregator inquires M workers at once, each replying
one short message; the caller iterates the replies and awaits each), after an untimed
warm-up run:

* **calls**: function calls of one run under ``cProfile`` (Python and builtin ones), and
  per agent (over M);
* **opcodes per agent**: Python opcodes executed (``sys.settrace`` opcode events, the
  collector off) in a run of M agents minus one of M / 2, over M / 2 (so the fixed cost
  of a run, entering and leaving ``MiniAgents``, cancels);
* **GC**: the cyclic collector's collections in one run and the objects they examined
  (a collection of generation ``g`` examines generations 0 to ``g``).

With ``--w3``, W3 of ``agents.py`` (50,000 one-token messages through K pass-through or
re-streaming agents) and of ``streams.py`` (``from_observable`` stages) is counted by calls.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Sequence
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # run as a script: make the `tests` package importable
    sys.path.append(_ROOT)  # after PYTHONPATH: the library measured is the one found first

from tests.benchmarks import agents, streams  # noqa: E402
from tests.benchmarks.w1_counts import Runner, calls, opcodes  # noqa: E402


def gc_work(runner: Runner, n: int, k: int) -> tuple[int, int]:
    """Collections of the cyclic GC in one run, and the objects they examined in all.

    A collection of generation ``g`` examines the objects of generations 0 to ``g``
    (counted with ``gc.get_objects`` as it starts). Both depend only on what the run
    allocates and keeps, not on the load.
    """
    collections = 0
    examined = 0

    def note(phase: str, info: dict[str, int]) -> None:
        nonlocal collections, examined
        if phase == "start":
            collections += 1
            examined += sum(len(gc.get_objects(g)) for g in range(info["generation"] + 1))

    gc.collect()
    gc.callbacks.append(note)
    try:
        asyncio.run(runner(n, k, None))
    finally:
        gc.callbacks.remove(note)
    return collections, examined


def main(argv: Sequence[str] | None = None) -> None:
    """Count W2 at each M (and W3 with ``--w3``), one line per size and variant."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--m", type=int, nargs="+", default=[1_000, 10_000], help="agents")
    parser.add_argument("--baseline", action="store_true", help="the raw-asyncio baseline too")
    parser.add_argument("--dump", help="save the library's profile of the first M to this file")
    parser.add_argument("--w3", action="store_true", help="count W3's calls too")
    options = parser.parse_args(argv)
    import miniagents

    print(f"library: {miniagents.__file__}")
    variants: list[tuple[str, Runner]] = [
        ("iterate", agents.w2_library_iterate),
        ("await", agents.w2_library_await),
        ("fan-out", agents.w2_library_fan_out),
    ]
    if options.baseline:
        variants.insert(0, ("baseline", agents.w2_baseline))
    for index, m in enumerate(options.m):
        for label, runner in variants:
            asyncio.run(runner(min(m, 1_000), 1, None))  # warm-up
            dump = options.dump if index == 0 and label == "iterate" else None
            total = calls(runner, m, 1, dump)
            per_agent = (opcodes(runner, m, 1) - opcodes(runner, m // 2, 1)) / (m - m // 2)
            collections, examined = gc_work(runner, m, 1)
            print(
                f"W2 M={m:,} {label}: {total:,} calls ({total / m:.1f} per agent), "
                f"{per_agent:.1f} opcodes per agent, {collections} collections examining "
                f"{examined:,} objects ({examined / m:.0f} per agent)",
                flush=True,
            )
    if options.w3:
        w3: list[tuple[str, Runner]] = [
            ("streams from_observable", streams.w3_library),
            ("pass-through agents", agents.w3_agents(agents._inquire_pass_through)),
            ("re-streaming agents", agents.w3_agents(agents._inquire_re_stream)),
        ]
        if options.baseline:
            w3.insert(0, ("baseline", streams.w3_baseline))
        for k in (1, 5):
            for label, runner in w3:
                asyncio.run(runner(1_000, k, None))  # warm-up
                total = calls(runner, 50_000, k)
                print(f"W3 K={k} {label}: {total:,} calls", flush=True)


if __name__ == "__main__":
    main()
