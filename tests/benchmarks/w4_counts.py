"""W4 measured by what the load does not change: calls, opcodes, loop iterations per message.

Run by hand from the repository root (pytest never collects it); ``PYTHONPATH`` chooses the
library measured (a folder holding a ``miniagents`` package, e.g. a ``git archive`` export)::

    python tests/benchmarks/w4_counts.py                        # baseline, inquire, pipe
    python tests/benchmarks/w4_counts.py --n 20000 --dump /tmp/w4.prof   # inquire's profile
    python tests/benchmarks/w4_counts.py --top 30               # and its top functions

For each variant of ``pipeline.py``'s W4 (N messages through three ``upper`` stages, fast
consumer), after an untimed warm-up run, each figure per message (over N, or over the
difference of a run of N and one of N / 2, so that the fixed cost of a run cancels):

* **calls**: function calls of one run under ``cProfile`` (Python and builtin ones);
* **opcodes**: Python opcodes executed (``sys.settrace`` opcode events, the collector off);
* **loop iterations**: ``_run_once`` passes of the event loop, each one ``epoll_wait``
  system call (``selector.select``), and the callbacks (task steps, futures' wake-ups)
  those passes ran;
* **GC**: objects the cyclic collector examined (a collection of generation ``g``
  examines generations 0 to ``g``);
* **allocations**: memory blocks allocated (every object, and the tables of dicts, sets
  and lists; objects a free list recycles are not counted) and their bytes, counted in a
  child process with ``PYTHONMALLOC=malloc`` and a small ``LD_PRELOAD`` shim that counts
  ``malloc``, ``calloc`` and ``realloc(NULL, ...)`` calls
  (built with ``cc`` into a temporary folder; the column is left out without a C compiler
  or on a system other than Linux/glibc), over a run of N minus one of N / 2.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import ctypes
import gc
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # run as a script: make the `tests` package importable
    sys.path.append(_ROOT)  # after PYTHONPATH: the library measured is the one found first

from tests.benchmarks import pipeline  # noqa: E402
from tests.benchmarks.counting import count_calls, count_opcodes  # noqa: E402

Runner = Callable[[], Coroutine[Any, Any, int]]


def _runner(variant: str, n: int) -> Runner:
    return lambda: pipeline.RUNNERS[variant](n, variant, False, None)


def calls(variant: str, n: int, dump: str | None = None) -> int:
    """Function calls of one run under cProfile (optionally saved to ``dump``)."""
    return count_calls(_runner(variant, n), dump)


def opcodes(variant: str, n: int) -> int:
    """Python opcodes executed by one run (the collector off)."""
    return count_opcodes(_runner(variant, n))


def loop_work(variant: str, n: int) -> tuple[int, int, int]:
    """Event-loop passes, ``select`` calls and callbacks run in one run."""
    passes = selects = callbacks = 0

    async def counted() -> int:
        nonlocal passes, selects, callbacks
        loop = asyncio.get_running_loop()
        run_once = loop._run_once  # type: ignore[attr-defined]
        select = loop._selector.select  # type: ignore[attr-defined]
        ready = loop._ready  # type: ignore[attr-defined]

        def counted_run_once() -> None:
            nonlocal passes
            passes += 1
            run_once()

        def counted_select(timeout: float | None = None) -> Any:
            nonlocal selects, callbacks
            selects += 1
            events = select(timeout)
            callbacks += len(ready)  # what this pass will run (ready before the events)
            return events

        loop._run_once = counted_run_once  # type: ignore[attr-defined]
        loop._selector.select = counted_select  # type: ignore[attr-defined]
        try:
            return await _runner(variant, n)()
        finally:
            del loop._run_once  # type: ignore[attr-defined]
            del loop._selector.select  # type: ignore[attr-defined]

    asyncio.run(counted())
    return passes, selects, callbacks


def gc_examined(variant: str, n: int) -> int:
    """Objects the cyclic collector examined in one run."""
    examined = 0

    def note(phase: str, info: dict[str, int]) -> None:
        nonlocal examined
        if phase == "start":
            examined += sum(len(gc.get_objects(g)) for g in range(info["generation"] + 1))

    gc.collect()
    gc.callbacks.append(note)
    try:
        asyncio.run(_runner(variant, n)())
    finally:
        gc.callbacks.remove(note)
    return examined


_SHIM = r"""
#include <stddef.h>
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
unsigned long long w4_allocations = 0, w4_bytes = 0;
void *malloc(size_t size) { w4_allocations++; w4_bytes += size; return __libc_malloc(size); }
void *calloc(size_t n, size_t size) {
    w4_allocations++; w4_bytes += n * size; return __libc_calloc(n, size);
}
void *realloc(void *p, size_t size) {
    if (p == NULL) { w4_allocations++; w4_bytes += size; }
    return __libc_realloc(p, size);
}
"""
"""Counts the memory blocks allocated (``PYTHONMALLOC=malloc`` sends every one to malloc)."""


def _build_shim() -> str | None:
    """Compile the allocation-counting shim; its path, or None if it cannot be built."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not sys.platform.startswith("linux"):
        return None
    folder = tempfile.mkdtemp(prefix="w4_counts_")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    source, library = os.path.join(folder, "shim.c"), os.path.join(folder, "shim.so")
    with open(source, "w") as file:
        file.write(_SHIM)
    built = subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", library, source])
    return library if built.returncode == 0 else None


def allocations(variant: str, n: int, shim: str) -> tuple[float, float]:
    """Memory blocks and bytes allocated per message (a child process with the shim preloaded)."""
    env = {**os.environ, "LD_PRELOAD": shim, "PYTHONMALLOC": "malloc", "W4_SHIM": shim}
    args = [sys.executable, __file__, "--alloc-child", variant, str(n)]
    done = subprocess.run(args, capture_output=True, text=True, check=True, env=env)
    blocks, size = done.stdout.strip().splitlines()[-1].split()
    return float(blocks), float(size)


def _alloc_child(variant: str, n: int) -> None:
    """In the child: allocations (blocks, bytes) of a run of n minus one of n / 2, per message."""
    shim = ctypes.CDLL(os.environ["W4_SHIM"])
    blocks = ctypes.c_ulonglong.in_dll(shim, "w4_allocations")
    size = ctypes.c_ulonglong.in_dll(shim, "w4_bytes")

    def run(messages: int) -> tuple[int, int]:
        gc.collect()
        before = blocks.value, size.value
        asyncio.run(_runner(variant, messages)())
        return blocks.value - before[0], size.value - before[1]

    asyncio.run(_runner(variant, 200)())  # warm-up
    (blocks_n, size_n), (blocks_half, size_half) = run(n), run(n // 2)
    half = n - n // 2
    print((blocks_n - blocks_half) / half, (size_n - size_half) / half)


def main(argv: Sequence[str] | None = None) -> None:
    """Count W4 for each variant, one line per variant."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=20_000, help="messages (20,000)")
    parser.add_argument("--variants", nargs="+", default=list(pipeline.VARIANTS))
    parser.add_argument("--dump", help="save the profile of `inquire` to this file")
    parser.add_argument("--top", type=int, default=0, help="print inquire's top functions")
    parser.add_argument("--no-opcodes", action="store_true", help="skip the (slow) opcodes")
    parser.add_argument("--alloc-child", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.alloc_child:
        _alloc_child(options.alloc_child[0], int(options.alloc_child[1]))
        return
    shim = _build_shim()
    import miniagents

    print(f"library: {miniagents.__file__}")
    n = options.n
    for variant in options.variants:
        asyncio.run(_runner(variant, 200)())  # warm-up
        dump = options.dump if variant == "inquire" else None
        total = calls(variant, n, dump)
        line = f"W4 N={n:,} {variant}: {total / n:.1f} calls"
        if not options.no_opcodes:
            per = (opcodes(variant, n) - opcodes(variant, n // 2)) / (n - n // 2)
            line += f", {per:.1f} opcodes"
        passes, selects, callbacks = loop_work(variant, n)
        line += (
            f", {passes / n:.3f} loop passes ({selects / n:.3f} selects), "
            f"{callbacks / n:.2f} callbacks, {gc_examined(variant, n) / n:.0f} GC-examined"
        )
        if shim is not None:
            blocks, size = allocations(variant, n, shim)
            line += f", {blocks:.1f} allocations ({size:,.0f} bytes)"
        line += " per message"
        print(line, flush=True)
        if options.top and variant == "inquire" and dump:
            pstats.Stats(dump).sort_stats("ncalls").print_stats(options.top)


if __name__ == "__main__":
    main()
