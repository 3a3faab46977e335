"""W1 measured by what the load does not change: calls, Python opcodes per token, memory.

Run by hand from the repository root (pytest never collects it); ``PYTHONPATH`` chooses the
library measured (a folder holding a ``miniagents`` package, e.g. a ``git archive`` export)::

    python tests/benchmarks/w1_counts.py                      # this checkout
    PYTHONPATH=/tmp/lib python tests/benchmarks/w1_counts.py  # another library
    python tests/benchmarks/w1_counts.py --k 1 --dump /tmp/w1.prof

For each K (W1 of ``streams.py``: one message of 100,000 tokens, ``from_observable``
stages), after an untimed warm-up run:

* **calls**: function calls of one run under ``cProfile`` (Python and builtin ones);
* **opcodes per token**: Python opcodes executed (``sys.settrace`` opcode events) in a run
  of 4,000 tokens minus one of 2,000, over 2,000 (so the fixed cost of a run cancels);
* **peak**: ``tracemalloc`` peak growth of one run; **RSS growth**: the process's peak
  resident set before and after one run without tracing (``ru_maxrss``, a high-water mark:
  so only for the first K; run ``--k 20`` alone for K = 20's).

The raw-asyncio baseline (``streams.py``'s) is measured first, beside it, with ``--baseline``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import sys
import tracemalloc
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import streams  # type: ignore[import-not-found]  # this script's folder: sys.path[0]

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # run as a script: make the `tests` package importable
    sys.path.append(_ROOT)  # after PYTHONPATH: the library measured is the one found first

from tests.benchmarks.counting import count_calls, count_opcodes  # noqa: E402

Runner = Callable[[int, int, None], Coroutine[Any, Any, object]]
N = 100_000


def calls(runner: Runner, n: int, k: int, dump: str | None = None) -> int:
    """Function calls of one run of size ``n`` under cProfile (optionally saved to ``dump``)."""
    return count_calls(lambda: runner(n, k, None), dump)


def opcodes(runner: Runner, n: int, k: int) -> int:
    """Python opcodes executed by one run of size ``n`` (the collector off)."""
    return count_opcodes(lambda: runner(n, k, None))


def memory(runner: Runner, k: int) -> tuple[float, float]:
    """MB: tracemalloc peak growth of one run, and RSS growth of one untraced run."""
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    asyncio.run(runner(N, k, None))
    rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1e3  # KiB on Linux
    gc.collect()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        asyncio.run(runner(N, k, None))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (peak - start) / 1e6, rss


def main(argv: Sequence[str] | None = None) -> None:
    """Measure W1 at each K and print one line per K and variant."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--k", type=int, nargs="+", default=[1, 20], help="stages (1 20)")
    parser.add_argument("--baseline", action="store_true", help="the raw-asyncio baseline too")
    parser.add_argument("--dump", help="save the profile of the first K to this file")
    options = parser.parse_args(argv)
    import miniagents

    print(f"library: {miniagents.__file__}")
    variants: list[tuple[str, Runner]] = [("reactive", streams.w1_library_reactive)]
    if options.baseline:
        variants.insert(0, ("baseline", streams.w1_baseline))
    for index, k in enumerate(options.k):
        for label, runner in variants:
            asyncio.run(runner(1_000, k, None))  # warm-up
            peak, rss = memory(runner, k)
            per_token = (opcodes(runner, 4_000, k) - opcodes(runner, 2_000, k)) / 2_000
            dump = options.dump if index == 0 and label == "reactive" else None
            print(
                f"W1 K={k} {label}: {calls(runner, N, k, dump):,} calls, "
                f"{per_token:.1f} opcodes per token, peak {peak:.2f} MB, "
                + (f"RSS growth {rss:.1f} MB" if index == 0 else "RSS growth: see --k alone"),
                flush=True,
            )


if __name__ == "__main__":
    main()
