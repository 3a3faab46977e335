"""W5 measured by what the load does not change: the calls of an LLM reply read with ``async for``.

Run by hand from the repository root (pytest never collects it); ``PYTHONPATH`` chooses the
library measured (a folder holding a ``miniagents`` package, e.g. a ``git archive`` export)::

    python tests/benchmarks/w5_counts.py                       # this checkout
    PYTHONPATH=/tmp/lib python tests/benchmarks/w5_counts.py   # another library

``llm_stream.py``'s server (in a process of its own) serves the replies; in this process
``llm_stream.py``'s variant ``ours`` (our LLM agent over the real SDK, without the stall
watch) runs the workloads ``single`` (one call of 2,000 tokens) and ``many`` (100
concurrent calls of 200 tokens), for Chat Completions and Anthropic, once untimed, then
once under ``cProfile``:

* **calls**: function calls of the run (Python and builtin ones; the SDK's included);
* **in the library**: the calls of Python functions of the ``miniagents`` package.

The ``single`` counts repeat to a few dozen calls; ``many`` depends on how the network
reads cut the events (a few thousand calls from run to run).
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import pstats
import sys
from collections.abc import Sequence
from pathlib import Path

import llm_stream  # type: ignore[import-not-found]  # this script's folder: sys.path[0]

import miniagents

WORKLOADS = (("single", 1), ("many", 100))
"""The workloads counted, with their number of calls."""


def count(api: str, workload: str, calls: int, base: str) -> tuple[int, int]:
    """Calls of one run of ``ours`` (after an untimed one), and those of the library's code."""
    asyncio.run(llm_stream.run_variant("ours", api, workload, calls, base))
    gc.collect()
    profile = cProfile.Profile()
    profile.enable()
    asyncio.run(llm_stream.run_variant("ours", api, workload, calls, base))
    profile.disable()
    stats = pstats.Stats(profile)
    assert miniagents.__file__ is not None
    library = str(Path(miniagents.__file__).parent)
    own = sum(
        entry[1]
        for (path, _line, _name), entry in stats.stats.items()  # type: ignore[attr-defined]
        if path.startswith(library)
    )
    return int(stats.total_calls), own  # type: ignore[attr-defined]


def main(argv: Sequence[str] | None = None) -> None:
    """Count W5 for each API and workload, one line each."""
    del argv  # (no options)
    import anthropic  # noqa: F401  (imported before the counts, as llm_stream's child does)
    import openai  # noqa: F401

    import miniagents.ext.llm.anthropic
    import miniagents.ext.llm.openai

    print(f"library: {miniagents.__file__}")
    with llm_stream.served() as base:
        for api in ("chat", "anthropic"):
            for workload, calls in WORKLOADS:
                total, own = count(api, workload, calls, base)
                print(f"W5 {api} {workload}: {total:,} calls, {own:,} in the library", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
